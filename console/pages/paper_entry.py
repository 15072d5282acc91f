"""Paper forms: print them (a background job, like letters), and type the returned ones.

Keyboard first: type (or scan) the form's code and press Enter; every question is then on one
screen, typed as the printed codes, and the form's constraints and skips are applied as one
types — by the conversation engine on the server (``fieldwork.paper_entry.check``): with
JavaScript, htmx posts the form on every change and swaps in each question's verdict; without it,
the save button posts the whole page and gets it back with the same verdicts. Double entry: the
second entry is typed blind by another person; when the two differ, the differences are shown side
by side and a third action resolves them; agreeing or resolved entries become the respondent's
session (mode ``paper``) through the chat's step path (``fieldwork.paper``). A repeat group is
typed block by block as printed, each field keyed as the chat keys the answer (``member[2]/age``,
``fieldwork.paper_repeats``); "add a block" shows one more block of a repeat without saving.

Coordinators within their units (and admins); every save is audited; every form carries CSRF.
"""

from __future__ import annotations

import re

from aiohttp import web

from console.app import (NavEntry, audit, console_of, current_account, fieldwork_storage, language, render,
                         request_scope)
from console.auth import requires
from console.fieldwork_kit import recent_jobs, runner
from console.i18n import add_texts, t
from console.pages.invitations import units_under
from fieldwork import Refused
from fieldwork import paper as paper_ops
from fieldwork.paper_entry import check, normalise
from fieldwork.paper_repeats import (Closing, Opening, entry_layout, fill_label, position_names, question_at,
                                     typed_fields)
from surveys.phrasing import Phraser, choice_codes, numbering
from surveys.repeats import MAX_INSTANCES, split_key

routes = web.RouteTableDef()
NAV = [NavEntry("nav_paper", "/surveys/{survey}/paper", ("coordinator",), order=27)]
FIELD = "a_"  # prefix of a question's input name

