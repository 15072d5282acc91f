"""Paper mode: print one questionnaire per sampled person, type the returned ones twice, resolve
the differences, and make the result the person's session.

* ``print_forms`` issues each person not yet reached a code (the same personal codes letters carry,
  ``exporters.letters.issue_letters``: stored as hashes, the person becomes *invited*), records the
  copy (which questionnaire version went to whom, by the code's hash) and writes
  ``paper-forms.html`` (``fieldwork.paper_form``), ``paper-forms.pdf`` through the headless Chromium
  that prints letters, and ``paper-forms.csv`` (who gets which code, for handing them out). Earlier
  files in the folder are kept (``-2``, ``-3`` …), as the codes exist nowhere else.
* ``save_entry`` stores what one person typed (entry 1, entry 2 by someone else, or the resolution),
  checked first by the engine (``fieldwork.paper_entry.check``): an entry the form refuses is not
  stored. When two entries agree, or once their differences are resolved, ``write`` replays the
  answers through ``fieldwork.conversations.Conversations`` — the step path of chat answers, with the
  quota gate — on the person's session, with event keys ``paper:<form>:<prompt>:<kind>``, so
  dispositions, quotas and answer history follow as for a chat, the export's mode is ``paper``,
  and writing the same form again changes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from fieldwork import Refused
from fieldwork.paper_entry import Checked, check, differences, events, normalise, replay_budget
from fieldwork.paper_form import PAPER, Copy, FormPrinter, forms_html
from fieldwork.paper_repeats import Blocks, typed_fields
from surveys.model import Questionnaire
from surveys.privacy import PrivacyNotice, notice_of

#: PAPER: the channel (and mode) of sessions typed from paper; also the prefix of their event keys.
#: The pass that resolves where entries 1 and 2 differ.
RESOLVED = 3


@dataclass(frozen=True)
class Printed:
    count: int
    files: dict[str, Path]


# -- printing ----------------------------------------------------------------------------------

#: The folder beside the paper forms' HTML that holds the images their labels show.
PAPER_MEDIA = "paper-media"


def paper_files(out: Path, run: int) -> tuple[Path, Path, Path]:
    suffix = "" if run == 1 else f"-{run}"
    return out / f"paper-forms{suffix}.html", out / f"paper-forms{suffix}.csv", out / f"paper-forms{suffix}.pdf"


def _next_run(out: Path) -> int:
    run = 1
    while any(path.exists() for path in paper_files(out, run)):
        run += 1
    return run


async def latest_forms(storage) -> dict[str, tuple[Questionnaire, str]]:
    """form id → (the latest stored version's questionnaire, its version)."""
    from surveys.xlsform import load_questionnaire_bytes

    found: dict[str, tuple[Questionnaire, str]] = {}
    for stored in await storage.list_questionnaires():  # ordered by loaded_at: the latest wins
        try:
            found[stored.form_id] = (load_questionnaire_bytes(stored.source, stored.source_name), stored.version)
        except Exception:  # noqa: BLE001 — a stored blob that no longer loads is not printed
            continue
    return found


async def print_forms(storage, project, out: Path, at: dt.datetime, *, units: list[str] | None = None,
                      reissue: bool = False, respondent: int | None = None, pdf: bool = True,
                      blocks: Blocks = Blocks(),
                      progress: Callable[[int, int], None] = lambda done, total: None) -> Printed:
    """A paper form for every person of the survey (or of ``units``, or one ``respondent``) who has
    no code yet (``reissue``: everyone not yet reached, with new codes; old ones stop working).
    ``blocks``: how many blank blocks a repeat of unknown size gets (``fieldwork.paper_repeats``)."""
    from exporters.letters import Channels, issue_letters
    from fieldwork.invitations import check_writable, print_pdf, survey_respondents
    from surveys.invitation_codes import code_hash

    people = await survey_respondents(storage, project.id, units)
    if respondent is not None:
        people = [p for p in people if p.id == respondent]
    forms = await latest_forms(storage)
    missing = sorted({p.form_id or "" for p in people if p.disposition in ("sampled", "invited")} - set(forms))
    if missing:
        raise Refused(f"survey {project.id}: questionnaire(s) not loaded: {', '.join(m or '(none)' for m in missing)}; "
                      "load them with khaosat survey load FILE FORM…; nothing printed")
    check_writable(out)
    letters = await issue_letters(storage, Channels(), at, reissue=reissue, respondents=people, title=project.title,
                                  progress=progress)
    if not letters:
        raise Refused(f"nobody to print for in survey {project.id}: no sample member without a code (draw a sample "
                      f"first; --reissue prints new codes for everyone not yet reached). Nothing written in {out}.")
    unit_of = {row.frame_id: row.unit for row in await storage.frame_rows(project.id)}
    member_unit = {m.respondent_id: unit_of.get(m.frame_id, "") for m in await storage.sample_members(project.id)}
    printers: dict[str, FormPrinter] = {}

    def image_file(name: str, data: bytes) -> str:
        """A label's image, written once beside the HTML (named by its content: two forms' 'logo.png'
        stay apart) rather than inline in every copy."""
        path = out / PAPER_MEDIA / f"{hashlib.sha256(data).hexdigest()[:16]}{Path(name).suffix.lower()}"
        if not path.exists():
            path.parent.mkdir(exist_ok=True)
            path.write_bytes(data)
        return f"{PAPER_MEDIA}/{path.name}"

    pages, rows = [], []
    for letter in letters:
        person = letter.respondent
        form, version = forms[person.form_id]
        await storage.paper.record_paper_form(code_hash(letter.typed_code), person.id, project.id, form.form_id,
                                              version, at.isoformat())
        printer = printers.get(form.form_id) or printers.setdefault(
            form.form_id, FormPrinter(form, notice_of(project, form.title), blocks, image_src=image_file))
        code = f"{letter.typed_code[:4]} {letter.typed_code[4:]}"
        unit = project.units[member_unit[person.id]].name if member_unit.get(person.id) in project.units else ""
        pages.append(printer.copy(Copy(code, project.title, unit)))
        rows.append([person.external_id, letter.name, letter.phone, unit, form.form_id, version, code])
    html_path, csv_path, pdf_path = paper_files(out, _next_run(out))
    try:
        html_path.write_text(forms_html(pages, project.title), encoding="utf-8")
        with csv_path.open("w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["external_id", "name", "phone", "unit", "questionnaire", "version", "form_code"])
            writer.writerows(rows)
    except OSError as error:
        html_path.unlink(missing_ok=True)
        csv_path.unlink(missing_ok=True)
        raise Refused(f"cannot write the paper forms in {out}: {error}; run again with --reissue") from None
    files = {"html": html_path, "csv": csv_path}
    if pdf and print_pdf(html_path, pdf_path) is not None:
        files["pdf"] = pdf_path
    return Printed(len(letters), files)


def pack(files: Mapping[str, Path], archive: Path) -> Path:
    """The printed files in one zip (the console's download)."""
    folder = archive.with_suffix("")
    folder.mkdir(parents=True, exist_ok=True)
    for path in files.values():
        shutil.copy2(path, folder / path.name)
    return Path(shutil.make_archive(str(folder), "zip", folder))


# -- data entry ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class FormState:
    """Where one paper form is: its entries, their differences, whether it became a session."""

    paper: object  # storage.paper_entries.PaperForm
    form: Questionnaire
    entries: dict[int, object] = field(default_factory=dict)  # pass → PaperEntry
    differing: tuple[str, ...] = ()

    @property
    def written(self) -> bool:
        return self.paper.session_id is not None

    def typed(self, pass_number: int) -> dict[str, str]:
        entry = self.entries.get(pass_number)
        return json.loads(entry.answers) if entry is not None else {}

    @property
    def next_pass(self) -> int | None:
        """The entry to type now: 1, 2, 3 (resolve the differences), or None (written)."""
        if self.written:
            return None
        if 1 not in self.entries:
            return 1
        if 2 not in self.entries:
            return 2
        return RESOLVED


async def find_form(storage, code: str):
    """The paper form printed with ``code`` (as typed or scanned: spaces, dashes and case do not
    matter), or None."""
    from surveys.invitation_codes import code_hash, is_typed_code, normalise_typed_code

    cleaned = normalise_typed_code(code)
    if not is_typed_code(cleaned):
        return None
    return await storage.paper.paper_form_by_code(code_hash(cleaned))


async def questionnaire(storage, form_id: str, version: str) -> Questionnaire:
    from surveys.xlsform import load_questionnaire_bytes

    stored = await storage.get_questionnaire(form_id, version)
    return load_questionnaire_bytes(stored.source, stored.source_name)


async def form_state(storage, paper_form_id: int) -> FormState:
    paper = await storage.paper.paper_form(paper_form_id)
    form = await questionnaire(storage, paper.form_id, paper.form_version)
    entries = {e.pass_number: e for e in await storage.paper.paper_entries(paper_form_id)}
    state = FormState(paper, form, entries)
    if 1 in entries and 2 in entries:
        state = FormState(paper, form, entries, tuple(differences(form, state.typed(1), state.typed(2))))
    return state


@dataclass(frozen=True)
class Saved:
    checked: Checked
    stored: bool
    written: bool = False
    session_id: int | None = None
    differing: tuple[str, ...] = ()
    message: str = ""


async def save_entry(storage, paper_form_id: int, pass_number: int, typed: Mapping[str, str], language: str, *,
                     account_id: int | None, username: str, at: dt.datetime) -> Saved:
    """Check ``typed`` with the engine and store it as entry ``pass_number``; after entry 2 that agrees
    with entry 1, or after the resolution, write the session. Refused (nothing stored) when the form
    is written already, when entry 2 is typed by the person who typed entry 1, or when the pass is
    not the one due."""
    state = await form_state(storage, paper_form_id)
    if state.written:
        raise Refused(f"paper form {paper_form_id} is already session {state.paper.session_id}")
    if pass_number not in (1, 2, RESOLVED) or (pass_number == RESOLVED and state.next_pass != RESOLVED):
        raise Refused(f"paper form {paper_form_id}: entry {pass_number} is not due (next: {state.next_pass})")
    if pass_number == 2 and 1 in state.entries and state.entries[1].username == username:
        raise Refused("the second entry must be typed by another person than the first")
    if pass_number == 1 and 2 in state.entries and state.entries[2].username == username:
        raise Refused("the first entry must be typed by another person than the second")
    values = {key: normalise(q, typed.get(key)) for key, q in typed_fields(state.form, typed)}
    values = {name: value for name, value in values.items() if value}
    checked = check(state.form, values, at, language)
    if not checked.ok:
        return Saved(checked, stored=False)
    from storage import StorageError

    try:
        await storage.paper.save_paper_entry(paper_form_id, pass_number, account_id, username, language,
                                             json.dumps(values, ensure_ascii=False, sort_keys=True), at.isoformat())
    except StorageError as error:
        raise Refused(str(error)) from None
    state = await form_state(storage, paper_form_id)
    if pass_number == RESOLVED or (2 in state.entries and 1 in state.entries and not state.differing):
        final = state.typed(RESOLVED) if pass_number == RESOLVED else state.typed(2)
        session_id = await write(storage, state, final, language, at)
        return Saved(checked, stored=True, written=True, session_id=session_id)
    return Saved(checked, stored=True, differing=state.differing)


async def write(storage, state: FormState, typed: Mapping[str, str], language: str, at: dt.datetime) -> int:
    """Replay the final answers on the person's session through the chat's step path; returns its id."""
    from fieldwork.conversations import Conversations
    from fieldwork.quotas import QuotaGate
    from surveys import codec, engine

    paper = state.paper
    conversations = Conversations(storage, quotas=QuotaGate(storage))
    fresh = engine.new_session(state.form, language)
    record, _ = await storage.current_session(paper.respondent_id, paper.form_id, paper.form_version, PAPER,
                                              fresh.status.value, codec.encode_state(fresh), at.isoformat())
    if record.status == engine.Status.COMPLETED.value and record.channel != PAPER:
        raise Refused(f"the respondent already completed the questionnaire on {record.channel} "
                      f"(session {record.id}); the paper form was not written")
    form = await conversations.questionnaire(record.form_id, record.form_version)
    current = codec.decode_state(record.state)
    for _ in range(max(4 * len(form.questions) + 16, replay_budget(form, typed))):
        planned = events(form, current, typed, at)
        if planned is None:
            break
        event, kind = planned
        if kind == "unknown":  # a code the form does not know (the entry was checked: not expected)
            raise Refused(f"paper form {paper.id}: an unknown code at question {current.current}")
        handled = await conversations.handle(record.id, event, f"{PAPER}:{paper.id}:{current.seq}:{kind}")
        before, current = current, handled.step.state
        if handled.applied and not handled.step.accepted or current == before and handled.applied:
            break  # refused (or the stratum is full: the step kept the state)
    session = await storage.get_session(record.id)
    if session.status != engine.Status.COMPLETED.value:
        raise Refused(f"paper form {paper.id}: the session stopped at {current.current or session.status} "
                      "(the stratum may be full); the entries are kept")
    # The returned form is a consent to the text printed on it (Vietnamese first, English beneath):
    # recorded as the chat records its consent screen, once per form.
    shown = (await _notice(storage, paper.survey_id, state.form)).consent("vi", PAPER)
    await storage.record_consent(paper.respondent_id, version=shown.version, sha256=shown.sha256,
                                 language=shown.language, channel=shown.channel, text=shown.text,
                                 at=at.isoformat(), key=f"consent:{PAPER}:{paper.id}")
    await storage.paper.mark_paper_written(paper.id, session.id, at.isoformat())
    return session.id


async def _notice(storage, survey_id: str, form: Questionnaire) -> PrivacyNotice:
    """The survey's privacy texts, as printed on its forms."""
    from storage import NotFound
    from surveys.project import SurveyProject

    try:
        project = SurveyProject.from_json((await storage.get_survey(survey_id)).project)
    except NotFound:
        project = None
    return notice_of(project, form.title)
