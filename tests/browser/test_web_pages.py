"""The respondents' web pages in headless Chromium on a phone's screen: the bundled questionnaires
completed, back, a second device, Telegram then the web, English, and all of it without JavaScript."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from bot.simulate import TypedAnswers, question_in
from surveys import codec
from surveys.xlsform import load_questionnaire
from tests.web_helpers import FIELD_LIST, PAR, SIPAS, TOUR

FORMS = {"sipas_citizen_example": SIPAS, "par_index_officials_example": PAR, "tour": TOUR}


def invite(server, external_id: str, form_id: str) -> tuple[int, str, str]:
    return server.call(lambda h: h.invite(external_id, form_id))


def stored(server, respondent_id: int, form_id: str) -> tuple[str | None, dict]:
    async def read(h):
        session = await h.storage.latest_session(respondent_id, form_id)
        if session is None:
            return None, {}
        answers = await h.storage.answers(session.id)
        return session.status, {k: codec.decode_value(a.value) for k, a in answers.items()}
    return server.call(read)


def form_id_of(path) -> str:
    return load_questionnaire(path).form_id


class Answerer:
    """Answers whatever page is shown as a person would: picks an option, types a valid value."""

    def __init__(self, page, form_path, seed: int = 3, prefer: dict[str, str] | None = None):
        self.page, self.form = page, load_questionnaire(form_path)
        #: A question's words → the label of the option to choose there.
        self.prefer = prefer or {}
        self.rng = random.Random(seed)
        self.typed = TypedAnswers(self.form, self.rng, dt.date.today())
        self.tries: dict[str, int] = {}
        self.went_back = False

    def question_text(self) -> str:
        return self.page.locator("form.ask").inner_text()

    def answer_one(self, *, go_back_once: bool = False) -> None:
        page = self.page
        text = self.question_text()
        if go_back_once and not self.went_back and page.locator("button[value=back]").count():
            self.went_back = True
            submit(page, "button[value=back]")
            return
        preferred = next((label for words, label in self.prefer.items() if words in text), None)
        if preferred is not None:
            page.get_by_label(preferred, exact=True).check()
        elif page.locator("input[name=choice][value=yes]").count() and "đồng ý" in text.lower():
            page.get_by_label("Đồng ý", exact=True).check()
        elif (boxes := page.locator("input[type=checkbox]")).count():
            boxes.nth(self.rng.randrange(boxes.count())).check()
        elif (radios := page.locator("input[type=radio]")).count():
            radios.nth(self.rng.randrange(radios.count())).check()
        elif page.locator("input[name=text]").count():
            question = question_in(self.form, text)
            assert question is not None, text
            self.tries[question.name] = self.tries.get(question.name, -1) + 1
            value = self.typed.value(question, self.tries[question.name])
            field = page.locator("input[name=text]")
            if field.get_attribute("type") == "date":
                parts = [int(p) for p in value.replace("-", "/").split("/")]
                day = dt.date(*parts) if parts[0] > 31 else dt.date(parts[2], parts[1], parts[0])
                value = day.isoformat()
            field.fill(value)
        submit(page, "button[value=answer]")

    def finish(self, *, go_back_once: bool = False, limit: int = 120) -> None:
        for _ in range(limit):
            self.page.wait_for_load_state()
            if "hoàn thành khảo sát" in self.page.locator("main").inner_text():
                return
            self.answer_one(go_back_once=go_back_once)
        raise AssertionError("the questionnaire did not end: " + self.page.locator("main").inner_text())


def submit(page, selector: str) -> None:
    """Press a button and wait for the next page: a navigation without JavaScript, an in-place
    swap by htmx with it (each page is drawn with a new ``data-render``)."""
    before = page.locator("main").get_attribute("data-render")
    page.click(selector)
    page.wait_for_function("old => document.querySelector('main') && document.querySelector('main')"
                           ".dataset.render !== old", arg=before)


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.scrollingElement.scrollWidth <= window.innerWidth + 1")


@pytest.mark.parametrize("form_path", [SIPAS, PAR], ids=["sipas", "par_index"])
def test_a_bundled_questionnaire_is_completed_on_a_phone_with_back(web_server, phone, form_path):
    server = web_server()
    form_id = form_id_of(form_path)
    rid, _, link = invite(server, "B-1", form_id)
    page = phone()
    page.goto(f"{server.url}/s/{link}")
    assert page.url.endswith("/s/")  # the code does not stay in the address bar
    assert "đồng ý tham gia" in page.locator("main").inner_text()
    assert no_sideways_scroll(page)
    answerer = Answerer(page, form_path)
    answerer.answer_one()  # consent
    answerer.answer_one()
    progress = page.locator("p.progress").inner_text()
    answerer.finish(go_back_once=True)
    assert answerer.went_back and "%" in progress
    status, answers = stored(server, rid, form_id)
    assert status == "completed" and answers


def test_every_field_has_a_label_and_inputs_have_their_types(web_server, phone):
    server = web_server()
    rid, _, link = invite(server, "B-2", "tour")
    page = phone()
    page.goto(f"{server.url}/s/{link}")
    page.get_by_label("Đồng ý", exact=True).check()
    submit(page, "button[value=answer]")
    answerer = Answerer(page, TOUR, prefer={"dịch vụ công trực tuyến": "Có"})
    seen = set()
    while "hoàn thành" not in page.locator("main").inner_text():
        for field in page.locator("form.ask input:not([type=hidden])").all():
            kind = field.get_attribute("type")
            seen.add(kind if kind != "text" else field.get_attribute("inputmode") or "text")
            # a name a screen reader reads: a <label> around it or pointing at it
            assert field.evaluate("f => f.labels.length") >= 1
        if page.locator("fieldset").count():
            assert page.locator("fieldset > legend").inner_text().strip()
        answerer.answer_one()
    assert {"radio", "checkbox", "numeric", "date"} <= seen
    assert stored(server, rid, "tour")[0] == "completed"


def test_the_session_resumes_on_a_second_device(web_server, phone):
    server = web_server()
    rid, _, link = invite(server, "B-3", "tour")
    first = phone()
    first.goto(f"{server.url}/s/{link}")
    Answerer(first, TOUR).answer_one()
    first.fill("input[name=text]", "44")
    submit(first, "button[value=answer]")
    assert "Giới tính" in first.locator("main").inner_text()
    second = phone()  # another device: no cookie of the first
    second.goto(f"{server.url}/s/{link}")
    assert "Giới tính" in second.locator("main").inner_text()
    Answerer(second, TOUR).finish()
    status, answers = stored(server, rid, "tour")
    assert status == "completed" and answers["age"] == 44
    first.reload()
    assert "hoàn thành" in first.locator("main").inner_text()


def test_start_on_telegram_and_finish_on_the_web(web_server, phone):
    server = web_server()
    rid, _, link = invite(server, "B-4", "tour")

    async def on_telegram(h):
        user = h.telegram.user(8101)
        await user.start(link)
        consent = await user.wait_for(lambda m: "đồng ý tham gia" in (m.text or ""))
        await user.press("Đồng ý", consent)
        await user.wait_for(lambda m: "bao nhiêu tuổi" in (m.text or ""))
        await user.send_text("61")
        await user.wait_for(lambda m: "Giới tính" in (m.text or ""))

    server.call(on_telegram)
    page = phone()
    page.goto(f"{server.url}/s/{link}")
    assert "Giới tính" in page.locator("main").inner_text()
    Answerer(page, TOUR).finish()
    status, answers = stored(server, rid, "tour")
    assert status == "completed" and answers["age"] == 61
    chats = server.call(lambda h: h.storage.chats_of(rid))
    assert {chat[0] for chat in chats} == {"telegram", "web"}


def test_without_javascript_the_pages_work_with_plain_forms(web_server, phone):
    server = web_server()
    rid, typed, _ = invite(server, "B-5", "tour")
    page = phone(javascript=False)
    page.goto(f"{server.url}/s/")
    page.fill("input[name=code]", f"{typed[:4]} {typed[4:]}")  # typed from the letter
    submit(page, "form.code button")
    assert "đồng ý tham gia" in page.locator("main").inner_text()
    submit(page, "form.lang button")  # English
    assert "agree to take part" in page.locator("main").inner_text()
    page.get_by_label("I agree", exact=True).check()
    submit(page, "button[value=answer]")
    page.fill("input[name=text]", "17")  # too young for the form's constraint
    submit(page, "button[value=answer]")
    assert "18 to 100" in page.locator("p.say.error").inner_text()
    page.fill("input[name=text]", "33")
    submit(page, "button[value=answer]")
    submit(page, "button[value=back]")
    assert page.locator("input[name=text]").input_value() == "33"
    submit(page, "button[value=answer]")
    submit(page, "button[value=stop]")
    assert page.locator("form.confirm").count() == 1
    submit(page, "form.confirm button[value=stop_no]")
    for _ in range(20):
        if "completed the survey" in page.locator("main").inner_text():
            break
        main = page.locator("form.ask")
        if page.locator("input[type=checkbox]").count():
            page.locator("input[type=checkbox]").first.check()
        elif page.locator("input[type=radio]").count():
            page.locator("input[type=radio]").first.check()
        elif page.locator("button[value=skip]").count():
            submit(page, "button[value=skip]")
            continue
        assert main.count() == 1
        submit(page, "button[value=answer]")
    status, answers = stored(server, rid, "tour")
    assert status == "completed" and answers["age"] == 33


def test_a_field_list_group_is_answered_on_one_page_without_javascript(web_server, phone):
    server = web_server(forms=(FIELD_LIST,))
    rid, _, link = invite(server, "B-6", "web_field_list")
    page = phone(javascript=False)
    page.goto(f"{server.url}/s/{link}")
    page.get_by_label("Đồng ý", exact=True).check()
    submit(page, "button[value=answer]")
    assert page.locator("form.ask fieldset").count() == 3 and page.locator("form.ask input[type=text]").count() == 1
    for field in page.locator("form.ask input:not([type=hidden])").all():
        assert field.evaluate("f => f.labels.length") >= 1
    page.fill("input[inputmode=numeric]", "52")
    page.get_by_label("Nam", exact=True).check()
    page.get_by_label("Có", exact=True).check()
    page.get_by_label("Zalo", exact=True).check()
    submit(page, "button[value=answer]")
    assert "Góp ý" in page.locator("main").inner_text()
    status, answers = stored(server, rid, "web_field_list")
    assert (answers["age"], answers["sex"], answers["online"], answers["ways"]) == (52, "nam", "co", ("zalo",))
