"""Simulated people for the demo: they open their invitation on the (emulated) Telegram and answer.

They read what the bot shows — the message text and its buttons — as a person would, and use
the questionnaire only to type answers that pass its constraints, as a person who read the hint
would. Some decline, some walk away half-way, some go back, some press buttons of questions
they already answered.
"""

from __future__ import annotations

import datetime as dt
import html.parser
import random
import re
from dataclasses import dataclass, field
from typing import Any

from bot.telegram.emulator import ReceivedMessage, SimulatedUser
from bot.zalo.emulator import SimulatedZaloUser, ZaloReceived
from surveys.expressions import Environment, ExpressionError
from surveys.model import Question, QuestionType, Questionnaire

_SUGGESTIONS = (
    "Cần rút ngắn thời gian giải quyết hồ sơ.",
    "Nên có thêm chỗ ngồi chờ và nước uống.",
    "Cán bộ nhiệt tình, hướng dẫn rõ ràng.",
    "Mong dịch vụ công trực tuyến ổn định hơn.",
    "Không có ý kiến thêm.",
)
_NUMBER_POOLS = (range(0, 11), range(0, 46), range(18, 81), range(1935, 2009), range(1, 1000))
_FINISHED = {"hoàn thành khảo sát": "completed", "completed the survey": "completed",
             "không hỏi thêm": "declined", "will not ask anything more": "declined",
             "đã đủ số phiếu": "quota full", "already has all the responses": "quota full"}
#: What a reminder asks the person to send (surveys/messages.py, reminder_resume_hint).
RESUME = "/resume"


@dataclass(frozen=True)
class Behaviour:
    decline: float = 0.04
    walk_away: float = 0.005
    go_back: float = 0.03
    press_old_button: float = 0.03
    skip_optional: float = 0.4


@dataclass
class Transcript:
    lines: list[str] = field(default_factory=list)

    def bot(self, text: str) -> None:
        self.lines.append("🤖 " + text.replace("\n", "\n   "))

    def person(self, text: str) -> None:
        self.lines.append("👤 " + text)

    def text(self) -> str:
        return "\n".join(self.lines)


class TypedAnswers:
    """Values a person would type for a question, valid for its constraint where one can tell."""

    def __init__(self, form: Questionnaire, rng: random.Random, today: dt.date):
        self.form = form
        self.rng = rng
        self.today = today
        self._valid_numbers: dict[str, list[int]] = {}

    def value(self, question: Question, attempt: int) -> str:
        rng = self.rng
        if question.type is QuestionType.TEXT:
            return rng.choice(_SUGGESTIONS)
        if question.type is QuestionType.TIME:
            return f"{rng.randint(7, 17)}:{rng.choice(('00', '15', '30', '45'))}"
        if question.type is QuestionType.DATETIME:
            day = self.today - dt.timedelta(days=rng.randint(0, 30))
            return f"{day:%d/%m/%Y} {rng.randint(7, 17)}:30"
        if question.type is QuestionType.GEOPOINT:  # somewhere in Viet Nam, typed as people type it
            return f"{rng.uniform(8.6, 23.3):.5f}, {rng.uniform(102.2, 109.4):.5f}"
        if question.type is QuestionType.DATE:
            day = self.today - dt.timedelta(days=rng.randint(0, 365))
            return day.strftime("%d/%m/%Y") if rng.random() < 0.5 else day.isoformat()
        if question.name not in self._valid_numbers:
            self._valid_numbers[question.name] = [n for pool in _NUMBER_POOLS for n in pool
                                                  if self._passes(question, n)]
        candidates = self._valid_numbers[question.name]
        value = rng.choice(candidates) if candidates and attempt < 5 else rng.randint(0, 100)
        return f"{value},5" if question.type is QuestionType.DECIMAL and rng.random() < 0.5 else str(value)

    def _passes(self, question: Question, value: int) -> bool:
        if question.constraint is None:
            return True
        try:
            return question.constraint.evaluate_bool(Environment(current=value, today=self.today))
        except ExpressionError:
            return False


