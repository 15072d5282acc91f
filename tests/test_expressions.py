import datetime
import math
import pickle

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from surveys.expressions import (
    NOT_APPLICABLE,
    Environment,
    Expression,
    ExpressionError,
    interpolate,
    parse,
    references_in_text,
    to_string,
)

TODAY = datetime.date(2024, 3, 15)
NOW = datetime.datetime(2024, 3, 15, 9, 30, 5)


def ev(source, *, current=None, choice_row=None, choice_label=None, allow_bare_names=False, **values):
    env = Environment(
        values=values,
        current=current,
        today=TODAY,
        now=NOW,
        choice_label=choice_label,
        choice_row=choice_row,
    )
    return parse(source, allow_bare_names=allow_bare_names).evaluate(env)


def truth(source, **kwargs):
    env = Environment(values=kwargs, today=TODAY, now=NOW)
    return parse(source).evaluate_bool(env)


def error_for(source, **kwargs):
    with pytest.raises(ExpressionError) as info:
        parse(source, **kwargs)
    return info.value


def is_nan(value):
    return isinstance(value, float) and math.isnan(value)


# --- literals and tokens -------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        ("3", 3),
        ("3.5", 3.5),
        (".5", 0.5),
        ("'hi there'", "hi there"),
        ('"it\'s"', "it's"),
        ("''", ""),
        ("  42  ", 42),
    ],
)
def test_literals(source, expected):
    result = ev(source)
    assert result == expected and type(result) is type(expected)


def test_integer_literal_is_int_and_decimal_literal_is_float():
    assert type(ev("3")) is int
    assert type(ev("3.0")) is float


def test_strings_have_no_escapes():
    assert ev(r"'a\nb'") == "a\\nb"


# --- arithmetic ------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        ("1 + 2", 3),
        ("5 - 7", -2),
        ("4 * 3", 12),
        ("7 mod 3", 1),
        ("-7 mod 3", -1),
        ("7 mod -3", 1),
        ("7.5 mod 2", 1.5),
        ("4 div 2", 2.0),
        ("1 div 4", 0.25),
        ("-(3)", -3),
        ("- - 3", 3),
        ("2 - -3", 5),
        ("10 - 4 - 3", 3),
        ("2 * 3 + 4", 10),
        ("2 + 3 * 4", 14),
        ("(2 + 3) * 4", 20),
        ("12 div 3 div 2", 2.0),
        ("3 div-1", -3.0),
        ("-2 * 3", -6),
    ],
)
def test_arithmetic(source, expected):
    result = ev(source)
    assert result == expected and type(result) is type(expected)


def test_div_is_always_float_but_prints_like_an_integer():
    assert to_string(ev("4 div 2")) == "2"


@pytest.mark.parametrize(
    "source, expected",
    [("1 div 0", math.inf), ("-1 div 0", -math.inf), ("1 div -0.0", -math.inf)],
)
def test_division_by_zero_is_infinite(source, expected):
    assert ev(source) == expected


@pytest.mark.parametrize("source", ["0 div 0", "5 mod 0", "5.5 mod 0", "'x' + 1", "${missing} * 2"])
def test_nan_results(source):
    assert is_nan(ev(source))


def test_numeric_strings_coerce_in_arithmetic():
    assert ev("${a} + ${b}", a="2", b=" 3.5 ") == 5.5
    assert to_string(ev("${a} + 1", a="41")) == "42"


def test_booleans_are_numbers_in_arithmetic():
    assert ev("true() + true()") == 2


def test_huge_integers_do_not_crash_float_operations():
    big = "9" * 400
    assert ev(f"{big} div 1") == math.inf
    assert ev(f"{big} + 0.5") == math.inf
    assert ev(f"floor({big})") == int(big)
    assert ev(f"boolean({big})") is True


# --- comparisons and logic --------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        ("1 = 1", True),
        ("1 = 1.0", True),
        ("1 != 2", True),
        ("'a' = 'a'", True),
        ("'a' != 'b'", True),
        ("'1.0' = 1", True),
        ("'1.0' = '1'", False),
        ("2 < 10", True),
        ("'2' < '10'", True),
        ("2 <= 2", True),
        ("3 > 2", True),
        ("2 >= 3", False),
        ("'abc' < 1", False),
        ("'abc' >= 'abc'", False),
        ("true() = 'false'", True),
        ("false() = ''", True),
        ("true() = 1", True),
        ("0 = false()", True),
        ("1 < 2 < 3", True),
        ("3 > 2 > 1", False),
    ],
)
def test_comparisons(source, expected):
    assert ev(source) is expected


