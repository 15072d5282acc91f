"""The engine's flow through repeat groups: instances, "add another?", and answers read per instance.

A mixin placed before `surveys.engine._Conversation` for forms that have repeats
(`_RepeatConversation`); forms without repeats never reach this code, so their steps stay as fast
as before. Rules, decided here for every channel:

- A question inside a repeat is asked once per instance; its answer is kept under the instance's
  key (`household[2]/age`, see `surveys.repeats`), and `${name}` read inside the instance is that
  instance's answer; read from outside, it is a node-set of every instance's answer.
- A repeat with a `repeat_count` has as many instances as the count reads when the flow reaches
  it (worked out again at every step, so an answer changed later drops or adds instances).
  Without one, the first instance is asked, then "add another?" after each: yes adds one, no goes
  on after the repeat.
- Dropped instances' answers become NOT_APPLICABLE (storage keeps their history), as do those of
  a repeat that no longer applies.
- The walk goes through every instance in order, so going back crosses instance boundaries (an
  "add another?" answered is a step back too), and every later answer is checked again after a
  change, as outside repeats.
- Progress is the position of the question in the form, as outside repeats: every instance of a
  repeat shows the same share (the number of instances is not known in advance), and it moves on
  after the repeat.
"""

from __future__ import annotations

import math
from typing import Any, Iterator, Mapping

from surveys.engine_answers import _yes_no, fold
from surveys.expressions import NOT_APPLICABLE, Environment, ExpressionError, NodeSet, _read, _to_number
from surveys.messages import UI_LANGUAGES, say
from surveys.model import Choice, Question, QuestionType
from surveys.repeats import MAX_INSTANCES, MORE, Block, instance_key, instance_prefix, repeat_plan, split_key
from surveys.session import CONSENT, Ask, Choose, Event, Option, PromptKind, Reply, Say, SessionState, Status, \
    Step, Tone, _evolve, session_seed

#: A place of the walk: (question index or None for "add another?", enclosing repeats, instance
#: numbers, the repeat's path for "add another?").
_Slot = tuple[int | None, tuple[str, ...], tuple[int, ...], str]

_MORE_WORDS = {fold(say(f"add_another_{answer}", ui)): answer for ui in UI_LANGUAGES for answer in ("yes", "no")}


class _Scope(Mapping[str, Any]):
    """The answers as `${name}` reads them from inside the instances `numbers` of `repeats`."""

    def __init__(self, conversation: "_RepeatFlow", repeats: tuple[str, ...], numbers: tuple[int, ...]):
        self.conversation = conversation
        self.repeats = repeats
        self.numbers = numbers

    def get(self, name: str, default: Any = None) -> Any:
        conversation = self.conversation
        form, plan = conversation.form, conversation.repeat_plan
        if name in plan.repeat_names:  # the repeat itself: one node per instance, for count()
            chain = conversation._repeat_chain(name)
            fixed = self.numbers[:_common(chain, self.repeats)]
            return NodeSet(numbers[-1] for numbers in conversation._instances_of(chain, fixed))
        index = plan.resolve(form, name, self.repeats)
        if index is None:
            return conversation.answers.get(name, default)
        question = form.questions[index]
        common = _common(question.repeats, self.repeats)
        if common == len(question.repeats):
            return conversation.answers.get(instance_key(question, self.numbers[:common]), default)
        answers = conversation.answers
        return NodeSet(_read(answers.get(instance_key(question, numbers)))
                       for numbers in conversation._instances_of(question.repeats, self.numbers[:common]))

    def __getitem__(self, name: str) -> Any:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.conversation.answers)

    def __len__(self) -> int:
        return len(self.conversation.answers)

    def indexed(self, name: str, pairs: tuple[tuple[str, object], ...]) -> Any:
        """indexed-repeat(): the answer in the instances `pairs` names; the others as here, else the first."""
        conversation = self.conversation
        index = conversation.repeat_plan.resolve(conversation.form, name, self.repeats)
        if index is None:
            return None
        given = {repeat: number for repeat, number in pairs}
        numbers = []
        for level, repeat in enumerate(conversation.form.questions[index].repeats):
            if repeat in given:
                number = given[repeat]
                if not isinstance(number, (int, float)) or not math.isfinite(number) or number < 1:
                    return None
                numbers.append(int(number))
            elif level < len(self.repeats) and self.repeats[level] == repeat:
                numbers.append(self.numbers[level])
            else:
                numbers.append(1)
        return conversation.answers.get(instance_key(conversation.form.questions[index], tuple(numbers)))


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> int:
    count = 0
    while count < len(a) and count < len(b) and a[count] == b[count]:
        count += 1
    return count