add_texts({
    "nav_paper": {"vi": "Phiếu giấy", "en": "Paper forms"},
    "job_kind_paper_forms": {"vi": "Phiếu giấy", "en": "Paper forms"},
    "paper_title": {"vi": "Phiếu giấy — {title}", "en": "Paper forms — {title}"},
    "paper_print": {"vi": "In phiếu giấy", "en": "Print paper forms"},
    "paper_print_help": {"vi": "Mỗi người trong mẫu chưa được liên hệ nhận một phiếu có mã riêng và mã QR; câu hỏi "
                               "tiếng Việt trước, tiếng Anh bên dưới, có mã phương án và hướng dẫn chuyển câu.",
                         "en": "Everyone in the sample not yet reached gets a form with their own code and QR code; "
                               "Vietnamese first with English beneath, choice codes and skip instructions."},
    "paper_find": {"vi": "Nhập phiếu: gõ hoặc quét mã phiếu rồi nhấn Enter",
                   "en": "Type a form: type or scan its code, then press Enter"},
    "paper_code": {"vi": "Mã phiếu", "en": "Form code"},
    "paper_open": {"vi": "Mở phiếu", "en": "Open"},
    "paper_no_form": {"vi": "Không có phiếu giấy nào mang mã “{code}” trong khảo sát này.",
                      "en": "No paper form of this survey has the code “{code}”."},
    "paper_counts": {"vi": "{printed} phiếu đã in · {once} đã nhập một lần · {differ} cần đối chiếu · {written} đã ghi",
                     "en": "{printed} printed · {once} typed once · {differ} to resolve · {written} written"},
    "paper_pass_1": {"vi": "Nhập lần 1", "en": "First entry"},
    "paper_pass_2": {"vi": "Nhập lần 2 (người khác nhập lại, không xem lần 1)",
                     "en": "Second entry (someone else types it again, without seeing the first)"},
    "paper_pass_3": {"vi": "Đối chiếu hai lần nhập", "en": "Resolve the two entries"},
    "paper_written": {"vi": "Phiếu #{code} đã được ghi thành phiên trả lời {session}.",
                      "en": "Form #{code} was written as session {session}."},
    "paper_saved": {"vi": "Đã lưu lần nhập {n} của phiếu #{code}.", "en": "Entry {n} of form #{code} saved."},
    "paper_differ": {"vi": "Hai lần nhập của phiếu #{code} khác nhau ở {n} câu: cần đối chiếu.",
                     "en": "The two entries of form #{code} differ in {n} question(s): to resolve."},
    "paper_respondent": {"vi": "Người trả lời {pseudonym} · {unit}", "en": "Respondent {pseudonym} · {unit}"},
    "paper_language": {"vi": "Ngôn ngữ của phiếu", "en": "Language of the form"},
    "paper_save": {"vi": "Lưu (Enter)", "en": "Save (Enter)"},
    "paper_save_resolution": {"vi": "Lưu kết quả đối chiếu", "en": "Save the resolution"},
    "paper_not_saved": {"vi": "Chưa lưu: phiếu còn lỗi (xem các câu đánh dấu).",
                        "en": "Not saved: the form has errors (see the marked questions)."},
    "paper_codes_help": {"vi": "Gõ mã in bên cạnh phương án; nhiều mã cách nhau bằng dấu cách. Ngày: ngày/tháng/năm. "
                                "Để trống câu bỏ trống trên phiếu.",
                         "en": "Type the code printed beside the choice; several codes separated by spaces. "
                               "Dates: dd/mm/yyyy. Leave blank what is blank on paper."},
    "paper_status_skip": {"vi": "↷ bỏ qua theo hướng dẫn chuyển câu", "en": "↷ skipped by the form's logic"},
    "paper_status_ignored": {"vi": "↷ bỏ qua theo hướng dẫn chuyển câu — giá trị đã gõ sẽ không được lưu",
                             "en": "↷ skipped by the form's logic — the value typed will not be stored"},
    "paper_status_ok": {"vi": "✓", "en": "✓"},
    "paper_status_pending": {"vi": "…", "en": "…"},
    "paper_entry_1": {"vi": "Lần 1 ({who})", "en": "Entry 1 ({who})"},
    "paper_entry_2": {"vi": "Lần 2 ({who})", "en": "Entry 2 ({who})"},
    "paper_other": {"vi": "Giá trị khác", "en": "Another value"},
    "paper_question": {"vi": "Câu", "en": "Question"},
    "paper_blank": {"vi": "(để trống)", "en": "(blank)"},
    "paper_pick_all": {"vi": "Xin chọn một giá trị cho mỗi câu có hai lần nhập khác nhau.",
                       "en": "Please pick a value for every question where the two entries differ."},
    "audit_paper_print": {"vi": "in phiếu giấy", "en": "paper forms printed"},
    "audit_paper_entry": {"vi": "nhập phiếu giấy", "en": "paper form typed"},
    "audit_paper_written": {"vi": "ghi phiếu giấy thành phiên trả lời", "en": "paper form written"},
    "paper_blocks_help": {"vi": "Mỗi khối trên phiếu nhập vào một khối dưới đây; để trống khối không dùng.",
                          "en": "Type each block of the paper into one block below; leave unused blocks empty."},
    "paper_more_block": {"vi": "Thêm một khối", "en": "Add a block"},
    "paper_more_which": {"vi": "Thêm khối cho", "en": "Add a block to"},
})


# -- scope -------------------------------------------------------------------------------------

def _in_scope(request: web.Request, unit: str | None) -> bool:
    """Whether a respondent of frame unit ``unit`` is the account's (an unscoped account: everyone)."""
    units = request_scope(request).units
    return units is None or unit in units


async def _checked(request: web.Request, paper):
    """``paper`` if it is of this survey (else 404) and of the account's units (else 403)."""
    if paper.survey_id != request_scope(request).project.id:
        raise web.HTTPNotFound()
    if not _in_scope(request, await fieldwork_storage(request).paper.form_unit(paper.id)):
        raise web.HTTPForbidden(reason="unit")
    return paper


async def _paper_form(request: web.Request):
    """The paper form of the route, of this survey (404) and of the account's units (403)."""
    try:
        paper = await fieldwork_storage(request).paper.paper_form(int(request.match_info["paper"]))
    except (ValueError, LookupError):
        raise web.HTTPNotFound() from None
    return await _checked(request, paper)


# -- the survey's paper page ----------------------------------------------------------------------

