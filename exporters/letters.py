"""Invitation letters: personal codes issued and printed for the people in the sample.

A code is shown once, here, and stored only as a hash, so letters are written in the same
run that issues the codes. Running again issues codes only to people who have none (or to
everyone with `reissue`, which revokes the old ones).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import html
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import segno

from storage import Respondent, Storage
from storage.atomic_files import atomic_open, atomic_path, write_text
from surveys.invitation_codes import code_hash, new_link_code, new_typed_code
from surveys.project import SurveyProject, stored_project

#: The title of letters to people in no stored survey project.
GENERIC_TITLE = "Khảo sát cải cách hành chính"
#: Who signs a letter whose survey project names no organiser.
UNNAMED_SENDER = "Ban tổ chức khảo sát"


@dataclass(frozen=True)
class Sender:
    """What a letter says about its survey and who sends it: the survey project's title and
    [organiser] (``surveys/project.py``), with fallbacks for what the project leaves out."""

    title: str = GENERIC_TITLE
    organiser: str | None = None
    contact: str | None = None
    phone: str | None = None
    email: str | None = None

    @classmethod
    def of(cls, project: SurveyProject | None, title: str | None = None) -> Sender:
        """``title`` (``khaosat invite --title``) wins over the project's own."""
        if project is None:
            return cls(title or GENERIC_TITLE)
        o = project.organiser
        return cls(title or project.title, o.name, o.contact, o.phone, o.email)

    @property
    def signature(self) -> str:
        return self.organiser or UNNAMED_SENDER

    @property
    def has_contact(self) -> bool:
        return bool(self.phone or self.email)


@dataclass(frozen=True)
class Letter:
    respondent: Respondent
    name: str
    phone: str
    link: str | None
    typed_code: str
    qr_file: str | None
    sender: Sender = Sender()
    #: The web page of the invitation, ``<public_url>/s/<link code>`` (None without ``[web]``).
    web_link: str | None = None


@dataclass(frozen=True)
class Channels:
    """How a letter says to answer: a Telegram bot username, a Zalo bot name, the web pages'
    public address (``[web] public_url``), or several."""

    telegram_username: str | None = None
    zalo_name: str | None = None
    web_url: str | None = None


async def issue_letters(storage: Storage, channels: Channels, at: dt.datetime, *, reissue: bool = False,
                        respondents: list[Respondent] | None = None, title: str | None = None,
                        progress: Callable[[int, int], None] = lambda done, total: None) -> list[Letter]:
    """Codes for the people not yet reached, and their letters, each with its ``Sender``: the
    person's survey project (the only one stored, for people in no sample), ``title`` overriding
    its title."""
    people = respondents if respondents is not None else await storage.list_respondents()
    senders = _Senders(storage, title)
    # Only people not yet reached need a letter; anyone already answering has a chat.
    people = [p for p in people if p.disposition in ("sampled", "invited")]
    letters = []
    for number, respondent in enumerate(people, start=1):
        progress(number, len(people))
        if not reissue and await storage.active_invitation(respondent.id, "typed") is not None:
            continue
        link_code, typed_code = new_link_code(), new_typed_code()
        await storage.issue_invitation(respondent.id, "link", code_hash(link_code), at.isoformat())
        await storage.issue_invitation(respondent.id, "typed", code_hash(typed_code), at.isoformat())
        if respondent.disposition == "sampled":
            await storage.set_disposition(respondent.id, "invited", at.isoformat(), reason="letter issued",
                                          key=f"invite:{respondent.id}:{at.isoformat()}")
        personal = await storage.personal(respondent.id)
        link = f"https://t.me/{channels.telegram_username}?start={link_code}" if channels.telegram_username else None
        web_link = f"{channels.web_url.rstrip('/')}/s/{link_code}" if channels.web_url else None
        letters.append(Letter(respondent, personal.name or "", personal.phone or "", link, typed_code, None,
                              await senders.of(respondent), web_link))
    return letters


