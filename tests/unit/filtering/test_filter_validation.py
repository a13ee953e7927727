"""behaviour §11.2: every validation message, with the pattern that triggers it.

The reason texts are event-ruler's (checked against event-ruler 2.1 and, where behaviour §11 marks
them, AWS). When a pattern has several faults the reported one is the first event-ruler meets
reading the pattern from left to right; a few cases pin that order.
"""

from __future__ import annotations

import json

import pytest

from esm.filtering import InvalidPatternError, compile_filters, validate_pattern

INVALID: list[tuple[str, str, str]] = [
    # -- shape and JSON -------------------------------------------------------------------------
    ("top level must be an object (array)", '["not", "a", "dict", "but valid json"]', "Filter is not an object"),
    ("top level must be an object (string)", '"x"', "Filter is not an object"),
    ("top level must be an object (empty text)", "", "Filter is not an object"),
    ("bad JSON: an unquoted word", "this is valid json but not a dict",
     "Unrecognized token 'this': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"),
    ("bad JSON: an unquoted value", '{"not": closed mark"',
     "Unrecognized token 'closed': was expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')"),
    ("bad JSON: single quotes", "{'bad': 'quotation'}",
     "Unexpected character (''' (code 39)): was expecting double-quote to start field name"),
    ("bad JSON: missing colon", '{"a" [1]}',
     "Unexpected character ('[' (code 91)): was expecting a colon to separate field name and value"),
    ("bad JSON: missing comma in an array", '{"a":[1 2]}',
     "Unexpected character ('2' (code 50)): was expecting comma to separate Array entries"),
    ("bad JSON: trailing comma in an object", '{"a":[1],}',
     "Unexpected character ('}' (code 125)): was expecting double-quote to start field name"),
    ("bad JSON: unclosed object", '{"a":[1]', "Unexpected end-of-input: expected close marker for Object"),
    ("bad JSON: leading zeros", '{"a":[01]}', "Invalid numeric value: Leading zeroes not allowed"),
    ("bad JSON: NaN", '{"a":[NaN]}',
     "Non-standard token 'NaN': enable `JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS` to allow"),
    ("bad JSON: a mismatched close marker", '{"a":[}]}', "Unexpected close marker '}': expected ']'"),
    ("bad JSON: an unknown escape", '{"a":["x\\qy"]}', "Unrecognized character escape 'q' (code 113)"),
    ("trailing content after the pattern is rejected (esm)", '{"a":["x"]} {"b":["y"]}',
     "Unexpected content after the pattern's closing '}'"),
    # -- leaves ---------------------------------------------------------------------------------
    ("a leaf must be a list or an object (number, AWS int_nolist_EXC)", '{"int": 42}', '"int" must be an object or an array'),
    ("a leaf must be a list or an object (string, AWS string_nolist_EXC)", '{"string": "my-value"}', '"string" must be an object or an array'),
    ("a leaf must be a list or an object (null)", '{"a": null}', '"a" must be an object or an array'),
    ("empty value lists are rejected (AWS arrays_empty_EXC)", '{"resources": []}', "Empty arrays are not allowed"),
    ("a list inside a value list is rejected", '{"a":[[1]]}', "Match value must be String, number, true, false, or null"),
    ("an empty match expression is rejected", '{"a":[{}]}', "Match expression name not found"),
    ("operator names are case-sensitive (AWS content_numeric_operatorcasing_EXC)", '{"detail": {"equal": [{"NUMERIC": ["=", 5]}]}}', "Unrecognized match type NUMERIC"),
    ("operator names are case-sensitive (AWS operator_case_sensitive_EXC)", '{"my_key": [{"EXISTS": true}]}', "Unrecognized match type EXISTS"),
    ("one key per match expression", '{"a":[{"prefix":"x","suffix":"y"}]}', "Only one key allowed in match expression"),
    ("exactly needs a string", '{"a":[{"exactly":1}]}', "exact match pattern must be a string"),
    # -- prefix, suffix, equals-ignore-case, wildcard ---------------------------------------------
    ("prefix needs a string (AWS content_prefix_int_EXC)", '{"time": [{"prefix": 123}]}', "prefix match pattern must be a string"),
    ("prefix rejects a list (AWS content_prefix_list_EXC)", '{"time": [{"prefix": ["2022-07-13"]}]}', "prefix match pattern must be a string"),
    ("suffix needs a string (AWS content_suffix_int_EXC)", '{"FileName": [{"suffix": 123}]}', "suffix match pattern must be a string"),
    ("suffix rejects a list (AWS content_suffix_list_EXC)", '{"FileName": [{"suffix": [".png"]}]}', "suffix match pattern must be a string"),
    ("equals-ignore-case needs a string (AWS content_ignorecase_EXC)", '{"detail-type": [{"equals-ignore-case": ["ec2 instance state-change notification"]}]}', "equals-ignore-case match pattern must be a string"),
    ("equals-ignore-case does not nest (AWS content_ignorecase_list_EXC)", '{"detail-type": [{"equals-ignore-case": {"prefix": "ec2"}}]}', "equals-ignore-case match pattern must be a string"),
    ("wildcard needs a string (AWS content_wildcard_int_EXC)", '{"EventBusArn": [{"wildcard": 123}]}', "wildcard match pattern must be a string"),
    ("wildcard rejects a list (AWS content_wildcard_list_EXC)", '{"EventBusArn": [{"wildcard": ["a*"]}]}', "wildcard match pattern must be a string"),
    ("prefix object needs a name", '{"a":[{"prefix":{}}]}', "Prefix expression name not found"),
    ("prefix object allows only equals-ignore-case", '{"a":[{"prefix":{"wildcard":"x"}}]}', "Unsupported prefix pattern: wildcard"),
    ("suffix object needs a name", '{"a":[{"suffix":{}}]}', "Suffix expression name not found"),
    ("suffix object allows only equals-ignore-case", '{"a":[{"suffix":{"prefix":"x"}}]}', "Unsupported suffix pattern: prefix"),
    ("prefix equals-ignore-case needs a string", '{"a":[{"prefix":{"equals-ignore-case":1}}]}', "equals-ignore-case match pattern must be a string"),
    ("prefix equals-ignore-case takes one key", '{"a":[{"prefix":{"equals-ignore-case":"x","b":1}}]}', "Only one key allowed in match expression"),
    ("consecutive stars are rejected at their byte position (AWS content_wildcard_repeating_star_EXC)",
     '{"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:**:event-bus/*"}]}', "Consecutive wildcard characters at pos 26"),
    ("a backslash must escape a star or a backslash", '{"a":[{"wildcard":"a\\\\b"}]}', "Invalid escape character at pos 2"),
    ("a trailing backslash is an invalid escape", '{"a":[{"wildcard":"ab\\\\"}]}', "Invalid escape character at pos 3"),
    ("wildcard positions count UTF-8 bytes", '{"a":[{"wildcard":"\\u00e9**"}]}', "Consecutive wildcard characters at pos 3"),
    ("a too complex wildcard is rejected (AWS content_wildcard_complex_EXC)", '{"EventBusArn": [{"wildcard": "*:*:*:*:*:event-bus/*"}]}',
     "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character"),
    ("complexity adds up over the wildcards of one field", '{"a":[{"wildcard":"*a*b*"},{"wildcard":"*c*d*"},{"wildcard":"*e*f*"}]}',
     "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character"),
    # -- numeric ---------------------------------------------------------------------------------
    ("numeric needs an array", '{"a":[{"numeric":5}]}', "Value of numeric must be an array."),
    ("numeric needs an operator first", '{"a":[{"numeric":[5]}]}', "Invalid member in numeric match: 5"),
    ("numeric needs an operator first (empty)", '{"a":[{"numeric":[]}]}', "Invalid member in numeric match: ]"),
    ("numeric operators are < <= = > >=", '{"a":[{"numeric":["foo", 1]}]}', "Unrecognized numeric range operator: foo"),
    ("numeric = needs a number", '{"a":[{"numeric":["=", "x"]}]}', "Value of equals must be numeric"),
    ("numeric < needs a number (AWS content_numeric_syntax_EXC)", '{"detail": {"c-count": [{"numeric": [">", 0, "<"]}]}}', "Value of < must be numeric"),
    ("numeric >= needs a number", '{"a":[{"numeric":[">=", null]}]}', "Value of >= must be numeric"),
    ("numeric = takes one number", '{"a":[{"numeric":["=", 1, 2]}]}', "Too many elements in numeric expression"),
    ("numeric < takes one number", '{"a":[{"numeric":["<", 1, ">", 0]}]}', "Too many elements in numeric expression"),
    ("a numeric match expression takes one key", '{"a":[{"numeric":[">", 0], "x": 1}]}', "Too many elements in numeric expression"),
    ("a range's second operator must be < or <= (AWS content_numeric_EXC)", '{"detail": {"c-count": [{"numeric": [">", 0, ">", 0]}]}}', "Bad numeric range operator: >"),
    ("a range's second operator must be a string", '{"a":[{"numeric":[">", 0, 5]}]}', "Bad value in numeric range: 5"),
    ("a range takes four terms", '{"a":[{"numeric":[">", 0, "<", 5, 6]}]}', "Too many terms in numeric range expression"),
    ("a range's bottom must be below its top", '{"a":[{"numeric":[">", 6, "<", 5]}]}', "Bottom must be less than top"),
    ("a range's bottom must not equal its top", '{"a":[{"numeric":[">=", 5, "<=", 5]}]}', "Bottom must be less than top"),
    ("numbers must be finite as a double (1E309)", '{"a":[{"numeric":["=", 1E309]}]}', "Cannot compare number : 1E309"),
    ("numbers must not underflow (1E-325)", '{"a":[{"numeric":["=", 1E-325]}]}', "Cannot compare number : 1E-325"),
    ("numbers must be finite as a double (2.0e422)", '{"a":[{"numeric":[">", 2.0e422]}]}', "Cannot compare number : 2.0e422"),
    ("numbers must be exact as a double", '{"a":[{"numeric":["<", 123456789012345678]}]}', "Cannot compare number : 123456789012345678"),
    # -- anything-but ------------------------------------------------------------------------------
    ("anything-but needs a list, string or number (null)", '{"a":[{"anything-but":null}]}', "Value of anything-but must be an array or single string/number value."),
    ("anything-but needs a list, string or number (bool)", '{"a":[{"anything-but":true}]}', "Value of anything-but must be an array or single string/number value."),
    ("anything-but prefix cannot nest equals-ignore-case (AWS content_anything_prefix_ignorecase_EXC)",
     '{"detail": {"FileName": [{"anything-but": {"prefix": {"equals-ignore-case": "file"}}}]}}', "Value of anything-but must be an array or single string/number value."),
    ("anything-but lists hold no null (AWS content_anything_but_string_list_null_type_EXC)", '{"a":[{"anything-but":["x", null]}]}', "Inside anything but list, start|null|boolean is not supported."),
    ("anything-but lists hold no booleans", '{"a":[{"anything-but":[true]}]}', "Inside anything but list, start|null|boolean is not supported."),
    ("anything-but lists hold no lists", '{"a":[{"anything-but":["x", [1]]}]}', "Inside anything but list, start|null|boolean is not supported."),
    ("anything-but lists are all strings or all numbers", '{"a":[{"anything-but":[1, "x"]}]}', "Inside anything but list, either all values are number or string, mixed type is not supported"),
    ("an empty anything-but list is rejected", '{"a":[{"anything-but":[]}]}', "Inside anything but list, either all values are number or string, mixed type is not supported"),
    ("anything-but numbers must be comparable", '{"a":[{"anything-but":[1e400]}]}', "Cannot compare number : 1e400"),
    ("anything-but equals-ignore-case needs strings (AWS content_anything_but_ignorecase_EXC)", '{"detail": {"state": [{"anything-but": {"equals-ignore-case": 123}}]}}',
     "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."),
    ("anything-but equals-ignore-case list needs strings (AWS content_anything_but_ignorecase_list_EXC)", '{"detail": {"state": [{"anything-but": {"equals-ignore-case": [123, 456]}}]}}',
     "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."),
    ("anything-but prefix needs a string (AWS content_anything_prefix_int_EXC)", '{"detail": {"state": [{"anything-but": {"prefix": 123}}]}}', "prefix/suffix match pattern must be a string"),
    ("anything-but prefix list needs strings (AWS content_anything_prefix_list_type_EXC)", '{"detail": {"state": [{"anything-but": {"prefix": [123, "test"]}}]}}', "prefix/suffix match pattern must be a string"),
    ("anything-but suffix needs a string (AWS content_anything_suffix_int_EXC)", '{"detail": {"FileName": [{"anything-but": {"suffix": 123}}]}}', "prefix/suffix match pattern must be a string"),
    ("anything-but suffix list needs strings (AWS content_anything_suffix_list_type_EXC)", '{"detail": {"FileName": [{"anything-but": {"suffix": [123, ".txt"]}}]}}', "prefix/suffix match pattern must be a string"),
    ("anything-but wildcard needs a string (AWS content_anything_wildcard_type_EXC)", '{"detail": {"FilePath": [{"anything-but": {"wildcard": 123}}]}}', "wildcard match pattern must be a string"),
    ("anything-but wildcard list needs strings (AWS content_anything_wildcard_list_type_EXC)", '{"detail": {"state": [{"anything-but": {"wildcard": [123, "*/dir/*"]}}]}}', "wildcard match pattern must be a string"),
    ("anything-but prefix must not be empty (AWS content_anything_prefix_empty_EXC)", '{"a":[{"anything-but":{"prefix":""}}]}', "Null prefix/suffix not allowed"),
    ("anything-but suffix must not be empty (AWS content_anything_suffix_empty_EXC)", '{"a":[{"anything-but":{"suffix":""}}]}', "Null prefix/suffix not allowed"),
    ("anything-but prefix list entries must not be empty", '{"a":[{"anything-but":{"prefix":["a", ""]}}]}', "Null prefix/suffix not allowed"),
    ("anything-but wildcards are checked", '{"a":[{"anything-but":{"wildcard":["a**b"]}}]}', "Consecutive wildcard characters at pos 2"),
    ("anything-but wildcards count for complexity", '{"a":[{"anything-but":{"wildcard":"*:*:*:*:*:event-bus/*"}}]}',
     "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a wildcard character"),
    ("anything-but supports four operators", '{"a":[{"anything-but":{"numeric":[">",1]}}]}', "Unsupported anything-but pattern: numeric"),
    ("anything-but object needs a name", '{"a":[{"anything-but":{}}]}', "Anything-But expression name not found"),
    ("an anything-but match expression takes one key", '{"a":[{"anything-but":"x","prefix":"y"}]}', "Too many elements in numeric expression"),
    ("an anything-but operator object takes one key", '{"a":[{"anything-but":{"suffix":"x","prefix":"y"}}]}', "Too many elements in numeric expression"),
    # -- exists ------------------------------------------------------------------------------------
    ("exists needs true or false (number)", '{"a":[{"exists":1}]}', "exists match pattern must be either true or false."),
    ("exists needs true or false (string)", '{"a":[{"exists":"true"}]}', "exists match pattern must be either true or false."),
    ("exists needs true or false (null)", '{"a":[{"exists":null}]}', "exists match pattern must be either true or false."),
    ("exists takes one key", '{"a":[{"exists":true, "b":1}]}', "Only one key allowed in match expression"),
    # -- cidr --------------------------------------------------------------------------------------
    ("cidr needs a string, with prefix's message (AWS)", '{"a":[{"cidr":1}]}', "prefix match pattern must be a string"),
    ("cidr needs one slash (AWS content_ip_address_EXC)", '{"a":[{"cidr":"10.0.0.0"}]}', "Malformed CIDR, one '/' required"),
    ("cidr needs exactly one slash", '{"a":[{"cidr":"10.0.0.0//24"}]}', "Malformed CIDR, one '/' required"),
    ("cidr mask bits must be an integer (AWS)", '{"a":[{"cidr":"10.0.0.0/x"}]}', "Malformed CIDR, mask bits must be an integer"),
    ("cidr mask bits must not be negative", '{"a":[{"cidr":"10.0.0.0/-1"}]}', "Malformed CIDR, mask bits must not be negative"),
    ("cidr needs an IP address (AWS content_ip_address_bad_ip_EXC)", '{"a":[{"cidr":"xx.11.xx/24"}]}', "Nonstandard IP address: xx.11.xx"),
    ("cidr rejects an out-of-range address", '{"a":[{"cidr":"999.1.1.1/8"}]}', "Invalid IP address: 999.1.1.1"),
    ("cidr rejects an invalid IPv6 address", '{"a":[{"cidr":":::/64"}]}', "Invalid IP address: :::"),
    ("IPv4 masks are below 32", '{"a":[{"cidr":"10.0.0.0/32"}]}', "IPv4 mask bits must be < 32"),
    ("IPv6 masks are below 128", '{"a":[{"cidr":"::1/128"}]}', "IPv6 mask bits must be < 128"),
    # -- $or ---------------------------------------------------------------------------------------
    ("$or needs an array", '{"$or": {"a":["x"]}}', "It must be an Array followed with $or."),
    ("$or needs at least two objects", '{"$or": [{"a":["x"]}]}', "There must have at least 2 Objects in $or relationship."),
    ("$or needs at least two objects (empty)", '{"$or": []}', "There must have at least 2 Objects in $or relationship."),
    ("$or holds objects only", '{"$or": [{"a":["x"]}, ["b"]]}', "Only JSON object is allowed in array of $or relationship."),
    ("operator names cannot be keys inside $or", '{"$or": [{"a":[1]}, {"numeric":[1]}]}', "numeric is Ruler reserved fieldName which cannot be used inside $or."),
    ("operator names cannot be nested keys inside $or", '{"$or": [{"a":[1]}, {"b":{"prefix":["x"]}}]}', "prefix is Ruler reserved fieldName which cannot be used inside $or."),
    # -- limits ------------------------------------------------------------------------------------
    ("a pattern is at most 4096 characters", '{"a":["' + "x" * 4100 + '"]}', "Pattern is longer than 4096 characters"),
    ("$or may make at most 1000 combinations", json.dumps({"$or": [{"a": [i]} for i in range(11)], "b": {"$or": [{"c": [i]} for i in range(10)]}, "d": {"$or": [{"e": [i]} for i in range(10)]}}),
     "The pattern's $or relationships make 1100 combinations; at most 1000 are allowed"),
    ("a sub-rule has at most 256 fields", json.dumps({f"k{i}": [i] for i in range(257)}), "Size of rule exceeds max value of 256"),
    # -- which fault is reported first -------------------------------------------------------------
    ("faults are reported in reading order (empty list before bad JSON)", '{"a":[], "b" 1}', "Empty arrays are not allowed"),
    ("faults are reported in reading order (later value list)", '{"a":["x"], "b":[]}', "Empty arrays are not allowed"),
    ("a list's element types are checked before its wildcards", '{"a":[{"anything-but":{"wildcard":["a**", 5]}}]}', "wildcard match pattern must be a string"),
]

