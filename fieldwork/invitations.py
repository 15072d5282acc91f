"""Invitations: issue, re-issue and revoke personal codes; letters (HTML, PDF), QR images, posters."""

from __future__ import annotations

import datetime as dt
import html
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from exporters.letters import Channels, issue_letters, write_letters
from fieldwork import Refused

#: Browsers that print HTML to PDF headless (Debian's chromium, Google Chrome), first found wins.
_PDF_BROWSERS = ("chromium", "chromium-browser", "google-chrome")


@dataclass(frozen=True)
class Issued:
    count: int
    files: dict[str, Path]  # "csv", "html", "qr" (folder), "pdf" when a browser printed it
    without_contact: int = 0  # letters whose survey project names no one to ask ([organiser])

    @property
    def earlier_kept(self) -> bool:
        return self.files["csv"].name != "invitations.csv"


def channels(telegram_username: str | None, zalo_name: str | None, web_url: str | None = None) -> Channels:
    """How people answer, as a letter says it; at least one way is needed. ``web_url``: the web
    pages' public address (``[web] public_url``), letters then carry ``<web_url>/s/<code>``."""
    from urllib.parse import urlsplit

    telegram_username = (telegram_username or "").strip().lstrip("@") or None
    zalo_name = (zalo_name or "").strip() or None
    web_url = (web_url or "").strip().rstrip("/") or None
    if web_url and (urlsplit(web_url).scheme not in ("http", "https") or not urlsplit(web_url).netloc):
        raise Refused(f"the web pages' address '{web_url}' must start with https:// (e.g. https://khaosat.example.vn)")
    if not telegram_username and not zalo_name and not web_url:
        raise Refused("say how people answer: --telegram BOT_USERNAME and/or --zalo NAME and/or --web URL")
    return Channels(telegram_username, zalo_name, web_url)


def check_writable(out: Path) -> None:
    """Before any code is issued: codes are stored only as hashes, so letters that cannot be
    written would be lost."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=out).close()
    except OSError as error:
        raise Refused(f"cannot write the letters in {out}: {error}") from None


async def issue(storage, out: Path, ways: Channels, title: str | None, at: dt.datetime, *, reissue: bool = False,
                respondents: list | None = None, where: str = "the database",
                progress: Callable[[int, int], None] = lambda done, total: None) -> Issued:
    """Issue codes to everyone not yet reached (``reissue``: new codes, old ones stop working;
    ``respondents``: only these people) and write their letters into ``out``; earlier letters
    there are kept (see ``exporters.letters``). ``title`` overrides the survey project's title."""
    check_writable(out)
    letters = await issue_letters(storage, ways, at, reissue=reissue, respondents=respondents, title=title,
                                  progress=progress)
    if not letters:
        raise Refused(f"nobody to invite in {where}: no sample member without a code (draw or import a sample "
                      f"first; --reissue replaces lost codes). Nothing written in {out}.")
    try:
        files = write_letters(letters, out, ways)
    except OSError as error:
        raise Refused(f"cannot write the letters in {out}: {error}; run again with --reissue to replace the codes"
                      ) from None
    return Issued(len(letters), files, sum(not letter.sender.has_contact for letter in letters))


async def revoke(storage, respondent_id: int, at: dt.datetime) -> int:
    """Stop every code of one respondent from working (e.g. a letter sent to the wrong person);
    returns how many codes were revoked (0: none was active). A new letter: reissue."""
    from storage import NotFound

    try:
        await storage.get_respondent(respondent_id)
    except NotFound:
        raise Refused(f"no respondent {respondent_id}") from None
    return await storage.revoke_invitations(respondent_id, at.isoformat())


def pdf_browser() -> str | None:
    """A maintained HTML-to-PDF printer on this machine (a headless Chromium), or None."""
    return next((path for path in map(shutil.which, _PDF_BROWSERS) if path), None)


