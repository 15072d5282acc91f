"""A media question on the web page (``khaosat run`` with [web] on 127.0.0.1, a real SQLite database):
a file input, a multipart post that the chat core stores and answers with; the CSRF token, a stale
page and the size limit are checked before anything is kept."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp

from surveys import codec
from tests.web_helpers import web_harness

MEDIA = Path(__file__).parent / "forms" / "media.md"
PNG = (Path(__file__).parent / "forms" / "label_media" / "tree.png").read_bytes()


def web_with_limit(tmp_path: Path, media_limit_mb: int = 1, form: Path = MEDIA):
    """tests/web_helpers.web_harness with the bot's media_limit_mb set (the web takes the bot's limit)."""
    return web_harness(tmp_path, forms=(form,), bot_options={"media_limit_mb": media_limit_mb})


def hidden(page: str, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', page).group(1)


async def post(browser, url: str, page: str, **fields) -> tuple[int, str]:
    async with browser.post(f"{url}/s/", data={"csrf_token": hidden(page, "csrf_token"),
                                               "seq": hidden(page, "seq"), **fields}) as response:
        return response.status, await response.text()


def multipart(csrf: str, seq: str, content: bytes, *, filename: str = "shop.png", mime: str = "image/png",
              action: str = "answer") -> aiohttp.FormData:
    """As a browser sends the page's form: the hidden fields first, then the file."""
    data = aiohttp.FormData()
    data.add_field("csrf_token", csrf)
    data.add_field("seq", seq)
    data.add_field("action", action)
    data.add_field("file", content, filename=filename, content_type=mime)
    return data


async def stored(h, respondent_id: int):
    session = await h.storage.latest_session(respondent_id, "media")
    answers = {k: codec.decode_value(a.value) for k, a in (await h.storage.answers(session.id)).items()}
    return answers, await h.storage.media.media_files([session.id])


async def at_the_photo_question(h, browser, external_id: str) -> tuple[int, str]:
    respondent_id, _, link = await h.invite(external_id, "media")
    async with browser.get(f"{h.url}/s/{link}") as response:
        consent = await response.text()
    _, shop = await post(browser, h.url, consent, action="answer", choice="yes")
    assert "Tên cửa hàng?" in shop
    _, photo = await post(browser, h.url, shop, action="answer", text="Tạp hoá Lan")
    return respondent_id, photo


def browser_session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True))


async def test_a_photo_is_sent_from_the_page_stored_and_answers_the_question(tmp_path):
    async with web_with_limit(tmp_path) as h, browser_session() as browser:
        respondent_id, page = await at_the_photo_question(h, browser, "U-1")
        assert 'enctype="multipart/form-data"' in page
        # The page says to use its file input, not a messenger's attachment button.
        assert "chọn hoặc chụp một ảnh ở ô bên dưới" in page and "📎" not in page
        assert re.search(r'<input id="answer" name="file" type="file" accept="image/\*" capture="environment" '
                         r'required>', page), page
        async with browser.post(f"{h.url}/s/", data=multipart(hidden(page, "csrf_token"), hidden(page, "seq"),
                                                              PNG)) as response:
            assert response.status == 200 and response.url.path == "/s/"
            after = await response.text()
        assert "Kể lại bằng tin nhắn thoại?" in after  # the next question: an audio one
        assert 'accept="audio/*" capture' in after and 'value="skip"' in after  # optional: it can be skipped
        answers, files = await stored(h, respondent_id)
        assert [(f.question, f.mime, f.content) for f in files] == [("front", "image/png", PNG)]
        assert answers["front"] == files[0].name and answers["shop"] == "Tạp hoá Lan"

        # The same page posted again (a second tab, a double submit): "that question has passed", nothing kept.
        async with browser.post(f"{h.url}/s/", data=multipart(hidden(page, "csrf_token"), hidden(page, "seq"),
                                                              PNG + b"again")) as response:
            again = await response.text()
        assert "Câu hỏi đó đã qua" in again and "Kể lại bằng tin nhắn thoại?" in again
        assert len((await stored(h, respondent_id))[1]) == 1

        # The optional audio question: skipped from its multipart page.
        async with browser.post(f"{h.url}/s/", data=multipart(hidden(after, "csrf_token"), hidden(after, "seq"),
                                                              b"", filename="", action="skip")) as response:
            assert "Hoá đơn (PDF hoặc ảnh)?" in await response.text()


