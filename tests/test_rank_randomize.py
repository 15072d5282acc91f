"""The session's seed (random(), uuid(), shuffled choices), `randomize`d choice lists and `rank`
questions asked as successive choices, in the engine: one rule for every channel."""

from __future__ import annotations

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


# -- randomize -------------------------------------------------------------------------------

SHUFFLED = """
| survey |
| | type | name | label | parameters | required |
| | integer | x | Số? | | |
| | select_one kenh | one | Chọn một | randomize=true | yes |
| | select_multiple kenh or_other | many | Chọn nhiều | randomize=true | |
| | select_one kenh | fixed | Theo số | randomize=true seed=${x} | |

| choices |
| | list_name | name | label |
| | kenh | web | Cổng |
| | kenh | app | Ứng dụng |
| | kenh | zalo | Zalo |
| | kenh | desk | Một cửa |
| | kenh | phone | Điện thoại |
| | kenh | mail | Thư |

| settings |
| | form_id | version |
| | shuffled | 1 |
"""


def names(prompt) -> list[str]:
    return [o.name for o in prompt.options]


def at_one(seed: str, x: str = "7"):
    form = form_of(SHUFFLED)
    state, steps = run(form, E.Start(AT, seed=seed), E.Choose("yes", 1, AT), E.Reply(x, AT))
    return form, state, steps[-1].say[-1]


def test_the_odk_shuffle_is_a_permutation_fixed_by_its_seed() -> None:
    from surveys.choice_order import seed_value, shuffled
    items = list("abcdefgh")
    assert sorted(shuffled(items, 42)) == items and shuffled(items, 42) == shuffled(items, 42)
    assert len({tuple(shuffled(items, seed)) for seed in range(1, 30)}) > 20
    assert shuffled(items, 0) == shuffled(items, 2_147_483_646)  # Park-Miller's zero rule
    assert seed_value("12.9") == 12 and seed_value(3.7) == 3 and seed_value("") is None and seed_value("x") is None


def test_a_shuffled_list_keeps_its_order_for_the_session_and_numbers_follow_it() -> None:
    form, state, prompt = at_one("s1")
    assert prompt.kind is E.PromptKind.SELECT_ONE and sorted(names(prompt)) == sorted(
        ["web", "app", "zalo", "desk", "phone", "mail"])
    assert [o.number for o in prompt.options] == [1, 2, 3, 4, 5, 6]
    # re-rendered, after an error, after a back step and on the way forward again: the same order
    assert names(E.current_prompt(form, state)) == names(prompt)
    refused = E.step(form, state, E.Reply("9", AT))
    assert not refused.accepted and names(refused.say[-1]) == names(prompt)
    back = E.step(form, state, E.Back(AT)).state
    forward = E.step(form, back, E.Reply("7", AT))
    assert names(forward.say[-1]) == names(prompt)
    # the number typed is the place shown; the answer stored is the choice's name
    step = E.step(form, state, E.Reply("2", AT))
    assert step.changes["one"] == names(prompt)[1]
    # another session draws another order (the seed decides, not the form)
    orders = {tuple(names(at_one(f"seed-{n}")[2])) for n in range(8)}
    assert len(orders) > 1


def test_or_other_stays_last_and_a_ticked_answer_is_stored_by_name() -> None:
    form, state, prompt = at_one("s2")
    step = E.step(form, state, E.Reply("1", AT))
    many = step.say[-1]
    assert many.question == "many" and names(many)[-1] == "other"
    for n in range(5):  # whatever the shuffle, "other" is last
        form_n, state_n, _ = at_one(f"o{n}")
        assert names(E.step(form_n, state_n, E.Reply("1", AT)).say[-1])[-1] == "other"
    assert "other" not in names(E.current_prompt(form, state))  # only the question with or_other has it
    done = E.step(form, step.state, E.Reply("1 3", AT))
    assert set(done.changes["many"]) == {names(many)[0], names(many)[2]}


def test_a_seed_expression_makes_the_order_a_function_of_its_value() -> None:
    from surveys.choice_order import shuffled

    def fixed_order(session_seed: str, x: str) -> list[str]:
        form, state, _ = at_one(session_seed, x)
        for reply in ("1", ""):
            state = E.step(form, state, E.Reply(reply, AT)).state
        assert state.current == "fixed"
        return names(E.current_prompt(form, state))

    assert fixed_order("a", "7") == fixed_order("b", "7")  # other sessions, the same seed value: same order
    assert fixed_order("a", "7") == [c.name for c in shuffled(form_of(SHUFFLED).question("fixed").choices, 7)]
    assert fixed_order("a", "7") != fixed_order("a", "8")


# -- randomised module order (README "Questionnaires") ----------------------------------------

