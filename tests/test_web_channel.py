"""The web channel over HTTP on 127.0.0.1 (``khaosat run`` with [web], a real SQLite database):
a person answers by plain form posts; CSRF, code guessing and strange input change nothing."""

from __future__ import annotations

import contextlib
import random

import aiohttp

from bot.simulate import Behaviour, WebPerson, read_page
from surveys import codec, engine
from surveys.xlsform import load_questionnaire
from tests.web_helpers import FIELD_LIST, TOUR, web_harness

STEADY = Behaviour(decline=0, walk_away=0, go_back=0, press_old_button=0, skip_optional=0)


def browser() -> aiohttp.ClientSession:
    # unsafe: keep cookies set by an address (127.0.0.1), as a browser does
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def answers_of(storage, respondent_id: int, form_id: str = "tour") -> dict:
    session = await storage.latest_session(respondent_id, form_id)
    if session is None:
        return {}
    return {name: codec.decode_value(a.value) for name, a in (await storage.answers(session.id)).items()}


async def person(session, h, code: str, seed: int = 1) -> WebPerson:
    return WebPerson(session, h.url, load_questionnaire(TOUR), code, random.Random(seed), behaviour=STEADY)


async def test_a_person_completes_the_form_by_plain_posts(tmp_path):
    async with web_harness(tmp_path) as h:
        rid, _, link = await h.invite("W-1", "tour")
        async with browser() as session:
            p = await person(session, h, link)
            assert await p.take_part() == "completed"
        stored = await answers_of(h.storage, rid)
        assert 18 <= stored["age"] <= 100 and stored["sex"] in ("nam", "nu")
        assert (await h.storage.get_respondent(rid)).disposition == "completed"
        assert max(p.pages) < 4000  # a few KB a page
        # Nothing of the web went to the outbox: no messenger will try to send it.
        assert (await h.storage.outbox_counts())["pending"] == 0
        assert all(chat[0] == "web" for chat in await h.storage.chats_of(rid))


async def test_the_link_code_leaves_the_address_bar_and_pages_have_security_headers(tmp_path):
    async with web_harness(tmp_path) as h:
        _, _, link = await h.invite("W-2", "tour")
        async with browser() as session:
            async with session.get(f"{h.url}/s/{link}", allow_redirects=False) as response:
                assert response.status == 303 and response.headers["Location"] == "/s/"
                cookie = response.cookies["khaosat_web"]
                assert cookie["httponly"] and cookie["samesite"] == "Lax" and cookie["path"] == "/s"
            async with session.get(f"{h.url}/s/") as response:
                assert response.url.path == "/s/"
                for header in ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"):
                    assert header in response.headers
                assert response.headers["Cache-Control"] == "no-store"
                assert "đồng ý tham gia" in await response.text()


async def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(tmp_path):
    async with web_harness(tmp_path) as h:
        rid, _, link = await h.invite("W-3", "tour")
        async with browser() as session:
            p = await person(session, h, link)
            await p.get(f"/s/{link}")
            form = p.page.form("ask")
            fields = dict(form.hidden, action="answer", choice="yes")
            forged = {k: v for k, v in fields.items() if k != "csrf_token"}
            page = await p.post(forged)
            assert page.status == 403 and "Trang đã cũ" in page.text
            page = await p.post(dict(forged, csrf_token="0" * 32))
            assert page.status == 403
            assert (await h.storage.latest_session(rid, "tour")).status == "consent"
            # Another site's form cannot carry the token either: the same post with it goes through.
            page = await p.post(fields)
            assert page.status == 200 and "bao nhiêu tuổi" in page.text


