"""Repeat groups in the conversation engine: instances, "add another?", functions over instances,
going back across instances and changing a count later (issue 17)."""

from __future__ import annotations

from surveys import codec
from surveys import engine as E
from surveys.engine import Status, Tone
from surveys.expressions import NOT_APPLICABLE
from surveys.repeats import instance_key, split_key
from tests.test_engine import Chat

HEADER = "| | type | name | label::Tiếng Việt (vi) | label::English (en) | repeat_count | relevant | calculation | constraint |"


def form_text(*rows: str) -> str:
    return "| survey |\n" + HEADER + "\n" + "\n".join(f"| | {row} |" for row in rows) + "\n"


ROSTER = form_text(
    "integer | n | Hộ có mấy người? | How many people? | | | | . >= 0 and . <= 9",
    "begin repeat | member | Thành viên | Member | ${n} | | |",
    "calculate | pos | | | | | position(..) |",
    "text | name | Tên người thứ ${pos}? | Name of person ${pos}? | | | |",
    "integer | age | Tuổi của ${name}? | Age of ${name}? | | | | . < 120",
    "text | job | Nghề của ${name}? | Job of ${name}? | | ${age} >= 15 | |",
    "end repeat | | | | | | |",
    "calculate | people | | | | | count(${name}) |",
    "calculate | total | | | | | sum(${age}) |",
    "calculate | oldest | | | | | max(${age}) |",
    "calculate | youngest | | | | | min(${age}) |",
    "calculate | names | | | | | join(', ', ${name}) |",
    "calculate | second | | | | | indexed-repeat(${name}, ${member}, 2) |",
    "calculate | instances | | | | | count(${member}) |",
    "note | bye | Cảm ơn ${names} | Thanks ${names} | | | |",
)


def start(markdown_form, text: str, language: str = "vi") -> Chat:
    chat = Chat(markdown_form(text), language)
    chat.begin()
    return chat


def answer_roster(chat: Chat, people: list[tuple[str, str, str | None]]) -> None:
    chat.reply(str(len(people)))
    for name, age, job in people:
        chat.reply(name)
        chat.reply(age)
        if job is not None:
            chat.reply(job)


def test_a_count_from_an_earlier_answer_asks_each_instance_and_keys_answers_by_instance(markdown_form):
    chat = start(markdown_form, ROSTER)
    chat.reply("2")
    assert chat.state.current == "member[1]/name"
    assert chat.ask.text == "Tên người thứ 1?"
    assert chat.ask.section == "Thành viên (1)"
    chat.reply("An")
    assert chat.ask.text == "Tuổi của An?" and chat.ask.section == ""
    chat.reply("40")
    assert chat.state.current == "member[1]/job"
    chat.reply("Nông dân")
    assert chat.state.current == "member[2]/name"
    assert chat.ask.text == "Tên người thứ 2?" and chat.ask.section == "Thành viên (2)"
    chat.reply("Bình")
    chat.reply("8")  # under 15: no job question in this instance
    assert chat.state.status is Status.COMPLETED
    answers = chat.state.answers
    assert answers["member[1]/name"] == "An" and answers["member[2]/name"] == "Bình"
    assert answers["member[1]/age"] == 40 and answers["member[2]/age"] == 8
    assert answers["member[1]/job"] == "Nông dân" and answers["member[2]/job"] is NOT_APPLICABLE
    assert answers["member[1]/pos"] == 1 and answers["member[2]/pos"] == 2
    assert chat.state.instances == {"member": 2}
    assert "Cảm ơn An, Bình" in chat.said(Tone.THANKS)[0]


def test_functions_over_the_instances(markdown_form):
    chat = start(markdown_form, ROSTER)
    answer_roster(chat, [("An", "40", "Thợ"), ("Bình", "8", None), ("Chi", "17", "Học sinh")])
    answers = chat.state.answers
    assert answers["people"] == 3 and answers["instances"] == 3
    assert answers["total"] == 65
    assert answers["oldest"] == 40 and answers["youngest"] == 8
    assert answers["names"] == "An, Bình, Chi"
    assert answers["second"] == "Bình"


def test_a_count_of_zero_skips_the_repeat(markdown_form):
    chat = start(markdown_form, ROSTER)
    chat.reply("0")
    assert chat.state.status is Status.COMPLETED
    assert chat.state.answers["people"] == 0 and chat.state.answers["total"] == 0
    assert not any("[" in key for key in chat.state.answers)