class _Person:
    """The answering loop both platforms share: read each new message, stop when the survey ends.

    Subclasses open the chat (:meth:`_open`), pick the next message (:meth:`_next_message`) and
    react to it (:meth:`_react`, which returns an outcome to stop with, or None to go on).
    """

    def __init__(self, user: SimulatedUser | SimulatedZaloUser, form: Questionnaire, code: str,
                 rng: random.Random, transcript: Transcript | None = None, behaviour: Behaviour = Behaviour(),
                 today: dt.date | None = None):
        self.user = user
        self.form = form
        self.code = code
        self.rng = rng
        self.transcript = transcript
        self.behaviour = behaviour
        self.typed = TypedAnswers(form, rng, today or dt.date.today())  # the survey's (simulated) today
        self._typed_question: Question | None = None  # the question whose answer was typed last
        self._attempts = 0  # how often that answer was refused

    def _say(self, text: str) -> None:
        if self.transcript is not None:
            self.transcript.person(text)

    async def _send(self, text: str) -> None:
        self._say(text)
        await self.user.send_text(text)

    async def _type(self, question: Question, attempt: int) -> None:
        if question.type.is_media:
            await self._send_media(question)
            return
        await self._send(self.typed.value(question, attempt))

    async def _send_media(self, question: Question) -> None:
        """A media question: what this platform lets a person send (a channel without files skips)."""
        await self._send("bỏ qua")

    async def _retype(self) -> None:
        """After an error message about the value just typed: type another one."""
        if self._typed_question is not None:
            self._attempts += 1
            await self._type(self._typed_question, self._attempts)

    async def take_part(self) -> str:
        """Answer until the survey ends or the person walks away; returns what happened."""
        await self._open()
        return await self._answer_until_done()

    async def wait_for_reminder(self, timeout: float = 10) -> str:
        """Wait for the bot's reminder (it asks to send /resume); returns its text."""
        message = await self.user.wait_for(
            lambda m: getattr(m, "edits", 0) == 0 and RESUME in (m.text or ""), timeout=timeout)
        if self.transcript is not None:
            self.transcript.bot(message.text)
        return message.text

    async def come_back(self) -> str:
        """After a reminder: send /resume as it says, and answer on from where one stopped."""
        await self._send(RESUME)
        return await self._answer_until_done()

    async def _answer_until_done(self) -> str:
        self._typed_question, self._attempts = None, 0
        while True:
            try:
                message = await self._next_message()
            except TimeoutError:
                return "stuck"
            text = message.text or ""
            if self.transcript is not None:
                self.transcript.bot(text)
            for marker, outcome in _FINISHED.items():
                if marker in text:
                    return outcome
            outcome = await self._react(message, text)
            if outcome is not None:
                return outcome

    async def _open(self) -> None:
        raise NotImplementedError

    async def _next_message(self) -> ReceivedMessage | ZaloReceived:
        raise NotImplementedError

    async def _react(self, message: Any, text: str) -> str | None:
        raise NotImplementedError