MODULES = """
| survey |
| | type | name | label | calculation | relevant |
| | calculate | draw | | once(random()) | |
| | calculate | b_first | | if(${draw} < 0.5, 1, 0) | |
| | begin group | b_early | | | ${b_first} = 1 |
| | integer | b1_early | Mô-đun B? | | |
| | end group | | | | |
| | integer | a1 | Mô-đun A? | | |
| | begin group | b_late | | | ${b_first} = 0 |
| | integer | b1_late | Mô-đun B? | | |
| | end group | | | | |
| | calculate | b1 | | coalesce(${b1_early}, ${b1_late}) | |

| settings |
| | form_id | version |
| | modules | 1 |
"""


def asked_order(seed: str) -> list[str]:
    form = form_of(MODULES)
    state, steps = run(form, E.Start(AT, seed=seed), E.Choose("yes", 1, AT), E.Reply("1", AT), E.Reply("2", AT))
    assert state.status is E.Status.COMPLETED and state.answers["b1"] == (1 if state.answers["b_first"] == 1 else 2)
    return [s.say[-1].question for s in steps[1:3]]


def test_module_order_randomised_by_a_calculate_is_fixed_by_the_seed() -> None:
    assert asked_order("m1") == asked_order("m1")
    orders = {tuple(asked_order(f"m{n}")) for n in range(12)}
    assert orders == {("b1_early", "a1"), ("a1", "b1_late")}


# -- rank ------------------------------------------------------------------------------------

RANKED = """
| survey |
| | type | name | label | required | constraint |
| | integer | n | Số? | | |
| | rank aspects | order | Xếp hạng | yes | |
| | rank aspects | optional | Xếp hạng (tùy chọn) | | |
| | integer | last | Cuối? | | |

| choices |
| | list_name | name | label |
| | aspects | a | Thủ tục |
| | aspects | b | Thời gian |
| | aspects | c | Thái độ |

| settings |
| | form_id | version |
| | ranked | 1 |
"""


def at_rank():
    form = form_of(RANKED)
    state, steps = run(form, E.Start(AT, seed="r"), E.Choose("yes", 1, AT), E.Reply("5", AT))
    return form, state, steps[-1].say[-1]


def test_a_rank_is_asked_as_successive_picks_among_those_left() -> None:
    form, state, prompt = at_rank()
    assert prompt.kind is E.PromptKind.RANK and prompt.expected == "lựa chọn thứ 1 của quý vị?"
    assert [(o.number, o.name) for o in prompt.options] == [(1, "a"), (2, "b"), (3, "c")]
    picked = E.step(form, state, E.Choose("2", prompt.seq, AT))
    assert picked.accepted and picked.changes == {} and picked.state.draft == ("b",)
    second = picked.say[-1]
    assert second.seq == prompt.seq + 1 and second.expected == "đã xếp: 1. Thời gian; lựa chọn thứ 2 của quý vị?"
    assert [(o.number, o.name) for o in second.options] == [(1, "a"), (3, "c")] and second.can_go_back
    done = E.step(form, picked.state, E.Reply("3", AT))  # the last one left is ranked by itself
    assert done.changes["order"] == ("b", "c", "a") and done.state.current == "optional"
    assert done.state.draft == ()


def test_the_whole_order_can_be_typed_at_once_by_number_or_label() -> None:
    form, state, _ = at_rank()
    assert E.step(form, state, E.Reply("3 1 2", AT)).changes["order"] == ("c", "a", "b")
    assert E.step(form, state, E.Reply("3, 1", AT)).changes["order"] == ("c", "a", "b")
    assert E.step(form, state, E.Reply("thái độ, thủ tục", AT)).changes["order"] == ("c", "a", "b")


@pytest.mark.parametrize("typed, message", [
    ("3 3 1", "chỉ xếp một lần"), ("4", "Chưa nhận ra câu trả lời “4”"), ("xyz", "Chưa nhận ra"),
    ("3 1 9", "Chưa nhận ra câu trả lời “3 1 9”"),
])
def test_a_bad_order_is_refused_politely_and_changes_nothing(typed: str, message: str) -> None:
    form, state, _ = at_rank()
    picked = E.step(form, state, E.Reply("2", AT)).state
    for before in (state, picked):
        step = E.step(form, before, E.Reply(typed, AT))
        assert not step.accepted and step.state == before and step.changes == {}
        assert step.say[0].tone is E.Tone.ERROR and message in step.say[0].text
    again = E.step(form, picked, E.Reply("2", AT))  # ranked already
    assert not again.accepted and again.state == picked and "đã được xếp rồi" in again.say[0].text


def test_a_stale_or_repeated_press_changes_nothing() -> None:
    form, state, prompt = at_rank()
    picked = E.step(form, state, E.Choose("2", prompt.seq, AT)).state
    stale = E.step(form, picked, E.Choose("1", prompt.seq, AT))  # a button of the first prompt
    assert not stale.accepted and stale.state == picked and stale.say[0].tone is E.Tone.STALE
    repeated = E.step(form, picked, E.Choose("2", picked.seq, AT))  # the same pick, delivered twice
    assert not repeated.accepted and repeated.state == picked and repeated.say[0].tone is E.Tone.STALE
    unknown = E.step(form, picked, E.Choose("9", picked.seq, AT))
    assert not unknown.accepted and unknown.state == picked