def test_nan_is_never_equal_or_ordered():
    assert ev("number('x') = number('x')") is False
    assert ev("number('x') != number('x')") is True
    for op in ("<", "<=", ">", ">="):
        assert ev(f"number('x') {op} 1") is False


def test_and_or_not():
    assert ev("1 = 1 and 2 = 2") is True
    assert ev("1 = 1 and 2 = 3") is False
    assert ev("1 = 2 or 2 = 2") is True
    assert ev("0 or ''") is False
    assert ev("not(1 = 2)") is True


def test_and_or_short_circuit():
    env = Environment()  # no today: evaluating today() would raise
    assert parse("false() and today()").evaluate(env) is False
    assert parse("true() or today()").evaluate(env) is True
    with pytest.raises(ExpressionError):
        parse("true() and today()").evaluate(env)


@pytest.mark.parametrize(
    "source, expected",
    [
        ("1 = 1 or 1 = 2 and 1 = 2", True),  # and binds tighter than or
        ("(1 = 1 or 1 = 2) and 1 = 2", False),
        ("1 + 1 = 2", True),  # + binds tighter than =
        ("1 < 2 = 2 > 1", True),  # relational binds tighter than equality
        ("2 + 3 * 4 = 14 and 1", True),
        ("-2 * -2", 4),
        ("10 - 2 * 3 mod 4", 8),
        ("6 div 2 * 3", 9.0),
    ],
)
def test_precedence(source, expected):
    assert ev(source) == expected


def test_keywords_are_names_in_operand_position():
    expr = parse("mod = 'x' and div = or", allow_bare_names=True)
    assert expr.bare_names == {"mod", "div", "or"}
    row = {"mod": "x", "div": "y", "or": "y"}
    assert expr.evaluate(Environment(choice_row=row)) is True


def test_keywords_need_word_boundaries():
    assert parse("${a} and ${b}").references == {"a", "b"}
    with pytest.raises(ExpressionError):
        parse("${a} andy ${b}")


# --- coercions -------------------------------------------------------------------