class TelegramPerson(_Person):
    user: SimulatedUser

    async def _send_media(self, question: Question) -> None:
        kind = question.type
        self._say(f"(gửi {'ảnh' if kind is QuestionType.IMAGE else 'tin nhắn thoại' if kind is QuestionType.AUDIO else 'tệp'})")
        if kind is QuestionType.IMAGE:
            await self.user.send_photo(SAMPLE_PHOTO)
        elif kind is QuestionType.AUDIO:
            await self.user.send_voice(b"OggS" + bytes(200))
        elif kind is QuestionType.VIDEO:
            await self.user.send_video(bytes(8) + b"ftypmp42" + bytes(200))
        else:
            await self.user.send_document(b"%PDF-1.4\n%%EOF\n", "giay-to.pdf", "application/pdf")

    def __init__(self, user: SimulatedUser, form: Questionnaire, code: str, rng: random.Random,
                 transcript: Transcript | None = None, behaviour: Behaviour = Behaviour(),
                 today: dt.date | None = None):
        super().__init__(user, form, code, rng, transcript, behaviour, today)
        self.old_prompts: list[ReceivedMessage] = []

    async def _open(self) -> None:
        self._say(f"(mở đường link trong thư mời) /start {self.code[:6]}…")
        await self.user.start(self.code)

    async def _next_message(self) -> ReceivedMessage:
        return await self.user.wait_for(lambda m: m.edits == 0 and bool(m.text), timeout=30)

    async def _react(self, message: ReceivedMessage, text: str) -> str | None:
        rng, behaviour = self.rng, self.behaviour
        buttons = self.user.inline_buttons(message) if message.inline_keyboard else []
        question = self._question(text)
        if not buttons and question is None:
            await self._retype()
            return None
        if any(data.endswith(":yes") and data.startswith("c:") for _, data in buttons):
            answer = "no" if rng.random() < behaviour.decline else "yes"
            label = next(label for label, data in buttons if data.endswith(f":{answer}"))
            self._say(f"[{label}]")
            await self.user.press(label, message)
            return None
        if rng.random() < behaviour.walk_away:
            self._say("(bỏ đi, không trả lời nữa)")
            return "walked away"
        if self.old_prompts and rng.random() < behaviour.press_old_button:
            old = rng.choice(self.old_prompts)
            stale = [data for _, data in self.user.inline_buttons(old) if data.startswith("c:")]
            if stale:
                self._say("(bấm nhầm nút của một câu đã trả lời)")
                await self.user.press(rng.choice(stale), old)
        if buttons:
            self.old_prompts.append(message)
        back = [data for _, data in buttons if data.startswith("b:")]
        if back and rng.random() < behaviour.go_back:
            self._say("[⬅ Quay lại]")
            await self.user.press(back[0], message)
            return None
        self._typed_question, self._attempts = None, 0
        await self._answer(message, buttons, question)
        if question is not None and not any(data.startswith(("c:", "+:", "-:")) for _, data in buttons):
            self._typed_question = question
        return None

    async def _answer(self, message: ReceivedMessage, buttons: list[tuple[str, str]], question: Question | None) -> None:
        rng = self.rng
        toggles = [(label, data) for label, data in buttons if data.startswith(("+:", "-:"))]
        choices = [(label, data) for label, data in buttons if data.startswith("c:")]
        skip = [data for _, data in buttons if data.startswith("k:")]
        if toggles:
            for label, data in rng.sample(toggles, rng.randint(1, min(3, len(toggles)))):
                self._say(f"[{label}]")
                await self.user.press(data, message)
                await self.user.wait_for(lambda m: m.message_id == message.message_id and m.edits > 0, timeout=30)
            self._say("[Xong]")
            await self.user.press(next(data for _, data in buttons if data.startswith("d:")), message)
        elif choices:
            label, data = rng.choice(choices)
            self._say(f"[{label}]")
            await self.user.press(data, message)
        elif skip and rng.random() < self.behaviour.skip_optional:
            self._say("[Bỏ qua]")
            await self.user.press(skip[0], message)
        elif question is not None:
            await self._type(question, 0)

    def _question(self, text: str) -> Question | None:
        return question_in(self.form, text)


def question_in(form: Questionnaire, text: str) -> Question | None:
    """The question a prompt asks, recognised by its label (what a person reads)."""
    for question in form.asked:
        label = question.label.get("vi", form.default_language).split("${")[0].strip()
        if label and label in text:
            return question
    return None


#: What a simulated person sends as a photo (the emulators do not decode images).
SAMPLE_PHOTO = b"\xff\xd8\xff\xe0" + bytes(256)
_OPTION = re.compile(r"^  (\d+)\. (?:\[[ x]\] )?(.+)$", re.MULTILINE)