HIGH = "Unmatched first part of surrogate pair (0xd83d): a \\uD800-\\uDBFF escape must be followed by a \\uDC00-\\uDFFF escape"
LOW = "Unmatched second part of surrogate pair (0xde80): a \\uDC00-\\uDFFF escape must follow a \\uD800-\\uDBFF escape"

# Issue 13 point 4: half a surrogate pair stands for no character, so the pattern is rejected with a
# reason naming the code unit, wherever the escape appears (never a UnicodeEncodeError).
INVALID += [
    ("a lone first part at the end of a value", '{"a":["x\\ud83d"]}', HIGH),
    ("a lone first part before a plain character", '{"a":["\\ud83dx"]}', HIGH),
    ("a first part before a plain escape", '{"a":["\\ud83d\\u0041"]}', HIGH),
    ("two first parts", '{"a":["\\ud83d\\ud83d\\ude80"]}', HIGH),
    ("a lone second part", '{"a":["\\ude80"]}', LOW),
    ("a lone second part after a plain character", '{"a":["x\\ude80"]}', LOW),
    ("a reversed pair", '{"a":["\\ude80\\ud83d"]}', LOW),
    ("a lone first part in a key", '{"\\ud83d":["x"]}', HIGH),
    ("a lone second part in a nested key", '{"a":{"\\ude80":["x"]}}', LOW),
    ("a lone first part in exactly", '{"a":[{"exactly":"\\ud83d"}]}', HIGH),
    ("a lone first part in prefix", '{"a":[{"prefix":"\\ud83d"}]}', HIGH),
    ("a lone second part in suffix", '{"a":[{"suffix":"\\ude80"}]}', LOW),
    ("a lone first part in equals-ignore-case", '{"a":[{"equals-ignore-case":"\\ud83d"}]}', HIGH),
    ("a lone first part in prefix equals-ignore-case", '{"a":[{"prefix":{"equals-ignore-case":"\\ud83d"}}]}', HIGH),
    ("a lone first part in a wildcard", '{"a":[{"wildcard":"\\ud83d*"}]}', HIGH),
    ("a reversed pair in anything-but", '{"a":[{"anything-but":"\\ude80\\ud83d"}]}', LOW),
    ("a lone first part in an anything-but list", '{"a":[{"anything-but":["x","\\ud83d"]}]}', HIGH),
    ("a lone second part in anything-but prefix", '{"a":[{"anything-but":{"prefix":"\\ude80"}}]}', LOW),
    ("a lone first part in anything-but wildcard", '{"a":[{"anything-but":{"wildcard":["\\ud83d*"]}}]}', HIGH),
    ("a lone first part in anything-but equals-ignore-case", '{"a":[{"anything-but":{"equals-ignore-case":"\\ud83d"}}]}', HIGH),
    ("a lone first part in a cidr", '{"a":[{"cidr":"\\ud83d"}]}', HIGH),
    ("a lone first part in a numeric operator", '{"a":[{"numeric":["\\ud83d", 1]}]}', HIGH),
    ("a lone first part in an operator name", '{"a":[{"\\ud83d":"x"}]}', HIGH),
    ("a raw lone first part (a Python string holding the code unit)", '{"a":["\ud83d"]}', HIGH),
]


