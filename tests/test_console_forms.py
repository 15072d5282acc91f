"""What the chat will do with each questionnaire, in the console before fieldwork (issue #17).

Over HTTP on 127.0.0.1 against the real console and SQLite: a survey loaded by upload with two
lenient forms shows each form's summary (the question a chat does not ask, a warning with its
row); the stored form's page lists its questions in order, for the survey's coordinators and
analysts, and refuses an account of another survey. The same summary is what `form check` prints.
"""

from __future__ import annotations

import datetime as dt
import html
from pathlib import Path

import aiohttp
from aiohttp.test_utils import TestServer

from bot.config import ConsoleConfig
from console.accounts import create_account
from console.app import make_app
from fieldwork.form_summary import question_rows, summarize
from storage import open_storage
from storage.console_db import ConsoleStores
from surveys.xlsform import load_questionnaire

FORMS = Path(__file__).parent / "forms"
LENIENT = FORMS / "lenient"
PASSWORD = "mat-khau-thu-2026"
AT = "2026-08-02T09:00:00+07:00"


def project_toml() -> bytes:
    """The test survey, its citizens answering geotrace.md and its officials read_only.md."""
    text = (FORMS / "survey" / "survey.toml").read_text(encoding="utf-8")
    text = text.replace('form_id = "sipas_citizen_example"', 'form_id = "geotrace"')
    return text.replace('form_id = "par_index_officials_example"', 'form_id = "read_only"').encode()


async def sign_in(session: aiohttp.ClientSession, url: str, username: str) -> str:
    """Signs in; returns the CSRF token of the session."""
    page = await (await session.get(f"{url}/login")).text()
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    async with session.post(f"{url}/login", data={"csrf_token": token, "username": username,
                                                  "password": PASSWORD}) as response:
        assert response.status == 200, await response.text()
        page = await response.text()
    return page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def upload(token: str) -> aiohttp.FormData:
    data = aiohttp.FormData()
    data.add_field("csrf_token", token)
    data.add_field("project", project_toml(), filename="survey.toml", content_type="text/plain")
    data.add_field("units", (FORMS / "survey" / "units.csv").read_bytes(), filename="units.csv",
                   content_type="text/csv")
    for name in ("geotrace.md", "read_only.md"):
        data.add_field("forms", (LENIENT / name).read_bytes(), filename=name, content_type="text/markdown")
    return data


def session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_loading_a_survey_shows_what_the_chat_does_with_each_form_and_each_form_has_its_page(tmp_path):
    db = tmp_path / "k.sqlite"
    async with await open_storage(db) as storage, await ConsoleStores.open(db) as stores:
        for username, role, surveys in (("officer", "coordinator", ("test-2026",)), ("ana", "analyst", ("test-2026",)),
                                        ("elsewhere", "coordinator", ("other-2026",)),
                                        ("viewer", "viewer", ("test-2026",))):
            await create_account(stores, username, PASSWORD, role=role, at=AT, surveys=surveys)
        app = make_app(storage, stores, ConsoleConfig(), db, clock=lambda: dt.datetime.now(dt.timezone.utc))
        async with TestServer(app, host="127.0.0.1") as server:
            url = str(server.make_url("")).rstrip("/")
            async with session() as officer:
                token = await sign_in(officer, url, "officer")
                async with officer.post(f"{url}/surveys/load", data=upload(token)) as response:
                    page = html.unescape(await response.text())
                    assert response.status == 200, page
                loaded = page.split('id="loaded-forms"', 1)[1].split("</section>", 1)[0]
                geotrace = loaded.split('data-form="geotrace"', 1)[1].split("</article>", 1)[0]
                assert "Không hỏi trong chat (1): bỏ qua, xuất ra là thiếu với mã riêng" in geotrace
                assert ("<code>where</code> (geotrace; sheet 'survey', row 2, column 'type'): đường và vùng trên "
                        "bản đồ (câu geopoint thì hỏi được) <span class=\"muted\" lang=\"en\">(lines and areas on a "
                        "map (a geopoint is asked))</span>") in geotrace
                read_only = loaded.split('data-form="read_only"', 1)[1].split("</article>", 1)[0]
                assert "Cảnh báo (2)" in read_only
                assert ("<li>sheet 'survey', row 3, column 'read_only': read_only: the chat shows it as a note "
                        "and does not ask it</li>") in read_only
                assert "Chat hỏi được mọi câu hỏi của bảng hỏi này." in read_only
                # The survey's card links each stored form's page.
                assert 'href="/surveys/test-2026/forms/geotrace"' in page
                assert 'href="/surveys/test-2026/forms/read_only"' in page

                async with officer.get(f"{url}/surveys/test-2026/forms/read_only") as response:
                    form_page = html.unescape(await response.text())
                    assert response.status == 200, form_page
                rows = form_page.split('id="questions"', 1)[1].split("</table>", 1)[0].split('<tr id="q-')[1:]
                assert [row.split('"', 1)[0] for row in rows] == ["a", "b"]
                assert '<code>b</code>' in rows[1] and ">text → note<" in rows[1] and ">B<" in rows[1]

                async with officer.get(f"{url}/surveys/test-2026/forms/geotrace") as response:
                    form_page = html.unescape(await response.text())
                assert '<tr class="not-asked" id="q-where">' in form_page
                assert "không hỏi</span> đường và vùng trên bản đồ (câu geopoint thì hỏi được)" in form_page
                await officer.get(f"{url}/lang/en?next=/")  # in English: the loader's own reason
                async with officer.get(f"{url}/surveys/test-2026/forms/geotrace") as response:
                    form_page = html.unescape(await response.text())
                assert "not asked</span> lines and areas on a map (a geopoint is asked)" in form_page
                assert "Not asked in a chat (1): skipped, exported as missing with their own code" in form_page
                async with officer.get(f"{url}/surveys/test-2026/forms/geotrace?version=nope") as response:
                    assert response.status == 404
                async with officer.get(f"{url}/surveys/test-2026/forms/tour") as response:
                    assert response.status == 404  # not a questionnaire of this survey

            async with session() as analyst:
                await sign_in(analyst, url, "ana")
                async with analyst.get(f"{url}/surveys/test-2026/data") as response:
                    assert 'href="/surveys/test-2026/forms/geotrace"' in await response.text()
                async with analyst.get(f"{url}/surveys/test-2026/forms/geotrace") as response:
                    assert response.status == 200
                    assert "Bảng hỏi geotrace" in await response.text()
            for username in ("elsewhere", "viewer"):
                async with session() as other:
                    await sign_in(other, url, username)
                    async with other.get(f"{url}/surveys/test-2026/forms/geotrace") as response:
                        page = await response.text()
                        assert response.status == 403, username
                        assert "where" not in page.split("<main", 1)[1]


def test_the_console_and_form_check_read_one_summary():
    form = load_questionnaire(LENIENT / "geotrace.md")
    summary = summarize(form)
    assert [(q.name, q.source_type, q.place) for q in summary.not_asked] == [
        ("where", "geotrace", "sheet 'survey', row 2, column 'type'")]
    assert summary.notes("vi") == [("unaskable", 1, "không hỏi trong chat: bỏ qua, xuất ra là thiếu với mã riêng")]
    media = summarize(load_questionnaire(FORMS / "media.md"))
    notes = {kind: note for kind, _, note in media.notes("en")}
    assert "Zalo passes photos only" in notes["image"] and "Zalo cannot carry it" in notes["audio"]
    assert [(row.number, row.name, row.kind) for row in question_rows(form)] == [(1, "where", "geotrace")]
