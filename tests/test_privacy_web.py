"""The rights flow on the web pages (``khaosat run`` with [web], HTTP on 127.0.0.1): the survey's
consent text without the messenger-abroad sentence, a withdrawal typed in the answer box, and
after fulfilment the browser is a stranger (the web cannot write first, so its chat is forgotten
at once)."""

from __future__ import annotations

import aiohttp

from bot.simulate import read_page
from fieldwork.privacy import fulfil_request
from tests.web_helpers import now, web_harness


async def test_withdrawal_and_erasure_on_the_web_pages(tmp_path):
    async with web_harness(tmp_path) as h:
        rid, _, link = await h.invite("W-P", "tour")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            page = read_page(200, await (await session.get(f"{h.url}/s/{link}")).text())
            assert "91/2025/QH15" in page.text and "nước ngoài" not in page.text
            answer = page.form("ask")
            page = read_page(200, await (await session.post(f"{h.url}/s/", data=dict(
                answer.hidden, action="answer", choice="yes"))).text())
            assert "bao nhiêu tuổi" in page.text
            (consent,) = await h.storage.consents_of(rid)
            assert consent.channel == "web" and "nước ngoài" not in consent.text
            for typed in ("xóa dữ liệu của tôi", "/xoa có"):
                answer = page.form("ask")
                page = read_page(200, await (await session.post(f"{h.url}/s/", data=dict(
                    answer.hidden, action="answer", text=typed))).text())
            assert "Đã nhận yêu cầu số" in page.text
            (request,) = await h.storage.rights_requests()
            assert await h.storage.latest_session(rid, "tour") is not None
            await fulfil_request(h.storage, request.id, "cli", now())
            assert (await h.storage.rights_requests())[0].status == "closed"
            assert await h.storage.latest_session(rid, "tour") is None and await h.storage.chats_of(rid) == []
            page = read_page(200, await (await session.get(f"{h.url}/s/")).text())
            assert page.form("code") is not None and page.form("ask") is None  # a stranger: asked for a code


async def post_button(session, url: str, form, action: str):
    """Press the form's button ``action``, as a browser without JavaScript does (then follow the
    redirect)."""
    name, value = form.button(action)
    async with session.post(f"{url}/s/", data=dict(form.hidden, **{name: value})) as response:
        return read_page(response.status, await response.text())


async def test_the_data_rights_button_on_every_page_leads_to_the_request_and_its_state(tmp_path):
    async with web_harness(tmp_path) as h:
        rid, _, link = await h.invite("W-R1", "tour")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
            code_page = read_page(200, await (await session.get(f"{h.url}/s/")).text())
            assert "Quyền về dữ liệu cá nhân" in code_page.form("rights").buttons[0][2]
            page = read_page(200, await (await session.get(f"{h.url}/s/{link}")).text())
            assert page.form("ask") is not None and page.form("rights") is not None  # the consent screen
            page = read_page(200, await (await session.post(f"{h.url}/s/", data=dict(
                page.form("ask").hidden, action="answer", choice="yes"))).text())
            assert "bao nhiêu tuổi" in page.text and page.form("rights") is not None
            # The same view as /privacy, then the request: confirmed by a second button.
            page = await post_button(session, h.url, page.form("rights"), "privacy")
            assert "Dữ liệu về quý vị" in page.text and "mã ẩn danh" in page.text
            assert page.form("ask") is not None  # the question is still there, to go on
            page = await post_button(session, h.url, page.form("withdraw"), "withdraw")
            assert "Quý vị muốn rút lại đồng ý" in page.text and await h.storage.rights_requests() == []
            # A page confirms with its button: it does not tell the person to type a chat command.
            assert "Bấm nút bên dưới để xác nhận" in page.text and "/xoa" not in page.text
            page = await post_button(session, h.url, page.form("withdraw"), "withdraw_yes")
            (request,) = await h.storage.rights_requests()
            assert request.respondent_id == rid and request.channel == "web"
            assert f"Đã nhận yêu cầu số {request.id}" in page.text
            # From now on the page shows the request's state only, on every reload.
            page = read_page(200, await (await session.get(f"{h.url}/s/")).text())
            assert f"Yêu cầu xóa dữ liệu số {request.id}" in page.text
            assert [f.classes for f in page.forms] == []
            # An old page's answer changes nothing and gets the same state.
            assert (await h.storage.get_respondent(rid)).disposition == "refused"