VALID: list[tuple[str, str]] = [
    ("the empty pattern (AWS accepts it)", "{}"),
    ("an empty object value", '{"a":{}}'),
    ("an empty prefix", '{"a":[{"prefix":""}]}'),
    ("an empty wildcard", '{"a":[{"wildcard":""}]}'),
    ("an empty equals-ignore-case", '{"a":[{"equals-ignore-case":""}]}'),
    ("anything-but with an empty equals-ignore-case", '{"a":[{"anything-but":{"equals-ignore-case":""}}]}'),
    ("anything-but with an empty wildcard", '{"a":[{"anything-but":{"wildcard":""}}]}'),
    ("a wildcard with repeating pieces (AWS content_wildcard_repeating)", '{"FileName":[{"wildcard":"/Users/*/dir/dir/dir/dir/dir/doc.txt"}]}'),
    ("a cidr with host bits set", '{"a":[{"cidr":"10.0.0.1/24"}]}'),
    ("a cidr with a /31 mask", '{"a":[{"cidr":"10.0.0.0/31"}]}'),
    ("an IPv6 cidr with a /127 mask", '{"a":[{"cidr":"::1/127"}]}'),
    ("a number beyond a double as an exact value", '{"a":[123456789012]}'),
    ("a subnormal number in numeric", '{"a":[{"numeric":["=",1E-320]}]}'),
    ("exactly (accepted as event-ruler does)", '{"a":[{"exactly":"x"}]}'),
    ("a wildcard with escapes", '{"a":[{"wildcard":"a\\\\*b\\\\\\\\c*"}]}'),
    ("a pattern of exactly 4096 characters", '{"a":["' + "x" * 4086 + '"]}'),
    ("$or with exactly 1000 combinations", json.dumps({"$or": [{"a": [i]} for i in range(10)], "b": {"$or": [{"c": [i]} for i in range(10)]}, "d": {"$or": [{"e": [i]} for i in range(10)]}})),
    ("a sub-rule with 256 fields", json.dumps({f"k{i}": [i] for i in range(256)})),
]


