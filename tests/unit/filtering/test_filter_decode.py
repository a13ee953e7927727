"""docs/behaviour.md §5: how each source builds its filter view of a record and applies filters."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from esm import registry
from esm.filtering import DataFormat, DataUsage, InvalidPatternError, Matcher, compile_filters
from esm.filtering.decode import (
    check_json_data_patterns,
    decode_json_or_text,
    decode_kafka_value,
    decode_kinesis_data,
    filter_dynamodb,
    filter_kafka,
    filter_kinesis,
    filter_sqs,
)


def check_source_patterns(matcher: Matcher, source: str) -> None:
    """What config validation does with a source's filters: its descriptor's data field decides."""
    data = registry.descriptor(source).data
    if data.json_patterns_only:
        check_json_data_patterns(matcher, data.key, source)


def sqs(body: str, **extra: Any) -> dict[str, Any]:
    return {"messageId": "m1", "body": body, "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {}, "awsRegion": "us-east-2", **extra}


def kinesis(data: bytes | str, partition_key: str = "1") -> dict[str, Any]:
    encoded = data if isinstance(data, str) else base64.b64encode(data).decode()
    return {"kinesis": {"kinesisSchemaVersion": "1.0", "partitionKey": partition_key,
                        "sequenceNumber": "495", "data": encoded, "approximateArrivalTimestamp": 1545084650.987},
            "eventSource": "aws:kinesis", "awsRegion": "us-east-2"}


def kafka(value: bytes | None, topic: str = "orders") -> dict[str, Any]:
    record: dict[str, Any] = {"topic": topic, "partition": 0, "offset": 15, "timestamp": 1545084650987,
                              "timestampType": "CREATE_TIME", "headers": []}
    if value is not None:
        record["value"] = base64.b64encode(value).decode()
    return record


# -- SQS --------------------------------------------------------------------------------------

SQS_CASES = [
    ("SQS: a JSON body is matched by a JSON body pattern", '{"body":{"state":["ok"]}}', '{"state":"ok"}', True),
    ("SQS: a JSON body is filtered out by a JSON body pattern that fails", '{"body":{"state":["ok"]}}', '{"state":"no"}', False),
    ("SQS: a plain body is matched by a plain body pattern", '{"body":["hello"]}', "hello", True),
    ("SQS: a plain body pattern can use operators", '{"body":[{"prefix":"hel"}]}', "hello", True),
    ("SQS: a plain body pattern that fails filters the message out", '{"body":["hello"]}', "bye", False),
    ("SQS: a JSON pattern against a plain body drops the message", '{"body":{"state":["ok"]}}', "ok", False),
    ("SQS: even exists:false in a JSON pattern cannot match a plain body", '{"body":{"state":[{"exists":false}]}}', "ok", False),
    ("SQS: a plain pattern against a JSON body drops the message", '{"body":["hello"]}', '{"a":"hello"}', False),
    ("SQS: anything-but as a plain pattern cannot match a JSON body", '{"body":[{"anything-but":"x"}]}', '{"a":1}', False),
    ("SQS: a body that is a JSON scalar counts as plain text", '{"body":["42"]}', "42", True),
    ("SQS: a body that looks like JSON but is not counts as plain text", '{"body":[{"prefix":"{oops"}]}', "{oops", True),
    ("SQS: a JSON array body is JSON", '{"body":{"id":[2]}}', '[{"id":1},{"id":2}]', True),
    ("SQS: no body pattern filters on metadata only (match)", '{"awsRegion":["us-east-2"]}', "{not json", True),
    ("SQS: no body pattern filters on metadata only (no match)", '{"awsRegion":["eu-west-1"]}', '{"a":1}', False),
    ("SQS: metadata and a JSON body pattern combine", '{"attributes":{"ApproximateReceiveCount":["1"]},"body":{"a":[1]}}', '{"a":1}', True),
]


@pytest.mark.parametrize(("rule", "pattern", "body", "expected"), SQS_CASES, ids=[c[0] for c in SQS_CASES])
def test_sqs_filter_rule(rule: str, pattern: str, body: str, expected: bool) -> None:
    assert filter_sqs(compile_filters([pattern]), sqs(body)) is expected


def test_sqs_filters_are_ored_across_formats() -> None:
    """With a JSON filter and a plain filter, each record is judged by the one that fits it."""
    matcher = compile_filters(['{"body":{"a":[1]}}', '{"body":["hello"]}'])
    assert filter_sqs(matcher, sqs('{"a":1}')) is True
    assert filter_sqs(matcher, sqs("hello")) is True
    assert filter_sqs(matcher, sqs('{"a":2}')) is False
    assert filter_sqs(matcher, sqs("bye")) is False


def test_no_filters_keep_every_record_without_decoding() -> None:
    """An empty filter list keeps everything, even records whose data cannot be decoded."""
    matcher = compile_filters([])
    assert matcher.is_match_all
    assert filter_sqs(matcher, {"body": None}) is True
    assert filter_kinesis(matcher, {"kinesis": {"data": "%%% not base64"}}) is True
    assert filter_kafka(matcher, {"value": "%%%"}) is True
    assert filter_dynamodb(matcher, {}) is True


def test_the_empty_pattern_is_match_all() -> None:
    """`{}` matches every event (AWS accepts it), so the matcher can skip decoding too."""
    assert compile_filters(["{}"]).is_match_all
    assert not compile_filters(['{"a":["x"]}']).is_match_all


# -- Kinesis ----------------------------------------------------------------------------------

def test_kinesis_view_has_the_kinesis_fields_at_top_level() -> None:
    """Kinesis filters see partitionKey, sequenceNumber... at the top, not under `kinesis`."""
    matcher = compile_filters(['{"partitionKey":["1"]}'])
    assert filter_kinesis(matcher, kinesis(b"anything", partition_key="1")) is True
    assert filter_kinesis(matcher, kinesis(b"anything", partition_key="2")) is False


@pytest.mark.parametrize(
    ("rule", "data", "expected"),
    [
        ("Kinesis: base64 JSON data matching the data pattern is kept", b'{"temperature": 31}', True),
        ("Kinesis: base64 JSON data failing the data pattern is skipped", b'{"temperature": 12}', False),
        ("Kinesis: non-JSON data with a data pattern is skipped", b"31 degrees", False),
        ("Kinesis: data that is not valid base64 is skipped", "%%%", False),
    ],
)
def test_kinesis_data_rule(rule: str, data: bytes | str, expected: bool) -> None:
    matcher = compile_filters(['{"data":{"temperature":[{"numeric":[">",30]}]}}'])
    assert filter_kinesis(matcher, kinesis(data)) is expected


def test_kinesis_without_a_data_pattern_ignores_the_data() -> None:
    """No data pattern: metadata only, whatever the data holds."""
    matcher = compile_filters(['{"partitionKey":["1"]}'])
    assert filter_kinesis(matcher, kinesis("%%% not base64")) is True


def test_kinesis_and_dynamodb_reject_plain_data_patterns() -> None:
    """A non-JSON data pattern is a create/update error for Kinesis and DynamoDB."""
    with pytest.raises(InvalidPatternError):
        check_source_patterns(compile_filters(['{"data":["hello"]}']), "kinesis")
    with pytest.raises(InvalidPatternError):
        check_source_patterns(compile_filters(['{"dynamodb":["x"]}']), "dynamodb")
    check_source_patterns(compile_filters(['{"data":{"a":["x"]}}']), "kinesis")
    check_source_patterns(compile_filters(['{"body":["hello"]}']), "sqs")


def test_dynamodb_filters_the_record_as_it_is() -> None:
    matcher = compile_filters(['{"eventName":["INSERT"],"dynamodb":{"NewImage":{"status":{"S":["new"]}}}}'])
    record = {"eventName": "INSERT", "dynamodb": {"NewImage": {"status": {"S": "new"}}}}
    assert filter_dynamodb(matcher, record) is True
    assert filter_dynamodb(matcher, {**record, "eventName": "MODIFY"}) is False


# -- Kafka ------------------------------------------------------------------------------------

KAFKA_CASES = [
    ("Kafka: JSON value and JSON pattern filter normally (match)", '{"value":{"a":[1]}}', b'{"a":1}', True),
    ("Kafka: JSON value and JSON pattern filter normally (no match)", '{"value":{"a":[1]}}', b'{"a":2}', False),
    ("Kafka: plain value and plain pattern filter normally (match)", '{"value":["hi"]}', b"hi", True),
    ("Kafka: plain value and plain pattern filter normally (no match)", '{"value":["hi"]}', b"bye", False),
    ("Kafka: a JSON pattern on a plain value is ignored (metadata only)", '{"topic":["orders"],"value":{"a":[1]}}', b"plain", True),
    ("Kafka: a plain pattern on a JSON value is ignored (metadata only)", '{"topic":["orders"],"value":["x"]}', b'{"a":1}', True),
    ("Kafka: with the data pattern ignored, metadata still decides", '{"topic":["other"],"value":{"a":[1]}}', b"plain", False),
    ("Kafka: a value that is not UTF-8 falls back to metadata only", '{"topic":["orders"],"value":{"a":[1]}}', b"\xff\xfe\xfd", True),
    ("Kafka: a missing value falls back to metadata only", '{"topic":["orders"],"value":{"a":[1]}}', None, True),
]


@pytest.mark.parametrize(("rule", "pattern", "value", "expected"), KAFKA_CASES, ids=[c[0] for c in KAFKA_CASES])
def test_kafka_filter_rule(rule: str, pattern: str, value: bytes | None, expected: bool) -> None:
    assert filter_kafka(compile_filters([pattern]), kafka(value)) is expected


def test_kafka_schema_registry_values_are_matched_as_decoded() -> None:
    """With a schema registry the source passes the deserialized key and value."""
    matcher = compile_filters(['{"value":{"id":[7]},"key":{"region":["eu"]}}'])
    record = kafka(b"\x00\x00\x00\x00\x01binary-avro")
    assert filter_kafka(matcher, record, decoded_key={"region": "eu"}, decoded_value={"id": 7}) is True
    assert filter_kafka(matcher, record, decoded_key={"region": "us"}, decoded_value={"id": 7}) is False


# -- decoding helpers -------------------------------------------------------------------------

def test_decoding_helpers_report_the_format() -> None:
    assert decode_json_or_text('{"a":1}') == (DataFormat.JSON, {"a": 1})
    assert decode_json_or_text(" [1]") == (DataFormat.JSON, [1])
    assert decode_json_or_text("1") == (DataFormat.PLAIN, "1")
    assert decode_json_or_text("{x") == (DataFormat.PLAIN, "{x")
    assert decode_kinesis_data(base64.b64encode(b'{"a":1}').decode()) == (DataFormat.JSON, {"a": 1})
    assert decode_kinesis_data("not base64!") == (DataFormat.UNREADABLE, None)
    assert decode_kafka_value(base64.b64encode(b"hi").decode()) == (DataFormat.PLAIN, "hi")
    assert decode_kafka_value(base64.b64encode(b"\xff").decode()) == (DataFormat.UNREADABLE, None)
    assert decode_kafka_value(None) == (DataFormat.UNREADABLE, None)


def test_data_usage_tells_each_filters_use_of_the_data_key() -> None:
    matcher = compile_filters(['{"body":["x"]}', '{"body":{"a":[1]}}', '{"awsRegion":["x"]}',
                               '{"$or":[{"body":["x"]},{"body":{"a":[1]}}]}'])
    assert matcher.data_usage("body") == (DataUsage.PLAIN, DataUsage.JSON, DataUsage.NONE, DataUsage.MIXED)
    assert matcher.uses_key("body") and not matcher.uses_key("data")


LONG_NUMBERS = [
    # (pattern on the data, JSON data): the data's numbers as parse_event reads them decide.
    ('{"a":[0.1234567890123456789]}', '{"a":0.1234567890123456789,"b":[1.5]}'),
    ('{"a":[12345678901234567890123]}', '{"a":12345678901234567890123}'),
    ('{"a":[1.2345678901234568e22]}', '{"a":12345678901234567890123}'),
    ('{"a":[{"numeric":[">",1]}]}', '{"a":12345678901234567890123}'),
    ('{"a":[1.5]}', '{"a":1.5,"b":12345678901234567890123}'),
    ('{"a":["x"]}', '{"a":"x","b":0.1234567890123456789}'),
]


@pytest.mark.parametrize(("pattern", "data"), LONG_NUMBERS)
def test_sources_read_long_numbers_as_parse_event_does(pattern: str, data: str) -> None:
    """Issue 13 point 5 reads record data with orjson and scans it for 19-digit runs only when
    a float reached by the filters could be one; every source must still answer as if the data
    had been read by ``decode_json_or_text`` (numbers a double cannot hold kept by their literal,
    behaviour §11.1 numeric precision)."""
    _, exact = decode_json_or_text(data)
    for key, keep, record in (
        ("body", filter_sqs, sqs(data)),
        ("data", filter_kinesis, kinesis(data.encode())),
        ("value", filter_kafka, kafka(data.encode())),
    ):
        matcher = compile_filters(['{"%s": %s}' % (key, pattern)])
        expected = matcher.matches({key: exact})
        assert keep(matcher, record) is expected, (key, pattern, data)
    assert compile_filters(['{"body": %s}' % pattern]).matches({"body": exact}) is (
        compile_filters([pattern]).matches_json(data)
    )


def test_a_record_too_deep_for_the_exact_reading_is_still_answered() -> None:
    """The exact reading is the standard library's, which stops near 1,000 levels where orjson
    reads 1,024: a record between the two is answered from orjson's reading, never an error
    that would fail the whole poll (docs/behaviour.md §5: filtering decides, it does not raise)."""
    body = '{"a":0.1234567890123456789,"d":' + "[" * 1000 + "]" * 1000 + "}"
    matcher = compile_filters(['{"body":{"a":[0.1234567890123456789]}}'])
    assert filter_sqs(matcher, sqs(body)) is False
    assert filter_sqs(compile_filters(['{"body":{"a":[{"exists":true}]}}']), sqs(body)) is True