class _Senders:
    """Each respondent's ``Sender``, reading each survey project once."""

    def __init__(self, storage: Storage, title: str | None):
        self.storage = storage
        self.title = title
        self.by_survey: dict[str | None, Sender] = {}

    async def of(self, respondent: Respondent) -> Sender:
        member = await self.storage.quota_member(respondent.id)  # (survey, stratum) of a sample member
        survey_id = member[0] if member else None
        if survey_id not in self.by_survey:
            if survey_id is None:
                stored = await self.storage.list_surveys()
                project = await stored_project(self.storage, stored[0].id) if len(stored) == 1 else None
            else:
                project = await stored_project(self.storage, survey_id)
            self.by_survey[survey_id] = Sender.of(project, self.title)
        return self.by_survey[survey_id]


def letter_files(out: Path, run: int) -> tuple[Path, Path, Path]:
    """invitations.csv, letters.html and qr/ of the first run into a folder; -2, -3 … after it."""
    suffix = "" if run == 1 else f"-{run}"
    return out / f"invitations{suffix}.csv", out / f"letters{suffix}.html", out / f"qr{suffix}"


def _next_run(out: Path) -> int:
    """The first run whose files are not in ``out``: earlier letters hold codes that exist
    nowhere else (the database keeps only their hashes), so they are never overwritten."""
    run = 1
    while True:
        csv_path, html_path, qr_dir = letter_files(out, run)
        taken_qr = qr_dir.exists() and (not qr_dir.is_dir() or any(qr_dir.iterdir()))
        if not (csv_path.exists() or html_path.exists() or taken_qr):
            return run
        run += 1


def write_letters(letters: list[Letter], out: Path, channels: Channels) -> dict[str, Path]:
    """invitations.csv for mail merge, one QR image per person, and letters.html to print, under
    the names of the next run into ``out`` (see ``letter_files``). If writing fails, what was
    written is removed again: names and phones are not left behind in half a set of letters."""
    csv_path, html_path, qr_dir = letter_files(out, _next_run(out))
    try:
        qr_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for letter in letters:
            qr_file = None
            if letter.link or letter.web_link:  # the Telegram link's QR, else the web page's
                qr_path = qr_dir / f"{_safe(letter.respondent.external_id)}.png"
                with atomic_path(qr_path) as partial:
                    segno.make(letter.link or letter.web_link, error="m").save(str(partial), kind="png", scale=6,
                                                                               border=2)
                qr_file = str(qr_path.relative_to(out))
            written.append(dataclasses.replace(letter, qr_file=qr_file))
        with atomic_open(csv_path, "w", encoding="utf-8-sig", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["external_id", "name", "phone", "questionnaire", "stratum", "telegram_link",
                             "typed_code", "qr_image", "survey_title", "sender", "contact", "contact_phone",
                             "contact_email", "web_link"])
            for letter in written:
                r, sender = letter.respondent, letter.sender
                writer.writerow([r.external_id, letter.name, letter.phone, r.form_id or "", r.stratum or "",
                                 letter.link or "", _spaced(letter.typed_code), letter.qr_file or "",
                                 sender.title, sender.signature, sender.contact or "", sender.phone or "",
                                 sender.email or "", letter.web_link or ""])
        write_text(html_path, _letters_html(written, channels))
    except OSError:
        csv_path.unlink(missing_ok=True)
        html_path.unlink(missing_ok=True)
        shutil.rmtree(qr_dir, ignore_errors=True)
        raise
    return {"csv": csv_path, "html": html_path, "qr": qr_dir}


def _spaced(code: str) -> str:
    """Printed as two groups of four, which people copy without losing their place."""
    return f"{code[:4]} {code[4:]}"


def _safe(text: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in text)


def _contact_html(sender: Sender) -> str:
    """Whom to ask, or nothing when the project names no phone or e-mail."""
    if not sender.has_contact:
        return ""
    ways = []
    if sender.phone:
        ways.append(f"điện thoại <b>{html.escape(sender.phone)}</b>")
    if sender.email:
        ways.append(f"thư điện tử <b>{html.escape(sender.email)}</b>")
    who = f"{html.escape(sender.contact)}, " if sender.contact else ""
    return f"""<p class="contact">Mọi thắc mắc về khảo sát, xin liên hệ: {who}{", ".join(ways)}.</p>\n"""