class _RepeatFlow:
    """Overrides of the conversation's flow for a form with repeats (see the module docstring)."""

    def _init_repeats(self) -> None:
        self.repeat_plan = repeat_plan(self.form)
        self.instances: dict[str, int] = dict(self.state.instances)
        self.closed: set[str] = set(self.state.closed)
        #: The instance being looked at: enclosing repeats and their instance numbers.
        self.here_repeats: tuple[str, ...] = ()
        self.here: tuple[int, ...] = ()
        self.ordinal = -1
        if self.state.current and self.state.current != CONSENT:
            self._enter_key(self.state.current)

    def _enter(self, repeats: tuple[str, ...], numbers: tuple[int, ...]) -> None:
        self.here_repeats, self.here = repeats, numbers

    def _enter_key(self, key: str) -> str:
        repeats, numbers, last = split_key(key)
        self._enter(repeats, numbers)
        return last

    def _key(self, question: Question) -> str:
        return instance_key(question, self.here) if question.repeats else question.name

    def _current_question(self) -> Question:
        last = self._enter_key(self.state.current)
        return self.form.questions[self.repeat_plan.by_shape[(self.here_repeats, last)]]

    def _finish(self, state: SessionState) -> Step:
        return super()._finish(_evolve(state, instances=dict(self.instances), closed=tuple(sorted(self.closed))))

    # -- instances -----------------------------------------------------------------------------

    def _repeat_chain(self, name: str) -> tuple[str, ...]:
        group = self.form.groups[name]
        return tuple(g for g in group.parents if self.form.groups[g].repeat) + (name,)

    def _instances_of(self, repeats: tuple[str, ...], fixed: tuple[int, ...]) -> list[tuple[int, ...]]:
        """Instance numbers of every instance of `repeats` inside the instances `fixed` (a prefix)."""
        found = [fixed]
        for level in range(len(fixed), len(repeats)):
            found = [numbers + (number,) for numbers in found for number in
                     range(1, self.instances.get(instance_prefix(repeats, numbers) + repeats[level], 0) + 1)]
        return found

    def _resize(self, path: str, count: int) -> None:
        """Give the repeat at `path` `count` instances: the answers of those dropped become NOT_APPLICABLE."""
        old = self.instances.get(path, 0)
        for number in range(count + 1, old + 1):
            prefix = f"{path}[{number}]/"
            for key in [key for key, value in self.answers.items()
                        if key.startswith(prefix) and value is not NOT_APPLICABLE]:
                self._set(key, NOT_APPLICABLE)
            for inner in [inner for inner in self.instances if inner.startswith(prefix)]:
                del self.instances[inner]
            self.closed = {closed for closed in self.closed if not closed.startswith(prefix)}
        self.instances[path] = count

    def _count(self, name: str) -> int:
        try:
            number = _to_number(self.form.groups[name].repeat_count.evaluate(self._environment()))
        except ExpressionError:
            return 0
        if isinstance(number, float) and not math.isfinite(number):
            return 0
        return max(0, min(MAX_INSTANCES, int(number)))

    def _repeat_applies(self, name: str) -> bool:
        group = self.form.groups[name]
        for outer in group.parents + (name,):
            relevant = self.form.groups[outer].relevant
            if relevant is not None and not self._true(relevant):
                return False
        return True

    # -- evaluation ----------------------------------------------------------------------------

    def _environment(self, current: Any = None, choice: Choice | None = None) -> Environment:
        at, started = self.event.at, self.state.started_at
        scope = _Scope(self, self.here_repeats, self.here)
        return Environment(
            values=scope, current=current, today=(started or at).date(), now=at, choice_label=self._choice_label,
            choice_row={"name": choice.name, **choice.columns} if choice else None, seed=session_seed(self.state),
            position=self.here[-1] if self.here else 1, indexed=scope.indexed, preloads=self.state.preloads)

    def _relevant_at(self, index: int) -> bool:
        plan = self.plan
        return all(self._true(plan.conditions[condition_id]) for condition_id in plan.condition_ids[index])

    def _memo_key(self, owner: Any, reads: tuple[str, ...]) -> tuple | None:
        return None  # a value depends on the instance as well as on the answers it names

    def _recalculate(self) -> None:
        """Every reached calculation and relevance, in every instance, brought up to date."""
        plan, questions, answers = self.plan, self.form.questions, self.answers
        recalculated, eager = set(plan.recalculated), set(plan.eager_calculations)
        for _ in range(4):  # calculations may read later ones: a few passes, until nothing changes
            before = self._sets
            for index, repeats, numbers, _path in self._slots():
                if index is None or index not in recalculated:
                    continue
                question = questions[index]
                self._enter(repeats, numbers)
                key = self._key(question)
                calculation = question.type is QuestionType.CALCULATE
                if key not in answers and not (calculation and index in eager):
                    continue
                if not self._relevant_at(index):
                    self._set(key, NOT_APPLICABLE)
                elif calculation:
                    self._set(key, self._calculate(question))
            if self._sets == before:
                break

    # -- moving --------------------------------------------------------------------------------

    def _advance(self, start: int) -> Step:
        """Walk the whole form, instance by instance, to the first place to ask, or to the end."""
        self._recalculate()
        self.ordinal = -1
        closing: list[int] = []
        asked = self._walk(self.repeat_plan.root, (), (), "", closing)
        if asked is not None:
            return asked
        self._enter((), ())
        return self._complete(closing)

    def _walk(self, block: Block, repeats: tuple[str, ...], numbers: tuple[int, ...], prefix: str,
              closing: list[int]) -> Step | None:
        for item in block.items:
            if isinstance(item, int):
                self.ordinal += 1
                self._enter(repeats, numbers)
                asked = self._visit(item, self.ordinal, closing)
            else:
                asked = self._walk_repeat(item, repeats, numbers, prefix, closing)
            if asked is not None:
                return asked
        return None

    def _walk_repeat(self, block: Block, repeats: tuple[str, ...], numbers: tuple[int, ...], prefix: str,
                     closing: list[int]) -> Step | None:
        name = block.name
        path, inner = prefix + name, repeats + (name,)
        self._enter(repeats, numbers)
        counted = self.form.groups[name].repeat_count is not None
        if not self._repeat_applies(name):
            self._resize(path, 0)
            return None
        if counted:
            self._resize(path, self._count(name))
        elif not self.instances.get(path):
            self._resize(path, 1)  # a repeat without a count: its first instance is asked straight away
        number = 1
        while number <= self.instances[path]:
            self._instance_calculations(block, inner, numbers + (number,))
            asked = self._walk(block, inner, numbers + (number,), f"{path}[{number}]/", closing)
            if asked is not None:
                return asked
            if not counted:
                self.ordinal += 1
                if number == self.instances[path] and path not in self.closed:
                    return self._ask_more(inner, numbers + (number,))
            number += 1
        return None

    def _instance_calculations(self, block: Block, repeats: tuple[str, ...], numbers: tuple[int, ...]) -> None:
        """Work out an instance's own calculations on entering it, wherever they stand in the repeat:
        a label often shows `position(..)` calculated below it (in ODK every calculation is current)."""
        self._enter(repeats, numbers)
        for item in block.items:
            if isinstance(item, int) and self.form.questions[item].type is QuestionType.CALCULATE \
                    and self._relevant_at(item):
                question = self.form.questions[item]
                self._set(self._key(question), self._calculate(question))

    def _ask_more(self, repeats: tuple[str, ...], numbers: tuple[int, ...]) -> Step:
        self._enter(repeats, numbers)
        key = f"{instance_prefix(repeats, numbers)}{MORE}"
        self.state = _evolve(self.state, current=key, seq=self.state.seq + 1,
                             furthest=max(self.state.furthest, self.ordinal), draft=())
        self.out.append(self.render())
        return self._finish(self.state)

    def _slots(self) -> list[_Slot]:
        """Every place of the walk over the instances as they stand, in order (no count worked out)."""
        found: list[_Slot] = []

        def walk(block: Block, repeats: tuple[str, ...], numbers: tuple[int, ...], prefix: str) -> None:
            for item in block.items:
                if isinstance(item, int):
                    found.append((item, repeats, numbers, ""))
                    continue
                path, inner = prefix + item.name, repeats + (item.name,)
                counted = self.form.groups[item.name].repeat_count is not None
                for number in range(1, self.instances.get(path, 0) + 1):
                    walk(item, inner, numbers + (number,), f"{path}[{number}]/")
                    if not counted:
                        found.append((None, inner, numbers + (number,), path))

        walk(self.repeat_plan.root, (), (), "")
        return found

    def _slot_key(self, slot: _Slot) -> str:
        index, repeats, numbers, _path = slot
        if index is None:
            return f"{instance_prefix(repeats, numbers)}{MORE}"
        return instance_key(self.form.questions[index], numbers)

    def _previous(self, relevance: bool) -> _Slot | None:
        """The place before the one on screen that the respondent answered (and that still applies)."""
        saved = (self.here_repeats, self.here)
        slots = self._slots()
        keys = [self._slot_key(slot) for slot in slots]
        here = keys.index(self.state.current) if self.state.current in keys else len(slots)
        try:
            for position in range(here - 1, -1, -1):
                index, repeats, numbers, _path = slots[position]
                if index is None:
                    return slots[position]
                question = self.form.questions[index]
                if not question.type.is_asked or self.answers.get(keys[position], NOT_APPLICABLE) is NOT_APPLICABLE:
                    continue
                self._enter(repeats, numbers)
                if not relevance or self._relevant_at(index):
                    return slots[position]
            return None
        finally:
            self._enter(*saved)

    def _back(self) -> Step:
        if self.state.status is Status.PAUSED:
            self.state = _evolve(self.state, status=Status.ACTIVE)
        slot = self._previous(relevance=True)
        if slot is None:
            return self._unchanged(Say(say("cannot_go_back", self.ui), Tone.ERROR), self.render(update=True))
        key = self._slot_key(slot)
        value = self.answers.get(key)
        multiple = slot[0] is not None and self.form.questions[slot[0]].type is QuestionType.SELECT_MULTIPLE
        self.state = _evolve(self.state, current=key, seq=self.state.seq + 1,
                             draft=value if multiple and value else ())
        self.out.append(self.render())
        return self._finish(self.state)

    # -- "add another?" ------------------------------------------------------------------------

    def _more_place(self) -> tuple[str, int, str] | None:
        """(repeat path, instance number, repeat name) when "add another?" is on screen."""
        current = self.state.current
        if not current or not current.endswith("/" + MORE):
            return None
        repeats, numbers, _ = split_key(current)
        return instance_prefix(repeats[:-1], numbers[:-1]) + repeats[-1], numbers[-1], repeats[-1]

    def _answer(self, event: Event) -> Step:
        place = self._more_place()
        if place is None:
            return super()._answer(event)
        path, number, _name = place
        if self.state.status is Status.PAUSED:
            self.state = _evolve(self.state, status=Status.ACTIVE)
        answer = None
        if isinstance(event, Choose):
            answer = event.key if event.key in ("yes", "no") else None
        elif isinstance(event, Reply):
            answer = _yes_no(event.text) or _MORE_WORDS.get(fold(event.text))
        if answer is None:
            words = {"yes": say("add_another_yes", self.ui), "no": say("add_another_no", self.ui)}
            return self._unchanged(Say(say("add_another_unclear", self.ui, **words), Tone.ERROR),
                                   self.render(update=True))
        if answer == "yes" and number < MAX_INSTANCES:
            self.closed.discard(path)
            if self.instances.get(path, 0) <= number:
                self.instances[path] = number + 1
        else:  # "no", or as many instances as a repeat may have
            self._resize(path, number)
            self.closed.add(path)
        return self._advance(0)

    # -- rendering -----------------------------------------------------------------------------

    def render(self, update: bool = False) -> Ask:
        place = self._more_place()
        if place is None:
            return super().render(update)
        path, number, name = place
        self._enter_key(self.state.current)
        label = self.form.groups[name].label.get(self.lang, self.form.default_language) or name
        options = (Option("yes", 1, "yes", say("add_another_yes", self.ui)),
                   Option("no", 2, "no", say("add_another_no", self.ui)))
        given = "yes" if self.instances.get(path, 0) > number else "no" if path in self.closed else ""
        return Ask(self.state.seq, PromptKind.SELECT_ONE, self.state.current,
                   say("add_another", self.ui, label=label, count=number), options=options,
                   progress=self.plan.progress(self.repeat_plan.blocks[name].first_question(), self.ui),
                   required=True, can_go_back=True, update=update,
                   current_answer=say(f"add_another_{given}", self.ui) if given else "")

    def _display(self, name: str, value: Any) -> str:
        if value.__class__ is NodeSet:
            return ", ".join(shown for shown in (super(_RepeatFlow, self)._display(name, node) for node in value)
                             if shown)
        return super()._display(name, value)

    def _has_previous(self, question: Question) -> bool:
        return self._previous(relevance=False) is not None

    def _section(self, question: Question) -> str:
        """The group heading when this question opens a group or an instance (`Member (2)`)."""
        if not question.groups:
            return ""
        previous = self._previous(relevance=False)
        if previous is not None and previous[0] is not None and previous[2] == self.here \
                and self.form.questions[previous[0]].groups == question.groups:
            return ""
        labels = []
        for group_name in question.groups:
            group = self.form.groups[group_name]
            label = group.label.get(self.lang, self.form.default_language)
            if group.repeat and group_name in self.here_repeats:
                label = f"{label or group_name} ({self.here[self.here_repeats.index(group_name)]})"
            labels.append(label)
        return " › ".join(label for label in labels if label)
