"""Media questions (image/photo, audio, video, file): the engine takes a stored file's name from
an `Attach` event, checks its kind and the form's `accept`, refuses typed text politely, and lets
an optional one be skipped and a given one be changed by going back."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from surveys import codec
from surveys import engine as E
from surveys.model import QuestionType
from surveys.xlsform import load_questionnaire

MEDIA = Path(__file__).parent / "forms" / "media.md"
AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))


def at_photo() -> tuple:
    form = load_questionnaire(MEDIA)
    state = E.new_session(form, None)
    for event in (E.Start(AT), E.Choose("yes", 1, AT), E.Reply("Tạp hoá Minh", AT)):
        state = E.step(form, state, event).state
    return form, state


def test_media_types_are_asked_and_a_signature_is_asked_as_a_photo_of_it() -> None:
    form = load_questionnaire(MEDIA)
    assert [form.question(n).type for n in ("front", "story", "receipt", "sign")] == [
        QuestionType.IMAGE, QuestionType.AUDIO, QuestionType.FILE, QuestionType.IMAGE]
    assert form.unaskable == ()
    assert form.question("receipt").accept == ".pdf, image/*"
    assert any("appearance signature: a chat cannot draw, so it asks for a photo of it" in w for w in form.warnings)
    assert not any("not asked" in w or "body::accept" in w for w in form.warnings)
    form, state = at_photo()
    prompt = E.current_prompt(form, state)
    assert prompt.kind is E.PromptKind.IMAGE and prompt.question == "front"
    assert prompt.expected == "một ảnh, gửi bằng nút đính kèm 📎"


def test_a_photo_is_stored_as_its_file_name_and_the_flow_goes_on() -> None:
    form, state = at_photo()
    step = E.step(form, state, E.Attach("front-1a2b.jpg", "image/jpeg", 1234, AT, seq=state.seq))
    assert step.accepted and step.changes == {"front": "front-1a2b.jpg"}
    assert step.say[-1].question == "story" and step.say[-1].kind is E.PromptKind.AUDIO
    # the event survives the event log
    event = E.Attach("front-1a2b.jpg", "image/jpeg", 1234, AT, seq=3)
    assert codec.decode_event(codec.encode_event(event)) == event


@pytest.mark.parametrize("event, message", [
    (E.Reply("ảnh đây", AT), "Xin gửi một ảnh bằng nút đính kèm 📎"),
    (E.Attach("x.pdf", "application/pdf", 10, AT), "Tệp này không đúng loại câu hỏi cần. Xin gửi một ảnh"),
    (E.Reply("", AT), "cần có câu trả lời"),  # required: a skip is refused
])
def test_text_or_a_wrong_file_is_refused_politely_and_changes_nothing(event, message: str) -> None:
    form, state = at_photo()
    step = E.step(form, state, event)
    assert not step.accepted and step.state == state
    assert message in step.say[0].text and step.say[0].tone is E.Tone.ERROR
    assert step.say[-1].question == "front"


def test_an_optional_one_is_skipped_and_going_back_shows_the_file_given() -> None:
    form, state = at_photo()
    state = E.step(form, state, E.Attach("front.jpg", "image/jpeg", 9, AT)).state
    # a Telegram voice note is audio/ogg
    step = E.step(form, state, E.Attach("story.oga", "audio/ogg", 9, AT))
    assert step.changes == {"story": "story.oga"}
    state = step.state
    assert E.current_prompt(form, state).question == "receipt"
    # accept narrows a file question: a PDF or an image, not a sound
    refused = E.step(form, state, E.Attach("r.mp3", "audio/mpeg", 9, AT))
    assert not refused.accepted and "(.pdf, image/*)" in refused.say[0].text
    assert E.step(form, state, E.Attach("r.pdf", "application/pdf", 9, AT)).changes == {"receipt": "r.pdf"}
    state = E.step(form, state, E.Reply("", AT)).state  # skipped
    assert state.answers["receipt"] is None and E.current_prompt(form, state).question == "sign"
    state = E.step(form, state, E.Back(AT)).state
    state = E.step(form, state, E.Back(AT)).state
    prompt = E.current_prompt(form, state)
    assert prompt.question == "story" and prompt.current_answer == "story.oga"
    kept = E.step(form, state, E.Reply("", AT))  # an empty reply keeps the answer
    assert kept.accepted and kept.state.answers["story"] == "story.oga"


def test_a_file_on_a_question_that_asks_for_none_is_refused() -> None:
    form = load_questionnaire(MEDIA)
    state = E.step(form, E.new_session(form, None), E.Start(AT)).state
    state = E.step(form, state, E.Choose("yes", 1, AT)).state
    step = E.step(form, state, E.Attach("a.jpg", "image/jpeg", 1, AT))
    assert not step.accepted and "không cần gửi tệp" in step.say[0].text