async def test_wrong_codes_are_limited_per_address_whatever_the_cookies(tmp_path):
    async with web_harness(tmp_path, codes_per_address_per_hour=3) as h:
        rid, typed, link = await h.invite("W-4", "tour")
        for attempt in range(3):
            async with browser() as session:  # a fresh browser each time: the core's per-chat count is 0
                async with session.get(f"{h.url}/s/WRONGCODE{attempt}") as response:
                    assert response.status == 200 and "Mã mời không đúng" in await response.text()
        async with browser() as session:
            async with session.get(f"{h.url}/s/{link}") as response:
                assert response.status == 429 and "quá nhiều lần" in await response.text()
            page = read_page(200, await (await session.get(f"{h.url}/s/")).text())
            code_form = page.form("code")
            async with session.post(f"{h.url}/s/", data=dict(code_form.hidden, code=typed)) as response:
                assert response.status == 429
        assert await h.storage.chats_of(rid) == []


async def test_a_typed_code_and_an_open_keyword_link_a_browser(tmp_path):
    async with web_harness(tmp_path, open_codes={"quay-mot-cua": "tour"}) as h:
        rid, typed, _ = await h.invite("W-5", "tour")
        async with browser() as session:
            page = read_page(200, await (await session.get(f"{h.url}/s/")).text())
            assert "gõ mã mời" in page.text
            async with session.post(f"{h.url}/s/", data=dict(page.form("code").hidden, action="code",
                                                               code=f"Mã của tôi là {typed[:4]} {typed[4:]}")) as r:
                assert "đồng ý tham gia" in await r.text()
        assert [c[0] for c in await h.storage.chats_of(rid)] == ["web"]
        async with browser() as session:
            async with session.get(f"{h.url}/s/quay-mot-cua") as response:
                assert "đồng ý tham gia" in await response.text()


async def test_strange_posts_get_a_polite_page_and_change_no_answer(tmp_path):
    async with web_harness(tmp_path) as h:
        rid, _, link = await h.invite("W-6", "tour")
        async with browser() as session:
            p = await person(session, h, link)
            await p.get(f"/s/{link}")
            await p.post(dict(p.page.form("ask").hidden, action="answer", choice="yes"))
            await p.post(dict(p.page.form("ask").hidden, action="answer", text="45"))
            assert "Giới tính" in p.page.text
            hidden = p.page.form("ask").hidden
            before = await answers_of(h.storage, rid)
            strange = [
                dict(hidden, action="answer", choice="no-such-option"),
                dict(hidden, action="answer", text="bốn mươi"),
                dict(hidden, action="answer", choice="nam", seq="abc"),
                dict(hidden, action="answer", choice="nam", seq=str(int(hidden["seq"]) - 1)),
                dict(hidden, action="teleport"),
                dict(hidden, action="answer", text="x" * 100_000),
                dict(hidden, action="lang", lang="<script>"),
                dict(hidden, action="code", code="Nữ"),  # a code form left open in another tab
                {**hidden, "action": "answer", "choice": "\x00\ud800".encode("utf-8", "surrogatepass").decode("latin-1")},
            ]
            for fields in strange:
                page = await p.post(fields)
                assert page.status in (200, 400, 413), fields
                assert "Traceback" not in page.text and "Internal" not in page.text
            assert await answers_of(h.storage, rid) == before
            page = await p.get("/s/")
            assert "Giới tính" in page.text  # the question still on screen
            # An answer for the question before (a page kept open in another tab) is stale.
            old = await p.post(dict(hidden, action="answer", text="46", seq=str(int(hidden["seq"]) - 1)))
            assert "đã qua" in old.text and (await answers_of(h.storage, rid))["age"] == 45


