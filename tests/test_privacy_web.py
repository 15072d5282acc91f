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