def test_going_back_crosses_instance_boundaries_and_out_of_the_repeat(markdown_form):
    chat = start(markdown_form, ROSTER)
    chat.reply("2")
    chat.reply("An")
    chat.reply("40")
    chat.reply("Thợ")
    assert chat.state.current == "member[2]/name"
    chat.back()
    assert chat.state.current == "member[1]/job" and chat.ask.current_answer == "Thợ"
    chat.back()
    chat.back()
    assert chat.state.current == "member[1]/name" and chat.ask.current_answer == "An"
    chat.back()
    assert chat.state.current == "n" and chat.ask.current_answer == "2"
    chat.reply("")  # keeps 2
    assert chat.state.current == "member[2]/name"  # the flow goes on where it was


def test_changing_the_count_later_drops_or_adds_instances(markdown_form):
    chat = start(markdown_form, ROSTER)
    chat.reply("2")
    for text in ("An", "40", "Thợ", "Bình"):
        chat.reply(text)
    assert chat.state.current == "member[2]/age"
    for _ in range(5):
        chat.back()
    assert chat.state.current == "n"
    step = chat.reply("1")
    assert step.changes["member[2]/name"] is NOT_APPLICABLE
    assert chat.state.instances == {"member": 1}
    assert chat.state.status is Status.COMPLETED
    assert chat.state.answers["people"] == 1 and chat.state.answers["names"] == "An"


def test_raising_the_count_asks_the_new_instances_only(markdown_form):
    chat = start(markdown_form, ROSTER)
    chat.reply("1")
    chat.reply("An")
    chat.reply("40")
    for _ in range(3):
        chat.back()
    assert chat.state.current == "n"
    chat.reply("2")
    # instance 1 is still valid except its job, which was never answered
    assert chat.state.current == "member[1]/job"
    chat.reply("Thợ")
    assert chat.state.current == "member[2]/name"
    chat.reply("Bình")
    chat.reply("5")
    assert chat.state.status is Status.COMPLETED
    assert chat.state.instances == {"member": 2}


OPEN = form_text(
    "begin repeat | child | Con | Child | | | |",
    "text | cname | Tên con? | Child's name? | | | |",
    "integer | cage | Tuổi? | Age? | | | | . < 30",
    "end repeat | | | | | | |",
    "calculate | kids | | | | | count(${child}) |",
    "text | after | Ghi chú? | Remarks? | | | |",
)


def test_an_open_repeat_asks_add_another_after_each_instance(markdown_form):
    chat = start(markdown_form, OPEN)
    assert chat.state.current == "child[1]/cname"
    chat.reply("Hoa")
    chat.reply("3")
    assert chat.state.current == "child[1]/__more__"
    assert chat.ask.kind is E.PromptKind.SELECT_ONE
    assert chat.ask.text == "Quý vị có muốn thêm một “Con” nữa không? (đã có 1)"
    assert [o.key for o in chat.ask.options] == ["yes", "no"]
    chat.choose("yes")
    assert chat.state.current == "child[2]/cname"
    chat.reply("Lan")
    chat.reply("5")
    chat.reply("không")  # typed no
    assert chat.state.current == "after"
    assert chat.state.answers["kids"] == 2 and chat.state.closed == ("child",)
    chat.reply("ok")
    assert chat.state.status is Status.COMPLETED


def test_add_another_in_english_and_an_unclear_reply(markdown_form):
    chat = start(markdown_form, OPEN, "en")
    chat.reply("Hoa")
    chat.reply("3")
    assert chat.ask.text == "Do you want to add another “Child”? (1 so far)"
    before = chat.state
    chat.reply("perhaps")
    assert chat.result.accepted is False and chat.state == before
    assert "Yes, add one" in chat.error()
    chat.reply("No, go on")
    assert chat.state.current == "after"


def test_back_to_add_another_and_changing_it_adds_or_drops_instances(markdown_form):
    chat = start(markdown_form, OPEN)
    chat.reply("Hoa")
    chat.reply("3")
    chat.choose("yes")
    chat.reply("Lan")
    chat.reply("5")
    chat.choose("no")
    assert chat.state.current == "after"
    chat.back()
    assert chat.state.current == "child[2]/__more__"
    assert chat.ask.current_answer == "Không, tiếp tục"
    chat.back()
    chat.back()
    chat.back()
    assert chat.state.current == "child[1]/__more__" and chat.ask.current_answer == "Có, thêm"
    step = chat.choose("no")  # drops the second child
    assert step.changes == {"child[2]/cname": NOT_APPLICABLE, "child[2]/cage": NOT_APPLICABLE, "kids": 1}
    assert chat.state.current == "after" and chat.state.instances == {"child": 1}
    chat.back()
    assert chat.state.current == "child[1]/__more__"
    chat.choose("yes")  # and adds one again, asked afresh
    assert chat.state.current == "child[2]/cname" and chat.ask.current_answer == ""


def test_back_from_the_first_question_of_an_instance_goes_to_add_another(markdown_form):
    chat = start(markdown_form, OPEN)
    chat.reply("Hoa")
    chat.reply("3")
    chat.choose("yes")
    chat.back()
    assert chat.state.current == "child[1]/__more__"
    chat.back()
    assert chat.state.current == "child[1]/cage"