@pytest.mark.parametrize(("rule", "pattern", "reason"), INVALID, ids=[case[0] for case in INVALID])
def test_invalid_pattern_reason(rule: str, pattern: str, reason: str) -> None:
    with pytest.raises(InvalidPatternError) as raised:
        validate_pattern(pattern)
    assert str(raised.value) == reason
    with pytest.raises(InvalidPatternError) as again:
        compile_filters(['{"ok":["x"]}', pattern])
    assert str(again.value) == reason


@pytest.mark.parametrize(("rule", "pattern"), VALID, ids=[case[0] for case in VALID])
def test_valid_pattern_is_accepted(rule: str, pattern: str) -> None:
    validate_pattern(pattern)
    compile_filters([pattern])


def test_invalid_pattern_error_is_a_value_error_whose_text_is_the_reason() -> None:
    error = InvalidPatternError("Empty arrays are not allowed")
    assert isinstance(error, ValueError)
    assert str(error) == "Empty arrays are not allowed"
    assert error.reason == "Empty arrays are not allowed"


def test_every_message_of_the_filters_doc_is_exercised() -> None:
    """Each reason listed in behaviour §11.2 has at least one case above."""
    documented = [
        "Filter is not an object", "must be an object or an array", "Empty arrays are not allowed",
        "Match value must be String, number, true, false, or null", "Unrecognized match type",
        "Only one key allowed in match expression", "prefix match pattern must be a string",
        "suffix match pattern must be a string", "equals-ignore-case match pattern must be a string",
        "wildcard match pattern must be a string", "Value of numeric must be an array.",
        "Value of < must be numeric", "Value of equals must be numeric", "Bad numeric range operator",
        "Unrecognized numeric range operator", "Invalid member in numeric match",
        "Too many elements in numeric expression", "Too many terms in numeric range expression",
        "Bad value in numeric range", "Bottom must be less than top", "Cannot compare number : ",
        "Value of anything-but must be an array or single string/number value.",
        "Inside anything but list, start|null|boolean is not supported.",
        "Inside anything but list, either all values are number or string, mixed type is not supported",
        "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.",
        "prefix/suffix match pattern must be a string", "Null prefix/suffix not allowed",
        "Unsupported anything-but pattern", "exists match pattern must be either true or false.",
        "Malformed CIDR, one '/' required", "Malformed CIDR, mask bits must be an integer",
        "Malformed CIDR, mask bits must not be negative", "Nonstandard IP address",
        "IPv4 mask bits must be < 32", "IPv6 mask bits must be < 128",
        "Consecutive wildcard characters at pos", "Invalid escape character at pos", "Rule is too complex",
        "There must have at least 2 Objects in $or relationship.",
        "Only JSON object is allowed in array of $or relationship.", "It must be an Array followed with $or.",
        "is Ruler reserved fieldName which cannot be used inside $or.", "exceeds max value of 256",
        "4096", "1000",
    ]
    reasons = [reason for _, _, reason in INVALID]
    for message in documented:
        assert any(message in reason for reason in reasons), message
