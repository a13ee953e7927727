"""Fuzzing malformed records through the record builders, the filter decoders and `esm.transform`.

docs/behaviour.md §5 and behaviour §11 say what each source does with data it cannot read; the rule
under test is that nothing here ever raises, whatever a record holds (invalid base64, invalid
UTF-8, invalid JSON, JSON nested past every parser's depth, 1 MB values, missing fields), so one
bad record can never stop the poll loop of its unit, and that the record is judged per behaviour §5:

- SQS: a JSON body pattern never matches a body that is not a JSON object or array (and a plain
  pattern never matches a JSON body); a body that is JSON is matched as the reference says;
- Kinesis: data that is not base64 JSON never matches a data pattern; base64 JSON is matched as
  the reference says;
- Kafka: a value that is not UTF-8 JSON (or is missing) is filtered on its metadata only.

And `esm.transform` sends a record it cannot transform unchanged, never loses its identifiers.
(Avro records with an unknown schema id are covered with the schema registry tests.)
"""

from __future__ import annotations

import base64
import datetime
import json
from types import SimpleNamespace
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from esm.filtering import compile_filters
from esm.filtering.decode import filter_kafka, filter_kinesis, filter_sqs
from esm.sources.kafka.records import kafka_record
from esm.sources.kinesis.records import kinesis_record
from esm.sources.sqs.records import sqs_record
from tests.support.transforms import kafka_transform, kinesis_transform, sqs_transform
from tests.unit.filtering.filter_reference import reference_matches

SETTINGS = settings(
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example],
)

SQS_ARN = "arn:aws:sqs:us-east-1:000000000000:q"
STREAM_ARN = "arn:aws:kinesis:us-east-1:000000000000:stream/s"
ROLE = "arn:aws:lambda:us-east-1:000000000000:function:f"

json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.integers(min_value=2**64, max_value=2**70),
              st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(["ok", "no", "", "x"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["k", "n", "a"]), inner, max_size=3)),
    max_leaves=10,
)


def _nested(depth: int) -> bytes:
    return b'{"k":' * depth + b'"ok"' + b"}" * depth


# Bytes a record's data can hold: JSON of every kind, text, invalid UTF-8, invalid JSON, nesting
# past orjson's 1024 levels and past Python's recursion limit, and large values.
data_bytes = st.one_of(
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(st.sampled_from(["k", "n"]), json_values, min_size=1).map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=40),
    st.text(max_size=20).map(str.encode),
    st.sampled_from([
        b"", b"\xff\xfe\xfd", b"\xc3\x28", b"\xed\xa0\x80", b'{"k": "ok"', b'{"k": NaN}', b"[1, 2,]", b"{}", b"[]",
        b'{"k": "\xff"}', b"\x00" * 10, _nested(900), _nested(1000), _nested(1030), _nested(3000),
        b'{"k": "ok", "pad": "' + b"x" * (1024 * 1024) + b'"}', bytes(range(256)) * 4096,
    ]),
)

# Patterns over the data field and metadata, in each source's shape (behaviour §5): JSON data patterns,
# plain data patterns where the source allows them, metadata-only, and $or mixes.
SQS_PATTERNS = [
    '{"body": {"k": ["ok"]}}', '{"body": {"k": [{"exists": false}]}}', '{"body": ["ok"]}', '{"body": [{"prefix": "{"}]}',
    '{"body": {"n": [{"numeric": [">", 0]}]}}', '{"awsRegion": ["us-east-1"]}',
    '{"$or": [{"body": {"k": ["ok"]}}, {"messageAttributes": {"pass": {"stringValue": ["y"]}}}]}',
]
KINESIS_PATTERNS = [
    '{"data": {"k": ["ok"]}}', '{"data": {"k": [{"exists": false}]}}', '{"data": {"n": [{"numeric": [">", 0]}]}}',
    '{"partitionKey": ["pass"]}', '{"$or": [{"data": {"k": ["ok"]}}, {"partitionKey": ["pass"]}]}',
]
KAFKA_PATTERNS = [
    '{"value": {"k": ["ok"]}}', '{"value": ["ok"]}', '{"value": {"k": ["ok"]}, "topic": ["t"]}',
    '{"value": [{"prefix": "o"}], "partition": [0]}', '{"topic": ["t"]}', '{"key": [{"exists": true}]}',
]