NESTED = form_text(
    "begin repeat | hh | Hộ | Household | 2 | | |",
    "text | head | Chủ hộ? | Head? | | | |",
    "begin repeat | visit | Lần thăm | Visit | | | |",
    "integer | cost | Chi phí lần ${vpos} của hộ ${head}? | Cost of visit ${vpos} for ${head}? | | | |",
    "calculate | vpos | | | | | position(..) |",  # below the label that shows it: worked out on entry
    "end repeat | | | | | | |",
    "calculate | hh_cost | | | | | sum(${cost}) |",
    "end repeat | | | | | | |",
    "calculate | all_cost | | | | | sum(${hh_cost}) |",
    "calculate | first_visit_2 | | | | | indexed-repeat(${cost}, ${hh}, 2, ${visit}, 1) |",
)


def test_nested_repeats_keep_answers_per_instance_and_sum_per_household(markdown_form):
    chat = start(markdown_form, NESTED)
    chat.reply("Ánh")
    assert chat.state.current == "hh[1]/visit[1]/cost"
    chat.reply("10")
    chat.choose("yes")
    assert chat.state.current == "hh[1]/visit[2]/cost"
    chat.reply("20")
    chat.choose("no")
    assert chat.state.current == "hh[2]/head" and chat.ask.section == "Hộ (2)"
    chat.reply("Bảo")
    assert chat.ask.section == "Hộ (2) › Lần thăm (1)"
    assert chat.ask.text == "Chi phí lần 1 của hộ Bảo?"
    chat.reply("5")
    assert chat.state.current == "hh[2]/visit[1]/__more__"
    chat.back()
    assert chat.state.current == "hh[2]/visit[1]/cost" and chat.ask.current_answer == "5"
    chat.back()  # across the nested boundary: to the outer instance's question
    assert chat.state.current == "hh[2]/head"
    chat.reply("")
    assert chat.state.current == "hh[2]/visit[1]/__more__"
    chat.back()
    chat.reply("7")
    assert chat.state.current == "hh[2]/visit[1]/__more__"
    chat.reply("2")
    assert chat.state.status is Status.COMPLETED
    answers = chat.state.answers
    assert answers["hh[1]/visit[2]/cost"] == 20 and answers["hh[2]/visit[1]/cost"] == 7
    assert answers["hh[1]/hh_cost"] == 30 and answers["hh[2]/hh_cost"] == 7
    assert answers["all_cost"] == 37 and answers["first_visit_2"] == 7
    assert chat.state.instances == {"hh": 2, "hh[1]/visit": 2, "hh[2]/visit": 1}


def test_the_state_with_instances_survives_the_codec_and_old_states_decode():
    state = E.SessionState("f", "1", "vi", instances={"hh": 2, "hh[1]/visit": 1}, closed=("hh[1]/visit",))
    assert codec.decode_state(codec.encode_state(state)) == state
    plain = E.SessionState("f", "1", "vi")
    assert "instances" not in codec.encode_state(plain)


def test_instance_keys_split_back():
    assert split_key("hh[2]/visit[10]/cost") == (("hh", "visit"), (2, 10), "cost")
    assert split_key("age") == ((), (), "age")


def test_a_name_used_in_and_out_of_a_repeat_keeps_apart(markdown_form):
    form = markdown_form(form_text(
        "integer | age | Tuổi quý vị? | Your age? | | | |",
        "begin repeat | member | Thành viên | Member | 1 | | |",
        "integer | age | Tuổi thành viên? | Member's age? | | | |",
        "end repeat | | | | | | |",
    ))
    inner = form.question("member/age")
    assert instance_key(inner, (1,)) == "member[1]/age"
    chat = Chat(form)
    chat.begin()
    chat.reply("50")
    assert chat.state.current == "member[1]/age"
    chat.reply("20")
    assert chat.state.status is Status.COMPLETED
    assert chat.state.answers["age"] == 50 and chat.state.answers["member[1]/age"] == 20


def test_add_another_survives_pause_resume_language_and_stale_presses(markdown_form):
    chat = start(markdown_form, OPEN)
    chat.reply("Hoa")
    chat.reply("3")
    seq = chat.state.seq
    chat.stop()
    assert chat.state.status is Status.PAUSED
    chat.resume()
    assert chat.state.current == "child[1]/__more__" and chat.ask.text.startswith("Quý vị có muốn thêm")
    chat.language("en")
    assert chat.ask.text == "Do you want to add another “Child”? (1 so far)"
    assert [o.label for o in chat.ask.options] == ["Yes, add one", "No, go on"]
    prompt = E.current_prompt(chat.form, chat.state)
    assert prompt.question == "child[1]/__more__" and prompt.can_go_back
    before = chat.state
    chat.choose("yes", seq=seq)  # a button of an older prompt
    assert chat.result.accepted is False and chat.state == before
    chat.reply("2")  # typed number of the second button
    assert chat.state.current == "after"


