"""The public API the CLI and the configuration use (esm.filtering)."""

from __future__ import annotations

import pytest

from esm.filtering import InvalidPatternError, compile_filters, test_pattern
from esm.filtering.compiler import parse_event
from filter_reference import reference_matches_json


def test_an_empty_filter_list_matches_everything() -> None:
    matcher = compile_filters([])
    assert matcher.is_match_all
    assert matcher.matches({"anything": 1}) is True
    assert matcher.matches_json(b'{"x":1}') is True


def test_filters_are_ored() -> None:
    matcher = compile_filters(['{"a":["x"]}', '{"b":["y"]}'])
    assert matcher.matches({"a": "x"}) is True
    assert matcher.matches({"b": "y"}) is True
    assert matcher.matches({"a": "y", "b": "x"}) is False


def test_matches_json_accepts_bytes_and_text() -> None:
    matcher = compile_filters(['{"a":[1]}'])
    assert matcher.matches_json(b'{"a":1}') is True
    assert matcher.matches_json('{"a":1}') is True
    assert matcher.matches_json(bytearray(b'{"a":2}')) is False


def test_matches_json_reads_numbers_beyond_a_double() -> None:
    """Documents orjson refuses (1e400) are still read, with their literal kept."""
    matcher = compile_filters(['{"a":[1e400]}'])
    assert matcher.matches_json(b'{"a":1e400}') is True
    assert matcher.matches_json(b'{"a":1e401}') is False


def test_matches_json_rejects_invalid_json() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        compile_filters(['{"a":[1]}']).matches_json(b"{oops")


def test_a_non_object_event_matches_nothing() -> None:
    matcher = compile_filters(['{"a":[{"exists":false}]}'])
    assert matcher.matches_json(b"[1, 2]") is False
    assert matcher.matches({"b": 1}) is True


def test_test_pattern_answers_one_pattern_against_one_event() -> None:
    assert test_pattern('{"a":["x"]}', '{"a":"x"}') is True
    assert test_pattern('{"a":["x"]}', '{"a":"y"}') is False


def test_test_pattern_reports_a_bad_pattern_with_its_reason() -> None:
    with pytest.raises(InvalidPatternError, match="^Empty arrays are not allowed$"):
        test_pattern('{"a":[]}', "{}")


@pytest.mark.parametrize("event", ["{oops", "[1]", '"text"'])
def test_test_pattern_rejects_an_event_that_is_not_a_json_object(event: str) -> None:
    with pytest.raises(ValueError) as raised:
        test_pattern('{"a":["x"]}', event)
    assert not isinstance(raised.value, InvalidPatternError)
    assert "JSON" in str(raised.value)


def test_compile_reports_the_first_invalid_filter() -> None:
    with pytest.raises(InvalidPatternError, match="^Filter is not an object$"):
        compile_filters(['{"a":["x"]}', "[1]", '{"a":[]}'])


def test_repeated_use_gives_the_same_answers() -> None:
    """The matcher keeps no state between events (per-event buffers are not reused wrongly)."""
    matcher = compile_filters(['{"a":{"b":["x"],"c":["y"]}}', '{"d":[{"exists":false}],"e":[1]}'])
    events = [
        ({"a": [{"b": "x"}, {"c": "y"}]}, False),
        ({"a": [{"b": "x", "c": "y"}]}, True),
        ({"e": 1}, True),
        ({"e": 1, "d": 0}, False),
    ]
    for _ in range(3):
        for event, expected in events:
            assert matcher.matches(event) is expected


NUMBER_CASES = [
    ('{"a":[0.1234567890123456789]}', '{"a":0.1234567890123456789,"b":[1.5,2]}'),
    ('{"a":[0.1234567890123456789]}', '{"b":0.1234567890123456789,"a":0.1234567890123456789}'),
    ('{"a":[12345678901234567890123]}', '{"a":12345678901234567890123}'),
    ('{"a":[1.2345678901234568e22]}', '{"a":12345678901234567890123}'),
    ('{"a":[{"numeric":[">",1]}]}', '{"a":12345678901234567890123}'),
    ('{"a":[{"anything-but":[1.2345678901234568e22]}]}', '{"a":12345678901234567890123}'),
    ('{"a":["x"]}', '{"a":"x","b":12345678901234567890123}'),
    ('{"a":[1.5]}', '{"a":1.5,"b":12345678901234567890123}'),
]


@pytest.mark.parametrize(("pattern", "event"), NUMBER_CASES)
def test_matches_json_reads_long_numbers_as_parse_event_does(pattern: str, event: str) -> None:
    """Issue 13 point 5 reads events with orjson and scans for 19-digit runs only when a float
    reached by the patterns could be one; the answer must be the one ``parse_event`` (which
    keeps such numbers by their literal, behaviour §11.1 numeric precision) gives."""
    matcher = compile_filters([pattern])
    expected = matcher.matches(parse_event(event))
    assert matcher.matches_json(event) is expected
    assert matcher.matches_json(event.encode()) is expected
    assert matcher.matches_json(event) is reference_matches_json([pattern], event)
