"""Repeat groups (household rosters) on paper: how many blocks are printed, which typed fields
exist, and how the typed blocks become the engine's instances.

A repeat is printed as one block per instance, nested repeats inside their parent's block. Its
number of blocks:

- a count that is a number (``repeat_count`` = 3): that many blocks, each an instance — an empty
  one is an instance left blank, as a chat respondent who skips its questions;
- a count read from an answer (``${hh_size}``) or no count ("add another?"): blank blocks, as many
  as the count's question allows when its constraint has an upper bound (``. <= 8``: 8 blocks, at
  most ``MAX_PRINTED_BLOCKS``), else ``Blocks.top`` (5) for a repeat at the top level and
  ``Blocks.nested`` (3) inside another (``khaosat paper print --blocks/--nested-blocks``).

What is typed is keyed as a chat session stores it: ``member[2]/age``, ``member[2]/visit[1]/cost``.
A block with nothing typed in it is not an instance: an open repeat gets as many instances as its
blocks typed in a row ("add another?" is answered yes while the next block has something), and a
repeat counted from an answer must have exactly that many blocks typed (``fieldwork.paper_entry``
names the repeat and the block otherwise).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping

from surveys.model import Question, Questionnaire
from surveys.repeats import MAX_INSTANCES, MORE, Block, instance_key, instance_prefix, repeat_plan, split_key

#: At most this many blank blocks are printed for a count bounded by its question's constraint.
MAX_PRINTED_BLOCKS = 12


@dataclass(frozen=True)
class Blocks:
    """Blank blocks printed for a repeat whose number of instances is not known in advance."""

    top: int = 5
    nested: int = 3


def literal_count(form: Questionnaire, name: str) -> int | None:
    """The repeat's count when it is a number written in the form (``repeat_count`` = 3)."""
    count = form.groups[name].repeat_count
    source = count.source.strip() if count is not None else ""
    return min(MAX_INSTANCES, int(source)) if source.isdigit() else None


def counted_from_answers(form: Questionnaire, name: str) -> bool:
    """Whether the repeat's count is worked out from answers (so the blocks typed must agree with it)."""
    return form.groups[name].repeat_count is not None and literal_count(form, name) is None


def _upper_bound(form: Questionnaire, name: str) -> int | None:
    """``${q}`` as count, where q's constraint says ``. <= N`` (or ``. < N``): N (N - 1)."""
    count = form.groups[name].repeat_count
    found = re.fullmatch(r"\s*\$\{(\w+)\}\s*", count.source) if count is not None else None
    if found is None or not form.has(found.group(1)):
        return None
    constraint = form.question(found.group(1)).constraint
    if constraint is None:
        return None
    bounds = [int(n) - (op == "<") for op, n in re.findall(r"\.\s*(<=?)\s*(\d+)", constraint.source)]
    return min(bounds) if bounds else None


def printed_blocks(form: Questionnaire, name: str, blocks: Blocks = Blocks()) -> int:
    """How many blocks the repeat ``name`` has on paper, in each of its parent's blocks."""
    literal = literal_count(form, name)
    if literal is not None:
        return literal
    bound = _upper_bound(form, name)
    if bound is not None and bound > 0:
        return min(bound, MAX_PRINTED_BLOCKS)
    nested = any(form.groups[g].repeat for g in form.groups[name].parents)
    return max(1, blocks.nested if nested else blocks.top)


def question_at(form: Questionnaire, key: str) -> Question | None:
    """The question a key names (``member[2]/age`` → age), or None (``__more__``, an unknown key)."""
    if form.has(key) and not form.question(key).repeats:
        return form.question(key)
    if not form.has_repeats:
        return None
    repeats, numbers, last = split_key(key)
    index = repeat_plan(form).by_shape.get((repeats, last))
    if index is None or any(n < 1 for n in numbers):
        return None
    return form.questions[index]


def typed_fields(form: Questionnaire, *typed: Mapping[str, str]) -> list[tuple[str, Question]]:
    """(key, question) of every field to store or compare: each top-level question, and each field
    of the blocks printed or typed (in any of the ``typed`` entries), in the order the form asks them."""
    if not form.has_repeats:
        return [(q.name, q) for q in form.asked]
    merged: dict[str, str] = {}
    for entry in typed:
        merged.update((key, value) for key, value in entry.items() if (value or "").strip())
    return [(item.key, item.question) for item in entry_layout(form, merged) if isinstance(item, Field)]


def filled_blocks(typed: Mapping[str, str]) -> set[str]:
    """Paths of the blocks with something typed in them: ``member[2]``, ``member[2]/visit[1]``."""
    found = set()
    for key, value in typed.items():
        if not (value or "").strip():
            continue
        repeats, numbers, _ = split_key(key)
        for level in range(1, len(repeats) + 1):
            found.add(instance_prefix(repeats[:level], numbers[:level])[:-1])
    return found


def block_path(repeats: tuple[str, ...], numbers: tuple[int, ...]) -> str:
    """``member[2]/visit[1]``: the path of an instance (its key prefix without the last slash)."""
    return instance_prefix(repeats, numbers)[:-1]


