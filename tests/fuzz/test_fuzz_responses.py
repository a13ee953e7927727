"""Fuzzing how a function's answer is judged (docs/behaviour.md §3 and §9.1).

Any body, JSON or not (random bytes, random JSON, NaN, huge integers, nesting past every parser's
depth, bodies over 6 MB, Lambda error objects of every type, partial batch responses with
wrong types everywhere), from any status and header set, for every kind of target (`url`,
`lambda`, `handler`), is classified as exactly one of success, function error or invocation
error without an exception; and `judge` then turns it into the behaviour §3 outcome for each source's
identifier (SQS messageId, Kinesis sequence number, Kafka `{partition, offset}`):

- no ReportBatchItemFailures: the body is ignored, success;
- a body that is not an object, `{}`, `batchItemFailures` null or `[]`: success;
- anything else that is not a list of objects each with an `itemIdentifier` that names a record
  of the batch (an empty, null, mistyped, misplaced or unknown identifier): the whole batch failed;
- otherwise: partial, exactly the named records failed.

The oracles below are written from behaviour §3/§9.1, not from the code under test.
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable, Hashable

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esm.invokers.base import FunctionError, InvocationError, Succeeded
from esm.invokers.classify import (
    MAX_RESPONSE_BYTES,
    TOO_LARGE,
    classify_body,
    classify_http,
    classify_lambda_error,
    classify_lambda_response,
    parse_retry_after,
)
from esm.invokers.python import marshal_response
from esm.core.outcomes import FUNCTION_ERROR, INVOCATION_ERROR, PARTIAL, SUCCESS, judge
from esm.sources.kafka.records import read_identifier as kafka_identifier
from esm.sources.kinesis.records import KinesisFormat

SETTINGS = settings(
    max_examples=300,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=2**64, max_value=2**200),
                         st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=12))
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(st.one_of(st.text(max_size=6),
                                                      st.sampled_from(["errorType", "errorMessage", "batchItemFailures",
                                                                       "itemIdentifier", "state"])), inner, max_size=4)),
    max_leaves=16,
)


def deep(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


odd_bodies = st.sampled_from([
    b"", b" ", b"\n\t ", b"null", b"NaN", b"[Infinity, -Infinity]", b'{"a": NaN}', b"Task timed out after 3.00 seconds",
    b"Task timed out after 900 seconds\n", b'"just a string"', b"{", b"}", b"\xff\xfe{\x00}\x00", b"\xef\xbb\xbf{}",
    b"\x00", b'{"errorType": null}', b'{"errorMessage": {"nested": [1]}}', b'{"errorType": 5, "errorMessage": 6}',
    b"1" * 400, b'{"batchItemFailures": "' + b"x" * 10000 + b'"}', deep(1000), deep(1025), deep(5000),
    b'{"a":' * 3000 + b"1" + b"}" * 3000, b"<html>502 Bad Gateway</html>", b"\xc3\x28", b"\xed\xa0\x80",
])
bodies = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    json_values.map(lambda v: json.dumps(v, indent=1, ensure_ascii=False).encode("utf-8")),
    odd_bodies,
)
statuses = st.one_of(st.sampled_from([200, 202, 204, 299, 301, 400, 403, 404, 413, 429, 500, 502, 503, 504, 599]),
                     st.integers(100, 599))
header_sets = st.dictionaries(
    st.sampled_from(["X-Amz-Function-Error", "x-amz-function-error", "Retry-After", "retry-after", "Content-Type"]),
    st.one_of(st.text(max_size=20), st.sampled_from(["Unhandled", "", " ", "5", "-1", "1e999", "nan", "inf",
                                                     "Wed, 21 Oct 2015 07:28:00 GMT", "Mon, 99 Foo 2015"])),
    max_size=3,
)


def loads(body: bytes) -> tuple[bool, Any]:
    """(readable, value): what a JSON reader makes of the body (behaviour §3 "invalid JSON")."""
    if not body.strip():
        return True, None
    try:
        return True, json.loads(body)
    except (ValueError, RecursionError):
        return False, None


def is_error_object(value: Any) -> bool:
    return isinstance(value, dict) and ("errorType" in value or "errorMessage" in value)


def _header(headers: dict[str, str], name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


@SETTINGS
@given(status=statuses, headers=header_sets, body=bodies, emulator=st.booleans())
def test_any_http_answer_is_classified_per_spec_9_1(status: int, headers: dict[str, str], body: bytes,
                                                    emulator: bool) -> None:
    """behaviour §9.1 error classes for a `url` target, from status, headers and body alone."""
    result = classify_http(status, headers, body, emulator=emulator)
    readable, value = loads(body)
    if _header(headers, "X-Amz-Function-Error") is not None:
        assert isinstance(result, FunctionError)
    elif 200 <= status < 300:
        if not body.strip():
            assert isinstance(result, FunctionError if emulator else Succeeded)
        elif not readable or is_error_object(value):
            assert isinstance(result, FunctionError)
        else:
            assert isinstance(result, Succeeded)
            if not (isinstance(value, float) and math.isnan(value)):
                assert json.dumps(result.body, sort_keys=True) == json.dumps(value, sort_keys=True)
    elif status == 502 and readable and is_error_object(value):
        assert isinstance(result, FunctionError)
    elif status == 502 and emulator and not body.strip():
        assert isinstance(result, FunctionError)
    elif status in (429, 502, 503, 504) or (status == 400 and emulator):
        assert isinstance(result, InvocationError)
        assert result.retry_after is None or result.retry_after >= 0
    elif status >= 500:
        assert isinstance(result, FunctionError)
    else:
        assert isinstance(result, InvocationError)
    if isinstance(result, FunctionError):
        assert result.error_type and isinstance(result.message, str) and len(result.message) < 2000


def test_a_body_over_6_mb_is_a_function_error():
    """behaviour §9.1 / Lambda's limit: a 2xx answer over 6 MB is Function.ResponseSizeTooLarge, even valid JSON."""
    huge = b'"' + b"x" * MAX_RESPONSE_BYTES + b'"'
    for result in (classify_http(200, {}, huge, emulator=False), classify_body(huge),
                   classify_lambda_response(None, huge, detect_error_object=False)):
        assert isinstance(result, FunctionError) and result.error_type == TOO_LARGE