@pytest.mark.parametrize(
    "value, expected",
    [
        (None, ""),
        (NOT_APPLICABLE, ""),
        ("", ""),
        ("abc", "abc"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (-3, "-3"),
        (3.0, "3"),
        (-0.0, "0"),
        (1.5, "1.5"),
        (0.1 + 0.2, "0.30000000000000004"),
        (1e-7, "0.0000001"),
        (1e20, "100000000000000000000"),
        (float("nan"), "NaN"),
        (math.inf, "Infinity"),
        (-math.inf, "-Infinity"),
        (datetime.date(2024, 1, 5), "2024-01-05"),
        (datetime.datetime(2024, 1, 5, 7, 8, 9, 123456), "2024-01-05T07:08:09"),
        (("a", "b", "c"), "a b c"),
        ((), ""),
    ],
)
def test_to_string(value, expected):
    assert to_string(value) == expected


@pytest.mark.parametrize(
    "source, expected",
    [
        ("number('')", math.nan),
        ("number('  12 ')", 12.0),
        ("number('-1.5')", -1.5),
        ("number('.5')", 0.5),
        ("number('1e3')", math.nan),
        ("number('+1')", math.nan),
        ("number('1,5')", math.nan),
        ("number('abc')", math.nan),
        ("number(true())", 1),
        ("number(false())", 0),
        ("number(7)", 7),
        ("number(date('1970-01-11'))", 10),
    ],
)
def test_number(source, expected):
    result = ev(source)
    if math.isnan(expected):
        assert is_nan(result)
    else:
        assert result == expected and type(result) is type(expected)


def test_number_of_datetime_counts_fractional_days():
    assert ev("number(${t})", t=datetime.datetime(1970, 1, 2, 12)) == 1.5
    aware = datetime.datetime(1970, 1, 2, 12, tzinfo=datetime.timezone.utc)
    assert ev("number(${t})", t=aware) == 1.5


@pytest.mark.parametrize(
    "source, expected",
    [
        ("boolean(1)", True),
        ("boolean(0)", False),
        ("boolean(-0.5)", True),
        ("boolean(number('x'))", False),
        ("boolean('false')", True),
        ("boolean('')", False),
        ("boolean(${empty})", False),
        ("boolean(today())", True),
        ("boolean(true())", True),
    ],
)
def test_boolean(source, expected):
    assert ev(source) is expected


def test_boolean_of_select_multiple():
    assert ev("boolean(${s})", s=("a",)) is True
    assert ev("boolean(${s})", s=()) is False


def test_string_function():
    assert ev("string(1 div 2)") == "0.5"
    assert ev("string(true())") == "true"
    assert ev("string(${d})", d=datetime.date(2020, 2, 29)) == "2020-02-29"


# --- empty and not-applicable values --------------------------------------------


@pytest.mark.parametrize("value", [None, "", NOT_APPLICABLE])
def test_empty_values_read_as_empty_string(value):
    assert ev("${q}", q=value) == ""
    assert ev("${q} = ''", q=value) is True
    assert ev("string-length(${q})", q=value) == 0
    assert ev("${q} = 0", q=value) is False
    assert truth("${q}", q=value) is False


def test_missing_name_reads_as_empty():
    assert ev("${nobody}") == ""


def test_not_applicable_sentinel():
    assert repr(NOT_APPLICABLE) == "NOT_APPLICABLE"
    assert pickle.loads(pickle.dumps(NOT_APPLICABLE)) is NOT_APPLICABLE


def test_list_answers_behave_like_tuples():
    assert ev("count-selected(${s})", s=["a", "b"]) == 2


# --- select_multiple -------------------------------------------------------------


def test_selected_with_tuple_and_string():
    assert ev("selected(${s}, 'b')", s=("a", "b")) is True
    assert ev("selected(${s}, 'c')", s=("a", "b")) is False
    assert ev("selected(${s}, 'b')", s="a b") is True
    assert ev("selected(${s}, ' b ')", s="a b") is True
    assert ev("selected(${s}, 'a b')", s="a b") is False
    assert ev("selected(${s}, 'a')", s=None) is False


def test_count_selected_and_selected_at():
    assert ev("count-selected(${s})", s=("x", "y", "z")) == 3
    assert ev("count-selected(${s})", s="  x   y ") == 2
    assert ev("count-selected(${s})", s=NOT_APPLICABLE) == 0
    assert ev("selected-at(${s}, 1)", s=("x", "y")) == "y"
    assert ev("selected-at(${s}, 2)", s=("x", "y")) == ""
    assert ev("selected-at(${s}, -1)", s=("x", "y")) == ""
    assert ev("selected-at(${s}, 'x')", s=("x", "y")) == ""


def test_select_multiple_compares_as_joined_string():
    assert ev("${s} = 'a b'", s=("a", "b")) is True


# --- functions ---------------------------------------------------------------


@pytest.mark.parametrize(
    "source, expected",
    [
        ("if(1 = 1, 'yes', 'no')", "yes"),
        ("if('', 'yes', 'no')", "no"),
        ("coalesce(${empty}, 'fallback')", "fallback"),
        ("coalesce('first', 'fallback')", "first"),
        ("coalesce(0, 5)", 0),
        ("int(3.9)", 3),
        ("int(-3.9)", -3),
        ("int('7.2')", 7),
        ("true()", True),
        ("false()", False),
        ("concat('a')", "a"),
        ("concat('a', 1, true(), ' ', 2.5)", "a1true 2.5"),
        ("round(2.5)", 3.0),
        ("round(-2.5)", -3.0),
        ("round(2.4)", 2.0),
        ("round(1.005, 2)", 1.01),
        ("round(2.675, 2)", 2.68),
        ("round(1234.5, -2)", 1200.0),
        ("round(1234, -2)", 1200),
        ("round(7)", 7),
        ("floor(2.7)", 2),
        ("floor(-2.2)", -3),
        ("ceiling(2.2)", 3),
        ("ceiling(-2.7)", -2),
        ("abs(-4)", 4),
        ("abs('-4.5')", 4.5),
        ("pow(2, 10)", 1024.0),
        ("pow(4, 0.5)", 2.0),
        ("pow(0, -1)", math.inf),
        ("pow(10, 400)", math.inf),
        ("pow(-10, 401)", -math.inf),
        ("min(3, 1.5, 2)", 1.5),
        ("max(3, '7', 2)", 7.0),
        ("min(4)", 4),
        ("contains('banana', 'nan')", True),
        ("contains('banana', 'x')", False),
        ("contains('banana', '')", True),
        ("starts-with('banana', 'ban')", True),
        ("starts-with('banana', 'nan')", False),
        ("ends-with('banana', 'nana')", True),
        ("ends-with('banana', 'ban')", False),
        ("substr('hello', 1)", "ello"),
        ("substr('hello', 1, 3)", "el"),
        ("substr('hello', 0, 99)", "hello"),
        ("substr('hello', 3, 1)", ""),
        ("substr('hello', -3)", "llo"),
        ("substr('hello', 'x', 2)", "he"),
        ("substring-before('2024-03-15', '-')", "2024"),
        ("substring-before('abc', 'x')", ""),
        ("substring-before('abc', '')", ""),
        ("substring-after('2024-03-15', '-')", "03-15"),
        ("substring-after('abc', 'x')", ""),
        ("substring-after('abc', '')", "abc"),
        ("normalize-space('  a \t b\n c  ')", "a b c"),
        ("string-length('xin chào')", 8),
        ("string-length('')", 0),
        ("regex('0912345678', '^0[0-9]{9}$')", True),
        ("regex('12ab', '^[0-9]+$')", False),
        ("regex('abc', 'b')", True),
        ("regex('abc', concat('[', 'b'))", False),
        ("not('')", True),
        ("boolean('0')", True),
    ],
)
def test_functions(source, expected):
    result = ev(source)
    assert result == expected and type(result) is type(expected)


@pytest.mark.parametrize(
    "source",
    ["round(number('x'))", "round(2.5, number('x'))", "int(number(''))", "floor('a')", "abs('')",
     "pow(-8, 0.5)", "min(1, '')", "max(1, 'x', 3)"],
)
def test_functions_propagate_nan(source):
    assert is_nan(ev(source))


def test_if_is_lazy():
    env = Environment()
    assert parse("if(true(), 'ok', today())").evaluate(env) == "ok"


def test_string_length_without_argument_measures_current():
    expr = parse("string-length() <= 3")
    assert expr.uses_current
    assert expr.evaluate(Environment(current="abcd")) is False
    assert expr.evaluate(Environment(current="abc")) is True
    assert error_for("string-length()", allow_current=False).position == 0


def test_int_keeps_large_integers_exact():
    assert ev("int(12345678901234567890)") == 12345678901234567890


# --- dates -----------------------------------------------------------------------


def test_today_and_now():
    assert ev("today()") == TODAY
    assert ev("now()") == NOW
    assert to_string(ev("now()")) == "2024-03-15T09:30:05"


def test_today_without_a_date_raises_with_position():
    expr = parse("1 + today()")
    with pytest.raises(ExpressionError) as info:
        expr.evaluate(Environment())
    assert info.value.message == "today() needs a date"
    assert info.value.position == 4
    assert info.value.source == "1 + today()"
    assert str(info.value) == "today() needs a date at character 4"
    with pytest.raises(ExpressionError, match="now"):
        parse("now()").evaluate(Environment())


def test_date_comparisons():
    dob = datetime.date(2000, 5, 1)
    assert ev("${dob} < today()", dob=dob) is True
    assert ev("${dob} > today()", dob=dob) is False
    assert ev("${dob} = '2000-05-01'", dob=dob) is True
    assert ev("${dob} != '2000-05-02'", dob=dob) is True
    assert ev("${dob} = 'garbage'", dob=dob) is False
    assert ev("${dob} = ''", dob=dob) is False
    assert ev("today() >= '2024-03-15'") is True
    assert ev("today() > '2024-03-16'") is False
    assert ev("'2024-03-01' < today()") is True
    assert ev("${a} = ${b}", a=dob, b=datetime.date(2000, 5, 1)) is True


def test_date_compared_with_numbers_uses_days():
    assert ev("date('1970-01-11') = 10") is True
    assert ev("date('1970-01-11') > 9") is True
    assert ev("today() > 'abc'") is False


def test_date_arithmetic_counts_days():
    assert ev("today() - date('2024-03-01')") == 14
    assert ev("int((today() - ${dob}) div 365.25)", dob=datetime.date(2000, 3, 16)) == 23
    assert ev("today() + 1") == 19798


def test_date_function():
    assert ev("date('2024-02-29')") == datetime.date(2024, 2, 29)
    assert ev("date(0)") == datetime.date(1970, 1, 1)
    assert ev("date(19797)") == TODAY
    assert ev("date(10.7)") == datetime.date(1970, 1, 11)
    assert ev("date(now())") == TODAY
    assert ev("date('2024-03-15T08:00:00')") == TODAY
    assert ev("date('2024-02-30')") == ""
    assert ev("date('soon')") == ""
    assert ev("date(${x})", x=None) == ""
    assert ev("date(1 div 0)") == ""
    assert ev("date(99999999999)") == ""


def test_format_date():
    assert ev("format-date(today(), '%Y-%m-%d')") == "2024-03-15"
    assert ev("format-date(date('2024-01-05'), '%e/%n/%y')") == "5/1/24"
    assert ev("format-date(today(), '%a %d %b %Y')") == "Fri 15 Mar 2024"
    assert ev("format-date(now(), '%H:%M:%S')") == "09:30:05"
    assert ev("format-date(today(), '%H:%M')") == "00:00"
    assert ev("format-date('2024-03-15', '%d.%m.%Y %Q')") == "15.03.2024 %Q"
    assert ev("format-date('', '%Y')") == ""


# --- current answer, bare names ---------------------------------------------------


def test_current_value_in_constraints():
    expr = parse(". >= 18 and . < 120")
    assert expr.uses_current
    assert expr.evaluate_bool(Environment(current=30)) is True
    assert expr.evaluate_bool(Environment(current="17")) is False
    assert expr.evaluate_bool(Environment(current=None)) is False
    assert parse(". = ''").evaluate(Environment(current=NOT_APPLICABLE)) is True


def test_current_not_allowed():
    err = error_for("${a} > .", allow_current=False)
    assert err.position == 7
    assert not parse("${a} > 1").uses_current


def test_choice_filter_bare_names():
    expr = parse("filter = ${region} and name != 'other'", allow_bare_names=True)
    assert expr.bare_names == {"filter", "name"}
    assert expr.references == {"region"}
    env = Environment(values={"region": "north"}, choice_row={"filter": "north", "name": "hanoi"})
    assert expr.evaluate_bool(env) is True
    env = Environment(values={"region": "south"}, choice_row={"filter": "north", "name": "hanoi"})
    assert expr.evaluate_bool(env) is False


def test_bare_name_missing_column_reads_empty():
    assert ev("missing = ''", choice_row={}, allow_bare_names=True) is True


def test_bare_name_without_choice_row_is_a_runtime_error():
    expr = parse("1 + filter", allow_bare_names=True)
    with pytest.raises(ExpressionError) as info:
        expr.evaluate(Environment())
    assert info.value.position == 4


def test_bare_names_not_allowed_suggest_reference():
    err = error_for("age > 18")
    assert err.position == 0
    assert "${age}" in err.message


def test_selected_with_bare_name_in_choice_filter():
    expr = parse("selected(${wanted}, name)", allow_bare_names=True)
    env = Environment(values={"wanted": ("a", "c")}, choice_row={"name": "c"})
    assert expr.evaluate(env) is True


# --- jr:choice-name -----------------------------------------------------------------


def test_choice_name_uses_callback_and_records_reference():
    expr = parse("jr:choice-name(${province}, '${province}')")
    assert expr.references == {"province"}
    labels = {("province", "hn"): "Hà Nội"}
    env = Environment(values={"province": "hn"}, choice_label=lambda q, c: labels.get((q, c)))
    assert expr.evaluate(env) == "Hà Nội"


def test_choice_name_reference_may_differ_from_value():
    expr = parse("jr:choice-name('hn', \"${other}\")")
    assert expr.references == {"other"}
    seen = []
    env = Environment(choice_label=lambda q, c: seen.append((q, c)) or "")
    assert expr.evaluate(env) == "hn"
    assert seen == [("other", "hn")]


def test_choice_name_falls_back_to_value():
    assert ev("jr:choice-name(${p}, '${p}')", p="hn") == "hn"
    assert ev("jr:choice-name(${p}, '${p}')", p=None, choice_label=lambda q, c: "never") == ""


@pytest.mark.parametrize(
    "source",
    ["jr:choice-name(${p}, ${p})", "jr:choice-name(${p}, 'p')", "jr:choice-name(${p}, '${a} ${b}')",
     "jr:choice-name(${p}, concat('${p}', ''))"],
)
def test_choice_name_needs_quoted_reference(source):
    err = error_for(source)
    assert err.position == source.index(", ") + 2


# --- references ---------------------------------------------------------------------


def test_expression_metadata():
    expr = parse("${a} + ${b} * ${a} > . and selected(${c}, 'x')")
    assert expr.source == "${a} + ${b} * ${a} > . and selected(${c}, 'x')"
    assert expr.references == frozenset({"a", "b", "c"})
    assert expr.uses_current
    assert expr.bare_names == frozenset()
    assert isinstance(expr, Expression)


def test_expression_is_immutable():
    expr = parse("1")
    with pytest.raises(AttributeError):
        expr.source = "2"


def test_unicode_and_punctuated_names():
    assert ev("${tuổi} + ${q.1-b} + ${_x}", **{"tuổi": 1, "q.1-b": 2, "_x": 3}) == 6
    assert parse("${tỉnh_thành}").references == {"tỉnh_thành"}


def test_strings_containing_references_are_not_references():
    assert parse("concat('${a}', ${b})").references == {"b"}


# --- syntax errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    "source, position, fragment",
    [
        ("", 0, "empty"),
        ("   ", 0, "empty"),
        ("(1 + 2", 0, "unclosed '('"),
        ("if(${a} = 1, 2, 3", 2, "unclosed '('"),
        ("concat('a', 'b'", 6, "unclosed '('"),
        ("1 + 2)", 5, "unexpected ')'"),
        ("1 2", 2, "unexpected number"),
        ("${a} ${b}", 5, "unexpected '${b}'"),
        ("foo(1)", 0, "unknown function 'foo'"),
        ("1 + selectd(${a}, 'x')", 4, "unknown function 'selectd'"),
        ("and(1, 2)", 0, "unknown function 'and'"),
        ("${}", 0, "empty reference"),
        ("1 + ${}", 4, "empty reference"),
        ("${a", 0, "unclosed '${'"),
        ("${a b}", 0, "invalid question name"),
        ("${1a}", 0, "invalid question name"),
        ("$a", 0, "'$'"),
        ("'abc", 0, "unterminated string"),
        ("1 + 'abc", 4, "unterminated string"),
        ("1 +", 3, "ends"),
        ("* 2", 0, "unexpected '*'"),
        ("1 == 1", 2, "'='"),
        ("1 & 2", 2, "unexpected character '&'"),
        ("../a", 0, "'..'"),
        ("/data/a", 0, "unexpected character '/'"),
        ("concat(1,)", 9, "unexpected ')'"),
        ("concat(1 2)", 9, "expected ',' or ')'"),
        ("(1 2)", 3, "expected ')'"),
        ("if(1, 2)", 0, "if() takes 3 arguments, not 2"),
        ("not()", 0, "not() takes 1 argument, not 0"),
        ("round(1, 2, 3)", 0, "round() takes 1 to 2 arguments, not 3"),
        ("concat()", 0, "at least 1 argument"),
        ("today(1)", 0, "today() takes 0 arguments"),
        ("regex(${a}, '[0-9')", 12, "invalid regular expression"),
        ("!1", 0, "unexpected character '!'"),
    ],
)
def test_syntax_errors(source, position, fragment):
    err = error_for(source)
    assert err.position == position
    assert fragment in err.message
    assert err.source == source
    assert str(err) == f"{err.message} at character {position}"