class ZaloPerson(_Person):
    """Someone answering on Zalo: no buttons, so numbers, words, 0 to go back, «bỏ qua» to skip."""

    user: SimulatedZaloUser

    async def _send_media(self, question: Question) -> None:
        if question.type in (QuestionType.IMAGE, QuestionType.FILE):  # Zalo passes photos only
            self._say("(gửi một ảnh)")
            await self.user.send_image(SAMPLE_PHOTO)
        else:
            await self._send("bỏ qua")

    async def _open(self) -> None:
        await self._send(f"{self.code[:4]} {self.code[4:]}")  # typed from the letter

    async def _next_message(self) -> ZaloReceived:
        return await self.user.wait_for(timeout=30)

    async def _react(self, message: ZaloReceived, text: str) -> str | None:
        rng, behaviour = self.rng, self.behaviour
        options = _OPTION.findall(text)
        question = question_in(self.form, text)
        if "đồng ý tham gia" in text and options:
            await self._send("2" if rng.random() < behaviour.decline else "1")
            return None
        if question is None:
            if not options:
                await self._retype()
            return None
        if rng.random() < behaviour.walk_away:
            return "walked away"
        if "quay lại câu trước" in text and rng.random() < behaviour.go_back:
            await self._send("quay lại")
            return None
        self._typed_question, self._attempts = None, 0
        if options and question.type is QuestionType.SELECT_MULTIPLE:
            picked = rng.sample([number for number, _ in options], rng.randint(1, min(3, len(options))))
            await self._send(rng.choice((" ", ", ")).join(picked))
        elif options:
            number, label = rng.choice(options)
            await self._send(number if rng.random() < 0.8 else label.lower())
        elif "bỏ qua" in text and rng.random() < behaviour.skip_optional:
            await self._send("bỏ qua")
        elif question.type is QuestionType.ACKNOWLEDGE:
            await self._send("OK")
        else:
            self._typed_question = question
            await self._type(question, 0)


# -- the web channel -------------------------------------------------------------------------------


@dataclass
class WebForm:
    """One ``<form method="post">`` of a page: its fields as a browser would send them."""

    classes: str
    hidden: dict[str, str] = field(default_factory=dict)
    #: (type, name, value, label) of each radio, checkbox or text-like input.
    inputs: list[tuple[str, str, str, str]] = field(default_factory=list)
    #: (name, value, text) of each submit button.
    buttons: list[tuple[str, str, str]] = field(default_factory=list)

    def button(self, value: str) -> tuple[str, str] | None:
        return next(((name, v) for name, v, _ in self.buttons if v == value), None)


@dataclass
class WebPage:
    status: int
    size: int
    text: str = ""
    forms: list[WebForm] = field(default_factory=list)

    def form(self, kind: str) -> WebForm | None:
        return next((f for f in self.forms if kind in f.classes.split()), None)