async def test_back_and_a_second_device_resume_the_same_session(tmp_path):
    async with web_harness(tmp_path) as h:
        rid, _, link = await h.invite("W-7", "tour")
        async with browser() as phone, browser() as laptop:
            p = await person(phone, h, link)
            await p.get(f"/s/{link}")
            await p.post(dict(p.page.form("ask").hidden, action="answer", choice="yes"))
            await p.post(dict(p.page.form("ask").hidden, action="answer", text="30"))
            await p.post(dict(p.page.form("ask").hidden, action="back"))
            assert "bao nhiêu tuổi" in p.page.text and 'value="30"' in await (await phone.get(f"{h.url}/s/")).text()
            await p.post(dict(p.page.form("ask").hidden, action="answer", text="31"))
            other = await person(laptop, h, link)
            page = await other.get(f"/s/{link}")
            assert "Giới tính" in page.text
            female = next(value for kind, _, value, label in page.form("ask").inputs if label == "Nữ")
            await other.post(dict(page.form("ask").hidden, action="answer", choice=female))
            page = await p.get("/s/")  # the phone again: it follows
            assert "trực tuyến" in page.text
        stored = await answers_of(h.storage, rid)
        assert (stored["age"], stored["sex"]) == (31, "nu")
        assert len(await h.storage.list_sessions("tour")) == 1


async def test_start_on_telegram_and_finish_on_the_web(tmp_path):
    async with web_harness(tmp_path) as h:
        rid, _, link = await h.invite("W-8", "tour")
        tg = h.telegram.user(7001)
        await tg.start(link)
        consent = await tg.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        await tg.press("Đồng ý", consent)
        await tg.wait_for(lambda m: "bao nhiêu tuổi" in (m.text or ""))
        await tg.send_text("52")
        await tg.wait_for(lambda m: "Giới tính" in (m.text or ""))
        async with browser() as session:
            p = await person(session, h, link)
            await p.get(f"/s/{link}")
            assert "Giới tính" in p.page.text
            assert await p._answer_until_done() == "completed"
        stored = await answers_of(h.storage, rid)
        assert stored["age"] == 52
        assert {c[0] for c in await h.storage.chats_of(rid)} == {"telegram", "web"}
        assert len(await h.storage.list_sessions("tour")) == 1


def key_of(form, label: str) -> str:
    return next(value for kind, _, value, shown in form.inputs if shown == label)


async def test_a_field_list_group_is_one_page_and_its_answers_go_in_order(tmp_path):
    async with web_harness(tmp_path, forms=(FIELD_LIST,)) as h:
        rid, _, link = await h.invite("W-9", "web_field_list")
        async with browser() as session:
            p = await person(session, h, link)
            await p.get(f"/s/{link}")
            await p.post(dict(p.page.form("ask").hidden, action="answer", choice="yes"))
            page = p.page
            for words in ("bao nhiêu tuổi", "Giới tính", "dịch vụ công trực tuyến", "kênh nào"):
                assert words in page.text  # the whole group on one page
            form = page.form("ask")
            assert form.hidden["group"] == "1"
            sex, no = key_of(form, "Nữ"), key_of(form, "Không")
            fields = [*form.hidden.items(), ("q", "age"), ("q", "sex"), ("q", "online"), ("q", "ways"),
                      ("action", "answer"), ("text.age", "17"), ("choice.sex", sex), ("choice.online", no)]
            page = await p.post(fields)
            # The engine stops at the first answer it refuses: nothing after it is stored.
            assert "18 đến 100" in page.text and "Giới tính" in page.text
            assert await answers_of(h.storage, rid, "web_field_list") == {}
            form = page.form("ask")
            fields = [*form.hidden.items(), ("q", "age"), ("q", "sex"), ("q", "online"), ("q", "ways"),
                      ("action", "answer"), ("text.age", "40"), ("choice.sex", sex), ("choice.online", no),
                      ("multi.ways", "1"), ("was.ways", "")]
            page = await p.post(fields)
            # "ways" did not apply (not online): passed over; the next page is the question after the group.
            assert "Góp ý" in page.text and "group" not in page.form("ask").hidden
            stored = await answers_of(h.storage, rid, "web_field_list")
            assert (stored["age"], stored["sex"], stored["online"]) == (40, "nu", "khong")
            assert stored["ways"] is engine.NOT_APPLICABLE


