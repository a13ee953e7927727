"""Property-based tests: the compiled matcher agrees with the reference interpreter.

Hypothesis draws patterns from every operator of behaviour §11 (with ``$or``, nesting and dotted
keys) and events made of the same keys and of values chosen to hit the operators' edges (IP
literals, case pairs, numbers equal by value, arrays of objects for array consistency). Runs are
derandomized and bounded, so CI is deterministic and fast.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esm.filtering import compile_filters
from filter_reference import reference_matches

SETTINGS = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

KEYS = ["a", "b", "c"]
STRINGS = [
    "", "a", "A", "ab", "aB", "abc", "b", "x*y", "file.txt", "FILE.TXT", "init", "initial",
    "10.0.0.1", "10.0.0.255", "10.0.1.7", "::1", "0:0:0:0:0:0:0:1", "2001:db8::1", "\u00e9",
    "\u00c9", "SS", "ss", "\u00df", "\u212a", "k", "300", "null", "true",
]
NUMBERS = [0, 1, -1, 5, 300, 300.0, 0.5, -2.5, 1e-320, 1.5e10, 123456789012345678, 2**53, -0.0]

scalars = st.one_of(
    st.sampled_from(STRINGS),
    st.sampled_from(NUMBERS),
    st.sampled_from([True, False, None]),
)


def _values(depth: int) -> st.SearchStrategy[Any]:
    if depth >= 3:
        return scalars
    inner = st.deferred(lambda: _values(depth + 1))
    objects = st.dictionaries(st.sampled_from(KEYS), inner, min_size=1, max_size=3)
    return st.one_of(
        scalars,
        scalars,
        st.lists(scalars, max_size=3),
        st.lists(objects, min_size=1, max_size=3),  # arrays of objects: array consistency
        objects,
    )


events = st.dictionaries(st.sampled_from(KEYS + ["a.b"]), _values(0), min_size=2, max_size=4)

pattern_strings = st.sampled_from(STRINGS)
wildcards = st.sampled_from(["a*", "*b", "*", "", "a*c", "x\\*y", "*.txt", "*0*", "1*"])
numeric_bounds = st.sampled_from([-5, 0, 0.5, 1, 5, 300, 1e-320])

operands = st.one_of(
    pattern_strings,
    st.sampled_from(NUMBERS[:-4] + [1e-320, 123456789012345678]),
    st.sampled_from([True, False, None]),
    st.builds(lambda p: {"prefix": p}, st.sampled_from(["", "a", "in", "10.", "FI"])),
    st.builds(lambda p: {"suffix": p}, st.sampled_from(["", "b", ".txt", "1"])),
    st.builds(lambda p: {"equals-ignore-case": p}, st.sampled_from(["ab", "\u00c9", "\u00df", "k", "ss", "", "file.txt"])),
    st.builds(lambda kind, p: {kind: {"equals-ignore-case": p}}, st.sampled_from(["prefix", "suffix"]), st.sampled_from(["A", "Fi", "\u00e9", "s", "TXT"])),
    st.builds(lambda p: {"wildcard": p}, wildcards),
    st.builds(lambda op, n: {"numeric": [op, n]}, st.sampled_from(["<", "<=", "=", ">", ">="]), numeric_bounds),
    st.builds(lambda lo, width, a, b: {"numeric": [a, lo, b, lo + width]}, numeric_bounds, st.sampled_from([1, 10, 1000]), st.sampled_from([">", ">="]), st.sampled_from(["<", "<="])),
    st.builds(lambda c: {"cidr": c}, st.sampled_from(["10.0.0.0/24", "10.0.0.1/24", "10.0.0.0/8", "2001:db8::/32", "10.0.0.128/25"])),
    st.builds(lambda e: {"exists": e}, st.booleans()),
    st.builds(lambda v: {"anything-but": v}, st.one_of(pattern_strings, st.sampled_from([1, 5, 300]), st.lists(pattern_strings, min_size=1, max_size=3), st.lists(st.sampled_from([1, 5, 300, 0.5]), min_size=1, max_size=3))),
    st.builds(lambda kind, v: {"anything-but": {kind: v}}, st.sampled_from(["prefix", "suffix"]), st.one_of(st.sampled_from(["a", "in", ".txt"]), st.lists(st.sampled_from(["a", "b", ".txt"]), min_size=1, max_size=2))),
    st.builds(lambda v: {"anything-but": {"equals-ignore-case": v}}, st.one_of(st.sampled_from(["AB", "\u00e9"]), st.lists(st.sampled_from(["a", "\u00c9", "ss"]), min_size=1, max_size=2))),
    st.builds(lambda v: {"anything-but": {"wildcard": v}}, st.one_of(st.sampled_from(["a*", "*.txt"]), st.lists(st.sampled_from(["*b", "1*", "x*"]), min_size=1, max_size=2))),
    st.builds(lambda p: {"exactly": p}, pattern_strings),
)


def _fields(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    leaf = st.lists(operands, min_size=1, max_size=4)
    if depth >= 2:
        value: st.SearchStrategy[Any] = leaf
    else:
        value = st.one_of(leaf, leaf, st.deferred(lambda: _fields(depth + 1)))
    return st.dictionaries(st.sampled_from(KEYS + ["a.b"]), value, min_size=1, max_size=2)


@st.composite
def patterns(draw: st.DrawFn) -> str:
    body = draw(_fields(0))
    if draw(st.integers(0, 5)) == 0:
        body["$or"] = draw(st.lists(_fields(1), min_size=2, max_size=3))
    return json.dumps(body)


@SETTINGS
@given(pattern=patterns(), event=events)
def test_one_filter_agrees_with_the_reference(pattern: str, event: dict[str, Any]) -> None:
    """Every operator, nesting, $or, arrays and array consistency: compiled == reference."""
    assert compile_filters([pattern]).matches(event) == reference_matches([pattern], event)


@SETTINGS
@given(pattern_list=st.lists(patterns(), min_size=0, max_size=4), event=events)
def test_several_filters_are_ored_like_the_reference(pattern_list: list[str], event: dict[str, Any]) -> None:
    """A mapping's filters compiled together match when any of them matches (none: all match)."""
    assert compile_filters(pattern_list).matches(event) == reference_matches(pattern_list, event)


