"""The ODK functions of surveys/xpath_functions.py: dates with times, node-sets, lookups, once/uuid/random."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from surveys.expressions import Environment, ExpressionError, parse
from surveys.xpath_functions import rewrite_paths

TABLES = {"prices": [{"item": "rice", "price": "18000", "unit": "kg"},
                     {"item": "fish", "price": "65000", "unit": "kg"},
                     {"item": "rice", "price": "1", "unit": "duplicate: the first row wins"}]}


def value(source: str, *, seed: str = "2026-03-02T09:00:00+07:00", current: object = None, **answers: object):
    env = Environment(values=answers, seed=seed, current=current, today=dt.date(2026, 3, 2),
                      now=dt.datetime(2026, 3, 2, 9, 30))
    return parse(source, allow_current=False, tables=TABLES).evaluate(env)


def test_once_keeps_the_value_already_stored_and_works_it_out_when_there_is_none() -> None:
    assert value("once(${a} * 2)", a=4) == 8
    assert value("once(${a} * 2)", a=4, current=3) == 3
    assert value("once(now())", current="") == dt.datetime(2026, 3, 2, 9, 30)


def test_count_sum_and_join_read_each_answer_as_one_node_and_a_select_multiple_by_choice() -> None:
    answers = {"kids": "2", "adults": "3", "none": "", "langs": ("vi", "en")}
    assert value("count(${kids})", **answers) == 1
    assert value("count(${none})", **answers) == 0
    assert value("count-non-empty(${kids}, ${none}, ${langs})", **answers) == 3
    assert value("sum(${kids}, ${adults}, ${none})", **answers) == 5
    assert value("sum(${kids}, 0.5)", **answers) == 2.5
    assert value("join(', ', ${langs}, ${none}, ${kids})", **answers) == "vi, en, 2"
    assert value(rewrite_paths("position(..) + position()")) == 2


def test_date_time_functions_follow_odk() -> None:
    moment = "2026-03-02T14:05:09"
    assert value(f"format-date-time('{moment}', '%Y-%m-%d %H:%M:%S')") == "2026-03-02 14:05:09"
    assert value("format-date-time(now(), '%e/%n/%y %h:%M')") == "2/3/26 9:30"
    assert value("decimal-date-time('1970-01-02T12:00:00')") == 1.5
    assert value("date-time(1.5)") == dt.datetime(1970, 1, 2, 12, 0)
    assert value("date-time('2026-03-02')") == dt.datetime(2026, 3, 2)
    assert value("date-time('not a date')") == ""
    assert value("boolean-from-string('true') and boolean-from-string('1') and not(boolean-from-string('yes'))")


@given(st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)))
def test_date_time_undoes_decimal_date_time_to_the_millisecond(moment: dt.datetime) -> None:
    env = Environment(values={"t": moment})
    back = parse("date-time(decimal-date-time(${t}))").evaluate(env)
    assert abs(back - moment) < dt.timedelta(milliseconds=1)


def test_uuid_is_a_version_4_uuid_stable_for_a_session_and_different_elsewhere() -> None:
    first = value("uuid()")
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", first)
    assert uuid.UUID(first).version == 4
    assert value("uuid()") == first  # every step of the session sees the same value
    assert value("uuid()", seed="another session") != first
    assert value("concat(uuid(), ' ', uuid())").split()[0] != value("concat(uuid(), ' ', uuid())").split()[1]


def test_uuid_with_a_length_is_that_many_letters_and_digits() -> None:
    short = value("uuid(8)")
    assert re.fullmatch(r"[0-9a-z]{8}", short) and value("uuid(8)") == short
    assert value("uuid(0)") == ""


def test_uuid_and_random_need_a_session_to_draw_from() -> None:
    with pytest.raises(ExpressionError, match="uuid"):
        value("uuid()", seed="")
    with pytest.raises(ExpressionError, match="random"):
        value("random()", seed="")


@given(st.text(min_size=1, max_size=40))
def test_random_is_in_the_unit_interval_and_the_same_for_the_same_session(seed: str) -> None:
    drawn = value("random()", seed=seed)
    assert 0 <= drawn < 1
    assert value("random()", seed=seed) == drawn


def test_random_differs_between_sessions() -> None:
    draws = {value("random()", seed=f"session {n}") for n in range(50)}
    assert len(draws) == 50


def test_pulldata_reads_the_first_matching_row_of_a_csv_shipped_with_the_form() -> None:
    assert value("pulldata('prices', 'price', 'item', ${item})", item="rice") == "18000"
    assert value("pulldata('prices.csv', 'unit', 'item', ${item})", item="fish") == "kg"
    assert value("pulldata('prices', 'price', 'item', ${item})", item="salt") == ""
    assert value("pulldata('prices', 'price', 'item', ${item}) * 2", item="fish") == 130000


@pytest.mark.parametrize("source, message", [
    ("pulldata('stock', 'price', 'item', 'rice')", "'stock.csv', which is not shipped beside the form"),
    ("pulldata('prices', 'weight', 'item', 'rice')", "'prices.csv' has no column 'weight'"),
    ("pulldata(${t}, 'price', 'item', 'rice')", "needs the CSV file's name as a quoted name"),
])
def test_pulldata_that_cannot_be_read_is_refused_when_the_form_loads(source: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=re.escape(message)):
        parse(source, tables=TABLES)


def test_instance_lookups_and_parent_positions_are_spelled_as_functions_the_parser_knows() -> None:
    source = "instance('prices')/root/item[item = ${item}]/price"
    assert rewrite_paths(source) == "pulldata('prices', 'price', 'item', ${item})"
    assert value(rewrite_paths(source), item="fish") == "65000"
    assert rewrite_paths("position(..) - 1") == "position() - 1"
    assert rewrite_paths("${a} + 1") == "${a} + 1"


def test_functions_odk_forms_use_most_are_known() -> None:
    for source in ("regex(${a}, '^[0-9]+$')", "substr(${a}, 0, 2)", "string-length(${a})", "concat(${a}, 'x')",
                   "coalesce(${a}, 'x')", "if(${a} = '', 1, 2)", "max(1, 2)", "min(1, 2)", "count-selected(${a})"):
        parse(source)