async def test_wrong_codes_are_counted_per_address_and_in_all_within_the_hour(tmp_path):
    """The counts are the database's (link attempts), so a second process, or the same one
    after a restart, sees them."""
    import datetime as dt

    from bot.web.channel import GuessLimit
    from storage import open_storage

    clock = [dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))]
    async with await open_storage(tmp_path / "limits.sqlite") as storage:
        limit = GuessLimit(storage, per_address=2, in_all=3, clock=lambda: clock[0])
        await limit.failed("10.0.0.1")
        await limit.failed("10.0.0.1")
        assert not await limit.allowed("10.0.0.1") and await limit.allowed("10.0.0.2")
        await limit.failed("10.0.0.2")
        assert not await limit.allowed("10.0.0.3")  # three wrong codes from everyone together
        other_process = GuessLimit(storage, per_address=2, in_all=3, clock=lambda: clock[0])
        assert not await other_process.allowed("10.0.0.3")
        clock[0] += dt.timedelta(hours=1, seconds=1)
        assert await limit.allowed("10.0.0.1") and await limit.allowed("10.0.0.3")  # an hour later
        # The address itself is not stored, only a hash of it.
    import sqlite3
    with contextlib.closing(sqlite3.connect(tmp_path / "limits.sqlite")) as conn:
        rows = conn.execute("SELECT * FROM link_attempts").fetchall()
    assert len(rows) == 3 and not any("10.0.0" in str(row) for row in rows)


async def test_wrong_codes_still_count_after_a_restart(tmp_path):
    async with web_harness(tmp_path, codes_per_address_per_hour=2) as h:
        rid, _, link = await h.invite("W-R", "tour")
        for attempt in range(2):
            async with browser() as session:
                async with session.get(f"{h.url}/s/WRONGCODE{attempt}") as response:
                    assert response.status == 200
    async with web_harness(tmp_path, codes_per_address_per_hour=2) as h:  # the same database, restarted
        async with browser() as session:
            async with session.get(f"{h.url}/s/{link}") as response:
                assert response.status == 429 and "quá nhiều lần" in await response.text()
        assert await h.storage.chats_of(rid) == []


async def test_odd_addresses_get_a_polite_answer(tmp_path):
    async with web_harness(tmp_path) as h:
        async with browser() as session:
            for path in ("/s/" + "x" * 300, "/s/a%2Fb", "/s/%00", "/s/static/../../etc/passwd", "/s/nothing/here"):
                async with session.get(h.url + path) as response:
                    text = await response.text()
                    assert response.status in (404, 403), path
                    assert "Traceback" not in text and "root:" not in text
            async with session.put(h.url + "/s/", data="x") as response:
                assert response.status == 405 and "không hiểu" in await response.text()


async def test_start_on_the_web_and_finish_on_telegram(tmp_path):
    async with web_harness(tmp_path) as h:
        rid, _, link = await h.invite("W-10", "tour")
        async with browser() as session:
            p = await person(session, h, link)
            await p.get(f"/s/{link}")
            await p.post(dict(p.page.form("ask").hidden, action="answer", choice="yes"))
            await p.post(dict(p.page.form("ask").hidden, action="answer", text="38"))
            assert "Giới tính" in p.page.text
        tg = h.telegram.user(7002)
        await tg.start(link)  # the same letter's link, now on Telegram
        prompt = await tg.wait_for(lambda m: "Giới tính" in (m.text or ""))
        await tg.press("Nam", prompt)
        prompt = await tg.wait_for(lambda m: "trực tuyến" in (m.text or ""))
        await tg.press("Không", prompt)
        for expect in ("Góp ý", "Ngày", "hoàn thành"):
            prompt = await tg.wait_for(lambda m, expect=expect: expect in (m.text or ""))
            if expect != "hoàn thành":
                await tg.press("Bỏ qua", prompt)
        stored = await answers_of(h.storage, rid)
        assert (stored["age"], stored["sex"], stored["online"]) == (38, "nam", "khong")
        assert (await h.storage.latest_session(rid, "tour")).status == "completed"