def test_integers_past_64_bits_stay_exact():
    """A response is read as the JSON it is: a tumbling window's state counter past 64 bits keeps every digit
    (orjson alone would turn it into a float)."""
    state = {"low": -(2**63) - 1, "high": 2**64, "huge": 10**40, "sequence": 49590338271490256608559692538361571095921575989136588898}
    result = classify_body(json.dumps({"state": state, "batchItemFailures": []}).encode())
    assert isinstance(result, Succeeded) and result.body["state"] == state


@SETTINGS
@given(function_error=st.one_of(st.none(), st.text(max_size=10)), payload=bodies, detect=st.booleans())
def test_any_invoke_api_answer_is_classified(function_error: str | None, payload: bytes, detect: bool) -> None:
    """behaviour §9.1 for a `lambda` target: FunctionError set is a function error; otherwise the body decides."""
    result = classify_lambda_response(function_error, payload, detect_error_object=detect)
    readable, value = loads(payload)
    if function_error:
        assert isinstance(result, FunctionError)
    elif not readable:
        assert isinstance(result, FunctionError)
    elif detect and (is_error_object(value) or not payload.strip()):
        assert isinstance(result, FunctionError)
    else:
        assert isinstance(result, Succeeded)


@SETTINGS
@given(code=st.one_of(st.sampled_from(["TooManyRequestsException", "ThrottlingException", "ServiceException",
                                       "ResourceNotFoundException", ""]), st.text(max_size=10)),
       message=st.text(max_size=20), status=st.one_of(st.none(), statuses), headers=header_sets, raw=bodies,
       emulator=st.booleans())
def test_any_invoke_api_error_is_classified(code: str, message: str, status: int | None, headers: dict[str, str],
                                            raw: bytes, emulator: bool) -> None:
    """behaviour §9.1: a failed Invoke call is an invocation error (retried), except an emulator's crash (502)."""
    result = classify_lambda_error(code, message, status, headers, raw, emulator=emulator)
    if emulator and status == 502 and (not raw.strip() or is_error_object(loads(raw)[1])):
        assert isinstance(result, FunctionError)
    else:
        assert isinstance(result, InvocationError)


@SETTINGS
@given(value=st.one_of(st.text(max_size=40), st.sampled_from(["", " ", "0", "-5", "1e999", "nan", "inf", "-inf",
                                                               "Wed, 21 Oct 2015 07:28:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT",
                                                               "Mon, 01 Jan 0001 00:00:00 GMT", "Tue, 99 Foo 2015 99:99:99"])))