GUARDED = form_text(
    "select_one yn | has_kids | Có con không? | Any children? | | | |",
    "begin repeat | kid | Con | Child | 2 | ${has_kids} = 'yes' | |",
    "integer | born | Năm sinh? | Year born? | | | | . > 1990",
    "integer | school | Năm đi học? | Year at school? | | | | . >= ${born} + 5",
    "select_one yn | twin | Sinh đôi? | A twin? | | | |",
    "end repeat | | | | | | |",
) + """
| choices |
| | list_name | name | label |
| | yn | yes | Có |
| | yn | no | Không |
"""


def test_a_repeat_that_does_not_apply_has_no_instances_and_a_constraint_reads_its_instance(markdown_form):
    chat = start(markdown_form, GUARDED)
    chat.reply("Không")
    assert chat.state.status is Status.COMPLETED
    assert chat.state.instances == {"kid": 0}
    chat = start(markdown_form, GUARDED)
    chat.reply("Có")
    chat.reply("2010")
    before = chat.state
    chat.reply("2012")  # before born + 5 of this child
    assert chat.result.accepted is False and chat.state == before
    chat.reply("2016")
    chat.reply("Không")
    assert chat.state.current == "kid[2]/born"
    chat.reply("2020")
    chat.reply("2025")
    chat.reply("Có")
    assert chat.state.status is Status.COMPLETED
    # the repeat stops applying: every instance's answers become not applicable
    chat2 = start(markdown_form, GUARDED)
    chat2.reply("Có")
    chat2.reply("2010")
    chat2.back()
    chat2.back()
    assert chat2.state.current == "has_kids"
    step = chat2.reply("Không")
    assert step.changes == {"has_kids": "no", "kid[1]/born": NOT_APPLICABLE} and chat2.state.instances == {"kid": 0}
    assert chat2.state.status is Status.COMPLETED


def test_a_form_without_repeats_keeps_its_state_text():
    # instances and closed are written only for forms with repeats: stored states of other forms
    # keep the exact text they had (their event logs replay to the same bytes).
    state = E.SessionState("f", "1", "vi", answers={"a": 1})
    text = codec.encode_state(state)
    assert '"instances"' not in text and '"closed"' not in text
    assert codec.decode_state(text) == state


def test_form_check_lists_the_repeats_and_asks_their_questions():
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-m", "bot.cli", "form", "check", "tests/forms/roster.md"], cwd=root,
                            capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(root), "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert 'member (×${hh_size}), visit (×${visits}, inside member), crop ("add another?")' in result.stdout
    assert "not asked" not in result.stdout and "warning" not in result.stdout


# -- any sequence of events ------------------------------------------------------------------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_TEXTS = st.sampled_from(["0", "1", "2", "3", "An", "40", "8", "có", "không", "", "Lúa", "2010", "x", "150"])
_EVENTS = st.one_of(
    st.tuples(st.just("reply"), _TEXTS),
    st.tuples(st.just("choose"), st.sampled_from(["yes", "no", "1", "2", "9"])),
    st.tuples(st.just("back"), st.none()),
    st.tuples(st.just("stop"), st.none()),
    st.tuples(st.just("resume"), st.none()),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.sampled_from(["ROSTER", "OPEN", "NESTED", "GUARDED"]), events=st.lists(_EVENTS, max_size=40))
def test_any_events_keep_instances_and_answers_consistent(markdown_form, which, events):
    form = markdown_form(globals()[which])
    chat = Chat(form)  # checks the codec round trip after every step
    chat.begin()
    for kind, value in events:
        if chat.state.status is Status.COMPLETED:
            break
        if kind == "reply":
            chat.reply(value)
        elif kind == "choose":
            chat.choose(value)
        elif kind == "back":
            chat.back()
        elif kind == "stop":
            chat.stop()
        else:
            chat.resume()
        state = chat.state
        for key, answer in state.answers.items():
            repeats, numbers, _ = split_key(key)
            for depth in range(1, len(repeats) + 1):  # an answer of an instance that is gone is not applicable
                path = "".join(f"{r}[{n}]/" for r, n in zip(repeats[:depth - 1], numbers[:depth - 1])) + repeats[depth - 1]
                if numbers[depth - 1] > state.instances.get(path, 0):
                    assert answer is NOT_APPLICABLE, (key, answer, state.instances)
        if state.current is not None and state.status is not Status.COMPLETED:
            prompt = E.current_prompt(form, state)
            assert prompt is not None and prompt.question == state.current
