"""behaviour §11 "Decisions for esm": a pattern string written with JSON surrogate escapes
(``"\\ud83d\\ude80"``, as ``json.dumps`` writes an emoji by default) is the same character as the
emoji itself, in every place the pattern reader decodes a ``\\u`` escape: value strings, keys (plain
and dotted), and the operands of exactly, prefix, suffix, equals-ignore-case (and its prefix and
suffix forms), wildcard and every anything-but form. Events may carry the character raw or as the
same escapes. A surrogate escape that is not half of a pair (a lone first or second part, or the
two parts in the wrong order) is an InvalidPatternError naming the code unit (issue 13, point 4).
"""

from __future__ import annotations

import json

import pytest

from esm.filtering import InvalidPatternError, compile_filters, test_pattern, validate_pattern
from esm.filtering.compiler import parse_event
from filter_reference import load_event, reference_matches

ROCKET = "\U0001F680"  # outside the Basic Multilingual Plane: two UTF-16 code units
ESCAPED = "\\ud83d\\ude80"  # how json.dumps writes it by default

# (place in the pattern, pattern written with escapes, event that matches, event that does not)
PLACES: list[tuple[str, str, dict, dict]] = [
    ("an exact string", '{"a":["go ' + ESCAPED + '"]}', {"a": "go " + ROCKET}, {"a": "go "}),
    ("a key", '{"' + ESCAPED + '":["x"]}', {ROCKET: "x"}, {"a": "x"}),
    ("a nested key", '{"a":{"' + ESCAPED + '":["x"]}}', {"a": {ROCKET: "x"}}, {"a": {"b": "x"}}),
    ("a dotted key", '{"a.' + ESCAPED + '":["x"]}', {"a": {ROCKET: "x"}}, {"a": {"x": "x"}}),
    ("exactly", '{"a":[{"exactly":"' + ESCAPED + '"}]}', {"a": ROCKET}, {"a": "x"}),
    ("prefix", '{"a":[{"prefix":"' + ESCAPED + '"}]}', {"a": ROCKET + " launch"}, {"a": "launch " + ROCKET}),
    ("suffix", '{"a":[{"suffix":"' + ESCAPED + '"}]}', {"a": "launch " + ROCKET}, {"a": ROCKET + " launch"}),
    ("equals-ignore-case", '{"a":[{"equals-ignore-case":"Go ' + ESCAPED + '"}]}', {"a": "gO " + ROCKET}, {"a": "go"}),
    ("prefix equals-ignore-case", '{"a":[{"prefix":{"equals-ignore-case":"' + ESCAPED + 'X"}}]}', {"a": ROCKET + "xy"}, {"a": "x" + ROCKET}),
    ("suffix equals-ignore-case", '{"a":[{"suffix":{"equals-ignore-case":"X' + ESCAPED + '"}}]}', {"a": "yx" + ROCKET}, {"a": ROCKET + "x"}),
    ("wildcard", '{"a":[{"wildcard":"' + ESCAPED + '*!"}]}', {"a": ROCKET + " go!"}, {"a": "go!"}),
    ("a wildcard that is only the character", '{"a":[{"wildcard":"' + ESCAPED + '"}]}', {"a": ROCKET}, {"a": "x"}),
    ("anything-but a string", '{"a":[{"anything-but":"' + ESCAPED + '"}]}', {"a": "x"}, {"a": ROCKET}),
    ("anything-but a list", '{"a":[{"anything-but":["x","' + ESCAPED + '"]}]}', {"a": "y"}, {"a": ROCKET}),
    ("anything-but prefix", '{"a":[{"anything-but":{"prefix":"' + ESCAPED + '"}}]}', {"a": "x" + ROCKET}, {"a": ROCKET + "x"}),
    ("anything-but suffix", '{"a":[{"anything-but":{"suffix":"' + ESCAPED + '"}}]}', {"a": ROCKET + "x"}, {"a": "x" + ROCKET}),
    ("anything-but equals-ignore-case", '{"a":[{"anything-but":{"equals-ignore-case":"X' + ESCAPED + '"}}]}', {"a": "y" + ROCKET}, {"a": "x" + ROCKET}),
    ("anything-but wildcard", '{"a":[{"anything-but":{"wildcard":"*' + ESCAPED + '"}}]}', {"a": ROCKET + "x"}, {"a": "x" + ROCKET}),
    ("a $or branch", '{"$or":[{"a":["' + ESCAPED + '"]},{"b":["' + ESCAPED + '"]}]}', {"b": ROCKET}, {"b": "x"}),
]