@st.composite
def sqs_messages(draw: st.DrawFn) -> dict[str, Any]:
    message: dict[str, Any] = {
        "MessageId": draw(st.uuids()).hex, "ReceiptHandle": draw(st.text(min_size=1, max_size=20)),
        "Body": draw(st.one_of(data_bytes.map(lambda b: b.decode("utf-8", "replace")), st.text(max_size=30))),
        "MD5OfBody": "x",
    }
    if draw(st.booleans()):
        message["Attributes"] = draw(st.dictionaries(st.sampled_from(["SentTimestamp", "MessageGroupId",
                                                                       "ApproximateReceiveCount", "Unlisted"]),
                                                     st.text(max_size=10)))
    if draw(st.booleans()):
        message["MessageAttributes"] = draw(st.dictionaries(
            st.sampled_from(["pass", "b", "n"]),
            st.fixed_dictionaries({}, optional={"StringValue": st.sampled_from(["y", "n", ""]),
                                                "BinaryValue": st.binary(max_size=8),
                                                "StringListValues": st.lists(st.text(max_size=3), max_size=2),
                                                "BinaryListValues": st.lists(st.binary(max_size=3), max_size=2),
                                                "DataType": st.sampled_from(["String", "Binary", "Number.int"])}),
            max_size=2))
        message["MD5OfMessageAttributes"] = draw(st.sampled_from(["", "abc"]))
    return message


@st.composite
def kinesis_raw(draw: st.DrawFn) -> dict[str, Any]:
    raw: dict[str, Any] = {"SequenceNumber": str(draw(st.integers(0, 10**56))),
                           "PartitionKey": draw(st.sampled_from(["pass", "k", "", "é"]))}
    if draw(st.integers(0, 9)):
        raw["Data"] = draw(data_bytes)
    raw["ApproximateArrivalTimestamp"] = draw(st.one_of(
        st.none(), st.floats(0, 2e9), st.datetimes(min_value=datetime.datetime(1971, 1, 1),
                                                   timezones=st.just(datetime.timezone.utc))))
    return raw


@st.composite
def kafka_messages(draw: st.DrawFn) -> SimpleNamespace:
    headers = draw(st.lists(st.tuples(st.text(max_size=5), st.one_of(st.none(), st.binary(max_size=8))), max_size=3))
    return SimpleNamespace(
        topic="t", partition=draw(st.integers(0, 3)), offset=draw(st.integers(0, 2**62)),
        timestamp=draw(st.one_of(st.just(-1), st.integers(0, 2**42))), timestamp_type=draw(st.sampled_from([0, 1, None, 7])),
        key=draw(st.one_of(st.none(), st.binary(max_size=8))), value=draw(st.one_of(st.none(), data_bytes)),
        headers=headers,
    )


def _json_container(data: bytes) -> Any:
    """The data as the filters see it when it is JSON (behaviour §5), or None when it is not."""
    def no_constants(name: str) -> Any:  # NaN and Infinity are not JSON (RFC 8259)
        raise ValueError(name)

    try:
        value = json.loads(data.decode("utf-8"), parse_constant=no_constants)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, (dict, list)) else None


def _depth(value: Any) -> int:
    depth = 0
    while isinstance(value, (dict, list)) and value:
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
        depth += 1
    return depth


# ---------------------------------------------------------------- SQS


