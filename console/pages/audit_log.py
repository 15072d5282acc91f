"""The audit log (admins only): newest first, page by page; the whole log as CSV (itself audited)."""

from __future__ import annotations

from aiohttp import web

from console.app import NavEntry, audit, csv_download, language, render, stores
from console.auth import requires
from console.i18n import TEXTS, add_texts, local_time, t
from storage.audit import AUDIT_COLUMNS

routes = web.RouteTableDef()
NAV = [NavEntry("nav_audit", "/admin/audit", ("admin",), order=95)]
PAGE = 200

# What each audited action is called on the page (the CSV and the filter keep the ids); a job's
# action is its kind (job_kind_*); an action with no name shows its id.
add_texts({f"audit_{action}": names for action, names in {
    "login": {"vi": "đăng nhập", "en": "log in"},
    "login_failed": {"vi": "đăng nhập sai", "en": "failed log-in"},
    "login_limited": {"vi": "bị chặn đăng nhập", "en": "log-in blocked"},
    "logout": {"vi": "đăng xuất", "en": "log out"},
    "csrf_refused": {"vi": "biểu mẫu bị từ chối (CSRF)", "en": "form refused (CSRF)"},
    "forbidden": {"vi": "truy cập bị từ chối", "en": "access refused"},
    "download": {"vi": "tải xuống", "en": "download"},
    "view": {"vi": "xem tệp", "en": "file viewed"},
    "personal_viewed": {"vi": "xem dữ liệu cá nhân", "en": "personal data viewed"},
    "sample_viewed": {"vi": "xem mẫu", "en": "sample viewed"},
    "sample_draw": {"vi": "rút mẫu", "en": "sample drawn"},
    "frame_upload": {"vi": "nạp khung mẫu", "en": "frame uploaded"},
    "sample_upload": {"vi": "nạp mẫu có sẵn", "en": "sample uploaded"},
    "sample_replace": {"vi": "thay người trong mẫu", "en": "sample replacement"},
    "invitation_revoke": {"vi": "thu hồi mã mời", "en": "invitation revoked"},
    "letters_issue": {"vi": "phát thư mời", "en": "letters issued"},
    "letters_reissue": {"vi": "cấp lại thư mời", "en": "letter reissued"},
    "posters": {"vi": "áp phích QR", "en": "QR posters"},
    "remind_now": {"vi": "nhắc ngay", "en": "reminders sent"},
    "settings_edit": {"vi": "sửa chỉ tiêu, nhắc nhở", "en": "quotas, reminders edited"},
    "survey_load": {"vi": "nạp khảo sát", "en": "survey loaded"},
    "survey_load_refused": {"vi": "nạp khảo sát bị từ chối", "en": "survey load refused"},
    "user_added": {"vi": "thêm tài khoản", "en": "account added"},
    "user_changed": {"vi": "sửa tài khoản", "en": "account changed"},
    "user_disabled": {"vi": "khóa tài khoản", "en": "account disabled"},
    "user_enabled": {"vi": "mở khóa tài khoản", "en": "account enabled"},
    "password_reset": {"vi": "đặt lại mật khẩu", "en": "password reset"},
}.items()})


def action_name(action: str, lang: str) -> str:
    for key in (f"audit_{action}", f"job_kind_{action}"):
        if key in TEXTS:
            return t(key, lang)
    return action


@routes.get("/admin/audit")
@requires("admin")
async def audit_page(request: web.Request) -> web.Response:
    try:
        before = int(request.query["before"]) if request.query.get("before") else None
    except ValueError:
        raise web.HTTPNotFound() from None
    action = request.query.get("action") or None
    entries = await stores(request).audit.entries(limit=PAGE, before_id=before, action=action)
    older = entries[-1].id if len(entries) == PAGE else None
    lang = language(request)
    return render(request, "audit.html", entries=[(entry, action_name(entry.action, lang)) for entry in entries],
                  older=older, action=action or "")


@routes.get("/admin/audit.csv")
@requires("admin")
async def audit_csv(request: web.Request) -> web.Response:
    entries = await stores(request).audit.entries(limit=0)
    rows = [[*(getattr(entry, c) if getattr(entry, c) is not None else "" for c in AUDIT_COLUMNS),
             local_time(entry.at)] for entry in reversed(entries)]
    await audit(request, "download", f"audit log: {len(entries)} row(s)")
    return csv_download([*AUDIT_COLUMNS, "local_time"], rows, "khaosat-audit.csv")