def _event_forms(event: dict) -> list[str]:
    """The event as JSON text with the character raw (orjson's and ``ensure_ascii=False``'s
    spelling) and with surrogate escapes (``json.dumps``' default)."""
    return [json.dumps(event, ensure_ascii=False), json.dumps(event)]


@pytest.mark.parametrize(("place", "pattern", "hit", "miss"), PLACES, ids=[case[0] for case in PLACES])
def test_surrogate_escapes_in_a_pattern_match_the_character(place: str, pattern: str, hit: dict, miss: dict) -> None:
    """Issue 13 point 4: the escaped pair compiles to the one character, so the event holding it
    matches (raw or escaped, parsed or as JSON text) and the other event does not."""
    assert "\\ud83d" in pattern  # the pattern really is written with escapes
    matcher = compile_filters([pattern])
    for event, expected in ((hit, True), (miss, False)):
        assert matcher.matches(event) is expected, (place, event)
        for text in _event_forms(event):
            assert matcher.matches_json(text) is expected, (place, text)
            assert matcher.matches_json(text.encode("utf-8")) is expected, (place, text)
            assert matcher.matches(parse_event(text)) is expected, (place, text)
            assert test_pattern(pattern, text) is expected, (place, text)
            assert reference_matches([pattern], load_event(text)) is expected, (place, text)


def test_a_json_dumps_pattern_is_the_same_filter_as_the_raw_one() -> None:
    """A pattern built with json.dumps (escapes) and one written with the raw character accept
    the same events."""
    escaped = json.dumps({"detail": {"icon": [ROCKET, {"prefix": ROCKET + "-"}]}})
    raw = json.dumps({"detail": {"icon": [ROCKET, {"prefix": ROCKET + "-"}]}}, ensure_ascii=False)
    assert "\\ud83d\\ude80" in escaped and ROCKET in raw
    events = [{"detail": {"icon": value}} for value in (ROCKET, ROCKET + "-1", "x", ROCKET + "x", "\ud83d")]
    for event in events:
        assert compile_filters([escaped]).matches(event) is compile_filters([raw]).matches(event), event


def test_wildcard_positions_count_the_character_as_four_utf8_bytes() -> None:
    """Wildcard errors give UTF-8 byte positions (behaviour §11.2): the joined character
    is 4 bytes, as event-ruler counts it, not two 3-byte halves."""
    with pytest.raises(InvalidPatternError) as raised:
        validate_pattern('{"a":[{"wildcard":"' + ESCAPED + '**"}]}')
    assert str(raised.value) == "Consecutive wildcard characters at pos 5"


def test_other_escapes_beside_a_pair_still_decode() -> None:
    """Plain escapes next to a pair are unchanged: ``\\u0041`` is A, ``\\n`` a newline."""
    matcher = compile_filters(['{"a":["\\u0041' + ESCAPED + '\\n\\u00e9"]}'])
    assert matcher.matches({"a": "A" + ROCKET + "\n\u00e9"}) is True
    assert matcher.matches({"a": "A\ud83d\ude80\n\u00e9"}) is False  # the unjoined halves are not the character


# Lone and reversed halves are rejected patterns: their cases are in test_filter_validation.py's
# INVALID table (issue 13 point 4), checked by the same test as every other invalid pattern.


def test_a_malformed_escape_after_a_first_part_reports_the_escape() -> None:
    """Bad JSON is reported as bad JSON first (Jackson's reading order), even after a first part."""
    with pytest.raises(InvalidPatternError) as raised:
        validate_pattern('{"a":["\\ud83d\\uZZZZ"]}')
    assert str(raised.value) == (
        "Unexpected character ('Z' (code 90)): expected a hex-digit for character escape sequence"
    )