def _letters_html(letters: list[Letter], channels: Channels) -> str:
    titles = list(dict.fromkeys(letter.sender.title for letter in letters)) or [GENERIC_TITLE]
    pages = []
    for letter in letters:
        sender = letter.sender
        name = html.escape(letter.name) or "Quý ông/bà"
        ways = []
        if letter.link:
            qr = segno.make(letter.link, error="m").svg_data_uri(scale=5)
            ways.append(f"""<div class="way"><img src="{qr}" alt="QR"><p><b>Telegram:</b> quét mã QR bằng
 điện thoại, hoặc mở đường link<br><code>{html.escape(letter.link)}</code></p></div>""")
        if letter.web_link:
            qr = segno.make(letter.web_link, error="m").svg_data_uri(scale=5)
            ways.append(f"""<div class="way"><img src="{qr}" alt="QR"><p><b>Trang web:</b> quét mã QR hoặc mở
 địa chỉ sau bằng trình duyệt trên điện thoại hay máy tính<br><code>{html.escape(letter.web_link)}</code></p></div>""")
        if channels.zalo_name:
            ways.append(f"""<div class="way"><p><b>Zalo:</b> tìm <b>{html.escape(channels.zalo_name)}</b>, nhắn
 tin đầu tiên là mã sau:</p><p class="code">{_spaced(letter.typed_code)}</p></div>""")
        elif not letter.link and not letter.web_link:
            ways.append(f"""<div class="way"><p>Mã tham gia của quý vị:</p>
<p class="code">{_spaced(letter.typed_code)}</p></div>""")
        if letter.link and channels.telegram_username:
            ways.append(f"""<p>Trên Telegram, quý vị cũng có thể gõ mã <b>{_spaced(letter.typed_code)}</b>
 sau khi mở bot <b>@{html.escape(channels.telegram_username)}</b>.</p>""")
        agency = f'<p class="from">{html.escape(sender.organiser.upper())}</p>\n' if sender.organiser else ""
        pages.append(f"""<section class="letter">
{agency}<h1>THƯ MỜI THAM GIA KHẢO SÁT</h1>
<p class="sub">{html.escape(sender.title)}</p>
<p>Kính gửi: <b>{name}</b></p>
<p>Quý vị được chọn ngẫu nhiên để cho ý kiến về chất lượng phục vụ của cơ quan hành chính nhà nước.
Ý kiến của quý vị giúp đánh giá Chỉ số cải cách hành chính (PAR INDEX) và Chỉ số hài lòng (SIPAS).
Câu trả lời chỉ dùng để thống kê, được bảo vệ theo Luật Bảo vệ dữ liệu cá nhân số 91/2025/QH15 và không công bố kèm danh tính;
quý vị có quyền rút lại đồng ý và yêu cầu xóa dữ liệu (gửi /xoa trong cuộc trò chuyện).
Khảo sát mất khoảng 10 phút; quý vị có thể dừng và tiếp tục lúc khác.</p>
{''.join(ways)}
<p class="note">Mã này dành riêng cho quý vị, chỉ dùng được một lần trên một tài khoản. Xin không chia sẻ.</p>
{_contact_html(sender)}<p class="sign">Trân trọng cảm ơn,<br><b>{html.escape(sender.signature)}</b></p>
</section>""")
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><title>{html.escape("; ".join(titles))} — thư mời</title>
<style>
body {{ font-family: "Times New Roman", serif; margin: 0; }}
.letter {{ page-break-after: always; padding: 2cm; max-width: 17cm; }}
h1 {{ text-align: center; font-size: 16pt; margin-bottom: 0; }}
.sub {{ text-align: center; font-style: italic; }}
.way {{ display: flex; gap: 1em; align-items: center; border: 1px solid #999; padding: .5em; margin: .8em 0; }}
.code {{ font-family: monospace; font-size: 20pt; letter-spacing: .2em; }}
.note {{ font-size: 10pt; color: #444; }}
.from {{ font-weight: bold; font-size: 11pt; margin: 0 0 1em; }}
.sign {{ text-align: right; margin-top: 1.5em; }}
code {{ font-size: 9pt; word-break: break-all; }}
</style></head><body>
{''.join(pages)}
</body></html>
"""