def test_retry_after_is_a_delay_or_nothing(value: str) -> None:
    """behaviour §9.1 throttles: a Retry-After header is a non-negative, finite delay, or ignored."""
    delay = parse_retry_after(value, now=1_700_000_000.0)
    assert delay is None or (0 <= delay < math.inf)


class Opaque:
    """A return value that is not JSON-able."""


@SETTINGS
@given(value=st.one_of(json_values, st.binary(max_size=32), st.sampled_from([math.nan, math.inf, Opaque(), {1: 2},
                                                                             {(1, 2): 3}, {"a": {1, 2}}, b"", bytearray(b"{}")])))
def test_any_handler_return_value_is_classified(value: Any) -> None:
    """behaviour §9.1 for a `handler` target: a return value is success, or Runtime.MarshalError when it cannot be sent."""
    assert isinstance(marshal_response(value), (Succeeded, FunctionError))


def test_deeply_nested_handler_return_value():
    """A handler returning a structure nested past the JSON depth limits: a function error, not a crash."""
    value: Any = []
    for _ in range(5000):
        value = [value]
    assert isinstance(marshal_response(value), FunctionError)


# ---------------------------------------------------------------- partial batch responses, per source

SQS_IDS = ["059f36b4-87a3-44ab-83d2-661975830a7d", "2e1424d4-f796-459a-8184-9c92662be6da", "3"]
kinesis_identifier = KinesisFormat.read_identifier
KINESIS_IDS = ["49590338271490256608559692538361571095921575989136588898", "49590338271490256608559692538361571095921575989136588899"]
KAFKA_IDS = [("orders-0", 15), ("orders-0", 16), ("orders-1", 3)]


def _valid_string(ids: list[str]) -> Callable[[Any], Hashable | None]:
    """SQS and Kinesis (behaviour §3): the identifier is the messageId / sequenceNumber, a non-empty string."""
    return lambda value: value if isinstance(value, str) and value in ids else None


def _valid_kafka(value: Any) -> Hashable | None:
    """Kafka (behaviour §3): {"partition": "<topic>-<partition>", "offset": n}; esm also takes a string of digits."""
    if not isinstance(value, dict):
        return None
    partition, offset = value.get("partition"), value.get("offset")
    if isinstance(offset, bool):
        return None
    if isinstance(offset, str) and offset.isascii() and offset.isdigit():
        offset = int(offset)
    if isinstance(offset, float) and offset.is_integer():
        offset = int(offset)
    key = (partition, offset)
    return key if isinstance(partition, str) and isinstance(offset, int) and key in KAFKA_IDS else None


SOURCES = {
    "sqs": (SQS_IDS, None, _valid_string(SQS_IDS)),
    "kinesis": (KINESIS_IDS, kinesis_identifier, _valid_string(KINESIS_IDS)),
    "kafka": (KAFKA_IDS, kafka_identifier, _valid_kafka),
}


def _identifiers(source: str) -> st.SearchStrategy[Any]:
    ids = SOURCES[source][0]
    if source == "kafka":
        valid = st.sampled_from(ids).flatmap(lambda key: st.sampled_from([
            {"partition": key[0], "offset": key[1]}, {"partition": key[0], "offset": str(key[1])},
            {"partition": key[0], "offset": float(key[1])}, {"partition": key[0], "offset": key[1], "extra": 1},
            {"partition": key[0]}, {"offset": key[1]}, {"partition": key[0], "offset": -key[1] - 1},
            {"partition": key[0], "offset": key[1] + 0.5}, {"partition": key[0], "offset": True},
            {"partition": key[0].upper(), "offset": key[1]}, {"partition": "", "offset": key[1]},
            {"partition": key[0], "offset": " " + str(key[1])}, {"partition": key[0], "offset": "\u0661"},
            f"{key[0]}:{key[1]}", [key[0], key[1]],
        ]))
    else:
        valid = st.sampled_from(ids).flatmap(lambda i: st.sampled_from([i, i, i.upper(), f" {i}", i[:-1], int(i) if i.isdigit() else i]))
    return st.one_of(valid, valid, json_values, st.sampled_from(["", None, 0, [], {}]))


