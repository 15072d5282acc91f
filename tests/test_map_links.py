"""Map links as answers to a geopoint question (issue #17): the coordinates read from the link's
text alone (`surveys.map_links`, a pure function), stored by the engine as typed coordinates are;
a short link, which only opening could resolve, refused politely; and the Zalo channel telling an
unsupported message (how Zalo sends a shared location) from an image or a sticker."""

from __future__ import annotations

import pytest

from bot.chat.events import IMAGE, STICKER, UNSUPPORTED, Media, NotText, Text
from bot.zalo.channel import parse
from surveys import engine as E
from surveys.map_links import map_link
from tests.test_geopoint import AT, at_geopoint

CHO_BEN_THANH = "https://www.google.com/maps/place/Ch%E1%BB%A3+B%E1%BA%BFn+Th%C3%A0nh/@10.7725,106.6980,17z/" \
                "data=!3m1!4b1!4m6!3m5!1s0x31752f3f:0x1!8m2!3d10.772522!4d106.698055!16s"


@pytest.mark.parametrize("text, point", [
    # Google Maps
    ("https://maps.google.com/?q=10.77,106.70", (10.77, 106.70)),
    ("https://www.google.com/maps?q=10.77%2C106.70", (10.77, 106.70)),
    ("https://www.google.com.vn/maps?q=loc:10.77+106.70", (10.77, 106.70)),
    ("https://www.google.com/maps/search/?api=1&query=-33.9,18.4", (-33.9, 18.4)),
    ("https://www.google.com/maps/@10.77,106.70,15z", (10.77, 106.70)),
    ("https://www.google.com/maps/@10.77,106.70,3a,75y,90t/data=!3m6", (10.77, 106.70)),
    ("https://www.google.com/maps/place/Ben+Thanh/@10.7725,106.6980,17z", (10.7725, 106.698)),
    (CHO_BEN_THANH, (10.772522, 106.698055)),  # the place's own pin, not the map's centre
    ("https://maps.google.com/maps?q=Ben+Thanh&ll=10.77,106.7", (10.77, 106.7)),
    ("google.com/maps/search/10.77,+106.70", (10.77, 106.70)),  # typed without https://
    # geo: URIs
    ("geo:10.77,106.70", (10.77, 106.70)),
    ("geo:10.77,106.70,12;u=35", (10.77, 106.70)),
    ("geo:0,0?q=10.77,106.70(Chợ Bến Thành)", (10.77, 106.70)),
    # OpenStreetMap: the marker first, else the map's centre
    ("https://www.openstreetmap.org/#map=15/10.77/106.70", (10.77, 106.70)),
    ("https://www.openstreetmap.org/?mlat=10.78&mlon=106.71#map=15/10.77/106.70", (10.78, 106.71)),
    # Apple Maps
    ("https://maps.apple.com/?ll=10.77,106.70&q=Dropped%20Pin", (10.77, 106.70)),
    ("https://maps.apple.com/?coordinate=10.77,106.70", (10.77, 106.70)),
    # inside words, or punctuation, as shared from an app
    ("Vị trí của tôi: https://maps.google.com/?q=10.77,106.70 nhé", (10.77, 106.70)),
    ("(https://www.openstreetmap.org/#map=15/10.77/106.70).", (10.77, 106.70)),
    ("https://maps.app.goo.gl/x https://maps.google.com/?q=10.77,106.70", (10.77, 106.70)),
])
def test_the_point_is_read_from_the_links_text(text: str, point: tuple[float, float]) -> None:
    link = map_link(text)
    assert link is not None and link.point == pytest.approx(point)


@pytest.mark.parametrize("text", [
    "https://maps.app.goo.gl/AbCdEf123", "https://goo.gl/maps/AbCdEf123", "maps.app.goo.gl/AbCd",
    "https://osm.org/go/4Yhl_", "https://www.google.com/maps/place/Ch%E1%BB%A3+B%E1%BA%BFn+Th%C3%A0nh",
    "geo:0,0?q=Chợ Bến Thành",
])
def test_a_short_link_or_a_named_place_is_a_map_link_without_a_point(text: str) -> None:
    link = map_link(text)
    assert link is not None and link.point is None


