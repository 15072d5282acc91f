"""The engine's answering: a reply, a button or a tick turned into a value, and that value checked.

A mixin of `surveys.engine._Conversation` (it reads the conversation's form, state and answers);
the parsing helpers below it read typed text the way people type it on a phone.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
import unicodedata
from typing import Any

from surveys.expected import example_candidates, missing_day, shown_example, typed_date
from surveys.expressions import NOT_APPLICABLE
from surveys.map_links import map_link
from surveys.media import accepts
from surveys.messages import UI_LANGUAGES, say
from surveys.model import Choice, Question, QuestionType
from surveys.phrasing import bounds_message
from surveys.session import Attach, Choose, Done, Event, InvalidAnswer, Locate, Reply, Say, Status, Step, Tone, Toggle, _evolve

#: Number questions, whose plain-bounds constraints are said in words when they refuse.
_NUMBERS = (QuestionType.INTEGER, QuestionType.DECIMAL)


class _Answering:
    def _answer(self, event: Event) -> Step:
        if self.state.status is Status.PAUSED:
            self.state = _evolve(self.state, status=Status.ACTIVE)
        question = self._current_question()
        if question.type is QuestionType.RANK:
            return self._rank(question, event)  # surveys.engine_rank
        try:
            if isinstance(event, Toggle):
                return self._toggle(question, event.key, event.on)
            value = self._value_from(question, event)
            self._validate(question, value)
        except InvalidAnswer as problem:
            return self._unchanged(Say(self._explain(question, event, problem.message), Tone.ERROR),
                                   self.render(update=True))
        return self._accept(question, value)

    def _accept(self, question: Question, value: Any) -> Step:
        """A valid answer: stored, and the flow moves on."""
        self._set(self._key(question), value)
        self.state = _evolve(self.state, draft=())
        return self._advance(self.form.index(question.name) + 1)

    def _explain(self, question: Question, event: Event, message: str) -> str:
        """An error as the respondent reads it: what was wrong, then an example that fits."""
        if question.type is QuestionType.DATE and isinstance(event, Reply):
            missing = missing_day(event.text)
            if missing is not None:
                day, month, year = missing
                message = say("no_such_day", self.ui, day=day, month=month, year=year,
                              month_name=calendar.month_name[month])
        example = self._example(question)
        return f"{message} {say('for_example', self.ui, example=example)}" if example else message

    def _toggle(self, question: Question, key: str, on: bool | None) -> Step:
        if question.type is not QuestionType.SELECT_MULTIPLE:
            return self._unchanged(Say(say("one_choice_only", self.ui), Tone.ERROR))
        choice = self._choice_by_key(question, key)
        if choice is None or not self._is_visible(question, choice):
            return self._unchanged(Say(say("unknown_choice", self.ui, text=key), Tone.ERROR))
        if on is not None and on == (choice.name in self.state.draft):
            return self._unchanged(Say(say("already_ticked" if on else "already_unticked", self.ui), Tone.STALE))
        marks = list(self.state.draft)
        marks.remove(choice.name) if choice.name in marks else marks.append(choice.name)
        order = [c.name for c in question.choices]
        self.state = _evolve(self.state, draft=tuple(sorted(marks, key=order.index)))
        self.out.append(self.render(update=True))
        return self._finish(self.state)

    def _value_from(self, question: Question, event: Event) -> Any:
        kind = question.type
        if isinstance(event, Attach):
            if not kind.is_media:
                raise InvalidAnswer(say("attachment_not_asked", self.ui))
            if not accepts(question, event.mime, event.name):
                raise InvalidAnswer(say("wrong_media", self.ui, expected=self._expected(question)))
            return event.name
        if isinstance(event, Locate):
            if kind is not QuestionType.GEOPOINT:
                raise InvalidAnswer(say("location_not_asked", self.ui))
            return geopoint(event.latitude, event.longitude, event.altitude, event.accuracy,
                            say("geopoint_out_of_range", self.ui))
        if isinstance(event, Done):
            if kind is not QuestionType.SELECT_MULTIPLE:
                raise InvalidAnswer(say("invalid", self.ui))
            return self._only_visible(question, self.state.draft) or None
        if isinstance(event, Choose):
            if kind is QuestionType.ACKNOWLEDGE and event.key == "ok":
                return "OK"
            choice = self._choice_by_key(question, event.key) if kind.is_select else None
            if choice is None or not self._is_visible(question, choice):
                raise InvalidAnswer(say("unknown_choice", self.ui, text=event.key))
            return (choice.name,) if kind is QuestionType.SELECT_MULTIPLE else choice.name
        text = event.text.strip()
        if text == "":
            kept = self.answers.get(self._key(question))
            if kept is not None and kept is not NOT_APPLICABLE:  # came back and kept the answer
                return (self._only_visible(question, kept) or None) if kind.is_select else kept
            if kind is QuestionType.SELECT_MULTIPLE and self.state.draft:
                return self._only_visible(question, self.state.draft) or None
            default = self._default(question)
            if default is not None and not self._required(question) and not self._still_valid(question, default):
                return None  # "Skip" on an optional question whose constraint refuses its default: as
                # clearing the default in ODK Collect, it is left empty (else nothing could skip it)
            return default
        return self._parse(question, text)

    def _only_visible(self, question: Question, value: Any) -> Any:
        """Drop choices the choice filter now hides (a default, or an answer from before a change)."""
        visible = {c.name for c in self._visible_choices(question)}
        if isinstance(value, tuple):
            return tuple(name for name in value if name in visible)
        return value if value in visible else None

    def _default(self, question: Question) -> Any:
        if question.default is None:
            return None
        if question.type.is_select:
            # A default names choices (XLSForm), while a typed number is a position on screen.
            names = [c.name for c in self._visible_choices(question)]
            picked = tuple(n for n in question.default.split() if n in names)
            if question.type in (QuestionType.SELECT_MULTIPLE, QuestionType.RANK):
                return picked or None
            return picked[0] if picked else None
        try:
            return self._parse(question, question.default)
        except InvalidAnswer:
            return None

    def _parse(self, question: Question, text: str) -> Any:
        kind = question.type
        if kind is QuestionType.TEXT:
            return text
        if kind is QuestionType.INTEGER:
            cleaned = _ungroup(text)
            if not re.fullmatch(r"[+-]?\d+", cleaned):
                raise InvalidAnswer(say("not_integer", self.ui))
            return int(cleaned)
        if kind is QuestionType.DECIMAL:
            return _parse_decimal(text, say("not_decimal", self.ui))
        if kind is QuestionType.DATE:
            return _parse_date(text, say("not_date", self.ui))
        if kind is QuestionType.TIME:
            return _parse_time(text, say("not_time", self.ui), self.event.at)
        if kind is QuestionType.DATETIME:
            return _parse_datetime(text, say("not_datetime", self.ui), self.event.at)
        if kind is QuestionType.GEOPOINT:
            return _parse_geopoint(text, self.ui)
        if kind.is_media:  # typed text is no file (a skip is an empty reply, handled before)
            raise InvalidAnswer(say(f"send_{kind.value}", self.ui))
        if kind is QuestionType.ACKNOWLEDGE:
            if _yes_no(text) == "yes" or fold(text) in ("ok", "x"):
                return "OK"
            raise InvalidAnswer(say("acknowledge_hint", self.ui))
        visible = self._visible_choices(question)
        if kind is QuestionType.SELECT_ONE:
            choice = self._match_choice(visible, text)
            if choice is None:
                raise InvalidAnswer(say("unknown_choice", self.ui, text=text))
            return choice.name
        whole = self._match_choice(visible, text)
        picked = [whole] if whole is not None else self._match_choices(visible, text)
        order = [c.name for c in question.choices]
        return tuple(sorted(dict.fromkeys(c.name for c in picked), key=order.index))

    def _match_choices(self, visible: list[Choice], text: str) -> list[Choice]:
        """Several choices: numbers or options' words separated by commas, semicolons, "và"/"and"
        or (between numbers and single words) spaces."""
        picked: list[Choice] = []
        for part in _LIST_SEPARATOR.split(text):
            part = part.strip()
            if not part:
                continue
            choice = self._match_choice(visible, part)
            if choice is not None:
                picked.append(choice)
                continue
            for token in part.split():
                choice = self._match_choice(visible, token)
                if choice is None:
                    raise InvalidAnswer(say("unknown_choice", self.ui, text=part))
                picked.append(choice)
        return picked

    def _match_choice(self, visible: list[Choice], text: str) -> Choice | None:
        """One choice: by the number shown beside it ("4", "4." or "4)"), by its label (accents and
        case optional), by its name (what a script types), or by words found in one label only."""
        number = _POSITION.fullmatch(text)
        if number is not None:
            # `\d` is any decimal digit: full-width "３" counts, "²" (which int() cannot read) does not.
            position = int(number.group(1))
            return visible[position - 1] if 1 <= position <= len(visible) else None
        folded = fold(text)
        labels = [fold(choice.label.get(self.lang, self.form.default_language)) for choice in visible]
        for choice, label in zip(visible, labels):
            if label == folded:
                return choice
        for choice in visible:
            if choice.name == text.strip():
                return choice
        if len(folded.replace(" ", "")) < 3:
            return None
        # Words of one label only ("một cửa" for "Trực tiếp tại bộ phận một cửa"), and never a
        # label that a word left out negates: "hài lòng" is not "Không hài lòng".
        words = set(folded.split())
        containing = [choice for choice, label in zip(visible, labels)
                      if f" {folded} " in f" {label} " and not (_NEGATIONS & set(label.split())) - words]
        return containing[0] if len(containing) == 1 else None

    def _validate(self, question: Question, value: Any) -> None:
        if value is None or value == ():
            if self._required(question):
                raise InvalidAnswer(question.required_message.get(self.lang, self.form.default_language)
                                    or say("required", self.ui))
            return
        if question.constraint is not None and not self._true(question.constraint, current=value):
            # The form's own message; else plain bounds said in words ("from 0 to 120"); else generic.
            raise InvalidAnswer(question.constraint_message.get(self.lang, self.form.default_language)
                                or (bounds_message(question, self.ui) if question.type in _NUMBERS else "")
                                or say("invalid", self.ui))

    def _still_valid(self, question: Question, value: Any) -> bool:
        """Whether an answer given earlier still satisfies its choice filter, constraint and `required`."""
        if question.type.is_select and question.choice_filter is not None and value:
            visible = {c.name for c in self._visible_choices(question)}
            if not set(value if isinstance(value, tuple) else (value,)) <= visible:
                return False
        try:
            self._validate(question, value)
        except InvalidAnswer:
            return False
        return True

    def _example(self, question: Question) -> str:
        """An answer a person could type for a number or date question, one that satisfies its
        constraint (tried on likely values and on the bounds the constraint names); "" if none."""
        kind = question.type
        if kind not in (QuestionType.INTEGER, QuestionType.DECIMAL, QuestionType.DATE):
            return ""
        source = question.constraint.source if question.constraint is not None else ""
        year = (self.state.started_at or self.event.at).year
        for value in example_candidates(kind, source, year):
            if question.constraint is None or self._true(question.constraint, current=value):
                return shown_example(value, self.ui)
        return ""


# -- parsing helpers -------------------------------------------------------------------------

def fold(text: str) -> str:
    """Lower case without Vietnamese accents, so `hai long` matches `Hài lòng`."""
    text = unicodedata.normalize("NFD", text.strip().casefold().replace("đ", "d"))
    text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    return re.sub(r"\s+", " ", text)


# Besides these, the consent options' own labels in every language (what consent_unclear asks for).
_YES_WORDS = {"yes", "y", "co", "dong y", "ok", "agree", "1"} | {fold(say("consent_yes", ui)) for ui in UI_LANGUAGES}
_NO_WORDS = {"no", "n", "khong", "khong dong y", "decline", "2"} | {fold(say("consent_no", ui)) for ui in UI_LANGUAGES}


#: A number as typed on a phone: "4", "4." or "4)" (full-width digits too).
_POSITION = re.compile(r"\s*(\d+)\s*[.)]?\s*")
#: Words that turn a label into its opposite (folded).
_NEGATIONS = {"khong", "chua", "chang", "not", "no", "never"}
#: Between several choices: a comma, a semicolon, or the word "và"/"and".
_LIST_SEPARATOR = re.compile(r"[,;]+|\s(?:và|va|and)\s", re.IGNORECASE)


def _yes_no(text: str) -> str | None:
    folded = fold(text).rstrip(".!)")
    if folded in _YES_WORDS:
        return "yes"
    if folded in _NO_WORDS:
        return "no"
    return None


_GROUPED = re.compile(r"[+-]?\d{1,3}(?: \d{3})+(?:[.,]\d*)?")


def _ungroup(text: str) -> str:
    """`1 000` → `1000`; any other space stays, so `1 2` is refused rather than read as 12."""
    return text.replace(" ", "") if _GROUPED.fullmatch(text) else text


def _parse_decimal(text: str, message: str) -> float:
    cleaned = _ungroup(text)
    if "," in cleaned and "." not in cleaned:
        cleaned = cleaned.replace(",", ".")  # Vietnamese writes 3,5
    if not re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", cleaned):
        raise InvalidAnswer(message)
    return float(cleaned)


def _parse_date(text: str, message: str) -> dt.date:
    parts = typed_date(text)
    try:
        if parts is not None:
            day, month, year = parts
            return dt.date(year, month, day)
    except ValueError:
        pass
    raise InvalidAnswer(message)


# Typed coordinates: "10.77, 106.70", "10.77 106.70", "10,77; 106,70" (decimal commas), and ODK's
# own "lat lon alt acc" (four numbers separated by spaces).
_NUMBER = r"[+-]?\d+(?:[.,]\d+)?"
# Possessive quantifiers (*+, ++): a long run of spaces is one pass, not one per space (4,000
# spaces took a second of the bot's time with plain ones).
_TYPED_POINT = re.compile(rf"\s*+({_NUMBER})(?:\s*+[,;]\s*+|\s++)({_NUMBER})\s*+")
_ODK_POINT = re.compile(r"\s*+([+-]?\d+(?:\.\d+)?)(?:\s++([+-]?\d+(?:\.\d+)?)){3}\s*+")


def geopoint(latitude: float, longitude: float, altitude: float | None, accuracy: float | None,
             out_of_range: str) -> str:
    """ODK's geopoint text, "latitude longitude altitude accuracy" (0 where not known)."""
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise InvalidAnswer(out_of_range)
    return " ".join(_number_text(n) for n in (latitude, longitude, altitude or 0, accuracy or 0))


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _parse_geopoint(text: str, ui: str) -> str:
    """Typed coordinates, or a map link holding them (see ``surveys.map_links``)."""
    out_of_range = say("geopoint_out_of_range", ui)
    odk = _ODK_POINT.fullmatch(text)
    if odk:
        numbers = [float(n) for n in text.split()]
        return geopoint(numbers[0], numbers[1], numbers[2], numbers[3], out_of_range)
    typed = _TYPED_POINT.fullmatch(text)
    if typed is not None:
        latitude, longitude = (float(n.replace(",", ".")) for n in typed.groups())
        return geopoint(latitude, longitude, None, None, out_of_range)
    link = map_link(text)
    if link is None:
        raise InvalidAnswer(say("not_geopoint", ui))
    if link.point is None:  # a short link: only opening it would tell where it points
        raise InvalidAnswer(say("map_link_without_point", ui))
    return geopoint(*link.point, None, None, out_of_range)


