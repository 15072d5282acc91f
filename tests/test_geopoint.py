"""Geopoint questions in chat: a location shared on Telegram (a request_location keyboard, the location
message read into the chat core's neutral event) and coordinates typed on Zalo, stored as ODK's
"latitude longitude altitude accuracy", exported as such; geotrace/geoshape stay a warning."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from bot.telegram.render import TelegramRenderer
from exporters.table import export_frame
from surveys import codec
from surveys import engine as E
from surveys.model import QuestionType
from surveys.xlsform import load_questionnaire
from tests.test_chat_scenarios import arrive, emulators, has, running, settle

GEO = Path(__file__).parent / "forms" / "geopoint.md"
AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def at_geopoint() -> tuple:
    form = load_questionnaire(GEO)
    state = E.new_session(form, None)
    for event in (E.Start(AT), E.Choose("yes", 1, AT), E.Reply("Bưu điện Phường 1", AT)):
        state = E.step(form, state, event).state
    return form, state


def test_a_geopoint_is_asked_and_a_geotrace_stays_a_warning() -> None:
    form, state = at_geopoint()
    assert form.question("where").type is QuestionType.GEOPOINT
    assert [q.name for q in form.unaskable] == ["route"]
    assert any("'route' (geotrace) is not asked" in w for w in form.warnings)
    prompt = E.current_prompt(form, state)
    assert prompt.kind is E.PromptKind.GEOPOINT and prompt.expected == "vĩ độ, kinh độ, ví dụ 10.7769, 106.7009"


@pytest.mark.parametrize("typed, stored", [
    ("10.7769, 106.7009", "10.7769 106.7009 0 0"), ("10,7769; 106,7009", "10.7769 106.7009 0 0"),
    ("10.7769 106.7009", "10.7769 106.7009 0 0"), ("-33.9 18.4 12 4.5", "-33.9 18.4 12 4.5"),
])
def test_typed_coordinates_are_stored_as_odk_writes_them(typed: str, stored: str) -> None:
    form, state = at_geopoint()
    step = E.step(form, state, E.Reply(typed, AT))
    assert step.accepted and step.changes["where"] == stored
    assert step.say[-1].question == "wait"


@pytest.mark.parametrize("typed, message", [
    ("ở chợ", "Xin gửi vị trí, hoặc gõ vĩ độ và kinh độ"), ("106.7, 10.7", "Vĩ độ phải từ -90 đến 90"),
    ("10.7", "Xin gửi vị trí"),
])
def test_what_is_not_a_point_is_refused_politely_and_changes_nothing(typed: str, message: str) -> None:
    form, state = at_geopoint()
    step = E.step(form, state, E.Reply(typed, AT))
    assert not step.accepted and message in step.say[0].text and "where" not in step.state.answers


def test_a_shared_location_answers_a_geopoint_and_nothing_else() -> None:
    form, state = at_geopoint()
    step = E.step(form, state, E.Locate(10.77, 106.7, AT, accuracy=8.5))
    assert step.changes["where"] == "10.77 106.7 0 8.5"
    refused = E.step(form, step.state, E.Locate(10.77, 106.7, AT))  # now on "wait", an integer
    assert not refused.accepted and "không hỏi vị trí" in refused.say[0].text
    event = E.Locate(10.77, 106.7, AT, seq=3, accuracy=8.5)
    assert codec.decode_event(codec.encode_event(event)) == event


def test_telegram_asks_with_a_location_button_and_words_for_back() -> None:
    form, state = at_geopoint()
    prompt = dataclasses.replace(E.current_prompt(form, state), update=False)  # as first sent
    calls, _ = TelegramRenderer().render([prompt], "5", "vi")
    markup = calls[-1].payload["reply_markup"]
    assert markup["keyboard"] == [[{"text": "📍 Gửi vị trí hiện tại", "request_location": True}]]
    assert "quay lại" in calls[-1].payload["text"]


async def test_a_location_shared_on_telegram_and_typed_on_zalo_is_stored_and_exported(tmp_path, database):
    async with emulators(tmp_path, database, (GEO,)) as bots:
        async with running(bots) as storage:
            for index, channel in enumerate(("telegram", "zalo")):
                _, user = await arrive(bots, storage, channel, f"G-{channel}", 8200 + index, "geo")
                await user.send_text("1")
                await user.wait_for(has("Tên điểm giao dịch?"))
                await user.send_text("Bưu điện")
                await user.wait_for(has("Điểm giao dịch ở đâu? (vĩ độ, kinh độ, ví dụ 10.7769, 106.7009)"))
                if channel == "telegram":
                    assert user.reply_keyboard["keyboard"][0][0]["request_location"] is True
                    await user.share_location(10.776889, 106.700806, accuracy=12.0)
                else:
                    await user.send_text("ở gần chợ")  # not a point: asked again, nothing stored
                    await user.wait_for(has("Xin gửi vị trí, hoặc gõ vĩ độ và kinh độ"))
                    await user.send_text("21,0285, 105,8542")
                await user.wait_for(has("chờ bao nhiêu phút"))
                await user.send_text("15")
                await user.wait_for(has("hoàn thành khảo sát"))
            await settle(storage)
            table = await export_frame(storage, "geo")
    df = table.df.sort_values("respondent")
    assert sorted(df["where"]) == ["10.776889 106.700806 0 12", "21.0285 105.8542 0 0"]
    assert "route" in df.columns and df["route"].isna().all()


async def test_on_zalo_a_shared_location_gets_how_to_type_it_and_a_pasted_map_link_answers(tmp_path, database):
    """Zalo sends a location shared from its map as an unsupported message: on the geopoint question
    the person is told Zalo does not pass it on and how to find and type the coordinates, and
    nothing is stored; elsewhere (and for a photo) the usual "please answer in text" is said. A
    short link is refused with how to find the coordinates; a Google Maps link is read."""
    async with emulators(tmp_path, database, (GEO,)) as bots:
        async with running(bots) as storage:
            respondent_id, user = await arrive(bots, storage, "zalo", "G-link", 8300, "geo")
            await user.send_text("1")
            await user.wait_for(has("Tên điểm giao dịch?"))
            await user.send_unsupported()  # not on a location question: the usual words
            await user.wait_for(has("Xin trả lời bằng chữ"))
            await user.send_text("Bưu điện")
            await user.wait_for(has("Điểm giao dịch ở đâu?"))
            await user.send_unsupported()
            told = await user.wait_for(has("Zalo không chuyển vị trí"))
            assert "10.7769, 106.7009" in told.text and "Google Maps" in told.text
            await user.send_photo("https://example.org/map.jpg")
            await user.wait_for(has("Xin trả lời bằng chữ"))
            await settle(storage)
            session = await storage.latest_session(respondent_id, "geo")
            assert "where" not in await storage.answers(session.id)
            await user.send_text("https://maps.app.goo.gl/AbCdEf123")
            await user.wait_for(has("Liên kết này không ghi tọa độ"))
            await user.send_text("Đây ạ: https://www.google.com/maps/place/B%C6%B0u+%C4%91i%E1%BB%87n/"
                                 "@10.7798,106.6990,17z/data=!3m1!4b1!4m6!3m5!8m2!3d10.779836!4d106.699953")
            await user.wait_for(has("chờ bao nhiêu phút"))
            await user.send_text("15")
            await user.wait_for(has("hoàn thành khảo sát"))
            await settle(storage)
            answers = await storage.answers(session.id)
    assert codec.decode_value(answers["where"].value) == "10.779836 106.699953 0 0"