def test_back_takes_back_picks_one_by_one_then_leaves_the_question() -> None:
    form, state, prompt = at_rank()
    state = E.step(form, state, E.Reply("2", AT)).state
    state = E.step(form, state, E.Reply("1", AT)).state  # two picks of three: the third is last by itself
    assert state.current == "optional" and state.answers["order"] == ("b", "a", "c")
    state = E.step(form, state, E.Reply("3", AT)).state
    assert state.draft == ("c",)
    undone = E.step(form, state, E.Back(AT))
    assert undone.state.draft == () and undone.state.current == "optional"
    assert "Đã bỏ lựa chọn thứ 1 (“Thái độ”)" in undone.say[0].text and undone.say[-1].seq == undone.state.seq
    left = E.step(form, undone.state, E.Back(AT)).state  # no picks left: back to the rank before
    assert left.current == "order" and left.draft == ()
    shown = E.current_prompt(form, left)
    assert shown.current_answer == "1. Thời gian, 2. Thủ tục, 3. Thái độ" and len(shown.options) == 3
    kept = E.step(form, left, E.Reply("", AT))  # an empty reply keeps the ranking given before
    assert kept.state.current == "optional" and kept.state.answers["order"] == ("b", "a", "c")
    again = E.step(form, E.step(form, left, E.Reply("1", AT)).state, E.Back(AT)).state
    assert again.current == "order" and again.draft == ()
    back_out = E.step(form, again, E.Back(AT)).state
    assert back_out.current == "n"


def test_an_optional_rank_may_stop_early_a_required_one_may_not() -> None:
    form, state, prompt = at_rank()
    refused = E.step(form, E.step(form, state, E.Reply("2", AT)).state, E.Done(prompt.seq + 1, AT))
    assert not refused.accepted and "Xin xếp hạng hết" in refused.say[0].text
    state = E.step(form, state, E.Reply("2 1", AT)).state
    optional = E.current_prompt(form, state)
    assert not optional.required
    one = E.step(form, state, E.Reply("3", AT)).state
    stopped = E.step(form, one, E.Done(one.seq, AT))
    assert stopped.changes == {"optional": ("c",)} and stopped.state.current == "last"
    skipped = E.step(form, state, E.Reply("", AT))
    assert skipped.changes == {"optional": None} and skipped.state.current == "last"


def test_a_rank_is_stored_and_read_back_as_the_names_in_rank_order() -> None:
    form, state, _ = at_rank()
    state = E.step(form, state, E.Reply("3 1 2", AT)).state
    assert codec.decode_value(codec.encode_value(state.answers["order"])) == ("c", "a", "b")
    decoded = codec.decode_state(codec.encode_state(E.step(form, state, E.Reply("2", AT)).state))
    assert decoded.draft == ("b",)


def test_rank_questions_load_without_warnings_and_the_type_is_rank() -> None:
    form = form_of(RANKED)
    assert form.question("order").type.value == "rank" and form.unaskable == ()
    assert not [w for w in form.warnings if "rank" in w]


def test_a_rank_written_on_paper_is_entered_pick_by_pick() -> None:
    from pathlib import Path

    from fieldwork.paper_entry import check, normalise
    from surveys.xlsform import load_questionnaire

    form = load_questionnaire(Path(__file__).parent / "forms" / "ranking.md")
    typed = {"priorities": "3 1 4", "channel": "3", "channels_rank": "2", "age": "40"}
    assert check(form, typed, AT).complete
    refused = check(form, {**typed, "priorities": "3 1 9"}, AT)
    assert not refused.complete and "“9”" in refused.errors["priorities"]
    assert normalise(form.question("priorities"), "3, 1 4") == "3 1 4"  # the order is the answer


def test_a_rank_inside_a_repeat_is_ranked_per_instance() -> None:
    form = form_of("""
    | survey |
    | | type | name | label | repeat_count | parameters |
    | | begin repeat | hh | Hộ | 2 | |
    | | rank x | r | Xếp | | randomize=true |
    | | end repeat | | | | |
    | | integer | n | N | | |

    | choices |
    | | list_name | name | label |
    | | x | a | A |
    | | x | b | B |
    | | x | c | C |
    """)
    state, steps = run(form, E.Start(AT, seed="q"), E.Choose("yes", 1, AT))
    first = [o.name for o in steps[-1].say[-1].options]
    state, steps = run(form, E.Reply("1", AT), E.Back(AT), E.Reply("1 2", AT), state=state)
    assert steps[0].state.draft == (first[0],) and steps[1].state.draft == ()
    assert state.answers["hh[1]/r"] == tuple(first) and state.current == "hh[2]/r"
    state, _ = run(form, E.Reply("3 2", AT), state=state)
    assert len(state.answers["hh[2]/r"]) == 3 and state.current == "n"
