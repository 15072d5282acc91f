"""Every word the console shows, in Vietnamese (default) and English, and how times are shown.

Pages call ``t(key, lang, **fields)`` (templates: ``t("key")``, the request's language
bound). A key missing in English falls back to Vietnamese; a key missing altogether shows
itself, so a forgotten text is visible, not a crash. The other page modules add their texts
with ``add_texts({...})`` at import.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")

TEXTS: dict[str, dict[str, str]] = {
    "app_name": {"vi": "khaosat — bảng điều khiển", "en": "khaosat — console"},
    "skip_to_content": {"vi": "Bỏ qua tới nội dung", "en": "Skip to content"},
    "nav_home": {"vi": "Khảo sát", "en": "Surveys"},
    "nav_users": {"vi": "Tài khoản", "en": "Users"},
    "nav_audit": {"vi": "Nhật ký", "en": "Audit log"},
    "nav_progress": {"vi": "Tiến độ", "en": "Progress"},
    "nav_nonrespondents": {"vi": "Chưa trả lời", "en": "Non-respondents"},
    "logout": {"vi": "Đăng xuất", "en": "Log out"},
    "login": {"vi": "Đăng nhập", "en": "Log in"},
    "username": {"vi": "Tên đăng nhập", "en": "Username"},
    "password": {"vi": "Mật khẩu", "en": "Password"},
    "login_failed": {"vi": "Sai tên đăng nhập hoặc mật khẩu.", "en": "Wrong username or password."},
    "login_limited": {"vi": "Quá nhiều lần đăng nhập sai. Hãy thử lại sau {minutes} phút.",
                      "en": "Too many failed logins. Try again in {minutes} minutes."},
    "logged_out": {"vi": "Bạn đã đăng xuất.", "en": "You are logged out."},
    "language": {"vi": "Ngôn ngữ", "en": "Language"},
    "signed_in_as": {"vi": "Đăng nhập: {name} ({role})", "en": "Signed in: {name} ({role})"},
    "role_admin": {"vi": "quản trị", "en": "admin"},
    "role_coordinator": {"vi": "điều phối", "en": "coordinator"},
    "role_analyst": {"vi": "phân tích", "en": "analyst"},
    "role_viewer": {"vi": "xem", "en": "viewer"},
    "forbidden_title": {"vi": "Không được phép", "en": "Not allowed"},
    "forbidden": {"vi": "Tài khoản của bạn không có quyền xem trang này.",
                  "en": "Your account may not see this page."},
    "csrf_title": {"vi": "Biểu mẫu không hợp lệ", "en": "Form refused"},
    "csrf": {"vi": "Biểu mẫu thiếu hoặc sai mã bảo vệ (CSRF). Hãy tải lại trang rồi gửi lại.",
             "en": "The form's protection token (CSRF) is missing or wrong. Reload the page and send it again."},
    "not_found_title": {"vi": "Không tìm thấy", "en": "Not found"},
    "not_found": {"vi": "Không có trang hoặc dữ liệu này.", "en": "There is no such page or data."},
    "back_home": {"vi": "Về trang chính", "en": "Back to the surveys"},
    "no_surveys": {"vi": "Chưa có khảo sát nào bạn được xem.", "en": "No survey you may see yet."},
    "survey": {"vi": "Khảo sát", "en": "Survey"},
    "opens": {"vi": "Mở", "en": "Opens"},
    "closes": {"vi": "Đóng", "en": "Closes"},
    "days_left": {"vi": "Còn {days} ngày", "en": "{days} day(s) left"},
    "closed": {"vi": "Đã đóng", "en": "Closed"},
    "your_scope": {"vi": "Phạm vi của bạn: {units}", "en": "Your scope: {units}"},
    "all_units": {"vi": "tất cả đơn vị", "en": "all units"},
    # progress
    "progress_title": {"vi": "Tiến độ: {title}", "en": "Progress: {title}"},
    "updated_at": {"vi": "Cập nhật lúc {time}", "en": "Updated at {time}"},
    "live_note": {"vi": "Tự cập nhật mỗi {seconds} giây.", "en": "Updates itself every {seconds} seconds."},
    "col_group": {"vi": "Nhóm", "en": "Group"},
    "col_stratum": {"vi": "Tầng", "en": "Stratum"},
    "col_sampled": {"vi": "Mẫu", "en": "Sampled"},
    "col_invited": {"vi": "Đã mời", "en": "Invited"},
    "col_contacted": {"vi": "Đã liên hệ", "en": "Contacted"},
    "col_started": {"vi": "Đã bắt đầu", "en": "Started"},
    "col_completed": {"vi": "Hoàn thành", "en": "Completed"},
    "col_target": {"vi": "Chỉ tiêu", "en": "Target"},
    "col_fill": {"vi": "Đạt chỉ tiêu", "en": "Quota fill"},
    "col_rr1": {"vi": "RR1", "en": "RR1"},
    "col_expected": {"vi": "Cần đạt hôm nay", "en": "Expected by today"},
    "col_projection": {"vi": "Dự kiến khi đóng", "en": "Projected at close"},
    "total": {"vi": "Tổng", "en": "Total"},
    "lagging": {"vi": "chậm", "en": "lagging"},
    "lagging_note": {"vi": "Dòng tô đỏ: dự kiến khi đóng thấp hơn chỉ tiêu.",
                     "en": "Red rows: projected below target at close."},
    "totals_by_level": {"vi": "Tổng theo cấp {level}", "en": "Totals by {level}"},
    "chart_title": {"vi": "Số hoàn thành theo ngày và đường chỉ tiêu", "en": "Completes over time against the target"},
    "chart_completed": {"vi": "Hoàn thành (cộng dồn)", "en": "Completed (cumulative)"},
    "chart_target": {"vi": "Chỉ tiêu theo thời gian", "en": "Target line"},
    "filter_unit": {"vi": "Đơn vị", "en": "Unit"},
    "show": {"vi": "Xem", "en": "Show"},
    "no_sample": {"vi": "Chưa có mẫu cho khảo sát này.", "en": "No sample for this survey yet."},
    # non-respondents
    "nonrespondents_title": {"vi": "Chưa trả lời: {title}", "en": "Non-respondents: {title}"},
    "reason_not_invited": {"vi": "chưa được mời", "en": "not invited"},
    "reason_never_opened": {"vi": "chưa mở chat", "en": "never opened a chat"},
    "reason_opened": {"vi": "đã mở chat, chưa trả lời", "en": "opened the chat, no answer"},
    "reason_stopped": {"vi": "dừng ở câu {n}", "en": "stopped at question {n}"},
    "reason_refused": {"vi": "từ chối", "en": "refused"},
    "reason_unreachable": {"vi": "không liên lạc được", "en": "unreachable"},
    "col_reason": {"vi": "Lý do", "en": "Why"},
    "col_person": {"vi": "Người", "en": "Person"},
    "col_name": {"vi": "Họ tên", "en": "Name"},
    "col_phone": {"vi": "Điện thoại", "en": "Phone"},
    "col_reminders": {"vi": "Đã nhắc", "en": "Reminded"},
    "col_last_activity": {"vi": "Hoạt động cuối", "en": "Last activity"},
    "col_count": {"vi": "Số người", "en": "People"},
    "remind_now": {"vi": "Gửi nhắc nhở ngay", "en": "Send a reminder now"},
    "remind_now_help": {"vi": "Cho những người đã mở chat với bot, theo cùng quy tắc giờ yên lặng và số lần nhắc.",
                        "en": "To those with a chat with a bot, under the same quiet hours and reminder limits."},
    "remind_done": {"vi": "Đã xếp {count} nhắc nhở vào hàng đợi.", "en": "Queued {count} reminder(s)."},
    "remind_skipped": {"vi": "Không gửi nhắc nhở: {why}.", "en": "No reminders: {why}."},
    "download_letters_phone": {"vi": "Tải danh sách để liên hệ qua thư/điện thoại (CSV)",
                               "en": "Download the list to reach by letter or phone (CSV)"},
    "personal_warning": {"vi": "Tệp có dữ liệu cá nhân (Luật Bảo vệ dữ liệu cá nhân số 91/2025/QH15): giữ bảo mật và xoá sau khi dùng.",
                         "en": "The file holds personal data (Law on Personal Data Protection No. 91/2025/QH15): keep it protected, delete it after use."},
    "no_personal": {"vi": "Tài khoản của bạn không xem được họ tên và số điện thoại.",
                    "en": "Your account does not see names and phones."},
    "everyone_done": {"vi": "Không còn ai chưa trả lời.", "en": "Nobody left to reach."},
    # users
    "users_title": {"vi": "Tài khoản", "en": "Users"},
    "add_user": {"vi": "Thêm tài khoản", "en": "Add an account"},
    "display_name": {"vi": "Tên hiển thị", "en": "Display name"},
    "role": {"vi": "Vai trò", "en": "Role"},
    "surveys_scope": {"vi": "Khảo sát (mã, cách nhau bởi dấu phẩy; để trống = tất cả)",
                      "en": "Surveys (ids, comma-separated; empty = all)"},
    "units_scope": {"vi": "Đơn vị (mã, cách nhau bởi dấu phẩy; để trống = tất cả)",
                    "en": "Units (ids, comma-separated; empty = all)"},
    "personal_flag": {"vi": "Được xem họ tên, số điện thoại", "en": "May see names and phones"},
    "personal_by_role": {"vi": "Theo vai trò (quản trị, điều phối: có)", "en": "By role (admin, coordinator: yes)"},
    "yes": {"vi": "Có", "en": "Yes"},
    "no": {"vi": "Không", "en": "No"},
    "save": {"vi": "Lưu", "en": "Save"},
    "disable": {"vi": "Khoá", "en": "Disable"},
    "enable": {"vi": "Mở khoá", "en": "Enable"},
    "disabled": {"vi": "đã khoá", "en": "disabled"},
    "new_password": {"vi": "Mật khẩu mới", "en": "New password"},
    "reset_password": {"vi": "Đặt lại mật khẩu", "en": "Reset password"},
    "user_saved": {"vi": "Đã lưu tài khoản {name}.", "en": "Saved the account {name}."},
    "password_saved": {"vi": "Đã đổi mật khẩu của {name}.", "en": "Changed the password of {name}."},
    "user_exists": {"vi": "Tên đăng nhập {name} đã có.", "en": "The username {name} is taken."},
    "bad_username": {"vi": "Tên đăng nhập: 2–64 ký tự chữ, số, . _ - @",
                     "en": "Username: 2–64 letters, digits, . _ - @"},
    "bad_password": {"vi": "Mật khẩu cần ít nhất {n} ký tự.", "en": "The password needs at least {n} characters."},
    "bad_role": {"vi": "Vai trò không hợp lệ.", "en": "Not a role."},
    "scope_needed": {"vi": "Điều phối viên cần ít nhất một khảo sát.",
                     "en": "A coordinator needs at least one survey."},
    "not_yourself": {"vi": "Không thể tự khoá tài khoản của mình.", "en": "You cannot disable your own account."},
    "all": {"vi": "tất cả", "en": "all"},
    "unknown_surveys": {"vi": "Không có khảo sát: {ids}.", "en": "No such survey: {ids}."},
    "unknown_units": {"vi": "Không có đơn vị trong các khảo sát đã chọn: {ids}.",
                      "en": "No such unit in the chosen surveys: {ids}."},
    "active": {"vi": "đang dùng", "en": "active"},
    "state": {"vi": "Trạng thái", "en": "State"},
    # audit
    "audit_title": {"vi": "Nhật ký hoạt động", "en": "Audit log"},
    "download_csv": {"vi": "Tải CSV", "en": "Download CSV"},
    "col_time": {"vi": "Thời gian", "en": "Time"},
    "col_who": {"vi": "Ai", "en": "Who"},
    "col_address": {"vi": "Địa chỉ", "en": "Address"},
    "col_action": {"vi": "Hành động", "en": "Action"},
    "col_detail": {"vi": "Chi tiết", "en": "Detail"},
    "older": {"vi": "Cũ hơn", "en": "Older"},
}


def add_texts(texts: dict[str, dict[str, str]]) -> None:
    """A page module's own texts; a key defined twice is a programming error."""
    for key in texts:
        if key in TEXTS and TEXTS[key] != texts[key]:
            raise ValueError(f"console text {key!r} is defined twice")
    TEXTS.update(texts)


def t(key: str, lang: str = DEFAULT_LANGUAGE, **fields) -> str:
    entry = TEXTS.get(key)
    if entry is None:
        return key
    text = entry.get(lang) or entry[DEFAULT_LANGUAGE]
    return text.format(**fields) if fields else text


def local_time(value: str | dt.datetime | None, with_date: bool = True) -> str:
    """An ISO time (any offset) as Vietnam sees it: ``04/12/2026 23:05``."""
    if not value:
        return ""
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    moment = moment.astimezone(ZONE)
    return moment.strftime("%d/%m/%Y %H:%M" if with_date else "%H:%M:%S")