@SETTINGS
@given(pattern_list=st.lists(patterns(), min_size=1, max_size=3), event=events)
def test_matches_json_equals_matches_on_the_parsed_event(pattern_list: list[str], event: dict[str, Any]) -> None:
    """Parsing inside matches_json changes nothing: bytes, text and dict give one answer."""
    matcher = compile_filters(pattern_list)
    blob = orjson.dumps(event)
    expected = matcher.matches(orjson.loads(blob))
    assert matcher.matches_json(blob) == expected
    assert matcher.matches_json(blob.decode()) == expected


@SETTINGS
@given(pattern_list=st.lists(patterns(), min_size=2, max_size=4), event=events)
def test_filter_order_does_not_matter(pattern_list: list[str], event: dict[str, Any]) -> None:
    """One compiled matcher does not depend on the order its filters were given in."""
    assert compile_filters(pattern_list).matches(event) == compile_filters(pattern_list[::-1]).matches(event)


# -- array consistency, with events and patterns drawn to meet often ------------------------------

_small = st.sampled_from(["1", "2"])
_element_keys = st.sampled_from(["x", "y", "z"])


def _elements(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    value: st.SearchStrategy[Any] = _small
    if depth < 1:
        value = st.one_of(_small, _small, st.lists(st.deferred(lambda: _elements(depth + 1)), min_size=1, max_size=2))
    return st.dictionaries(_element_keys, value, min_size=2, max_size=3)


array_events = st.builds(lambda items, top: {"r": items, "t": top}, st.lists(_elements(0), min_size=1, max_size=3), _small)
_ac_operand = st.one_of(
    _small.map(lambda v: [v]),
    st.just([{"exists": True}]),
    st.just([{"exists": False}]),
    _small.map(lambda v: [v, {"exists": False}]),
    _small.map(lambda v: [{"anything-but": v}]),
)
array_patterns = st.builds(
    lambda fields, top: json.dumps({"r": fields, **({"t": top} if top else {})}),
    st.dictionaries(st.sampled_from(["x", "y", "z", "x.y", "y.x"]), _ac_operand, min_size=2, max_size=2),
    st.one_of(st.none(), _small.map(lambda v: [v])),
)


@SETTINGS
@given(pattern=array_patterns, event=array_events)
def test_array_consistency_agrees_with_the_reference(pattern: str, event: dict[str, Any]) -> None:
    """Fields in objects of different elements of one array never combine; exists:false is
    judged against the elements chosen for the fields before it (event-ruler's order)."""
    assert compile_filters([pattern]).matches(event) == reference_matches([pattern], event)
