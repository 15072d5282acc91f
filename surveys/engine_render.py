"""The engine's rendering: the prompt on screen as an `Ask`, with its texts in the session's language.

A mixin of `surveys.engine._Conversation`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from surveys.expressions import NOT_APPLICABLE, interpolate, to_string
from surveys.messages import say
from surveys.model import LABEL_MEDIA_KINDS, LabelMedia, Question, QuestionType
from surveys.session import CONSENT, Ask, Option, PromptKind


class _Rendering:
    # -- rendering ---------------------------------------------------------------------------

    def _choice_label(self, question_name: str, choice_name: str) -> str:
        if not self.form.has(question_name):
            return choice_name
        choice = self.form.question(question_name).choice_by_name(choice_name)
        return choice.label.get(self.lang, self.form.default_language) if choice else choice_name

    def _display(self, name: str, value: Any) -> str:
        """A value as a person reads it: choice labels rather than choice names."""
        if value is None or value is NOT_APPLICABLE:
            return ""
        if self.form.has(name):
            question = self.form.question(name)
            if question.type.is_select:
                names = value if isinstance(value, tuple) else (value,)
                if question.type is QuestionType.RANK:  # "1. Thủ tục, 2. Thái độ"
                    return ", ".join(f"{i}. {self._choice_label(name, n)}" for i, n in enumerate(names, start=1))
                return ", ".join(self._choice_label(name, n) for n in names)
            if question.type is QuestionType.DATE and isinstance(value, dt.date):
                return value.strftime("%d/%m/%Y")
        return to_string(value)

    def _label(self, question: Question) -> str:
        text = self.plan.view(self.form, self.form.index(question.name), self.lang).label
        return interpolate(text, self._environment(), self._display)

    def render(self, update: bool = False) -> Ask:
        state = self.state
        if state.current == CONSENT:
            options = (Option("yes", 1, "yes", say("consent_yes", self.ui)),
                       Option("no", 2, "no", say("consent_no", self.ui)))
            return Ask(state.seq, PromptKind.CONSENT, CONSENT,
                       say("consent", self.ui, title=self.form.title), options=options, update=update)
        question = self._current_question()
        view = self.plan.view(self.form, self.form.index(question.name), self.lang)
        if not question.type.is_select:
            options = ()
        elif question.type is QuestionType.RANK:
            options = self._rank_options(question)  # surveys.engine_rank
        elif view.options is not None:  # no choice filter: every choice, numbered in order
            options = view.options
            if state.draft:
                marks = set(state.draft)
                options = tuple(Option(o.key, o.number, o.name, o.label, True) if o.name in marks else o
                                for o in options)
        else:
            marks = set(state.draft)
            options = tuple(
                Option(c.key, number, c.name, c.label.get(self.lang, self.form.default_language), c.name in marks)
                for number, c in enumerate(self._visible_choices(question), start=1))
        required = self._required(question)
        hint = view.hint
        if hint:
            hint = interpolate(hint, self._environment(), self._display)
        value = self.answers.get(state.current)
        return Ask(
            seq=state.seq,
            kind=view.kind if view.kind is not None else PromptKind(question.type.value),
            question=state.current,
            text=interpolate(view.label, self._environment(), self._display),
            hint=hint,
            options=options,
            progress=self._progress(question),
            section="" if update or (state.draft and question.type is QuestionType.RANK) else self._section(question),
            required=required,
            can_go_back=bool(state.draft and question.type is QuestionType.RANK) or self._has_previous(question),
            current_answer=self._display(question.name, value),
            update=update,
            expected=self._expected(question),
            media=self._media(question),
        )

    def _media(self, question: Question) -> tuple[LabelMedia, ...]:
        """The label's media in the session's language, else the form's default language."""
        if not question.media:
            return ()
        form = self.form
        found = []
        for kind in LABEL_MEDIA_KINDS:
            files = question.media.get(kind)
            name = files.get(self.lang, form.default_language) if files else ""
            if name:
                found.append(LabelMedia(kind, name, form.form_id, form.version))
        return tuple(found)

    def _expected(self, question: Question) -> str:
        if question.type is QuestionType.RANK:
            return self._rank_expected()
        if question.type is QuestionType.GEOPOINT:
            return say("geopoint_expected", self.ui)
        if question.type is QuestionType.TIME:
            return say("time_expected", self.ui)
        if question.type.is_media:
            return say(f"{question.type.value}_expected", self.ui) + (f" ({question.accept})" if question.accept else "")
        if question.type is QuestionType.DATETIME:
            return say("datetime_expected", self.ui)
        if question.type is not QuestionType.DATE:
            return ""
        example = self._example(question)
        return say("date_expected", self.ui, example=example) if example else say("date_pattern", self.ui)

    def _progress(self, question: Question) -> str:
        return self.plan.progress(self.form.index(question.name), self.ui)

    def _section(self, question: Question) -> str:
        """The group heading, when this question is the first asked in its group."""
        if not question.groups:
            return ""
        here = self.form.index(question.name)
        questions = self.form.questions
        for index in range(here - 1, -1, -1):
            previous = questions[index]
            if previous.type.is_asked and self.answers.get(previous.name, NOT_APPLICABLE) is not NOT_APPLICABLE:
                if previous.groups == question.groups:
                    return ""
                break
        labels = [self.form.groups[g].label.get(self.lang, self.form.default_language) for g in question.groups]
        return " › ".join(label for label in labels if label)

    def _has_previous(self, question: Question) -> bool:
        questions, answers = self.form.questions, self.answers
        for index in range(self.form.index(question.name)):
            previous = questions[index]
            if previous.type.is_asked and answers.get(previous.name, NOT_APPLICABLE) is not NOT_APPLICABLE:
                return True
        return False