@SETTINGS
@given(message=sqs_messages(), pattern=st.sampled_from(SQS_PATTERNS))
def test_sqs_records_are_built_and_filtered(message: dict[str, Any], pattern: str) -> None:
    """behaviour §2 + 5, SQS: any message becomes Lambda's record (body untouched, size its JSON length) and is
    kept or filtered without an exception; a JSON body pattern never matches a body that is not JSON."""
    record = sqs_record(message, SQS_ARN, "us-east-1")
    assert record.event["body"] == message["Body"] and record.item_id == message["MessageId"]
    assert record.size == len(orjson.dumps(record.event))
    kept = filter_sqs(compile_filters([pattern]), record.event)
    body = message["Body"]
    parsed = _json_container(body.encode())
    if '"body": {' in pattern and "$or" not in pattern:
        if parsed is None:
            assert kept is False, "behaviour §5: a JSON body pattern never matches a plain body"
        elif _depth(parsed) < 900:
            assert kept == reference_matches([pattern], {**record.event, "body": parsed})
    if '"body": [' in pattern and parsed is not None:
        assert kept is False, "behaviour §5: a plain body pattern never matches a JSON body"


# ---------------------------------------------------------------- Kinesis


@SETTINGS
@given(raw=kinesis_raw(), pattern=st.sampled_from(KINESIS_PATTERNS))
def test_kinesis_records_are_built_and_filtered(raw: dict[str, Any], pattern: str) -> None:
    """behaviour §2 + 5, Kinesis: any record becomes Lambda's record (data base64 of the bytes) and is kept or
    skipped without an exception; data that is not base64 JSON never matches a data pattern."""
    record = kinesis_record(raw, "shardId-000000000000", STREAM_ARN, "us-east-1", ROLE)
    data = raw.get("Data", b"")
    assert base64.b64decode(record.event["kinesis"]["data"]) == data
    assert record.item_id == raw["SequenceNumber"] and record.token == int(raw["SequenceNumber"])
    assert record.size == len(orjson.dumps(record.event))
    kept = filter_kinesis(compile_filters([pattern]), record.event)
    parsed = _json_container(data)
    fields = record.event["kinesis"]
    if pattern.startswith('{"data"'):
        if parsed is None:
            assert kept is False, "behaviour §5: non-JSON data never matches a data pattern"
        elif _depth(parsed) < 900:
            assert kept == reference_matches([pattern], {**fields, "data": parsed})
    if "$or" in pattern and fields["partitionKey"] == "pass":
        assert kept is True, "the metadata branch of $or matches whatever the data holds"


@SETTINGS
@given(data=st.one_of(st.binary(max_size=40), st.sampled_from(["%%%", "YQ", "YQ==\n", "", "\u00e9", 7, None, [1]])))
def test_kinesis_data_that_is_not_base64_text(data: Any) -> None:
    """behaviour §5: a record whose data is not base64 text (as a broken proxy could hand it over) is skipped by
    a data pattern and kept by a metadata pattern, never an exception."""
    event = {"kinesis": {"partitionKey": "pass", "sequenceNumber": "1", "data": data}}
    assert filter_kinesis(compile_filters(['{"partitionKey": ["pass"]}']), event) is True
    filter_kinesis(compile_filters(['{"data": {"k": ["ok"]}}']), event)
    assert kinesis_transform("data.k").apply(event)["kinesis"]["sequenceNumber"] == "1"


# ---------------------------------------------------------------- Kafka