async def _index(request: web.Request, *, status: int = 200, message=None, problems=(), code: str = ""):
    scope = request_scope(request)
    storage = fieldwork_storage(request)
    units = await storage.paper.form_units(scope.project.id)
    forms = [f for f in await storage.paper.paper_forms(scope.project.id) if _in_scope(request, units.get(f.id))]
    passes = await storage.paper.entry_passes(scope.project.id)
    counts = {"printed": len(forms), "written": sum(f.session_id is not None for f in forms),
              "once": sum(passes.get(f.id) == (1,) for f in forms),
              "differ": sum(f.session_id is None and 2 in passes.get(f.id, ()) for f in forms)}
    units = [u for u in scope.project.units.values() if scope.units is None or u.id in scope.units]
    return render(request, "paper.html", status=status, project=scope.project, units=units, counts=counts,
                  jobs=await recent_jobs(request, scope.project.id, ("paper_forms",)), message=message,
                  problems=list(problems), code=code)


@routes.get("/surveys/{survey}/paper")
@requires("coordinator")
async def paper_page(request: web.Request) -> web.Response:
    lang = language(request)
    message = None
    if request.query.get("written"):
        message = ("ok", t("paper_written", lang, code=request.query.get("code", ""), session=request.query["written"]))
    elif request.query.get("differ"):
        message = ("warn", t("paper_differ", lang, code=request.query.get("code", ""), n=request.query["differ"]))
    elif request.query.get("saved"):
        message = ("ok", t("paper_saved", lang, code=request.query.get("code", ""), n=request.query["saved"]))
    return await _index(request, message=message)


@routes.post("/surveys/{survey}/paper/print")
@requires("coordinator")
async def print_paper(request: web.Request) -> web.Response:
    form = await request.post()
    scope = request_scope(request)
    unit = str(form.get("unit", "")).strip() or None
    if unit is not None:
        if unit not in scope.project.units:
            raise web.HTTPNotFound()
        if scope.units is not None and unit not in scope.units:
            raise web.HTTPForbidden(reason="unit")
    units = sorted(units_under(scope.project, unit) & (scope.units or set(scope.project.units))) if unit \
        else (None if scope.units is None else sorted(scope.units))
    params = {"unit": unit, "units": units, "reissue": form.get("reissue") == "1"}
    job = await runner(request).submit("paper_forms", params, survey_id=scope.project.id,
                                       account_id=current_account(request).id)
    await audit(request, "paper_print", f"unit {unit or 'all'}{', reissue' if params['reissue'] else ''} (job {job.id})")
    raise web.HTTPSeeOther(f"/surveys/{scope.project.id}/paper")


@routes.post("/surveys/{survey}/paper/find")
@requires("coordinator")
async def find(request: web.Request) -> web.Response:
    form = await request.post()
    code = str(form.get("code", "")).strip()
    paper = await paper_ops.find_form(fieldwork_storage(request), code) if code else None
    project = request_scope(request).project
    if paper is None or paper.survey_id != project.id:
        return await _index(request, status=404, problems=[t("paper_no_form", language(request), code=code)],
                            code=code)
    await _checked(request, paper)
    raise web.HTTPSeeOther(f"/surveys/{project.id}/paper/{paper.id}")


# -- one form ------------------------------------------------------------------------------------

def dom_id(key: str) -> str:
    """An element id for a field key: ``member[2]/visit[1]/cost`` → ``member-2--visit-1--cost``."""
    return re.sub(r"\[(\d+)\]", r"-\1", key).replace("/", "--")


def _layout(state, lang: str, typed=None, instances=None, at_least=None) -> list[dict]:
    """The entry screen, in form order: each field, and each repeat's blocks opened and closed around
    theirs (``fieldwork.paper_repeats.entry_layout``)."""
    form = state.form
    numbers = numbering(form)
    phraser = Phraser(form, lang if lang in ("vi", "en") else "en")
    out: list[dict] = []
    titles: list[str] = []  # the open blocks' names, outermost first
    for item in entry_layout(form, typed or {}, instances or {}, at_least or {}):
        if isinstance(item, Opening):
            label = form.groups[item.repeat].label.get(lang, form.default_language) or item.repeat
            titles.append(f"{label} {item.number}")
            out.append({"kind": "open", "path": item.path, "dom": dom_id(item.path), "title": titles[-1],
                        "depth": item.depth})
            continue
        if isinstance(item, Closing):
            titles.pop()
            group = form.groups[item.repeat_path.rsplit("/", 1)[-1]]
            out.append({"kind": "close", "last": item.last, "repeat_path": item.repeat_path,
                        "count": split_key(item.path + "/")[1][-1],
                        "label": group.label.get(lang, form.default_language) or group.name})
            continue
        question, repeats, positions = item.question, item.question.repeats, {}
        if repeats:
            place = split_key(item.key)[1]
            positions = {name: place[-1] for name in position_names(form, repeats)}
        codes = choice_codes(question)
        out.append({
            "kind": "field", "name": item.key, "dom": dom_id(item.key), "field": FIELD + item.key,
            "number": numbers[question.name], "block": " › ".join(titles),
            "label": fill_label(question.label.get(lang, form.default_language), phraser, positions),
            "type": question.type.value,
            "required": question.required is not None and question.required.source.strip() not in ("false()", "0"),
            "choices": [(codes[c.name], c.label.get(lang, form.default_language)) for c in question.choices],
            "question": question,
        })
    return out


