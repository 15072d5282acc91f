"""A rank and a shuffled list on the web page over HTTP (``khaosat run`` with [web], a real SQLite
database): one pick per page among the choices left, back taking back a pick, the shuffled list in
the session's order, an optional rank skipped."""

from __future__ import annotations

import random
from pathlib import Path

import aiohttp

from bot.simulate import WebPerson
from surveys import codec
from surveys import engine as E
from surveys.xlsform import load_questionnaire
from tests.web_helpers import web_harness

RANKING = Path(__file__).parent / "forms" / "ranking.md"


def labels(page) -> list[str]:
    return [label for kind, _, _, label in page.form("ask").inputs if kind == "radio"]


def key_of(page, label: str) -> str:
    return next(value for kind, _, value, shown in page.form("ask").inputs if shown == label)


async def test_a_rank_is_one_pick_per_page_and_a_shuffled_list_keeps_the_sessions_order(tmp_path):
    async with web_harness(tmp_path, forms=(RANKING,)) as h:
        rid, _, link = await h.invite("W-rank", "ranking")
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
            p = WebPerson(browser, h.url, load_questionnaire(RANKING), link, random.Random(1))
            await p.get(f"/s/{link}")
            page = await p.post(dict(p.page.form("ask").hidden, action="answer", choice="yes"))
            assert "lựa chọn thứ 1" in page.text
            assert labels(page) == ["Thủ tục", "Thời gian chờ", "Thái độ cán bộ", "Chi phí"]
            page = await p.post(dict(page.form("ask").hidden, action="answer", choice=key_of(page, "Chi phí")))
            assert "lựa chọn thứ 2" in page.text and "đã xếp: 1. Chi phí" in page.text
            assert labels(page) == ["Thủ tục", "Thời gian chờ", "Thái độ cán bộ"]
            page = await p.post(dict(page.form("ask").hidden, action="back"))
            assert "Đã bỏ lựa chọn thứ 1" in page.text and len(labels(page)) == 4
            for label in ("Thái độ cán bộ", "Thủ tục", "Chi phí"):
                page = await p.post(dict(page.form("ask").hidden, action="answer", choice=key_of(page, label)))
            assert "kênh nào" in page.text
            session = await h.storage.latest_session(rid, "ranking")
            prompt = E.current_prompt(load_questionnaire(RANKING), codec.decode_state(session.state))
            assert labels(page) == [o.label for o in prompt.options]  # the session's shuffled order
            page = await p.post(dict(page.form("ask").hidden, action="answer", choice=key_of(page, "Zalo")))
            assert "Xếp hạng các kênh" in page.text and page.form("ask").button("skip")
            page = await p.post(dict(page.form("ask").hidden, action="skip"))
            assert "bao nhiêu tuổi" in page.text
            await p.post(dict(page.form("ask").hidden, action="answer", text="40"))
        session = await h.storage.latest_session(rid, "ranking")
        answers = {name: codec.decode_value(a.value) for name, a in (await h.storage.answers(session.id)).items()}
        assert session.status == "completed"
        assert answers["priorities"] == ("thai_do", "thu_tuc", "chi_phi", "thoi_gian")
        assert answers["channel"] == "zalo" and answers["channels_rank"] is None and answers["age"] == 40