def test_unknown_function_message():
    assert str(error_for("foo(1)")) == "unknown function 'foo' at character 0"


def test_expression_error_is_value_error_and_picklable():
    err = error_for("1 +")
    assert isinstance(err, ValueError)
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.message, copy.position, copy.source) == (err.message, err.position, err.source)


def test_error_without_position_has_plain_message():
    assert str(ExpressionError("boom")) == "boom"


def test_deep_nesting_is_an_expression_error():
    with pytest.raises(ExpressionError, match="nested"):
        parse("(" * 5000 + "1" + ")" * 5000)
    with pytest.raises(ExpressionError, match="nested"):
        parse("-" * 5000 + "1")


def test_long_flat_chains_still_work():
    assert ev(" + ".join(["1"] * 300)) == 300


# --- interpolation ---------------------------------------------------------------------


def test_interpolate_pipes_values():
    env = Environment(values={"name": "Lan", "age": 30, "fruits": ("mango", "lychee"), "skip": NOT_APPLICABLE})
    assert interpolate("Hi ${name}, ${age}!", env) == "Hi Lan, 30!"
    assert interpolate("${fruits}", env) == "mango lychee"
    assert interpolate("[${skip}][${unknown}]", env) == "[][]"


def test_interpolate_leaves_unknown_syntax_alone():
    env = Environment(values={"a": "x"})
    text = "cost $5, ${} ${a b} ${a"
    assert interpolate(text, env) == text
    assert interpolate("${a}${a}", env) == "xx"


