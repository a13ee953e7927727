"""``matches_json`` reads only the paths the patterns name (esm/filtering/reader.py): its answer
must be the one of matching the whole event as ``parse_event`` reads it, and the documents
``parse_event`` refuses must still be refused (behaviour §11: one reading of numbers and strings)."""

from __future__ import annotations

import pytest

from esm.filtering import compile_filters
from esm.filtering.compiler import parse_event

# One-field filters (decided on the read structs directly) and filters with several fields,
# $or and exists:false (decided by the general walk of the read values).
PATTERN_SETS = [
    ['{"a":{"b":["x", "ü"]}}', '{"a":{"n":[5, 12345678901234567890123, true, null]}}', '{"c":[{"prefix":"pre"}]}'],
    ['{"a":{"b":["x"], "n":[{"numeric":[">",1]}]}}', '{"$or":[{"c":["pre"]},{"d":[{"exists":false}]}]}'],
    ['{"a.b":["x"]}', '{"a":{"b.c":["y"]}}'],
    ['{"a":{"f":[1.5, 0.1234567890123456789]}}'],
]

DOCUMENTS = [
    '{"a":{"b":"x"}}',
    '{"a":{"b":"y","b":"x"}}',  # duplicate keys: the last one counts, as in the full reading
    '{"a":{"b":"x","b":"y"}}',
    '{"a":{"b":"x"},"a":5}',
    '{"a":[{"b":"x"},{"b":"z"}]}',  # an array on the way
    '{"a":{"b":["q","x"]}}',  # an array at the used path
    '{"a":{"b":{"x":1}}}',  # an object at the used path
    '{"a":{"n":5}}',
    '{"a":{"n":5.0}}',
    '{"a":{"n":true}}',
    '{"a":{"n":null}}',
    '{"a":{"n":12345678901234567890123}}',  # past 64 bits: kept exact
    '{"a":{"n":1.2345678901234568e22}}',
    '{"a":{"f":0.1234567890123456789}}',  # 19 digits: the literal decides
    '{"a":{"f":0.12345678901234568}}',
    '{"a":{"f":1e400}}',
    '{"c":"prefix"}',
    '{"c":"\\u0070re"}',  # escapes are read, not compared as text
    '{"a":{"b":"\\u00fc"}}',
    '{"a":{"b":"ü"}}',
    '{"a.b":"x"}',
    '{"a":{"b.c":"y"}}',
    '{"d":1,"c":"pre"}',
    '{"z":"\\ud800","a":{"b":"x"}}',  # a lone surrogate escape: only the standard library reads it
    '{"z":[1,2,{"deep":[3]}],"a":{"b":"x"}}',
    ' {"a":{"b":"x"}} ',
    '[{"a":{"b":"x"}}]',  # not an object: no match
    '"x"',
    '{"a":{"b":"x"}',  # not JSON
    '{"a":{"b":"x"}} x',
    '{"z":"a\tb","a":{"b":"x"}}',  # a raw control character in a string no pattern names
    '{"z":01,"a":{"b":"x"}}',
]


def _expected(matcher, document: str | bytes) -> bool | type[ValueError]:  # type: ignore[no-untyped-def]
    try:
        event = parse_event(document)
    except ValueError:
        return ValueError
    return isinstance(event, dict) and matcher.matches(event)


@pytest.mark.parametrize("patterns", PATTERN_SETS)
def test_reading_only_the_named_paths_answers_as_the_whole_event_does(patterns: list[str]) -> None:
    matcher = compile_filters(patterns)
    for document in DOCUMENTS:
        for data in (document, document.encode("utf-8", "surrogatepass")):
            expected = _expected(matcher, data)
            if expected is ValueError:
                with pytest.raises(ValueError):
                    matcher.matches_json(data)
            else:
                assert matcher.matches_json(data) is expected, (patterns, data)


def test_bad_utf8_anywhere_is_refused_even_in_keys_no_pattern_names() -> None:
    """The whole document must be JSON in UTF-8, as when every key was read."""
    matcher = compile_filters(['{"a":["x"]}'])
    for data in (b'{"z":"\xff","a":"x"}', b'{"z":"\xed\xa0\x80","a":"x"}', b'{"\xff":1,"a":"x"}'):
        with pytest.raises(ValueError):
            matcher.matches_json(data)
    assert matcher.matches_json('{"z":"é","a":"x"}'.encode()) is True


def test_keys_a_struct_cannot_name_are_still_matched() -> None:
    """Keys with a quote, a backslash or a control character are read by the full parse."""
    matcher = compile_filters(['{"a\\"b":["x"]}', '{"c\\\\d":["y"]}', '{"e\\u0001":["z"]}'])
    assert matcher.matches_json(b'{"a\\"b":"x"}') is True
    assert matcher.matches_json(b'{"c\\\\d":"y"}') is True
    assert matcher.matches_json(b'{"e\\u0001":"z"}') is True
    assert matcher.matches_json(b'{"a\\"b":"y"}') is False


def test_deep_paths_are_read() -> None:
    """A path deeper than the written-out decision allows is still read and matched."""
    depth = 40
    pattern, event = '["deep"]', '"deep"'
    for _ in range(depth):
        pattern, event = f'{{"k":{pattern}}}', f'{{"k":{event}}}'
    matcher = compile_filters([pattern])
    assert matcher.matches_json(event) is True
    assert matcher.matches_json(event.replace('"deep"', '"other"')) is False
