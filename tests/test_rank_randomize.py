"""The session's seed (random(), uuid(), shuffled choices), `randomize`d choice lists and `rank`
questions asked as successive choices, in the engine: one rule for every channel."""

from __future__ import annotations

import dataclasses
import datetime as dt
import textwrap

import pytest

from surveys import codec
from surveys import engine as E
from surveys.session import session_seed
from surveys.xlsform import load_questionnaire_bytes

AT = dt.datetime(2026, 3, 2, 9, tzinfo=dt.timezone(dt.timedelta(hours=7)))

SEEDED = """
| survey |
| | type | name | label | calculation |
| | calculate | draw | | random() |
| | calculate | code | | uuid(8) |
| | integer | n | Bao nhiêu? | |

| settings |
| | form_id | version |
| | seeded | 1 |
"""


def form_of(text: str):
    return load_questionnaire_bytes(textwrap.dedent(text).strip().encode(), "f.md")


def run(form, *events, state=None):
    state = state or E.new_session(form)
    steps = []
    for event in events:
        steps.append(E.step(form, state, event))
        state = steps[-1].state
    return state, steps


def test_the_seed_comes_with_start_and_random_values_derive_from_it() -> None:
    form = form_of(SEEDED)
    one, _ = run(form, E.Start(AT, seed="abc"), E.Choose("yes", 1, AT))
    again, _ = run(form, E.Start(AT + dt.timedelta(hours=1), seed="abc"), E.Choose("yes", 1, AT))
    other, _ = run(form, E.Start(AT, seed="xyz"), E.Choose("yes", 1, AT))
    assert one.seed == "abc" and session_seed(one) == "abc"
    assert 0 <= one.answers["draw"] < 1 and len(one.answers["code"]) == 8
    # The seed, not the time, decides: the same seed at another hour draws the same values.
    assert (one.answers["draw"], one.answers["code"]) == (again.answers["draw"], again.answers["code"])
    assert one.answers["draw"] != other.answers["draw"]
    # A later Start (a second /start, an update delivered twice) keeps the seed and the values.
    later, _ = run(form, E.Start(AT, seed="new"), E.Reply("3", AT), state=one)
    assert later.seed == "abc" and later.answers["draw"] == one.answers["draw"]


def test_a_replayed_event_log_draws_the_same_values() -> None:
    form = form_of(SEEDED)
    events = [E.Start(AT, seed="f00d"), E.Choose("yes", 1, AT), E.Reply("4", AT)]
    logged = [codec.decode_event(codec.encode_event(e)) for e in events]
    assert logged == events
    assert run(form, *logged)[0] == run(form, *events)[0]


def test_a_session_stored_before_seeds_keeps_its_random_values() -> None:
    form = form_of(SEEDED)
    state, _ = run(form, E.Start(AT), E.Choose("yes", 1, AT))  # no seed, as before
    assert state.seed == "" and session_seed(state) == str(state.started_at)
    text = codec.encode_state(state)
    assert '"seed"' not in text  # stored as it always was
    old = text  # the text a session stored before seeds has
    decoded = codec.decode_state(old)
    assert decoded.seed == "" and codec.decode_state(codec.encode_state(decoded)) == decoded
    resumed = E.step(form, decoded, E.Reply("2", AT)).state
    assert resumed.answers["draw"] == state.answers["draw"] and resumed.answers["code"] == state.answers["code"]


def test_the_seed_is_stored_with_the_session() -> None:
    form = form_of(SEEDED)
    state, _ = run(form, E.Start(AT, seed="5eed"), E.Choose("yes", 1, AT))
    decoded = codec.decode_state(codec.encode_state(state))
    assert decoded.seed == "5eed" and codec.as_decoded(state) == decoded