@SETTINGS
@given(message=kafka_messages(), pattern=st.sampled_from(KAFKA_PATTERNS))
def test_kafka_records_are_built_and_filtered(message: SimpleNamespace, pattern: str) -> None:
    """behaviour §2 + 5, Kafka: any record (null key or value, binary headers, any bytes) becomes Lambda's record
    and is filtered without an exception; a value that is not UTF-8 JSON/text is filtered on metadata only."""
    record = kafka_record(message)
    event = record.event
    assert ("key" in event) == (message.key is not None) and ("value" in event) == (message.value is not None)
    if message.value is not None:
        assert base64.b64decode(event["value"]) == message.value
    assert all(-128 <= b <= 127 for header in event["headers"] for values in header.values() for b in values)
    # behaviour §3's 6 MB cap counts each record's bytes: the counted size is the serialized size, exactly.
    assert record.size == len(orjson.dumps(event))
    kept = filter_kafka(compile_filters([pattern]), event)
    value = message.value
    readable = value is not None and _utf8(value)
    if pattern == '{"value": {"k": ["ok"]}, "topic": ["t"]}' and (not readable or _json_container(value) is None):
        assert kept is True, "behaviour §5: a value the data pattern cannot read is filtered on its metadata (topic t)"
    if pattern == '{"value": {"k": ["ok"]}}' and readable and (parsed := _json_container(value)) is not None \
            and _depth(parsed) < 900:
        assert kept == reference_matches([pattern], {**event, "value": parsed})


def _utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


# ---------------------------------------------------------------- esm.transform

EXPRESSIONS = ["body", "body.k", "data", "data.k", "value.k", "to_string(@)", "abs(body)", "length(data)", "keys(value)",
               "sort(data)", "max_by(data, &n)", "{x: data, id: sequenceNumber}", "`1`", "[0]", "merge(@, `{}`)",
               "not_null(value, data, body)", "data.k.k.k.k", "avg(data)", "join(',', body)", "starts_with(body, 'o')"]


@SETTINGS
@given(message=sqs_messages(), expression=st.sampled_from(EXPRESSIONS))
def test_sqs_transform_never_raises_and_keeps_the_message_id(message: dict[str, Any], expression: str) -> None:
    """behaviour §9.10: a transform on any body gives a record with its messageId; a failing one leaves it as it was."""
    event = sqs_record(message, SQS_ARN, "us-east-1").event
    out = sqs_transform(expression).apply(event)
    assert out["messageId"] == event["messageId"] and isinstance(out["body"], str)
    orjson.dumps(out)


@SETTINGS
@given(raw=kinesis_raw(), expression=st.sampled_from(EXPRESSIONS))
def test_kinesis_transform_never_raises_and_binary_data_passes_unchanged(raw: dict[str, Any], expression: str) -> None:
    """behaviour §9.10: a transform keeps the sequence number; data that is not UTF-8 text is sent unchanged
    (re-encoding what the expression saw would replace the bytes)."""
    event = kinesis_record(raw, "shardId-000000000000", STREAM_ARN, "us-east-1", ROLE).event
    out = kinesis_transform(expression).apply(event)
    assert out["kinesis"]["sequenceNumber"] == event["kinesis"]["sequenceNumber"]
    assert out["eventID"] == event["eventID"]
    base64.b64decode(out["kinesis"]["data"], validate=True)
    if not _utf8(raw.get("Data", b"")):
        assert out == event


@SETTINGS
@given(message=kafka_messages(), expression=st.sampled_from(EXPRESSIONS))
def test_kafka_transform_never_raises_and_binary_values_pass_unchanged(message: SimpleNamespace, expression: str) -> None:
    """behaviour §9.10: a transform keeps topic, partition and offset; a value that is not UTF-8, or no value at all
    (a tombstone), is sent unchanged."""
    event = kafka_record(message).event
    out = kafka_transform(expression).apply(event)
    assert (out["topic"], out["partition"], out["offset"]) == (event["topic"], event["partition"], event["offset"])
    if message.value is None or not _utf8(message.value):
        assert out == event, "a tombstone stays a tombstone; a binary value stays as it came"


def test_a_failed_transform_logs_no_record_data(caplog):
    """docs/design.md "Habits": record contents stay out of logs, also when JMESPath's error quotes the value."""
    event = {"messageId": "m1", "body": '{"card": "4111-secret"}'}
    with caplog.at_level("WARNING", logger="esm.transform"):
        assert sqs_transform("abs(body.card)").apply(event) == event
        assert kinesis_transform("data").apply({"kinesis": {"sequenceNumber": "1", "data": "%%%secret"}})
    assert caplog.records and "secret" not in caplog.text