def more_answer(key: str, typed: Mapping[str, str]) -> str:
    """"add another?" after the instance ``key`` names (``crop[2]/__more__``): yes when the next block
    has something typed."""
    repeats, numbers, _ = split_key(key)
    following = f"{block_path(repeats, numbers[:-1] + (numbers[-1] + 1,))}/"
    return "yes" if any(k.startswith(following) and (v or "").strip() for k, v in typed.items()) else "no"


def is_more(key: str | None) -> bool:
    return bool(key) and key.endswith("/" + MORE)


def empty_counted_block(form: Questionnaire, key: str, typed: Mapping[str, str]) -> tuple[str, str, int] | None:
    """When the engine asks ``key`` inside a block of a repeat counted from answers that has nothing
    typed: (its path, the repeat, the number); else None."""
    repeats, numbers, _ = split_key(key)
    filled = filled_blocks(typed)
    for level in range(1, len(repeats) + 1):
        path = block_path(repeats[:level], numbers[:level])
        if counted_from_answers(form, repeats[level - 1]) and path not in filled:
            return path, repeats[level - 1], numbers[level - 1]
    return None


def blocks_beyond(instances: Mapping[str, int], typed: Mapping[str, str]) -> list[tuple[str, str, int, int]]:
    """Blocks typed that are not instances of the session the engine made: (path, repeat, number,
    the repeat's number of instances there), outermost first."""
    beyond: list[tuple[str, str, int, int]] = []
    for path in sorted(filled_blocks(typed), key=lambda p: (p.count("/"), split_key(p + "/")[1])):
        repeats, numbers, _ = split_key(path + "/")
        repeat_path = instance_prefix(repeats[:-1], numbers[:-1]) + repeats[-1]
        if any(path.startswith(named + "/") for named, *_ in beyond):
            continue  # a block around it is named already
        have = instances.get(repeat_path, 0)
        if numbers[-1] > have:
            beyond.append((path, repeats[-1], numbers[-1], have))
    return beyond


# -- the entry screen's layout -------------------------------------------------------------------

@dataclass(frozen=True)
class Field:
    key: str
    question: Question
    depth: int


@dataclass(frozen=True)
class Opening:
    """A block begins: ``path`` ``member[2]``, its repeat, its number, how deep it is nested."""

    path: str
    repeat: str
    number: int
    depth: int
    first: bool


@dataclass(frozen=True)
class Closing:
    """A block ends; ``last``: the last block of its repeat there (``repeat_path``: ``member[2]/visit``)."""

    path: str
    depth: int
    last: bool
    repeat_path: str


def entry_layout(form: Questionnaire, typed: Mapping[str, str] = {}, instances: Mapping[str, int] = {},
                 at_least: Mapping[str, int] = {}, blocks: Blocks = Blocks()) -> list[Field | Opening | Closing]:
    """The fields to type, in form order, blocks opened and closed around a repeat's fields: for each
    repeat as many blocks as were printed, or as typed, or as the count worked out from what is
    typed (``instances``), or as asked for on the screen (``at_least``: repeat path → blocks)."""
    out: list[Field | Opening | Closing] = []
    highest: dict[str, int] = {}
    for path in filled_blocks(typed):
        repeats, numbers, _ = split_key(path + "/")
        where = instance_prefix(repeats[:-1], numbers[:-1]) + repeats[-1]
        highest[where] = max(highest.get(where, 0), numbers[-1])

    def walk(block: Block, repeats: tuple[str, ...], numbers: tuple[int, ...]) -> None:
        for item in block.items:
            if isinstance(item, int):
                question = form.questions[item]
                if question.type.is_asked:
                    out.append(Field(instance_key(question, numbers), question, len(repeats)))
                continue
            where = instance_prefix(repeats, numbers) + item.name
            literal = literal_count(form, item.name)
            count = literal if literal is not None else min(MAX_INSTANCES, max(
                printed_blocks(form, item.name, blocks), highest.get(where, 0), instances.get(where, 0),
                at_least.get(where, 0)))
            for number in range(1, count + 1):
                inner = repeats + (item.name,), numbers + (number,)
                path = block_path(*inner)
                out.append(Opening(path, item.name, number, len(repeats), number == 1))
                walk(item, *inner)
                out.append(Closing(path, len(repeats), number == count, where))

    walk(repeat_plan(form).root, (), ())
    return out


def position_names(form: Questionnaire, repeats: tuple[str, ...]) -> tuple[str, ...]:
    """The calculations of an instance that are its number (``position(..)``), for labels: ``${pos}``."""
    return tuple(q.name for q in form.questions if q.repeats and q.repeats == repeats and q.calculation is not None
                 and q.calculation.source.replace(" ", "") in ("position(..)", "position()"))


def fill_label(words: str, phraser, positions: Mapping[str, int] = {}) -> str:
    """A label as paper shows it: ``${name}`` → the block's number for an instance's position,
    else “(câu 5)” (the question whose answer the chat would show)."""
    if "${" not in words:
        return words

    def shown(name: str) -> str:
        return str(positions[name]) if name in positions else f"({phraser.question(name) or '…'})"

    return re.sub(r"\$\{([^{}]*)\}", lambda m: shown(m.group(1)), words)