# A time as people type it: "14:30", "14h30", "14g", "2:30 chiều", "9 giờ 15", "9:05:30 am".
_TYPED_TIME = re.compile(r"(\d{1,2})(?:\s*(?::|h|g|gio)\s*(\d{1,2})?(?:\s*phut)?(?::(\d{2}))?)?"
                         r"\s*(am|pm|sang|trua|chieu|toi)?")
_AFTERNOON = {"pm", "chieu", "toi"}


def _clock_time(text: str) -> dt.time | None:
    typed = _TYPED_TIME.fullmatch(fold(text))
    if typed is None:
        return None
    hour, minute, second = (int(part) if part else 0 for part in typed.groups()[:3])
    half = typed.group(4)
    if half is not None and not 1 <= hour <= 12:
        return None
    if half in _AFTERNOON and hour < 12:
        hour += 12
    elif half in ("am", "sang") and hour == 12:
        hour = 0
    try:
        return dt.time(hour, minute, second)
    except ValueError:
        return None


def _odk_offset(at: dt.datetime) -> str:
    """ODK writes times with the device's offset; the chat's is the event's (Asia/Ho_Chi_Minh)."""
    offset = at.utcoffset() or dt.timedelta(0)
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _parse_time(text: str, message: str, at: dt.datetime) -> str:
    moment = _clock_time(text)
    if moment is None:
        raise InvalidAnswer(message)
    return f"{moment:%H:%M:%S}.000{_odk_offset(at)}"


def _parse_datetime(text: str, message: str, at: dt.datetime) -> str:
    """A date then a time ("02/03/2026 14:30", "2026-03-02T14:30"), stored as ODK's dateTime."""
    words = text.strip().replace("T", " ", 1).split() if re.match(r"\d{4}-\d\d-\d\dT", text.strip()) \
        else text.split()
    for cut in range(1, len(words)):
        parts = typed_date(" ".join(words[:cut]))
        moment = _clock_time(" ".join(words[cut:]))
        if parts is None or moment is None:
            continue
        day, month, year = parts
        try:
            date = dt.date(year, month, day)
        except ValueError:
            continue
        return f"{date.isoformat()}T{moment:%H:%M:%S}.000{_odk_offset(at)}"
    raise InvalidAnswer(message)