def test_interpolate_uses_renderer():
    env = Environment(values={"p": "hn", "n": 3})
    labels = {"hn": "Hà Nội"}

    def render(name, value):
        return labels.get(value, to_string(value)) if name == "p" else f"<{value}>"

    assert interpolate("${p}: ${n}", env, render) == "Hà Nội: <3>"


def test_references_in_text():
    assert references_in_text("${a} and ${b.c} but not ${} or ${x y} or $d") == {"a", "b.c"}
    assert references_in_text("no references") == frozenset()


# --- properties ----------------------------------------------------------------------


_SOUP = list("${}()',.\"=!<>+-*/ 0123456789abdimnorv:_ặ\t") + [
    "${a}", "today()", "if(", "selected(", "round(", "substr(", "date(", "format-date(", "jr:choice-name(",
    " and ", " div ",
]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(_SOUP), max_size=30).map("".join))
def test_token_soup_raises_only_expression_error(text):
    try:
        expr = parse(text, allow_bare_names=True)
    except ExpressionError as err:
        assert err.position is None or 0 <= err.position <= len(text)
        return
    assert expr.source == text
    env = Environment(values={"a": ("x", "y")}, current=3, today=TODAY, now=NOW, choice_row={})
    try:
        expr.evaluate(env)
    except ExpressionError:
        pass