@st.composite
def partial_bodies(draw: st.DrawFn, source: str) -> Any:
    item = st.one_of(
        st.builds(lambda i: {"itemIdentifier": i}, _identifiers(source)),
        st.builds(lambda i: {"itemIdentifier": i}, _identifiers(source)),
        st.builds(lambda i, k: {k: i}, _identifiers(source), st.sampled_from(["itemId", "ItemIdentifier", "id", ""])),
        json_values,
    )
    failures = draw(st.one_of(st.lists(item, max_size=4), st.lists(item, max_size=4), st.none(), st.just([]),
                              json_values))
    body: Any = {"batchItemFailures": failures}
    if draw(st.booleans()):
        body["other"] = draw(json_values)
    return draw(st.one_of(st.just(body), st.just(body), json_values))


def expected_outcome(body: Any, rbif: bool, valid: Callable[[Any], Hashable | None]) -> tuple[str, frozenset]:
    """behaviour §3, written out."""
    if not rbif or not isinstance(body, dict):
        return SUCCESS, frozenset()
    failures = body.get("batchItemFailures")
    if failures is None or failures == []:
        return SUCCESS, frozenset()
    if not isinstance(failures, list):
        return FUNCTION_ERROR, frozenset()
    named = set()
    for item in failures:
        if not isinstance(item, dict) or "itemIdentifier" not in item or valid(item["itemIdentifier"]) is None:
            return FUNCTION_ERROR, frozenset()
        named.add(valid(item["itemIdentifier"]))
    return PARTIAL, frozenset(named)


def _check_judge(source: str, body: Any, rbif: bool) -> None:
    ids, reader, valid = SOURCES[source]
    outcome = judge(Succeeded(body), report_item_failures=rbif, batch_ids=ids, read_identifier=reader)
    kind, failed = expected_outcome(body, rbif, valid)
    assert outcome.kind == kind, (outcome, body)
    assert outcome.failed_ids == failed
    assert outcome.failed_everything == (kind == FUNCTION_ERROR)
    assert len(outcome.reason) < 2000, "a reason quotes an offending identifier briefly"


@SETTINGS
@given(body=partial_bodies("sqs"), rbif=st.booleans())
def test_sqs_partial_responses(body: Any, rbif: bool) -> None:
    """behaviour §3, SQS: itemIdentifier is the messageId; anything malformed fails the whole batch."""
    _check_judge("sqs", body, rbif)


@SETTINGS
@given(body=partial_bodies("kinesis"), rbif=st.booleans())
def test_kinesis_partial_responses(body: Any, rbif: bool) -> None:
    """behaviour §3, Kinesis: itemIdentifier is the sequence number (a string); anything malformed fails the batch."""
    _check_judge("kinesis", body, rbif)


@SETTINGS
@given(body=partial_bodies("kafka"), rbif=st.booleans())
def test_kafka_partial_responses(body: Any, rbif: bool) -> None:
    """behaviour §3 / §9.4, Kafka: itemIdentifier is {partition: "<topic>-<p>", offset}; anything else fails the batch."""
    _check_judge("kafka", body, rbif)


@SETTINGS
@given(status=statuses, headers=header_sets, body=bodies, emulator=st.booleans(), rbif=st.booleans(),
       source=st.sampled_from(sorted(SOURCES)))
def test_any_answer_reaches_an_outcome(status: int, headers: dict[str, str], body: bytes, emulator: bool, rbif: bool,
                                       source: str) -> None:
    """From the wire to the decision: any answer ends in exactly one outcome; a function error fails the
    whole batch even with ReportBatchItemFailures; an invocation error is never a partial success."""
    ids, reader, _ = SOURCES[source]
    result = classify_http(status, headers, body, emulator=emulator)
    outcome = judge(result, report_item_failures=rbif, batch_ids=ids, read_identifier=reader)
    assert outcome.kind in (SUCCESS, PARTIAL, FUNCTION_ERROR, INVOCATION_ERROR)
    if isinstance(result, FunctionError):
        assert outcome.kind == FUNCTION_ERROR and outcome.failed_everything
    if isinstance(result, InvocationError):
        assert outcome.kind == INVOCATION_ERROR
    if 200 <= status < 300 and not loads(body)[0]:
        assert outcome.kind == FUNCTION_ERROR, "behaviour §3: an invalid JSON response is a complete failure"


def test_many_reported_failures_are_judged():
    """A partial response naming every record of a 10,000-record batch is judged (no quadratic blow-up)."""
    ids = [str(n) for n in range(10_000)]
    body = {"batchItemFailures": [{"itemIdentifier": i} for i in reversed(ids)]}
    outcome = judge(Succeeded(body), report_item_failures=True, batch_ids=ids, read_identifier=kinesis_identifier)
    assert outcome.kind == PARTIAL and len(outcome.failed_ids) == 10_000