async def test_english_before_the_browser_is_linked_and_the_survey_starts_in_it(tmp_path):
    async with web_harness(tmp_path) as h:
        rid, typed, _ = await h.invite("W-EN", "tour")
        async with browser() as session:
            page = read_page(200, await (await session.get(f"{h.url}/s/")).text())
            assert "Mã mời" in page.text  # Vietnamese first
            async with session.post(f"{h.url}/s/", data=dict(page.form("lang").hidden, lang="en")) as response:
                assert response.url.path == "/s/" and not response.url.query  # nothing in the address
                page = read_page(response.status, await response.text())
            assert "Invitation code" in page.text and "Your data rights" in page.text and "Mã mời" not in page.text
            assert page.form("lang").button("vi") is not None  # and back to Vietnamese from there
            # The core's replies to a browser nobody is linked to are in the chosen language too.
            async with session.post(f"{h.url}/s/", data=dict(page.form("code").hidden, code="ZZZZ ZZZZ")) as r:
                page = read_page(r.status, await r.text())
            assert "That invitation code is wrong" in page.text and "Mã mời không đúng" not in page.text
            async with session.post(f"{h.url}/s/", data=dict(page.form("code").hidden, code=typed)) as response:
                assert response.url.path == "/s/" and not response.url.query
                page = read_page(response.status, await response.text())
            assert "agree to take part" in page.text and page.form("ask") is not None
        assert [c[0] for c in await h.storage.chats_of(rid)] == ["web"]


async def test_with_a_data_key_the_stored_address_tag_cannot_be_found_by_hashing_addresses(tmp_path, monkeypatch):
    """An IPv4 address hashed without a key is found again by hashing all 2³² addresses; with the
    data key set, what is stored is keyed by it: the same address gives another tag under another
    key, and neither is the address's plain hash."""
    import datetime as dt
    import hashlib
    import sqlite3

    from bot.web.channel import GuessLimit
    from storage import open_storage, personal_crypto

    tags = []
    for number in range(2):
        monkeypatch.setenv(personal_crypto.ENV, personal_crypto.generate_key())
        at = dt.datetime(2026, 5, 1, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=7)))
        path = tmp_path / f"limits{number}.sqlite"
        async with await open_storage(path) as storage:
            limit = GuessLimit(storage, per_address=2, in_all=9, clock=lambda: at)
            await limit.failed("10.0.0.1")
            await limit.failed("10.0.0.1")
            assert not await limit.allowed("10.0.0.1") and await limit.allowed("10.0.0.2")
        with contextlib.closing(sqlite3.connect(path)) as conn:
            tags.extend(row[0] for row in conn.execute("SELECT DISTINCT bot FROM link_attempts"))
    plain = hashlib.sha256(b"10.0.0.1").hexdigest()
    assert len(tags) == 2 and tags[0] != tags[1] and not any(plain.startswith(tag) for tag in tags)


async def test_with_a_data_key_a_page_loaded_before_a_restart_still_posts(tmp_path, monkeypatch):
    """The CSRF secret is derived from the data key: an answer typed on a page loaded before the
    server restarted (a deployment, a crash) is taken, not refused as an expired page."""
    from storage import personal_crypto

    monkeypatch.setenv(personal_crypto.ENV, personal_crypto.generate_key())
    async with browser() as session:
        async with web_harness(tmp_path) as h:
            rid, _, link = await h.invite("W-K", "tour")
            page = read_page(200, await (await session.get(f"{h.url}/s/{link}")).text())
            page = read_page(200, await (await session.post(f"{h.url}/s/", data=dict(
                page.form("ask").hidden, action="answer", choice="yes"))).text())
            assert "bao nhiêu tuổi" in page.text
            old_form = page.form("ask").hidden
        async with web_harness(tmp_path) as h:  # the same database, restarted
            async with session.post(f"{h.url}/s/", data=dict(old_form, action="answer", text="34")) as response:
                assert response.status == 200, await response.text()
            assert (await answers_of(h.storage, rid)).get("age") == 34