@pytest.mark.parametrize("text", [
    "ở gần chợ", "https://example.org/?q=10.77,106.70", "https://www.google.com/search?q=10.77,106.70",
    "ftp://maps.google.com/?q=10.77,106.70", "https://[::1", "e.g. 10.77", "",
])
def test_anything_else_is_no_map_link(text: str) -> None:
    assert map_link(text) is None


@pytest.mark.parametrize("text, stored", [
    ("https://maps.google.com/?q=10.7769,106.7009", "10.7769 106.7009 0 0"),
    (CHO_BEN_THANH, "10.772522 106.698055 0 0"),
    ("geo:21.0285,105.8542", "21.0285 105.8542 0 0"),
    ("https://www.openstreetmap.org/#map=17/21.0285/105.8542", "21.0285 105.8542 0 0"),
])
def test_a_pasted_link_answers_the_geopoint(text: str, stored: str) -> None:
    form, state = at_geopoint()
    step = E.step(form, state, E.Reply(text, AT))
    assert step.accepted and step.changes["where"] == stored


@pytest.mark.parametrize("text, message", [
    ("https://maps.app.goo.gl/AbCdEf123", "Liên kết này không ghi tọa độ"),
    ("https://maps.google.com/?q=106.7,10.7", "Vĩ độ phải từ -90 đến 90"),  # switched: not on Earth
    ("https://example.org/map", "Xin gửi vị trí, hoặc gõ vĩ độ và kinh độ"),
])
def test_a_link_without_a_usable_point_is_refused_politely_and_changes_nothing(text: str, message: str) -> None:
    form, state = at_geopoint()
    step = E.step(form, state, E.Reply(text, AT))
    assert not step.accepted and message in step.say[0].text and "where" not in step.state.answers


def test_the_refusal_of_a_short_link_says_how_to_find_the_coordinates_in_english_too() -> None:
    form, state = at_geopoint()
    state = E.step(form, state, E.SetLanguage("en", AT)).state
    step = E.step(form, state, E.Reply("https://maps.app.goo.gl/AbCdEf123", AT))
    assert "long-press" in step.say[0].text and not step.accepted


def zalo_update(event: str, **content) -> dict:
    return {"event_name": event, "message": {"message_id": "m1", "chat": {"id": "u1", "chat_type": "PRIVATE"},
                                            "from": {"id": "u1"}, **content}}


@pytest.mark.parametrize("event, content, incoming", [
    ("message.unsupported.received", {}, NotText(UNSUPPORTED)),
    ("message.image.received", {"caption": "ở đây"}, NotText(IMAGE)),  # a photo without its URL
    ("message.sticker.received", {"sticker": "abc"}, NotText(STICKER)),
    ("message.something.new", {}, NotText()),
    ("message.text.received", {"text": "https://maps.google.com/?q=10.77,106.70"},
     Text("https://maps.google.com/?q=10.77,106.70")),
    ("message.text.received", {"text": "  "}, NotText()),
])
def test_zalo_tells_what_kind_of_message_is_not_text(event: str, content: dict, incoming) -> None:
    _, key, parsed = parse(zalo_update(event, **content), "zl")
    assert key == "zalo:zl:m1" and parsed == incoming


def test_a_zalo_photo_with_its_url_is_media_the_core_may_fetch() -> None:
    _, _, parsed = parse(zalo_update("message.image.received", photo="https://example.org/a.jpg", caption="ở đây"),
                         "zl")
    assert isinstance(parsed, Media) and (parsed.kind, parsed.mime) == ("photo", "image/jpeg")


@pytest.mark.parametrize("text", ["1" + " " * 4000 + "x", "10.7" + " " * 3000 + "106.7" + " " * 900 + "x",
                                  "https://maps.google.com/?q=1" + "+" * 4000 + "x"])
def test_a_message_as_long_as_telegram_takes_is_refused_politely(text: str) -> None:
    """(Each of these once cost the bot a second of backtracking; now one pass.)"""
    form, state = at_geopoint()
    step = E.step(form, state, E.Reply(text, AT))
    assert not step.accepted and "where" not in step.state.answers