def print_pdf(html_path: Path, pdf_path: Path, *, timeout: float = 300) -> Path | None:
    """Print ``html_path`` to ``pdf_path`` with a headless Chromium; None when none is installed
    (the printable HTML, with its print styles, is then the letter)."""
    browser = pdf_browser()
    if browser is None:
        return None
    with tempfile.TemporaryDirectory(prefix="khaosat-pdf-") as profile:
        command = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                   "--no-pdf-header-footer", f"--print-to-pdf={pdf_path}", html_path.resolve().as_uri()]
        try:
            subprocess.run(command, capture_output=True, timeout=timeout, check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
    return pdf_path if pdf_path.exists() and pdf_path.stat().st_size > 0 else None


@dataclass(frozen=True)
class Poster:
    """An open-mode poster for a service counter: whoever scans it may answer."""

    counter: str  # e.g. "Bộ phận một cửa xã Hải Lăng"
    telegram_link: str | None  # https://t.me/<bot>?start=<open code>
    zalo_name: str | None
    zalo_keyword: str | None
    #: The web page for whoever scans it: ``<web_url>/s/<open code>``.
    web_link: str | None = None


def posters_for(open_codes: dict[str, str], ways: Channels) -> list[Poster]:
    """One poster per open code (code → counter name); the same code serves both bots and the web."""
    import re

    posters = []
    for code, counter in open_codes.items():
        link = None
        if ways.telegram_username:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", code):
                raise Refused(f"open code '{code}': a Telegram start code has 1–64 letters, digits, '_' or '-'")
            link = f"https://t.me/{ways.telegram_username}?start={code}"
        if ways.web_url and not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", code):
            raise Refused(f"open code '{code}': a web link's code has 1–64 letters, digits, '_' or '-'")
        web_link = f"{ways.web_url}/s/{code}" if ways.web_url else None
        posters.append(Poster(counter or code, link, ways.zalo_name, code if ways.zalo_name else None, web_link))
    return posters


def posters_html(posters: list[Poster], title: str) -> str:
    """One A4 page per poster: a large QR code and the Zalo keyword, to print (print CSS)."""
    import segno

    pages = []
    for poster in posters:
        parts = []
        if poster.telegram_link:
            qr = segno.make(poster.telegram_link, error="q").svg_data_uri(scale=14)
            parts.append(f'<img class="qr" src="{qr}" alt="QR Telegram"><p>Quét mã bằng điện thoại (Telegram)<br>'
                         f'<code>{html.escape(poster.telegram_link)}</code></p>')
        if poster.web_link:
            if not poster.telegram_link:
                qr = segno.make(poster.web_link, error="q").svg_data_uri(scale=14)
                parts.append(f'<img class="qr" src="{qr}" alt="QR">')
            parts.append(f'<p>Trang web: <code>{html.escape(poster.web_link)}</code></p>')
        if poster.zalo_name:
            parts.append(f'<p class="zalo">Zalo: tìm <b>{html.escape(poster.zalo_name)}</b> và nhắn '
                         f'<b class="code">{html.escape(poster.zalo_keyword or "")}</b></p>')
        pages.append(f"""<section class="poster"><h1>MỜI QUÝ VỊ CHO Ý KIẾN</h1>
<p class="sub">{html.escape(title)}</p><p class="counter">{html.escape(poster.counter)}</p>
{''.join(parts)}<p class="note">Khảo sát mất khoảng 10 phút. Câu trả lời chỉ dùng để thống kê
(Luật Bảo vệ dữ liệu cá nhân số 91/2025/QH15).</p></section>""")
    return f"""<!DOCTYPE html>
<html lang="vi"><head><meta charset="utf-8"><title>{html.escape(title)} — áp phích</title>
<style>
body {{ font-family: Arial, sans-serif; margin: 0; text-align: center; }}
.poster {{ page-break-after: always; padding: 1.5cm; }}
h1 {{ font-size: 30pt; margin: 0 0 .3em; }} .sub {{ font-size: 16pt; }} .counter {{ font-size: 20pt; font-weight: bold; }}
.qr {{ width: 12cm; height: 12cm; }} .code {{ font-family: monospace; font-size: 22pt; }}
.zalo {{ font-size: 18pt; }} .note {{ font-size: 11pt; color: #444; }} code {{ word-break: break-all; }}
@page {{ size: A4; margin: 0; }}
</style></head><body>{''.join(pages)}</body></html>
"""


def write_posters(posters: list[Poster], out: Path, title: str) -> dict[str, Path]:
    """posters.html (one page per counter) and a QR image per Telegram poster in ``out``."""
    import segno

    out.mkdir(parents=True, exist_ok=True)
    files = {"html": out / "posters.html"}
    files["html"].write_text(posters_html(posters, title), encoding="utf-8")
    for number, poster in enumerate(posters, start=1):
        if poster.telegram_link or poster.web_link:
            path = out / f"poster-qr-{number}.png"
            segno.make(poster.telegram_link or poster.web_link, error="q").save(path, scale=12, border=4)
            files[f"qr{number}"] = path
    return files


async def survey_respondents(storage, survey_id: str, units: list[str] | None = None) -> list:
    """The fielded respondents of one survey, optionally only those whose frame unit is in ``units``
    (a commune officer's letters are those of their communes)."""
    members = [m for m in await storage.sample_members(survey_id) if m.respondent_id is not None]
    if units is not None:
        wanted = set(units)
        unit_of = {row.frame_id: row.unit for row in await storage.frame_rows(survey_id)}
        members = [m for m in members if unit_of.get(m.frame_id) in wanted]
    ids = {m.respondent_id for m in members}
    return [r for r in await storage.list_respondents() if r.id in ids]
