"""The order a `randomize`d choice list is shown in: shuffled once per session, the same at every
step, on every channel and in a replay of the event log.

ODK's rules (the XForms spec's `randomize(nodeset[, seed])`, as JavaRosa and Enketo implement
it): the list is shuffled by the "inside-out" Fisher–Yates algorithm driven by a Park–Miller
(MINSTD) generator seeded with an integer. With `seed=${x}` the order is a function of that
value alone (a decimal is cut to its whole part, as JavaRosa does), so a form gives the same
order here as in ODK Collect for the same seed. Without a seed ODK draws a new order per form
instance; here the session's seed and the question's key (its instance inside a repeat) make
that draw, so the order never changes under the respondent's eyes. Pure functions: no clock,
no global random state.
"""

from __future__ import annotations

import hashlib
import math
from typing import Sequence, TypeVar

T = TypeVar("T")

_MODULUS = 2_147_483_647  # 2^31 - 1
_MULTIPLIER = 16_807


def shuffled(items: Sequence[T], seed: int) -> list[T]:
    """`items` shuffled as ODK's randomize(items, seed) does."""
    state = seed % _MODULUS
    if state <= 0:
        state += _MODULUS - 1
    result: list[T] = []
    for i, item in enumerate(items):
        state = state * _MULTIPLIER % _MODULUS
        j = math.floor((state - 1) / (_MODULUS - 1) * (i + 1))
        if j == i:
            result.append(item)
        else:
            result.append(result[j])
            result[j] = item
    return result


def session_draw(session_seed: str, key: str) -> int:
    """An integer seed for the question `key` of a session with `session_seed`: fixed for both."""
    digest = hashlib.sha256(f"{session_seed}\x1frandomize\x1f{key}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def seed_value(value: object) -> int | None:
    """A `seed=` expression's value as ODK reads it (a number, its whole part); None when it is
    not a number (empty, text), and the session's own draw is used instead."""
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(str(value).strip()) if not isinstance(value, (int, float)) else float(value)
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return int(number)