@settings(max_examples=200)
@given(st.text(max_size=30))
def test_parse_raises_only_expression_error_on_any_text(text):
    try:
        parse(text)
    except ExpressionError:
        pass


@given(st.integers(min_value=-(2**53), max_value=2**53))
def test_string_number_round_trips_integers(n):
    assert to_string(ev("number(${n})", n=str(n))) == str(n)
    assert to_string(ev("string(number(string(${n})))", n=n)) == str(n)


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_string_of_float_reads_back_as_same_number(x):
    text = to_string(x)
    assert "e" not in text
    assert float(text) == x


_numbers = st.one_of(
    st.integers(min_value=-10**6, max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["", "abc", " 12 ", "-0.5", None, NOT_APPLICABLE, True, ("a", "b"), datetime.date(2020, 1, 1)]),
)


@settings(max_examples=300)
@given(
    _numbers,
    _numbers,
    st.sampled_from(["+", "-", "*", "div", "mod", "=", "!=", "<", "<=", ">", ">=", "and", "or"]),
)
def test_operators_never_raise_on_mixed_types(a, b, op):
    result = ev(f"${{a}} {op} ${{b}}", a=a, b=b)
    assert isinstance(result, (bool, int, float))
    assert isinstance(to_string(result), str)


@settings(max_examples=200)
@given(_numbers, _numbers)
def test_functions_never_raise_on_mixed_types(a, b):
    for source in [
        "round(${a}, ${b})", "pow(${a}, ${b})", "substr('hello', ${a}, ${b})", "selected-at(${a}, ${b})",
        "min(${a}, ${b})", "int(${a})", "floor(${a})", "date(${a})", "format-date(${a}, '%Y')",
        "regex(${a}, ${b})", "coalesce(${a}, ${b})", "contains(${a}, ${b})", "-${a}",
    ]:
        to_string(ev(source, a=a, b=b))