def _questions(state, lang: str, typed=None) -> list[dict]:
    return [item for item in _layout(state, lang, typed) if item["kind"] == "field"]


def _typed(form_data, state) -> dict[str, str]:
    """What was typed, by field key: every question's field, and every block's."""
    form = state.form
    return {key[len(FIELD):]: str(value) for key, value in form_data.items()
            if key.startswith(FIELD) and question_at(form, key[len(FIELD):]) is not None}


def _shown_blocks(form_data) -> dict[str, int]:
    """The blocks the screen showed per repeat path (``n_member``), one more where “add a block” was pressed."""
    shown = {}
    for key, value in form_data.items():
        if key.startswith("n_") and str(value).isdigit():
            shown[key[2:]] = min(int(str(value)), MAX_INSTANCES)
    more = str(form_data.get("more_path", ""))
    if form_data.get("more") and more in shown:
        shown[more] = min(shown[more] + 1, MAX_INSTANCES)
    return shown


def _verdicts(checked, typed: dict[str, str], lang: str) -> dict[str, dict]:
    """Per question: its status and the words shown beside it."""
    out = {}
    for name, status in checked.status.items():
        if status == "unused":
            out[name] = {"status": status, "words": "", "dom": dom_id(name)}
            continue
        if name in checked.errors:
            words = checked.errors[name]
        elif status == "skip":
            words = t("paper_status_ignored" if name in checked.ignored else "paper_status_skip", lang)
        elif status == "ok":
            words = t("paper_status_ok", lang)
        else:
            words = ""
        out[name] = {"status": status, "words": words, "dom": dom_id(name)}
    return out


async def _entry_page(request: web.Request, paper, *, status: int = 200, typed=None, checked=None, problems=(),
                      entry_language: str = "vi", shown=None):
    lang = language(request)
    storage = fieldwork_storage(request)
    state = await paper_ops.form_state(storage, paper.id)
    if state.written:
        raise web.HTTPSeeOther(f"/surveys/{paper.survey_id}/paper?written={paper.session_id}")
    respondent = await storage.get_respondent(paper.respondent_id)
    scope = request_scope(request)
    unit_id = await storage.paper.form_unit(paper.id)
    unit_name = scope.project.units[unit_id].name if unit_id in scope.project.units else unit_id or ""
    pass_number = state.next_pass
    typed = typed or {}
    resolve = []
    if pass_number == paper_ops.RESOLVED:
        first, second = state.typed(1), state.typed(2)
        questions = {q["name"]: q for q in _questions(state, lang, {**first, **second})}
        for name in state.differing:
            resolve.append({**questions[name], "first": first.get(name, ""), "second": second.get(name, ""),
                            "picked": typed.get(name)})
        if not typed:
            typed = dict(second)
    verdicts = _verdicts(checked, typed, lang) if checked is not None else {}
    return render(request, "paper_entry.html", status=status, project=scope.project, paper=paper,
                  respondent=respondent, unit_name=unit_name, pass_number=pass_number,
                  layout=_layout(state, lang, typed, checked.instances if checked is not None else None, shown),
                  typed=typed, verdicts=verdicts, resolve=resolve,
                  entries=state.entries, problems=list(problems), not_saved=checked is not None and not checked.ok,
                  entry_language=entry_language, languages=state.form.language_codes or ("vi",))