class _PageReader(html.parser.HTMLParser):
    def __init__(self, page: WebPage):
        super().__init__()
        self.page, self.form, self.label, self.pending = page, None, None, None
        self.texts: list[str] = []
        self.button: list | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.form = WebForm(a.get("class", ""))
            self.page.forms.append(self.form)
        elif tag == "input" and self.form is not None:
            kind = a.get("type", "text")
            if kind == "hidden":
                self.form.hidden[a.get("name", "")] = a.get("value", "")
            else:
                self.pending = [kind, a.get("name", ""), a.get("value", ""), ""]
                self.form.inputs.append(tuple(self.pending))
        elif tag == "button" and self.form is not None:
            self.button = [a.get("name", ""), a.get("value", ""), ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.form = None
        elif tag == "button" and self.button is not None and self.form is not None:
            self.form.buttons.append((self.button[0], self.button[1], self.button[2].strip()))
            self.button = None
        elif tag == "label" and self.pending is not None and self.form is not None:
            self.form.inputs[-1] = (*self.pending[:3], self.pending[3].strip())
            self.pending = None

    def handle_data(self, data: str) -> None:
        self.texts.append(data)
        if self.button is not None:
            self.button[2] += data
        elif self.pending is not None:
            self.pending[3] += data


def read_page(status: int, body: str) -> WebPage:
    page = WebPage(status, len(body.encode()))
    reader = _PageReader(page)
    reader.feed(body)
    page.text = " ".join(" ".join(reader.texts).split())
    return page


class WebPerson(_Person):
    """Someone answering on the web pages over HTTP, as a browser without JavaScript would:
    plain form posts, a redirect after each, the page read back."""

    def __init__(self, session: Any, base_url: str, form: Questionnaire, code: str, rng: random.Random,
                 transcript: Transcript | None = None, behaviour: Behaviour = Behaviour(),
                 today: dt.date | None = None):
        super().__init__(None, form, code, rng, transcript, behaviour, today)  # type: ignore[arg-type]
        self.session, self.base_url = session, base_url.rstrip("/")
        self.page: WebPage | None = None
        self._fresh = False
        #: Bytes of HTML of every page read (the benchmark's transfer size per question).
        self.pages: list[int] = []

    async def get(self, path: str) -> WebPage:
        async with self.session.get(self.base_url + path) as response:
            return self._read(response.status, await response.text())

    async def post(self, fields: dict[str, str] | list[tuple[str, str]] | Any) -> WebPage:
        async with self.session.post(self.base_url + "/s/", data=fields) as response:
            return self._read(response.status, await response.text())

    def _read(self, status: int, body: str) -> WebPage:
        self.page, self._fresh = read_page(status, body), True
        self.pages.append(self.page.size)
        return self.page

    async def _open(self) -> None:
        self._say(f"(mở đường link /s/{self.code[:6]}…)")
        await self.get(f"/s/{self.code}")

    async def _send(self, text: str) -> None:
        await self._submit("answer", {"text": text})

    async def _send_media(self, question: Question) -> None:
        """A media question: a file chosen in the page's file input, posted as a browser posts it
        (multipart, the page's hidden fields first)."""
        import aiohttp

        content, name, mime = {
            QuestionType.IMAGE: (SAMPLE_PHOTO, "anh.jpg", "image/jpeg"),
            QuestionType.AUDIO: (b"OggS" + bytes(200), "ghi-am.ogg", "audio/ogg"),
            QuestionType.VIDEO: (bytes(8) + b"ftypmp42" + bytes(200), "video.mp4", "video/mp4"),
        }.get(question.type, (b"%PDF-1.4\n%%EOF\n", "giay-to.pdf", "application/pdf"))
        form = self.page.form("ask") if self.page else None
        data = aiohttp.FormData()
        for key, value in (form.hidden if form else {}).items():
            data.add_field(key, value)
        data.add_field("action", "answer")
        data.add_field("file", content, filename=name, content_type=mime)
        self._say(f"[{name}]")
        await self.post(data)

    async def _submit(self, action: str, answer: dict[str, str] | list[tuple[str, str]] = ()) -> None:
        form = self.page.form("ask") if self.page else None
        fields = list((form.hidden if form else {}).items()) + [("action", action)]
        fields += list(answer.items()) if isinstance(answer, dict) else list(answer)
        labels = {value: label for _, _, value, label in (form.inputs if form else ())}
        chosen = [labels.get(v, v) if k != "text" else v for k, v in fields if k in ("text", "choice", "ticked")]
        self._say(f"[{' + '.join(chosen)}]" if chosen else f"[{action}]")
        await self.post(fields)

    async def _next_message(self) -> WebPage:
        if not self._fresh:
            await self.get("/s/")
        self._fresh = False
        return self.page

    async def _react(self, page: WebPage, text: str) -> str | None:
        rng, behaviour = self.rng, self.behaviour
        form = page.form("ask")
        if form is None:
            return "stuck"
        if "đồng ý tham gia" in text or "agree to take part" in text:
            await self._submit("answer", {"choice": "no" if rng.random() < behaviour.decline else "yes"})
            return None
        question = question_in(self.form, text)
        if rng.random() < behaviour.walk_away:
            return "walked away"
        if form.button("back") and rng.random() < behaviour.go_back:
            await self._submit("back")
            return None
        retyping = question is not None and question is self._typed_question
        self._typed_question, self._attempts = None, self._attempts + 1 if retyping else 0
        radios = [value for kind, name, value, _ in form.inputs if kind == "radio"]
        boxes = [value for kind, name, value, _ in form.inputs if kind == "checkbox"]
        if boxes:
            picked = rng.sample(boxes, rng.randint(1, min(3, len(boxes))))
            await self._submit("answer", [("ticked", key) for key in picked])
        elif radios:
            await self._submit("answer", {"choice": rng.choice(radios)})
        elif form.hidden.get("choice") == "ok":
            await self._submit("answer")
        elif form.button("skip") and rng.random() < behaviour.skip_optional:
            await self._submit("skip")
        elif question is not None:
            self._typed_question = question
            await self._type(question, self._attempts)
        else:
            return "stuck"
        return None
