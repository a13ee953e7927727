"""behaviour §11.1, row by row: one case per rule and edge case of the pattern language.

Each case is (rule, pattern, event, expected). The compiled matcher (through ``matches`` and
through ``matches_json``) and the reference interpreter must both give ``expected``. Events are
JSON text so that number spellings such as ``3e2`` reach the matcher as written.
"""

from __future__ import annotations

import pytest

from esm.filtering import compile_filters
from esm.filtering.compiler import parse_event
from filter_reference import load_event, reference_matches

CASES: list[tuple[str, str, str, bool]] = [
    # -- general rules ---------------------------------------------------------------------
    ("a field matches when any entry of its list matches", '{"a":["x","y"]}', '{"a":"y"}', True),
    ("a field does not match when no entry matches", '{"a":["x","y"]}', '{"a":"z"}', False),
    ("fields combine with AND: all present and matching", '{"a":["x"],"b":["y"]}', '{"a":"x","b":"y"}', True),
    ("fields combine with AND: one failing field fails the pattern", '{"a":["x"],"b":["y"]}', '{"a":"x","b":"z"}', False),
    ("fields combine with AND: a missing field fails the pattern", '{"a":["x"],"b":["y"]}', '{"a":"x"}', False),
    ("nested pattern objects match nested event objects", '{"a":{"b":["x"]}}', '{"a":{"b":"x"}}', True),
    ("a dotted pattern key matches a nested event object", '{"a.b":["x"]}', '{"a":{"b":"x"}}', True),
    ("a nested pattern matches a dotted event key", '{"a":{"b":["x"]}}', '{"a.b":"x"}', True),
    ("a dotted pattern key matches a dotted event key", '{"a.b":["x"]}', '{"a.b":"x"}', True),
    ("dotted keys join at any level", '{"a":{"b.c":["x"]}}', '{"a.b":{"c":"x"}}', True),
    ("keys are case-sensitive", '{"A":["x"]}', '{"a":"x"}', False),
    ("duplicate keys: the last one wins (first value no longer matches)", '{"a":["x"],"a":["y"]}', '{"a":"x"}', False),
    ("duplicate keys: the last one wins (last value matches)", '{"a":["x"],"a":["y"]}', '{"a":"y"}', True),
    ("a repeated object key adds its paths (paths, not objects, override)", '{"a":{"b":["x"]},"a":{"c":["y"]}}', '{"a":{"b":"x","c":"y"}}', True),
    ("event values keep their JSON form: a string pattern never equals a number", '{"a":["300"]}', '{"a":300}', False),
    ("event values keep their JSON form: a number pattern never equals a string", '{"a":[300]}', '{"a":"300"}', False),
    ("an event that is missing the field does not match", '{"a":["x"]}', '{"b":"x"}', False),
    # -- exact strings -----------------------------------------------------------------------
    ("exact strings are byte-exact (case)", '{"a":["abc"]}', '{"a":"ABC"}', False),
    ("exact strings are not normalized (precomposed vs decomposed)", '{"a":["\\u00e9"]}', '{"a":"e\\u0301"}', False),
    ("exact strings with JSON escapes compare decoded", '{"a":["\\u0041"]}', '{"a":"A"}', True),
    ("the empty string matches the empty string", '{"a":[""]}', '{"a":""}', True),
    ("the empty string never matches null", '{"a":[""]}', '{"a":null}', False),
    ("the empty string does not match a missing field", '{"a":[""]}', '{}', False),
    ("an IPv6 literal matches other spellings of the same address", '{"a":["::1"]}', '{"a":"0:0:0:0:0:0:0:1"}', True),
    ("an IPv4 literal matches the same address", '{"a":["10.0.0.1"]}', '{"a":"10.0.0.1"}', True),
    ("an IPv4 literal does not match another address", '{"a":["10.0.0.1"]}', '{"a":"10.0.0.2"}', False),
    ("an IPv4 literal with leading zeros reads as decimal (Java)", '{"a":["010.0.0.1"]}', '{"a":"10.0.0.1"}', True),
    ("exactly matches the string as written", '{"a":[{"exactly":"x"}]}', '{"a":"x"}', True),
    ("exactly does not match another string", '{"a":[{"exactly":"x"}]}', '{"a":"y"}', False),
    # -- exact numbers -------------------------------------------------------------------------
    ("300 matches 300.0 (AWS number_comparison_float)", '{"a":[300]}', '{"a":300.0}', True),
    ("300 matches 3e2", '{"a":[300]}', '{"a":3e2}', True),
    ("3.0e2 in a pattern matches 300", '{"a":[3.0e2]}', '{"a":300}', True),
    ("300 does not match 301", '{"a":[300]}', '{"a":301}', False),
    ("-0 equals 0", '{"a":[-0]}', '{"a":0}', True),
    ("0.1 matches 0.1", '{"a":[0.1]}', '{"a":0.1}', True),
    ("a number beyond a double's precision matches its own literal", '{"a":[123456789012345678]}', '{"a":123456789012345678}', True),
    ("a number beyond a double's precision does not match its neighbour", '{"a":[123456789012345678]}', '{"a":123456789012345679}', False),
    ("a number beyond a double's range matches its own literal", '{"a":[1e400]}', '{"a":1e400}', True),
    # -- true, false, null ----------------------------------------------------------------------
    ("true matches true", '{"a":[true]}', '{"a":true}', True),
    ("true does not match the string true", '{"a":[true]}', '{"a":"true"}', False),
    ("true does not match 1", '{"a":[true]}', '{"a":1}', False),
    ("false does not match 0", '{"a":[false]}', '{"a":0}', False),
    ("null matches null", '{"a":[null]}', '{"a":null}', True),
    ("null does not match the string null", '{"a":[null]}', '{"a":"null"}', False),
    ("null does not match a missing field", '{"a":[null]}', '{}', False),
    ("null does not match an empty array (AWS arrays_empty_null_NEG)", '{"a":[null]}', '{"a":[]}', False),
    # -- prefix -------------------------------------------------------------------------------------
    ("prefix matches a string that starts with it", '{"a":[{"prefix":"us-"}]}', '{"a":"us-east-1"}', True),
    ("prefix does not match another string", '{"a":[{"prefix":"us-"}]}', '{"a":"eu-west-1"}', False),
    ("prefix applies to strings only: 12 does not match prefix 1", '{"a":[{"prefix":"1"}]}', '{"a":12}', False),
    ("an empty prefix matches any string (AWS content_prefix_empty)", '{"a":[{"prefix":""}]}', '{"a":"anything"}', True),
    ("an empty prefix matches the empty string", '{"a":[{"prefix":""}]}', '{"a":""}', True),
    ("an empty prefix does not match null", '{"a":[{"prefix":""}]}', '{"a":null}', False),
    ("prefix with equals-ignore-case folds case", '{"a":[{"prefix":{"equals-ignore-case":"US-"}}]}', '{"a":"us-east"}', True),
    ("prefix with equals-ignore-case still needs the prefix", '{"a":[{"prefix":{"equals-ignore-case":"US-"}}]}', '{"a":"eu-us-"}', False),
    # -- suffix -------------------------------------------------------------------------------------
    ("suffix matches a string that ends with it", '{"a":[{"suffix":".png"}]}', '{"a":"cat.png"}', True),
    ("suffix is case-sensitive", '{"a":[{"suffix":".png"}]}', '{"a":"cat.PNG"}', False),
    ("suffix applies to strings only", '{"a":[{"suffix":"5"}]}', '{"a":15}', False),
    ("suffix with equals-ignore-case folds case", '{"a":[{"suffix":{"equals-ignore-case":".png"}}]}', '{"a":"cat.PNG"}', True),
    # -- equals-ignore-case -------------------------------------------------------------------------
    ("equals-ignore-case matches another casing", '{"a":[{"equals-ignore-case":"Hello"}]}', '{"a":"hELLO"}', True),
    ("equals-ignore-case needs the whole string", '{"a":[{"equals-ignore-case":"Hello"}]}', '{"a":"hello!"}', False),
    ("equals-ignore-case of the empty string matches only the empty string", '{"a":[{"equals-ignore-case":""}]}', '{"a":""}', True),
    ("equals-ignore-case of the empty string does not match text", '{"a":[{"equals-ignore-case":""}]}', '{"a":"x"}', False),
    ("equals-ignore-case applies to strings only", '{"a":[{"equals-ignore-case":"5"}]}', '{"a":5}', False),
    ("equals-ignore-case is not casefold: k does not match the Kelvin sign", '{"a":[{"equals-ignore-case":"k"}]}', '{"a":"\\u212a"}', False),
    ("equals-ignore-case: sharp s matches its upper case SS", '{"a":[{"equals-ignore-case":"\\u00df"}]}', '{"a":"SS"}', True),
    ("equals-ignore-case: sharp s does not match ss", '{"a":[{"equals-ignore-case":"\\u00df"}]}', '{"a":"ss"}', False),
    ("equals-ignore-case: dotted capital I matches its two-character lower case", '{"a":[{"equals-ignore-case":"\\u0130"}]}', '{"a":"i\\u0307"}', True),
    ("equals-ignore-case folds non-ASCII letters", '{"a":[{"equals-ignore-case":"\\u00e9t\\u00e9"}]}', '{"a":"\\u00c9T\\u00c9"}', True),
    # -- wildcard -----------------------------------------------------------------------------------
    ("a wildcard star matches zero characters", '{"a":[{"wildcard":"*hello"}]}', '{"a":"hello"}', True),
    ("a wildcard star matches many characters", '{"a":[{"wildcard":"a*b"}]}', '{"a":"aXYZb"}', True),
    ("a wildcard must match the whole string", '{"a":[{"wildcard":"a*b"}]}', '{"a":"aXbc"}', False),
    ("an escaped star is a literal star", '{"a":[{"wildcard":"a\\\\*b"}]}', '{"a":"a*b"}', True),
    ("an escaped star does not match other characters", '{"a":[{"wildcard":"a\\\\*b"}]}', '{"a":"aXb"}', False),
    ("an escaped backslash is a literal backslash", '{"a":[{"wildcard":"a\\\\\\\\b"}]}', '{"a":"a\\\\b"}', True),
    ("an empty wildcard matches only the empty string", '{"a":[{"wildcard":""}]}', '{"a":""}', True),
    ("an empty wildcard does not match text", '{"a":[{"wildcard":""}]}', '{"a":"x"}', False),
    ("a wildcard applies to strings only", '{"a":[{"wildcard":"*"}]}', '{"a":5}', False),
    ("a lone star matches the empty string", '{"a":[{"wildcard":"*"}]}', '{"a":""}', True),
    ("a wildcard can repeat a piece", '{"a":[{"wildcard":"/Users/*/dir/dir/doc.txt"}]}', '{"a":"/Users/me/dir/dir/dir/doc.txt"}', True),
    # -- anything-but -------------------------------------------------------------------------------
    ("anything-but a string matches another string", '{"a":[{"anything-but":"s"}]}', '{"a":"t"}', True),
    ("anything-but a string does not match that string", '{"a":[{"anything-but":"s"}]}', '{"a":"s"}', False),
    ("anything-but matches null (AWS)", '{"a":[{"anything-but":"s"}]}', '{"a":null}', True),
    ("anything-but strings matches booleans", '{"a":[{"anything-but":"s"}]}', '{"a":true}', True),
    ("anything-but strings matches numbers", '{"a":[{"anything-but":["s","t"]}]}', '{"a":5}', True),
    ("anything-but does not match a missing field (AWS)", '{"a":[{"anything-but":"s"}]}', '{}', False),
    ("anything-but numbers compares by value", '{"a":[{"anything-but":[1,2]}]}', '{"a":1.0}', False),
    ("anything-but numbers matches other numbers", '{"a":[{"anything-but":[1,2]}]}', '{"a":3}', True),
    ("anything-but numbers matches strings", '{"a":[{"anything-but":[1,2]}]}', '{"a":"1"}', True),
    ("anything-but a single number", '{"a":[{"anything-but":5}]}', '{"a":5}', False),
    ("anything-but on an array is tested per element: one other element matches", '{"a":[{"anything-but":"x"}]}', '{"a":["x","y"]}', True),
    ("anything-but on an array: only excluded elements", '{"a":[{"anything-but":"x"}]}', '{"a":["x"]}', False),
    ("anything-but on an empty array: nothing present", '{"a":[{"anything-but":"x"}]}', '{"a":[]}', False),
    ("anything-but compares strings as strings, not as IP addresses", '{"a":[{"anything-but":"10.0.0.1"}]}', '{"a":"10.0.0.01"}', True),
    ("anything-but prefix excludes strings with the prefix", '{"a":[{"anything-but":{"prefix":"init"}}]}', '{"a":"initial"}', False),
    ("anything-but prefix matches other strings", '{"a":[{"anything-but":{"prefix":"init"}}]}', '{"a":"other"}', True),
    ("anything-but prefix matches numbers (AWS)", '{"a":[{"anything-but":{"prefix":"init"}}]}', '{"a":12}', True),
    ("anything-but prefix matches null", '{"a":[{"anything-but":{"prefix":"init"}}]}', '{"a":null}', True),
    ("anything-but prefix accepts a list (AWS content_anything_prefix_list)", '{"a":[{"anything-but":{"prefix":["a","b"]}}]}', '{"a":"bee"}', False),
    ("anything-but prefix list matches strings outside it", '{"a":[{"anything-but":{"prefix":["a","b"]}}]}', '{"a":"cat"}', True),
    ("anything-but suffix excludes strings with the suffix", '{"a":[{"anything-but":{"suffix":".txt"}}]}', '{"a":"a.txt"}', False),
    ("anything-but suffix matches other strings", '{"a":[{"anything-but":{"suffix":".txt"}}]}', '{"a":"a.png"}', True),
    ("anything-but equals-ignore-case excludes any casing", '{"a":[{"anything-but":{"equals-ignore-case":"Ab"}}]}', '{"a":"aB"}', False),
    ("anything-but equals-ignore-case list matches others", '{"a":[{"anything-but":{"equals-ignore-case":["Ab","cd"]}}]}', '{"a":"x"}', True),
    ("anything-but wildcard excludes matching strings", '{"a":[{"anything-but":{"wildcard":"*.txt"}}]}', '{"a":"a.txt"}', False),
    ("anything-but wildcard list matches others (AWS content_anything_wildcard_list)", '{"a":[{"anything-but":{"wildcard":["*.txt","*.md"]}}]}', '{"a":"a.png"}', True),
    ("anything-but with an empty wildcard excludes only the empty string", '{"a":[{"anything-but":{"wildcard":""}}]}', '{"a":""}', False),
    ("anything-but with an empty equals-ignore-case matches text", '{"a":[{"anything-but":{"equals-ignore-case":""}}]}', '{"a":"x"}', True),
    # -- numeric -------------------------------------------------------------------------------------
    ("numeric < is strict", '{"a":[{"numeric":["<",5]}]}', '{"a":5}', False),
    ("numeric < matches smaller numbers", '{"a":[{"numeric":["<",5]}]}', '{"a":4.9}', True),
    ("numeric <= includes the bound", '{"a":[{"numeric":["<=",5]}]}', '{"a":5}', True),
    ("numeric = compares by value", '{"a":[{"numeric":["=",5]}]}', '{"a":5.0}', True),
    ("numeric > is strict", '{"a":[{"numeric":[">",5]}]}', '{"a":5}', False),
    ("numeric >= includes the bound", '{"a":[{"numeric":[">=",5]}]}', '{"a":5}', True),
    ("a range includes its closed top", '{"a":[{"numeric":[">",0,"<=",5]}]}', '{"a":5}', True),
    ("a range excludes its open bottom", '{"a":[{"numeric":[">",0,"<=",5]}]}', '{"a":0}', False),
    ("a range includes its closed bottom", '{"a":[{"numeric":[">=",0,"<",5]}]}', '{"a":0}', True),
    ("a range excludes its open top", '{"a":[{"numeric":[">=",0,"<",5]}]}', '{"a":5}', False),
    ("numeric does not match a numeric string", '{"a":[{"numeric":[">",0]}]}', '{"a":"3"}', False),
    ("numeric does not match null (AWS)", '{"a":[{"numeric":[">",0]}]}', '{"a":null}', False),
    ("numeric does not match booleans", '{"a":[{"numeric":[">",0]}]}', '{"a":true}', False),
    ("numeric handles subnormal numbers exactly", '{"a":[{"numeric":["=",1e-320]}]}', '{"a":1e-320}', True),
    ("numeric ignores numbers that are not exact as a double", '{"a":[{"numeric":[">",0]}]}', '{"a":123456789012345678}', False),
    ("numeric handles negative ranges", '{"a":[{"numeric":[">",-10,"<",-5]}]}', '{"a":-7.5}', True),
    ("numeric on an array matches when one element is in range", '{"a":[{"numeric":[">",10]}]}', '{"a":[1,20]}', True),
    # -- cidr --------------------------------------------------------------------------------------
    ("cidr matches an address in the block", '{"a":[{"cidr":"10.0.0.0/24"}]}', '{"a":"10.0.0.255"}', True),
    ("cidr does not match an address outside the block", '{"a":[{"cidr":"10.0.0.0/24"}]}', '{"a":"10.0.1.0"}', False),
    ("cidr applies to strings only: 123 does not match (AWS)", '{"a":[{"cidr":"0.0.0.0/1"}]}', '{"a":123}', False),
    ("cidr does not match text that is not an address", '{"a":[{"cidr":"10.0.0.0/8"}]}', '{"a":"hello"}', False),
    ("cidr with host bits set covers the whole block (low end)", '{"a":[{"cidr":"10.0.0.1/24"}]}', '{"a":"10.0.0.0"}', True),
    ("cidr with host bits set covers the whole block (high end)", '{"a":[{"cidr":"10.0.0.1/24"}]}', '{"a":"10.0.0.255"}', True),
    ("cidr IPv6 matches an address in the block", '{"a":[{"cidr":"2001:db8::/32"}]}', '{"a":"2001:db8:ffff::1"}', True),
    ("cidr IPv6 does not match outside the block", '{"a":[{"cidr":"2001:db8::/32"}]}', '{"a":"2001:db9::"}', False),
    ("an IPv4 block does not match an IPv6 address", '{"a":[{"cidr":"10.0.0.0/8"}]}', '{"a":"::1"}', False),
    ("an IPv4-mapped IPv6 address reads as IPv4 (Java)", '{"a":[{"cidr":"10.0.0.0/8"}]}', '{"a":"::ffff:a00:1"}', True),
    # -- exists ------------------------------------------------------------------------------------
    ("exists true matches a present value", '{"a":[{"exists":true}]}', '{"a":"x"}', True),
    ("exists true: null counts as present", '{"a":[{"exists":true}]}', '{"a":null}', True),
    ("exists true does not match a missing field", '{"a":[{"exists":true}]}', '{}', False),
    ("exists true: an empty array counts as absent (AWS exists_list_empty_NEG)", '{"a":[{"exists":true}]}', '{"a":[]}', False),
    ("exists true: an empty object counts as absent", '{"a":[{"exists":true}]}', '{"a":{}}', False),
    ("exists applies to leaves only: an object does not exist (AWS exists_dynamodb_NEG)", '{"a":[{"exists":true}]}', '{"a":{"S":"x"}}', False),
    ("exists true: an array with a leaf value exists", '{"a":[{"exists":true}]}', '{"a":[1,{"b":1}]}', True),
    ("exists true: an array of objects only does not exist", '{"a":[{"exists":true}]}', '{"a":[{"b":1}]}', False),
    ("exists true matches when one element of a list has the key (AWS list_within_dict)", '{"d":{"list":{"id":[{"exists":true}]}}}', '{"d":{"list":[{"k":"v"},{"id":"x"},{"k":"w"}]}}', True),
    ("exists false matches a missing field", '{"a":[{"exists":false}]}', '{"b":1}', True),
    ("exists false: null counts as present", '{"a":[{"exists":false}]}', '{"a":null}', False),
    ("exists false: an empty array counts as absent", '{"a":[{"exists":false}]}', '{"a":[]}', True),
    ("exists false: an object-valued field counts as absent", '{"a":[{"exists":false}]}', '{"a":{"b":1}}', True),
    ("exists false matches through missing parents", '{"a":{"b":[{"exists":false}]}}', '{}', True),
    ("exists false matches through a parent that is a leaf", '{"a":{"b":[{"exists":false}]}}', '{"a":5}', True),
    ("exists false does not match a present nested field", '{"a":{"b":[{"exists":false}]}}', '{"a":{"b":0}}', False),
    ("exists false with other fields", '{"a":[{"exists":false}],"b":["x"]}', '{"b":"x"}', True),
    ("a value or absence: the value", '{"a":["x",{"exists":false}]}', '{"a":"x"}', True),
    ("a value or absence: absence", '{"a":["x",{"exists":false}]}', '{}', True),
    ("a value or absence: another value", '{"a":["x",{"exists":false}]}', '{"a":"y"}', False),
    # -- $or -----------------------------------------------------------------------------------------
    ("$or matches when one branch matches", '{"$or":[{"a":["x"]},{"b":["y"]}]}', '{"b":"y"}', True),
    ("$or does not match when no branch matches", '{"$or":[{"a":["x"]},{"b":["y"]}]}', '{"a":"y","b":"x"}', False),
    ("$or with a sibling needs the sibling", '{"c":["z"],"$or":[{"a":["x"]},{"b":["y"]}]}', '{"b":"y"}', False),
    ("$or with a sibling matches with it", '{"c":["z"],"$or":[{"a":["x"]},{"b":["y"]}]}', '{"b":"y","c":"z"}', True),
    ("$or branches can have several fields", '{"$or":[{"a":["x"],"b":["y"]},{"c":["z"]}]}', '{"a":"x"}', False),
    ("nested $or forks again", '{"$or":[{"a":["x"]},{"$or":[{"b":["y"]},{"c":["z"]}]}]}', '{"c":"z"}', True),
    ("$or inside a nested object keeps the path", '{"a":{"$or":[{"b":[1]},{"c":[2]}]}}', '{"a":{"c":2}}', True),
    ("a field after $or applies to every branch", '{"$or":[{"a":["x"]},{"b":["y"]}],"c":["z"]}', '{"a":"x"}', False),
    ("a $or branch overrides an earlier field with the same path", '{"a":["x"],"$or":[{"a":["y"]},{"b":["z"]}]}', '{"a":"y"}', True),
    ("$or with exists", '{"$or":[{"a":[{"exists":true}]},{"b":[{"exists":false}]}]}', '{"c":1}', True),
    ("$or with anything-but", '{"$or":[{"a":[{"anything-but":"x"}]},{"b":["y"]}]}', '{"a":"x"}', False),
    # -- arrays in events ----------------------------------------------------------------------------
    ("an array field matches when any element matches", '{"a":["x"]}', '{"a":["y","x"]}', True),
    ("an array field does not match when no element matches", '{"a":["x"]}', '{"a":["y","z"]}', False),
    ("arrays of objects are flattened", '{"a":{"b":["x"]}}', '{"a":[{"b":"y"},{"b":"x"}]}', True),
    ("nested arrays are flattened", '{"a":["x"]}', '{"a":[["y"],["x"]]}', True),
    ("array consistency: fields from different elements do not combine", '{"a":{"b":["x"],"c":["y"]}}', '{"a":[{"b":"x"},{"c":"y"}]}', False),
    ("array consistency: fields from the same element combine", '{"a":{"b":["x"],"c":["y"]}}', '{"a":[{"b":"z","c":"q"},{"b":"x","c":"y"}]}', True),
    ("array consistency: a field outside the array combines with any element", '{"a":{"b":["x"]},"d":["z"]}', '{"a":[{"b":"x"}],"d":"z"}', True),
    ("array consistency holds through nested arrays", '{"a":{"b":{"c":["x"],"d":["y"]}}}', '{"a":[{"b":[{"c":"x"},{"d":"y"}]}]}', False),
    ("array consistency: elements of an inner array of one element combine with it", '{"a":{"b":["x"],"c":{"d":["y"]}}}', '{"a":[{"b":"x","c":[{"d":"y"}]}]}', True),
    ("exists false is judged against the elements of earlier fields (event-ruler order)", '{"items":{"atype":["book"],"discount":[{"exists":false}]}}', '{"items":[{"atype":"pen","discount":5},{"atype":"book"}]}', True),
    ("exists false before its sibling in path order sees every element (event-ruler order)", '{"items":{"type":["book"],"discount":[{"exists":false}]}}', '{"items":[{"type":"pen","discount":5},{"type":"book"}]}', False),
    # -- empty patterns ------------------------------------------------------------------------------
    ("the empty pattern matches everything (AWS accepts it)", "{}", '{"a":1}', True),
    ("an empty object value adds no condition", '{"a":{}}', '{"b":1}', True),
    ("an empty object value beside a real field", '{"a":{},"b":["x"]}', '{"b":"y"}', False),
    ("an empty $or branch matches everything", '{"$or":[{},{"b":["x"]}]}', '{"c":1}', True),
]


@pytest.mark.parametrize(("rule", "pattern", "event", "expected"), CASES, ids=[case[0] for case in CASES])
def test_language_rule(rule: str, pattern: str, event: str, expected: bool) -> None:
    matcher = compile_filters([pattern])
    assert matcher.matches(parse_event(event)) is expected
    assert matcher.matches_json(event) is expected
    assert matcher.matches_json(event.encode()) is expected
    assert reference_matches([pattern], load_event(event)) is expected


def test_rule_table_covers_both_outcomes_for_each_operator() -> None:
    """A table whose cases all say True (or all False) for an operator cannot catch a matcher
    that always answers one way; each operator group needs both outcomes."""
    groups = {
        "prefix": ['"prefix"'], "suffix": ['"suffix"'], "equals-ignore-case": ['"equals-ignore-case"'],
        "wildcard": ['"wildcard"'], "anything-but": ['"anything-but"'], "numeric": ['"numeric"'],
        "cidr": ['"cidr"'], "exists": ['"exists"'], "$or": ['"$or"'],
    }
    for name, needles in groups.items():
        outcomes = {expected for _, pattern, _, expected in CASES if any(n in pattern for n in needles)}
        assert outcomes == {True, False}, name