@routes.get("/surveys/{survey}/paper/{paper}")
@requires("coordinator")
async def entry_page(request: web.Request) -> web.Response:
    return await _entry_page(request, await _paper_form(request))


@routes.post("/surveys/{survey}/paper/{paper}/check")
@requires("coordinator")
async def check_entry(request: web.Request) -> web.Response:
    """htmx, on every change: each question's verdict, swapped in out of band."""
    paper = await _paper_form(request)
    state = await paper_ops.form_state(fieldwork_storage(request), paper.id)
    form_data = await request.post()
    typed = _typed(form_data, state)
    if state.next_pass == paper_ops.RESOLVED:
        typed = {**state.typed(2), **_resolution(form_data, state)}
    values = {key: normalise(q, typed.get(key)) for key, q in typed_fields(state.form, typed)}
    checked = check(state.form, {k: v for k, v in values.items() if v}, console_of(request).clock(),
                    str(form_data.get("language", "vi")))
    lang = language(request)
    verdicts = _verdicts(checked, typed, lang)
    for item in _layout(state, lang, typed, checked.instances):  # a block's error gone: its verdict cleared
        if item["kind"] == "open" and item["path"] not in verdicts:
            verdicts[item["path"]] = {"status": "", "words": "", "dom": item["dom"]}
    return render(request, "paper_verdicts.html", verdicts=verdicts, ok=checked.ok)


def _resolution(form_data, state) -> dict[str, str]:
    """The value picked for each differing question: entry 1's, entry 2's or another typed."""
    first, second = state.typed(1), state.typed(2)
    picked = {}
    for name in state.differing:
        choice = str(form_data.get("pick_" + name, ""))
        if choice == "1":
            picked[name] = first.get(name, "")
        elif choice == "2":
            picked[name] = second.get(name, "")
        elif choice == "other":
            picked[name] = str(form_data.get(FIELD + name, ""))
    return picked


@routes.post("/surveys/{survey}/paper/{paper}")
@requires("coordinator")
async def save(request: web.Request) -> web.Response:
    """The whole form (no JavaScript needed): saved when the engine accepts it, else shown again."""
    paper = await _paper_form(request)
    storage = fieldwork_storage(request)
    state = await paper_ops.form_state(storage, paper.id)
    form_data = await request.post()
    entry_language = str(form_data.get("language", "vi"))
    if entry_language not in (state.form.language_codes or ("vi",)):
        entry_language = state.form.default_language
    try:
        pass_number = int(str(form_data.get("pass", "")))
    except ValueError:
        raise web.HTTPBadRequest() from None
    if pass_number == paper_ops.RESOLVED:
        picked = _resolution(form_data, state)
        typed = {**state.typed(2), **picked}
        if set(picked) != set(state.differing):
            return await _entry_page(request, paper, status=400, typed=picked,
                                     problems=[t("paper_pick_all", language(request))], entry_language=entry_language)
    else:
        typed = _typed(form_data, state)
        if form_data.get("more"):  # “add a block”: the same page with one more block, nothing saved
            return await _entry_page(request, paper, typed=typed, entry_language=entry_language,
                                     shown=_shown_blocks(form_data))
    account = current_account(request)
    at = console_of(request).clock()
    try:
        saved = await paper_ops.save_entry(storage, paper.id, pass_number, typed, entry_language,
                                           account_id=account.id, username=account.username, at=at)
    except Refused as refused:
        return await _entry_page(request, paper, status=400, typed=typed if pass_number != 3 else _resolution(
            form_data, state), problems=[refused.message, *refused.problems], entry_language=entry_language,
            shown=_shown_blocks(form_data))
    if not saved.stored:
        return await _entry_page(request, paper, status=400, typed=typed if pass_number != 3 else _resolution(
            form_data, state), checked=saved.checked, entry_language=entry_language, shown=_shown_blocks(form_data))
    await audit(request, "paper_entry", f"paper form {paper.id}, entry {pass_number}")
    base = f"/surveys/{paper.survey_id}/paper?code={paper.id}"
    if saved.written:
        await audit(request, "paper_written", f"paper form {paper.id} → session {saved.session_id}")
        raise web.HTTPSeeOther(f"{base}&written={saved.session_id}")
    if saved.differing:
        raise web.HTTPSeeOther(f"{base}&differ={len(saved.differing)}")
    raise web.HTTPSeeOther(f"{base}&saved={pass_number}")