@given(st.integers(min_value=-10**6, max_value=10**6), st.integers(min_value=-10**6, max_value=10**6))
def test_integer_arithmetic_matches_python(a, b):
    assert ev("${a} + ${b}", a=a, b=b) == a + b
    assert ev("${a} * ${b}", a=a, b=b) == a * b
    assert ev("${a} = ${b}", a=a, b=b) is (a == b)
    assert ev("${a} < ${b}", a=a, b=b) is (a < b)
    if b != 0:
        assert ev("${a} mod ${b}", a=a, b=b) == int(math.fmod(a, b))


@pytest.mark.parametrize("source, expected", [
    ("sqrt(16)", 4.0), ("log10(1000)", 3.0), ("exp10(2)", 100.0), ("round(pi(), 2)", 3.14),
    ("atan2(0, 1)", 0.0), ("round(exp(1), 3)", 2.718),
])
def test_odk_math_functions(source, expected):
    assert parse(source).evaluate(Environment()) == pytest.approx(expected)


def test_math_outside_its_domain_is_nan_not_an_error():
    assert math.isnan(parse("sqrt(-1)").evaluate(Environment()))
    assert math.isnan(parse("log(${x})").evaluate(Environment(values={"x": ""})))


# -- compiled evaluation: each parsed tree is turned into closures once, with fast paths for
# -- plain strings and numbers; it must give exactly what walking the tree gives.

_SAMPLE_VALUES = [None, NOT_APPLICABLE, "", "a", "b", "4", "1", "2.0", "a b", ("a",), ("a", "b"), (), ("1", 2), (1,),
                  ["a"], 0, 1, -3, 10**30, 2.5, 0.0, -0.0, float("nan"), float("inf"), True, False,
                  datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2, 3, 4, 5), "2024-01-02",
                  datetime.datetime(2024, 1, 2, 3, 4, 5, tzinfo=datetime.timezone(datetime.timedelta(hours=7)))]
_COMPILED_SOURCES = [
    "${x} = 'a'", "'a' = ${x}", "${x} != 'a'", "'4' != ${x}", "${x} = '1'", "${x} = '2024-01-02'", "${x} = ''",
    "${x} = ${y}", "${x} < 3", "${x} >= 2.5", "3 > ${x}", "${x} <= ${y}", "${x} + 1", "${x} - ${y}", "${x} * 2",
    "${x} * 1.5", "${x} div ${y}", "${x} mod 2", "-${x}", "${x} and ${y}", "${x} or 'a' = ${y}",
    "selected(${x}, 'a')", "selected(${x}, 1)", "not(selected(${x}, 'b'))", "count-selected(${x})",
    "if(${x} = 'a' or ${x} = '4', 1, 0) + if(${y} != '', 1, 0)", "if(${x}, today(), now())",
    "string-length(${x}) > 2", "concat(${x}, '-', ${y})", "coalesce(${x}, ${y})", "round(${x} * 100 div 3, 1)",
    "max(${x}, ${y}, 1)", "substr(${x}, 0, 1)", "format-date(${x}, '%Y/%m/%d')", "date(${x}) > date('2020-01-01')",
    ". > ${x}", ". = 'a'", "string-length()", "regex(${x}, '^[a-z]$')", "jr:choice-name(${x}, '${x}')",
]


