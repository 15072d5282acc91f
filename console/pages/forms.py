"""A stored questionnaire's page: what the chat will do with it before fieldwork (issue #17).

The summary is `fieldwork.form_summary`'s, the one `khaosat form check` prints: languages,
questions by type and what the chat does with each type where that matters, the loader's
warnings with sheet/row/column, and the questions a chat does not ask; then every question in
order. For the survey's coordinators and analysts (the form is the survey's, not personal data).
The form is loaded from its stored source and attachments, as the bots load it.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from console.app import console_of, fieldwork_storage, render, request_scope
from console.auth import requires
from console.i18n import add_texts
from fieldwork.form_summary import question_rows, summarize
from storage import NotFound

routes = web.RouteTableDef()

add_texts({
    "form_page_title": {"vi": "Bảng hỏi {form_id}", "en": "Questionnaire {form_id}"},
    "form_version_of": {"vi": "phiên bản {version}, nạp lúc {loaded}, tệp {file}",
                        "en": "version {version}, loaded {loaded}, file {file}"},
    "form_other_versions": {"vi": "Các phiên bản đã lưu", "en": "Stored versions"},
    "form_latest": {"vi": "mới nhất", "en": "latest"},
    "form_asked": {"vi": "Số câu được hỏi", "en": "Questions asked"},
    "form_groups": {"vi": "Số nhóm câu hỏi", "en": "Groups"},
    "form_by_type": {"vi": "Theo loại", "en": "By type"},
    "form_repeats": {"vi": "Nhóm lặp lại", "en": "Repeats"},
    "form_label_media": {"vi": "Ảnh, âm thanh kèm câu hỏi", "en": "Media in labels"},
    "form_languages": {"vi": "Ngôn ngữ", "en": "Languages"},
    "form_default_language": {"vi": "mặc định {code}", "en": "default {code}"},
    "form_in_chat": {"vi": "Trong chat", "en": "In the chat"},
    "form_warnings": {"vi": "Cảnh báo ({n})", "en": "Warnings ({n})"},
    "form_not_asked": {"vi": "Không hỏi trong chat ({n}): bỏ qua, xuất ra là thiếu với mã riêng",
                       "en": "Not asked in a chat ({n}): skipped, exported as missing with their own code"},
    "form_all_asked": {"vi": "Chat hỏi được mọi câu hỏi của bảng hỏi này.",
                       "en": "A chat can ask every question of this form."},
    "form_questions": {"vi": "Các câu hỏi ({n})", "en": "Questions ({n})"},
    "form_col_number": {"vi": "STT", "en": "No."},
    "form_col_name": {"vi": "Tên biến", "en": "Name"},
    "form_col_type": {"vi": "Loại", "en": "Type"},
    "form_col_label": {"vi": "Nội dung", "en": "Label"},
    "form_col_relevant": {"vi": "Điều kiện hỏi (relevant)", "en": "Asked when (relevant)"},
    "form_col_chat": {"vi": "Trong chat", "en": "In the chat"},
    "form_not_asked_mark": {"vi": "không hỏi", "en": "not asked"},
    "form_per_instance": {"vi": "mỗi lượt lặp lại", "en": "per instance"},
    "form_links": {"vi": "Bảng hỏi", "en": "Questionnaires"},
    "form_not_stored": {"vi": "{form_id} (chưa nạp)", "en": "{form_id} (not loaded)"},
    "form_loaded_summary": {"vi": "Chat sẽ làm gì với từng bảng hỏi", "en": "What the chat will do with each form"},
})


def _cached_form(request: web.Request, stored):
    """The questionnaire of a stored version, parsed once per console (a stored version never changes)."""
    return console_of(request).extras.setdefault("parsed_forms", {}).get((stored.form_id, stored.version,
                                                                          stored.sha256))


async def load_stored_form(request: web.Request, stored):
    """The stored version's questionnaire, loaded from its source and attachments as the bots do;
    raises ``surveys.xlsform.FormError``."""
    from surveys.xlsform import load_questionnaire_bytes

    form = _cached_form(request, stored)
    if form is None:  # pyxform takes a while: not on the event loop
        form = await asyncio.to_thread(load_questionnaire_bytes, stored.source, stored.source_name, stored.attachments)
        console_of(request).extras["parsed_forms"][(stored.form_id, stored.version, stored.sha256)] = form
    return form


@routes.get("/surveys/{survey}/forms/{form_id}")
@requires("coordinator", "analyst")
async def form_page(request: web.Request) -> web.Response:
    project = request_scope(request).project
    form_id = request.match_info["form_id"]
    if form_id not in {group.form_id for group in project.groups.values()}:
        raise web.HTTPNotFound()  # not a questionnaire of this survey
    from surveys.xlsform import FormError

    storage = fieldwork_storage(request)
    versions = [q for q in await storage.list_questionnaires() if q.form_id == form_id]
    if not versions:
        raise web.HTTPNotFound()
    wanted = request.query.get("version")
    chosen = versions[-1] if wanted is None else next((q for q in versions if q.version == wanted), None)
    if chosen is None:
        raise web.HTTPNotFound()
    try:
        stored = await storage.get_questionnaire(chosen.form_id, chosen.version)  # with its attachments
    except NotFound:
        raise web.HTTPNotFound() from None
    try:
        form = await load_stored_form(request, stored)
    except FormError as error:  # stored under an older loader that took what this one refuses
        return render(request, "fieldwork/form.html", status=422, project=project, stored=stored, summary=None,
                      rows=[], versions=versions, latest=versions[-1].version, languages=(),
                      problems=list(error.problems))
    languages = form.language_codes or ("vi",)
    return render(request, "fieldwork/form.html", project=project, stored=stored, summary=summarize(form),
                  rows=question_rows(form, languages), versions=versions, latest=versions[-1].version,
                  languages=languages, problems=[])
