"""Rights requests (Law 91/2025/QH15, Decree 356/2025/NĐ-CP): the survey's requests to withdraw
consent and delete data, with their legal deadlines (acknowledge, handle; overdue marked), and
the action that fulfils one (``fieldwork.privacy.fulfil_request``: the person's answers and
personal fields erased; the bot then tells them). Views and fulfilments are audited."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from aiohttp import web

from console.app import NavEntry, audit, console_of, current_account, fieldwork_storage, render, request_scope
from console.auth import Scope, requires, stratum_visible
from console.i18n import add_texts
from fieldwork.privacy import PrivacyError, fulfil_request, survey_requests
from surveys.privacy import defaults

routes = web.RouteTableDef()
NAV = [NavEntry("nav_privacy_requests", "/surveys/{survey}/privacy", ("coordinator",), order=85)]

add_texts({
    "nav_privacy_requests": {"vi": "Yêu cầu về dữ liệu", "en": "Data requests"},
    "privacy_requests_title": {"vi": "Yêu cầu về dữ liệu cá nhân — {title}", "en": "Personal-data requests — {title}"},
    "privacy_requests_help": {
        "vi": "Người trả lời rút lại đồng ý và yêu cầu xóa dữ liệu trong cuộc trò chuyện; bot đã ngừng gửi tin cho họ. "
              "Theo Nghị định 356/2025/NĐ-CP: xác nhận trong {ack} ngày làm việc, xử lý trong {days} ngày.",
        "en": "Respondents withdrew consent and asked for deletion in the chat; the bot has stopped writing to them. "
              "Decree 356/2025/NĐ-CP: acknowledge within {ack} working days, handle within {days} days."},
    "privacy_requests_none": {"vi": "Chưa có yêu cầu nào.", "en": "No requests yet."},
    "col_request": {"vi": "Số", "en": "No."},
    "col_opened": {"vi": "Nhận lúc", "en": "Received"},
    "col_acknowledge_by": {"vi": "Hạn xác nhận", "en": "Acknowledge by"},
    "col_handle_by": {"vi": "Hạn xử lý", "en": "Handle by"},
    "col_request_status": {"vi": "Tình trạng", "en": "Status"},
    "request_open": {"vi": "đang chờ xử lý", "en": "open"},
    "request_fulfilled": {"vi": "đã xóa, đang báo người trả lời", "en": "erased, telling the person"},
    "request_closed": {"vi": "đã xong", "en": "done"},
    "request_overdue": {"vi": "quá hạn", "en": "overdue"},
    "fulfil_request": {"vi": "Xóa dữ liệu", "en": "Erase the data"},
    "fulfil_confirm": {"vi": "Xóa vĩnh viễn câu trả lời và thông tin cá nhân của người này?",
                       "en": "Permanently erase this person's answers and personal data?"},
    "request_fulfilled_done": {"vi": "Đã xóa dữ liệu của yêu cầu số {id}: {sessions} phiên, {answers} câu trả lời.",
                               "en": "Request no. {id} fulfilled: {sessions} session(s), {answers} answer(s) erased."},
    "audit_privacy_requests_viewed": {"vi": "xem yêu cầu về dữ liệu", "en": "data requests viewed"},
    "audit_rights_request_fulfilled": {"vi": "xóa dữ liệu theo yêu cầu", "en": "data request fulfilled"},
    "audit_rights_request_refused": {"vi": "không xóa được theo yêu cầu", "en": "data request not fulfilled"},
})


async def _rows(request: web.Request):
    scope: Scope = request_scope(request)
    storage = fieldwork_storage(request)
    today = console_of(request).clock().astimezone(ZoneInfo(scope.project.settings.timezone)).date()
    rows = await survey_requests(storage, scope.project, today)
    if scope.units is None:
        return rows
    visible = []
    for row in rows:
        respondent = await storage.get_respondent(row.request.respondent_id)
        if respondent.stratum and stratum_visible(respondent.stratum, scope.units):
            visible.append(row)
    return visible


@routes.get("/surveys/{survey}/privacy")
@requires("coordinator")
async def privacy_requests_page(request: web.Request) -> web.Response:
    scope: Scope = request_scope(request)
    rows = await _rows(request)
    await audit(request, "privacy_requests_viewed", f"{len(rows)} request(s)")
    table = defaults()["deadlines"]
    done = request.query.get("fulfilled")
    return render(request, "privacy_requests.html", project=scope.project, rows=rows,
                  ack=table["acknowledge_working_days"], days=table["handle_days"],
                  done=dict(id=done, sessions=request.query.get("sessions", 0), answers=request.query.get("answers", 0))
                  if done else None, error=request.query.get("error"))


@routes.post("/surveys/{survey}/privacy/{request_id:\\d+}/fulfil")
@requires("coordinator")
async def fulfil(request: web.Request) -> web.Response:
    scope: Scope = request_scope(request)
    request_id = int(request.match_info["request_id"])
    if request_id not in {row.request.id for row in await _rows(request)}:
        raise web.HTTPNotFound()
    if (await request.post()).get("confirm") != "yes":  # the box the browser requires, checked here too
        raise web.HTTPSeeOther(f"/surveys/{scope.project.id}/privacy?error={request_id}")
    account = current_account(request)
    try:
        counts = await fulfil_request(fieldwork_storage(request), request_id, f"console:{account.username}",
                                      console_of(request).clock())
    except PrivacyError as error:
        await audit(request, "rights_request_refused", str(error))
        raise web.HTTPSeeOther(f"/surveys/{scope.project.id}/privacy?error={request_id}") from None
    await audit(request, "rights_request_fulfilled", f"request {request_id}: {counts}")
    raise web.HTTPSeeOther(f"/surveys/{scope.project.id}/privacy?fulfilled={request_id}"
                           f"&sessions={counts['sessions']}&answers={counts['answers']}")

