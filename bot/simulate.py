"""Simulated respondents, for the demo and for load tests: they answer what they are asked.

They read prompts as a person would (the options on screen) and use the questionnaire only
to pick typed answers that pass its constraints, as a person who read the hint would.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass

from surveys.engine import Ask, PromptKind
from surveys.expressions import Environment, ExpressionError
from surveys.model import Questionnaire

_SUGGESTIONS = (
    "Cần rút ngắn thời gian giải quyết hồ sơ.",
    "Nên có thêm chỗ ngồi chờ và nước uống.",
    "Cán bộ nhiệt tình, hướng dẫn rõ ràng.",
    "Mong dịch vụ công trực tuyến ổn định hơn.",
    "Không có ý kiến thêm.",
)
_NUMBER_POOLS = (range(0, 11), range(0, 46), range(18, 81), range(1935, 2009), range(1, 1000))


@dataclass(frozen=True)
class Behaviour:
    refuse_consent: float = 0.04
    go_back: float = 0.04
    pause: float = 0.015
    skip_optional: float = 0.4


class SimulatedRespondent:
    def __init__(self, form: Questionnaire, rng: random.Random, behaviour: Behaviour = Behaviour(),
                 today: dt.date | None = None):
        self.form = form
        self.rng = rng
        self.behaviour = behaviour
        self.today = today or dt.date.today()
        self.attempts: dict[tuple[int, str], int] = {}
        self._valid_numbers: dict[str, list[int]] = {}

    def reply(self, ask: Ask | None) -> str | None:
        """The next line to type, or None to walk away (the session pauses)."""
        if ask is None:
            return None
        rng, behaviour = self.rng, self.behaviour
        if ask.kind is PromptKind.CONSENT:
            return "no" if rng.random() < behaviour.refuse_consent else "yes"
        attempt = self.attempts.get((ask.seq, ask.question), 0)
        self.attempts[(ask.seq, ask.question)] = attempt + 1
        if attempt == 0 and rng.random() < behaviour.pause:
            return None
        if attempt == 0 and ask.can_go_back and rng.random() < behaviour.go_back:
            return "<"
        if not ask.required and ask.kind is not PromptKind.ACKNOWLEDGE and rng.random() < behaviour.skip_optional:
            return ""
        return self._answer(ask, attempt)

    def _answer(self, ask: Ask, attempt: int) -> str:
        rng = self.rng
        kind = ask.kind
        if kind is PromptKind.SELECT_ONE:
            return rng.choice(ask.options).name
        if kind is PromptKind.SELECT_MULTIPLE:
            count = rng.randint(1, min(3, len(ask.options)))
            return " ".join(o.name for o in rng.sample(ask.options, count))
        if kind is PromptKind.ACKNOWLEDGE:
            return "OK"
        if kind is PromptKind.TEXT:
            return rng.choice(_SUGGESTIONS)
        if kind is PromptKind.DATE:
            day = self.today - dt.timedelta(days=rng.randint(0, 365))
            return day.strftime("%d/%m/%Y") if rng.random() < 0.5 else day.isoformat()
        if ask.question not in self._valid_numbers:
            self._valid_numbers[ask.question] = [n for pool in _NUMBER_POOLS for n in pool
                                                 if self._passes(ask.question, n)]
        candidates = self._valid_numbers[ask.question]
        value = rng.choice(candidates) if candidates and attempt < 5 else rng.randint(0, 100)
        if kind is PromptKind.DECIMAL and rng.random() < 0.5:
            return f"{value},5"
        return str(value)

    def _passes(self, question_name: str, value: int) -> bool:
        constraint = self.form.question(question_name).constraint
        if constraint is None:
            return True
        try:
            return constraint.evaluate_bool(Environment(current=value, today=self.today))
        except ExpressionError:
            return False
