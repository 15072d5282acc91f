"""Repeat groups: how an instance's answers are keyed, and a form's repeats as nested blocks.

An answer inside a repeat is stored under its question's name prefixed by the instance path,
`household[2]/age`, or nested, `household[2]/visit[1]/date` (numbers from 1, as XPath counts):
the answers table keys answers by text, so no schema change is needed, and one session's answers
stay one set of rows. The path of a repeat itself (`household`, `household[2]/visit`) keys its
number of instances in `SessionState.instances`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from surveys.model import Question, Questionnaire

#: Last part of the key of the "add another?" prompt shown after an instance: `household[2]/__more__`.
MORE = "__more__"
#: At most this many instances of one repeat (a count read from an answer is capped here).
MAX_INSTANCES = 100

_STEP = re.compile(r"([^/\[\]]+)\[(\d+)\]/")


def instance_prefix(repeats: tuple[str, ...], numbers: tuple[int, ...]) -> str:
    return "".join(f"{name}[{number}]/" for name, number in zip(repeats, numbers))


def instance_key(question: Question, numbers: tuple[int, ...]) -> str:
    """The key of the question's answer in the instances `numbers` (outermost first)."""
    if not question.repeats:
        return question.name
    return instance_prefix(question.repeats, numbers) + bare_name(question)


def bare_name(question: Question) -> str:
    """The name as written in the form (the loader writes `repeat/name` when a name is used twice)."""
    return question.name.rsplit("/", 1)[-1]


def split_key(key: str) -> tuple[tuple[str, ...], tuple[int, ...], str]:
    """`household[2]/visit[1]/date` → (("household", "visit"), (2, 1), "date")."""
    repeats: list[str] = []
    numbers: list[int] = []
    position = 0
    while (step := _STEP.match(key, position)) is not None:
        repeats.append(step.group(1))
        numbers.append(int(step.group(2)))
        position = step.end()
    return tuple(repeats), tuple(numbers), key[position:]


@dataclass(frozen=True)
class Block:
    """A repeat (or, with `name` None, the whole form): question indexes and inner repeats in form order."""

    name: str | None
    items: tuple["int | Block", ...]

    def first_question(self) -> int:
        item = self.items[0]
        return item if isinstance(item, int) else item.first_question()


class RepeatPlan:
    """What the engine looks up about a form's repeats, worked out once per form."""

    def __init__(self, form: Questionnaire):
        self.root = _blocks(form)
        self.blocks: dict[str, Block] = {}
        pending = [self.root]
        while pending:
            block = pending.pop()
            for item in block.items:
                if isinstance(item, Block):
                    self.blocks[item.name] = item
                    pending.append(item)
        #: (enclosing repeats, name as written) → question index: how a key finds its question.
        self.by_shape: dict[tuple[tuple[str, ...], str], int] = {
            (question.repeats, bare_name(question)): index for index, question in enumerate(form.questions)}
        #: Name as written → indexes of the questions of that name (a name may be used in and out of a repeat).
        self.by_name: dict[str, list[int]] = {}
        for index, question in enumerate(form.questions):
            self.by_name.setdefault(bare_name(question), []).append(index)
            if question.name != bare_name(question):
                self.by_name.setdefault(question.name, []).append(index)
        self.repeat_names = frozenset(self.blocks)

    def resolve(self, form: Questionnaire, name: str, context: tuple[str, ...]) -> int | None:
        """The question `${name}` means where the repeats `context` are open: the one nearest in."""
        found = self.by_name.get(name)
        if not found:
            return None
        if len(found) == 1:
            return found[0]
        best, depth = found[0], -1
        for index in found:
            repeats = form.questions[index].repeats
            if repeats == context[:len(repeats)] and len(repeats) > depth:
                best, depth = index, len(repeats)
        return best


def repeat_plan(form: Questionnaire) -> RepeatPlan:
    return form.derived(RepeatPlan, RepeatPlan)


def _blocks(form: Questionnaire) -> Block:
    """The questions nested by their repeats (a repeat's questions are consecutive in form order)."""
    stack: list[tuple[str | None, list]] = [(None, [])]
    for index, question in enumerate(form.questions):
        open_ = tuple(name for name, _ in stack[1:])
        common = 0
        while common < min(len(open_), len(question.repeats)) and open_[common] == question.repeats[common]:
            common += 1
        while len(stack) - 1 > common:
            name, items = stack.pop()
            stack[-1][1].append(Block(name, tuple(items)))
        for name in question.repeats[common:]:
            stack.append((name, []))
        stack[-1][1].append(index)
    while len(stack) > 1:
        name, items = stack.pop()
        stack[-1][1].append(Block(name, tuple(items)))
    return Block(None, tuple(stack[0][1]))


def describe(form: Questionnaire) -> str:
    """The form's repeats as `form check` lists them: `member (×${hh_size}), crop ("add another?")`."""
    parts = []
    for group in form.groups.values():
        if group.repeat:
            how = f"×{group.repeat_count.source}" if group.repeat_count is not None else '"add another?"'
            inside = [g for g in group.parents if form.groups[g].repeat]
            parts.append(f"{group.name} ({how}{', inside ' + inside[-1] if inside else ''})")
    return ", ".join(parts)