async def test_a_wrong_csrf_token_a_wrong_kind_and_a_file_over_the_limit_keep_nothing(tmp_path):
    async with web_with_limit(tmp_path, media_limit_mb=1) as h, browser_session() as browser:
        respondent_id, page = await at_the_photo_question(h, browser, "U-2")
        seq = hidden(page, "seq")
        async with browser.post(f"{h.url}/s/", data=multipart("0" * 32, seq, PNG)) as response:
            assert response.status == 403
        async with browser.post(f"{h.url}/s/", data=multipart(hidden(page, "csrf_token"), seq, b"%PDF-1.4 receipt",
                                                              filename="receipt.pdf", mime="application/pdf")) as r:
            wrong_kind = await r.text()
        assert "Tệp này không đúng loại câu hỏi cần" in wrong_kind and "Ảnh mặt tiền cửa hàng?" in wrong_kind
        big = PNG + b"\0" * (1024 * 1024)
        async with browser.post(f"{h.url}/s/", data=multipart(hidden(page, "csrf_token"), seq, big)) as response:
            too_big = await response.text()
        assert "quá lớn (tối đa 1 MB)" in too_big and "Ảnh mặt tiền cửa hàng?" in too_big
        # No file chosen: the question again, nothing kept.
        async with browser.post(f"{h.url}/s/", data=multipart(hidden(page, "csrf_token"), seq, b"",
                                                              filename="")) as response:
            assert "Ảnh mặt tiền cửa hàng?" in await response.text()
        answers, files = await stored(h, respondent_id)
        assert files == [] and "front" not in answers


SHOP_PAGE = """
| survey |
| | type | name | label | required | appearance |
| | begin group | shop | Cửa hàng | | field-list |
| | text | name | Tên cửa hàng? | yes | |
| | image | front | Ảnh mặt tiền? | yes | |
| | end group | | | | |
| | text | more | Còn gì nữa không? | | |
| settings |
| | form_id | version |
| | media | 1 |
"""


async def test_a_field_list_page_with_a_photo_answers_both_in_one_post(tmp_path):
    form = tmp_path / "shop.md"
    form.write_text(SHOP_PAGE, encoding="utf-8")
    async with web_with_limit(tmp_path, form=form) as h, browser_session() as browser:
        respondent_id, _, link = await h.invite("U-3", "media")
        async with browser.get(f"{h.url}/s/{link}") as response:
            consent = await response.text()
        _, page = await post(browser, h.url, consent, action="answer", choice="yes")
        assert 'enctype="multipart/form-data"' in page and 'name="text.name"' in page and 'name="file"' in page
        data = aiohttp.FormData()
        for name, value in (("csrf_token", hidden(page, "csrf_token")), ("seq", hidden(page, "seq")),
                            ("group", "1"), ("q", "front"), ("q", "name"), ("text.name", "Tạp hoá Lan")):
            data.add_field(name, value)
        data.add_field("action", "answer")
        data.add_field("file", PNG, filename="front.png", content_type="image/png")
        async with browser.post(f"{h.url}/s/", data=data) as response:
            assert "Còn gì nữa không?" in await response.text()
        answers, files = await stored(h, respondent_id)
        assert answers["name"] == "Tạp hoá Lan" and [(f.question, f.content) for f in files] == [("front", PNG)]


async def test_a_simulated_person_answers_the_media_form_on_the_web(tmp_path):
    import random

    from bot.simulate import Behaviour, WebPerson
    from surveys.xlsform import load_questionnaire

    steady = Behaviour(decline=0, walk_away=0, go_back=0, press_old_button=0, skip_optional=0)
    async with web_with_limit(tmp_path) as h, browser_session() as browser:
        respondent_id, _, link = await h.invite("U-4", "media")
        person = WebPerson(browser, h.url, load_questionnaire(MEDIA), link, random.Random(2), behaviour=steady)
        assert await person.take_part() == "completed"
        answers, files = await stored(h, respondent_id)
        assert {f.question for f in files} >= {"front", "story", "receipt"}
        assert answers["front"] == next(f.name for f in files if f.question == "front")
