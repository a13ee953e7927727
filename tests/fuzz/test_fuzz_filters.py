"""Fuzzing filter patterns (behaviour §11) beyond tests/unit/filtering/test_filter_properties.py.

Two rules:
- validation never crashes: any text, any JSON shape (operators nested where they do not belong,
  wrong argument types, numbers JSON allows and doubles do not, `$or` in every wrong form,
  mutated valid patterns) either validates or raises InvalidPatternError with a reason, and
  `validate_pattern` and `compile_filters` always agree;
- a pattern that validates matches exactly what the reference interpreter says
  (tests/unit/filtering/filter_reference.py, shared with the property tests and the benchmark),
  on events drawn to meet the pattern's values: patterns here are drawn from free values
  (random text, random doubles for numeric ranges, random CIDR blocks, wildcards from a small
  alphabet) nested three levels deep with `$or` at any level, where the property tests use
  fixed value lists.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from esm.filtering import InvalidPatternError, compile_filters, test_pattern, validate_pattern
from tests.unit.filtering.filter_reference import reference_matches, reference_matches_json

SETTINGS = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

OPERATORS = ["prefix", "suffix", "equals-ignore-case", "wildcard", "anything-but", "numeric", "exists", "cidr",
             "exactly", "NUMERIC", "regex", "", "$or", "html", "<", "="]
KEYS = ["a", "b", "a.b", "c", "$or", "prefix", "numeric", "0", "", " ", "é"]


class Raw:
    """A JSON token written as it is (numbers json.dumps cannot write: 1e999, -0, 1E-400...)."""

    def __init__(self, text: str) -> None:
        self.text = text


RAW_NUMBERS = ["1e999", "-1e999", "1E-400", "-0", "0.0", "1e-320", "123456789012345678901234567890", "5e11",
               "0.1", "1.0000000000000002", "9007199254740993", "-5e-324", "1.7976931348623157e308", "2.0e422"]


def dump(value: Any) -> str:
    """json.dumps, plus Raw tokens."""
    if isinstance(value, Raw):
        return value.text
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


# ---------------------------------------------------------------- anything shaped like a pattern

json_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=8), st.sampled_from(["10.0.0.0/24", "::1/64", "10.0.0.1/33", "a/b", "x*y", "**", "a\\*", "\\q",
                                          ">", "<=", "=", "", "init"]),
    st.sampled_from(RAW_NUMBERS).map(Raw),
)


def _shapes(depth: int) -> st.SearchStrategy[Any]:
    if depth >= 3:
        return json_scalars
    inner = st.deferred(lambda: _shapes(depth + 1))
    return st.one_of(
        json_scalars,
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(OPERATORS + KEYS), inner, max_size=3),
        st.builds(lambda op, arg: [{op: arg}], st.sampled_from(OPERATORS), inner),
        st.builds(lambda ops, nums: [{"numeric": [x for pair in zip(ops, nums) for x in pair]}],
                  st.lists(st.sampled_from(["<", "<=", "=", ">", ">=", "!", 1]), min_size=1, max_size=3),
                  st.lists(st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(RAW_NUMBERS).map(Raw),
                                     st.text(max_size=2)), min_size=1, max_size=3)),
    )


pattern_shapes = st.one_of(
    st.dictionaries(st.sampled_from(KEYS + OPERATORS), _shapes(0), max_size=4),
    _shapes(0),
)

VALID_SEEDS = [
    '{"a": ["x", 1, null, true]}',
    '{"a": {"b": [{"prefix": "p"}, {"suffix": {"equals-ignore-case": "S"}}]}}',
    '{"$or": [{"a": [{"numeric": [">", 0, "<=", 5]}]}, {"b": [{"exists": false}]}]}',
    '{"a": [{"anything-but": {"wildcard": ["x*", "*y"]}}], "c": [{"cidr": "10.0.0.0/8"}]}',
    '{"a.b": [{"wildcard": "a\\\\*b*"}], "b": [{"anything-but": [1, 2.5]}]}',
]


@st.composite
def mutated_patterns(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(VALID_SEEDS))
    for _ in range(draw(st.integers(1, 3))):
        where = draw(st.integers(0, len(text)))
        if draw(st.booleans()):
            text = text[:where] + draw(st.one_of(st.sampled_from(list('{}[]:,"\\*-.$0e') + ["null", "1e999", '"$or"']),
                                                  st.text(max_size=3))) + text[where:]
        else:
            text = text[:where] + text[where + draw(st.integers(1, 6)):]
    return text


def _validates(text: str) -> bool:
    """validate_pattern and compile_filters agree, and only ever raise InvalidPatternError with a reason."""
    try:
        validate_pattern(text)
        valid = True
    except InvalidPatternError as error:
        assert str(error).strip(), "an invalid pattern has a reason"
        valid = False
    try:
        compile_filters([text])
        assert valid, f"compile_filters accepted what validate_pattern refused: {text!r}"
    except InvalidPatternError:
        assert not valid, f"compile_filters refused what validate_pattern accepted: {text!r}"
    return valid


@SETTINGS
@given(text=st.text(max_size=60))
def test_any_text_validates_or_gives_a_reason(text: str) -> None:
    """behaviour §11.2: any input is valid or InvalidPatternError (AWS's reason), never another error."""
    _validates(text)


@SETTINGS
@given(shape=pattern_shapes)
def test_any_json_shape_validates_or_gives_a_reason(shape: Any) -> None:
    """behaviour §11.2: operators in the wrong place, wrong argument types, odd numbers, broken $or:
    InvalidPatternError, never another exception."""
    _validates(dump(shape))


@SETTINGS
@given(text=mutated_patterns())
def test_mutated_patterns_validate_or_give_a_reason(text: str) -> None:
    """behaviour §11.2: a valid pattern with characters inserted or cut is still answered cleanly."""
    _validates(text)


def test_deep_and_long_patterns_are_refused_cleanly():
    """behaviour §11.2 limits: 4096 characters; nesting, $or and wildcards at their limits give reasons."""
    for text in ['{"a":' * 800 + '["x"]' + "}" * 800, "[" * 4000, '{"$or":' * 500, '{"a": [' + "1," * 3000 + "1]}",
                 '{"a": [{"wildcard": "' + "*a" * 1000 + '"}]}', '{"a": ["' + "x" * 5000 + '"]}']:
        _validates(text)


# ---------------------------------------------------------------- valid patterns with free values

ALPHABET = "aAbB*\\.1 é"
texts = st.text(alphabet=ALPHABET, max_size=4)
doubles = st.one_of(st.floats(min_value=-1e6, max_value=1e6, allow_nan=False), st.integers(-1000, 1000),
                    st.sampled_from([0, 0.5, -0.0, 1e-320, 2**53, 5e11]))


@st.composite
def numeric_ranges(draw: st.DrawFn) -> dict[str, Any]:
    if draw(st.booleans()):
        return {"numeric": [draw(st.sampled_from(["<", "<=", "=", ">", ">="])), draw(doubles)]}
    low, high = sorted(draw(st.lists(doubles, min_size=2, max_size=2, unique=True)))
    assume(low < high)
    return {"numeric": [draw(st.sampled_from([">", ">="])), low, draw(st.sampled_from(["<", "<="])), high]}


@st.composite
def wildcards(draw: st.DrawFn) -> str:
    parts = draw(st.lists(st.sampled_from(["a", "b", "*", "\\*", "\\\\", "."]), max_size=5))
    text = "".join(parts)
    assume("**" not in text.replace("\\*", ""))
    return text


cidrs = st.builds(lambda a, b, bits: f"10.{a}.{b}.0/{bits}", st.integers(0, 3), st.integers(0, 255), st.integers(8, 31))
same_type_lists = st.one_of(st.lists(texts, min_size=1, max_size=3), st.lists(st.integers(-3, 3), min_size=1, max_size=3))

free_operands = st.one_of(
    texts, texts, st.integers(-3, 3), doubles, st.sampled_from([True, False, None]),
    st.builds(lambda p: {"prefix": p}, texts),
    st.builds(lambda p: {"suffix": p}, texts),
    st.builds(lambda p: {"equals-ignore-case": p}, texts),
    st.builds(lambda kind, p: {kind: {"equals-ignore-case": p}}, st.sampled_from(["prefix", "suffix"]), texts),
    st.builds(lambda p: {"wildcard": p}, wildcards()),
    numeric_ranges(),
    st.builds(lambda c: {"cidr": c}, cidrs),
    st.builds(lambda e: {"exists": e}, st.booleans()),
    st.builds(lambda v: {"anything-but": v}, st.one_of(texts, st.integers(-3, 3), same_type_lists)),
    st.builds(lambda kind, v: {"anything-but": {kind: v}}, st.sampled_from(["prefix", "suffix"]),
              st.one_of(texts.filter(bool), st.lists(texts.filter(bool), min_size=1, max_size=2))),
    st.builds(lambda v: {"anything-but": {"equals-ignore-case": v}}, st.one_of(texts, st.lists(texts, min_size=1, max_size=2))),
    st.builds(lambda v: {"anything-but": {"wildcard": v}}, st.one_of(wildcards(), st.lists(wildcards(), min_size=1, max_size=2))),
    st.builds(lambda p: {"exactly": p}, texts),
)

FIELD_KEYS = ["a", "b", "c", "a.b"]


def _free_fields(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.lists(free_operands, min_size=1, max_size=3)
    value: st.SearchStrategy[Any] = leaf if depth >= 2 else st.one_of(leaf, leaf, st.deferred(lambda: _free_fields(depth + 1)))

    @st.composite
    def fields(draw: st.DrawFn) -> dict[str, Any]:
        body = draw(st.dictionaries(st.sampled_from(FIELD_KEYS), value, min_size=1, max_size=2))
        if depth < 2 and draw(st.integers(0, 3)) == 0:  # $or at this level too, not only at the top
            body["$or"] = draw(st.lists(st.deferred(lambda: _free_fields(depth + 1)), min_size=2, max_size=3))
        return body

    return fields()


free_patterns = _free_fields(0).map(json.dumps)

event_scalars = st.one_of(texts, texts, st.integers(-3, 3), doubles, st.sampled_from([True, False, None]),
                          st.builds(lambda a, b, c: f"10.{a}.{b}.{c}", st.integers(0, 3), st.integers(0, 255),
                                    st.integers(0, 255)))


def _event_values(scalars: st.SearchStrategy[Any], keys: list[str], object_lists: int,
                  depth: int = 0) -> st.SearchStrategy[Any]:
    """Event values up to three levels deep: scalars, lists of scalars, objects and lists of objects."""
    if depth >= 3:
        return scalars
    inner = st.deferred(lambda: _event_values(scalars, keys, object_lists, depth + 1))
    objects = st.dictionaries(st.sampled_from(keys), inner, min_size=1, max_size=3)
    return st.one_of(scalars, scalars, st.lists(scalars, max_size=3),
                     st.lists(objects, min_size=1, max_size=object_lists), objects)


free_events = st.dictionaries(st.sampled_from(FIELD_KEYS), _event_values(event_scalars, FIELD_KEYS, 3),
                              min_size=1, max_size=4)


@SETTINGS
@given(pattern=free_patterns, event=free_events)
def test_free_patterns_agree_with_the_reference(pattern: str, event: dict[str, Any]) -> None:
    """behaviour §11.1: every operator with free values, nested, $or at any depth, arrays and array
    consistency: the compiled matcher answers as the reference interpreter does."""
    assume(_validates(pattern))
    matcher = compile_filters([pattern])
    expected = reference_matches([pattern], event)
    assert matcher.matches(event) == expected
    assert matcher.matches_json(orjson.dumps(event)) == expected


# Odd but valid: keys that are blank, numeric, non-ASCII, dotted or operator names (allowed
# outside $or), empty objects, and numbers at the edges of what a double holds, written as text.
# The empty key is left out: esm joins it into paths differently from event-ruler (whose
# Path.extendedName drops the separator after an empty first step), reported to the lead.
ODD_KEYS = ["a", "b", "a.b", " ", "0", "prefix", "numeric", "\u00e9"]
raw_numbers = st.sampled_from(RAW_NUMBERS).map(Raw)
odd_operands = st.one_of(
    free_operands,
    raw_numbers,
    st.builds(lambda op, n: {"numeric": [op, n]}, st.sampled_from(["<", "<=", "=", ">", ">="]), raw_numbers),
    st.builds(lambda items: {"anything-but": items}, st.lists(raw_numbers, min_size=1, max_size=3)),
)


def _odd_fields(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.lists(odd_operands, min_size=1, max_size=3)
    value: st.SearchStrategy[Any] = st.one_of(leaf, leaf, st.just({}))
    if depth < 2:
        value = st.one_of(value, st.deferred(lambda: _odd_fields(depth + 1)))

    @st.composite
    def fields(draw: st.DrawFn) -> dict[str, Any]:
        body = draw(st.dictionaries(st.sampled_from(ODD_KEYS), value, max_size=2))
        if depth < 2 and draw(st.integers(0, 3)) == 0:
            body["$or"] = draw(st.lists(st.deferred(lambda: _odd_fields(depth + 1)).filter(bool), min_size=2, max_size=3))
        return body

    return fields()


odd_event_scalars = st.one_of(event_scalars, st.sampled_from([1e-320, -0.0, 0.1, 2**53 + 1, 10**30, 5e11, 1.7976931348623157e308]))


odd_events = st.dictionaries(st.sampled_from(ODD_KEYS), _event_values(odd_event_scalars, ODD_KEYS, 2),
                             min_size=1, max_size=4)


@SETTINGS
@given(shape=_odd_fields(0), event=odd_events)
def test_odd_patterns_agree_with_the_reference(shape: dict[str, Any], event: dict[str, Any]) -> None:
    """Odd but accepted patterns (blank, numeric and operator-named keys, dotted keys, `{}`,
    numbers a double cannot hold exactly) match exactly as the reference interpreter says."""
    text = dump(shape)
    assume(_validates(text))
    matcher = compile_filters([text])
    assert matcher.matches(event) == reference_matches([text], event)
    # The same event as JSON text: integers past 64 bits and doubles keep their value when parsed.
    blob = json.dumps(event)
    assert matcher.matches_json(blob) == reference_matches_json([text], blob)


@SETTINGS
@given(pattern=free_patterns, event=st.one_of(st.text(max_size=30), free_events.map(dump)))
def test_test_pattern_answers_or_refuses_any_event(pattern: str, event: str) -> None:
    """`esm test-pattern`: any event text gives true/false, or ValueError for one that is not a JSON object."""
    assume(_validates(pattern))
    try:
        test_pattern(pattern, event)
    except InvalidPatternError:
        raise
    except ValueError:
        pass


def test_integers_past_64_bits_match_themselves():
    """behaviour §11.1 numbers: a number a double cannot hold is matched by its literal, also when the
    event arrives as JSON text (an SQS body, Kinesis data), not rounded to a double on the way."""
    from esm.filtering.decode import filter_sqs

    for number in ("123456789012345678901234567890", "-9223372036854775809", "98765432109876543210"):
        event = '{"a": %s}' % number
        assert compile_filters(['{"a": [%s]}' % number]).matches_json(event)
        assert filter_sqs(compile_filters(['{"body": {"a": [%s]}}' % number]), {"body": event})
        assert not compile_filters(['{"a": [%r]}' % float(number)]).matches_json(event)


def test_deeply_nested_events_are_answered():
    """`esm test-pattern` on an event nested past what JSON parsers and the matcher walk: a clean
    answer or ValueError ("Invalid event"), never a RecursionError traceback."""
    for depth in (900, 1020, 5000):
        event = '{"a":' + "[" * depth + "]" * depth + "}"
        try:
            assert test_pattern('{"a": {"b": ["x"]}}', event) is False
        except ValueError as error:
            assert "nested" in str(error) or "not valid JSON" in str(error)


# Any character, astral ones included (json.dumps writes those as surrogate-escape pairs).
ASTRAL_TEXT = st.text(
    alphabet=st.one_of(st.characters(min_codepoint=0x10000, max_codepoint=0x10FFFF), st.sampled_from("aé*\\")),
    min_size=1,
    max_size=6,
)


@SETTINGS
@given(key=ASTRAL_TEXT, value=ASTRAL_TEXT, operator=st.sampled_from(["", "prefix", "suffix", "equals-ignore-case", "anything-but"]))
def test_surrogate_escaped_patterns_match_like_raw_ones(key: str, value: str, operator: str) -> None:
    """Issue 13 point 4 (behaviour §11 decisions): a pattern written with json.dumps' surrogate
    escapes is the same filter as the one written with the raw characters, in keys and operands,
    on events that carry the characters raw or escaped; the reference agrees."""
    leaf: Any = value if not operator else {operator: value}
    escaped = json.dumps({key: [leaf]})
    raw = json.dumps({key: [leaf]}, ensure_ascii=False)
    both = [compile_filters([escaped]), compile_filters([raw])]
    for event in ({key: value}, {key: value + "x"}, {key: "x" + value}, {key: value.upper()}):
        expected = reference_matches([raw], event)
        for text in (json.dumps(event), json.dumps(event, ensure_ascii=False)):
            for matcher in both:
                assert matcher.matches_json(text) is expected, (escaped, text)