def _outcome(run):
    try:
        value = run()
    except ExpressionError as error:
        return ("error", error.message, error.position, error.source)
    return (type(value), repr(value))


@pytest.mark.parametrize("source", _COMPILED_SOURCES)
def test_compiled_evaluation_matches_walking_the_tree(source):
    expression = parse(source)
    for index, x in enumerate(_SAMPLE_VALUES):
        y = _SAMPLE_VALUES[(index * 7 + 3) % len(_SAMPLE_VALUES)]
        current = _SAMPLE_VALUES[(index * 5 + 1) % len(_SAMPLE_VALUES)]
        for today in (TODAY, None):
            env = Environment(values={"x": x, "y": y}, current=current, today=today, now=NOW if today else None,
                              choice_label=lambda question, choice: choice.upper())

            def walked():
                try:
                    return expression._root.evaluate(env)
                except ExpressionError as error:
                    raise ExpressionError(error.message, error.position, expression.source) from None

            assert _outcome(lambda: expression.evaluate(env)) == _outcome(walked), (source, x, y, current)


@given(x=st.sampled_from(_SAMPLE_VALUES), y=st.sampled_from(_SAMPLE_VALUES),
       source=st.sampled_from(_COMPILED_SOURCES))
@settings(max_examples=300, deadline=None)
def test_compiled_evaluation_matches_walking_the_tree_for_any_pair(x, y, source):
    expression = parse(source)
    env = Environment(values={"x": x, "y": y}, current=x, today=TODAY, now=NOW)
    assert _outcome(lambda: expression.evaluate(env)) == _outcome(lambda: expression._root.evaluate(env))


def test_plain_string_fast_paths_keep_xpath_coercions():
    assert truth("${x} = '1'", x=1) is True  # numbers compare as numbers
    assert truth("${x} = '1'", x=True) is True  # booleans as booleans
    assert truth("${x} = 'a'", x=("a",)) is True  # a one-item selection as its string
    assert truth("${x} = '2024-01-02'", x=datetime.date(2024, 1, 2)) is True
    assert truth("${x} != 'a'", x=None) is True and truth("'' = ${x}", x=NOT_APPLICABLE) is True
    assert ev("${x} + 1", x=10**30) == 10**30 + 1 and isinstance(ev("${x} + 1", x=10**30), int)
    assert ev("${x} + 1", x="2") == 3.0 and isinstance(ev("${x} + 1", x="2"), float)
    assert ev("${x} * 1", x=True) == 1 and ev("${x} < 2", x=True) is True
    assert math.copysign(1, ev("${x} * 1", x=-0.0)) == -1
    assert ev("selected(${x}, '1')", x=(1, "b")) is True and ev("selected(${x}, 'b')", x=(1, "b")) is True
    assert ev("selected(${x}, 'c')", x=("a", "b")) is False and ev("selected(${x}, 'a')", x="a b") is True


def test_answers_only_tells_which_expressions_read_nothing_but_answers():
    for source in ("1 + 2", "${a} = 'x'", "selected(${a}, 'b') and ${c} > 3", "if(${a}, -${b}, concat(${c}, 'x'))"):
        assert parse(source).answers_only is True, source
    for source in (". > 3", "today() > ${a}", "if(${a}, now(), 1)", "jr:choice-name(${a}, '${a}')", "string-length()"):
        assert parse(source).answers_only is False, source
    assert parse("name != ${a}", allow_bare_names=True).answers_only is False


def test_a_parsed_expression_pickles_and_still_evaluates():
    expression = parse("${a} = 'x' and -${b} < 3")
    copy = pickle.loads(pickle.dumps(expression))
    assert copy.source == expression.source and copy.references == frozenset({"a", "b"})
    env = Environment(values={"a": "x", "b": 1})
    assert copy.evaluate(env) is True and expression.evaluate(env) is True


def test_a_label_without_references_is_returned_as_it_is():
    text = "Không có gì để chèn, kể cả $ hay {x}"
    assert interpolate(text, Environment(values={"x": "1"})) is text
