"""The on-failure documents of behaviour §4, key by key and in order, and the S3 key layout."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timezone

import pytest

from esm.aws import AwsClients
from esm.config.settings import AwsSettings
from esm.destinations import make_destination
from esm.core.conditions import (
    MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
    RECORD_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    RETRY_ATTEMPTS_EXHAUSTED,
)
from esm.destinations.records import (
    ResponseContext,
    dumps,
    failure_context,
    iso_millis,
    json_size,
    kafka_batch_failure_record,
    kafka_record_failure_record,
    response_context,
    s3_object_key,
    stream_failure_record,
    with_payload,
)
from esm.destinations.sns import SNS_MAX_MESSAGE_BYTES, sns_message
from esm.errors import DestinationError, UnsupportedDestination
from esm.invokers.base import FunctionError, InvocationError, Succeeded

FUNCTION_ARN = "arn:aws:lambda:us-east-2:123456789012:function:myfunction"
STREAM_ARN = "arn:aws:kinesis:us-east-2:123456789012:stream/mystream"
TABLE_STREAM_ARN = "arn:aws:dynamodb:us-east-2:123456789012:table/orders/stream/2024-01-01T00:00:00.000"
MSK_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/vpc-2/d4d3d8d0-0a1d-4c7f-9c8e-8d1e7c7e5b7c-2"

# behaviour §4's Kinesis example: 2019-11-14T00:38:06.021Z etc.
NOW = datetime(2019, 11, 14, 0, 38, 6, 21000, tzinfo=timezone.utc).timestamp()
FIRST = datetime(2019, 11, 14, 0, 38, 4, 835000, tzinfo=timezone.utc).timestamp()
LAST = datetime(2019, 11, 14, 0, 38, 5, 580000, tzinfo=timezone.utc).timestamp()
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def kinesis_document(**overrides):
    fields = dict(
        kind="kinesis", condition=RETRY_ATTEMPTS_EXHAUSTED, function_arn=FUNCTION_ARN, approximate_invoke_count=1,
        response=ResponseContext(), shard_id="shardId-000000000001", start_sequence_number="49601",
        end_sequence_number="49605", first_arrival=FIRST, last_arrival=LAST, batch_size=500,
        stream_arn=STREAM_ARN, request_id="c9b8fa9f-5a7f-4fae-8b3d-2f2f3a6e0d9e", now=NOW,
    )
    return stream_failure_record(**{**fields, **overrides})


def test_kinesis_document_matches_spec_example_byte_for_byte():
    """behaviour §4 Kinesis → SQS/SNS: the documented keys, in the documented order, with the documented values."""
    expected = (
        '{"requestContext":{"requestId":"c9b8fa9f-5a7f-4fae-8b3d-2f2f3a6e0d9e","functionArn":"' + FUNCTION_ARN + '",'
        '"condition":"RetryAttemptsExhausted","approximateInvokeCount":1},'
        '"responseContext":{"statusCode":200,"executedVersion":"$LATEST","functionError":"Unhandled"},'
        '"version":"1.0","timestamp":"2019-11-14T00:38:06.021Z",'
        '"KinesisBatchInfo":{"shardId":"shardId-000000000001","startSequenceNumber":"49601",'
        '"endSequenceNumber":"49605","approximateArrivalOfFirstRecord":"2019-11-14T00:38:04.835Z",'
        '"approximateArrivalOfLastRecord":"2019-11-14T00:38:05.580Z","batchSize":500,"streamArn":"' + STREAM_ARN + '"}}'
    )
    assert dumps(kinesis_document()) == expected


def test_expired_records_have_no_response_context_and_count_at_least_one():
    """behaviour §4 "Recorded against real AWS": records dropped for RecordAgeExceeded carry no
    responseContext key (not even null), whether or not they were ever invoked, and
    approximateInvokeCount is 1 for a record that expired before its first invoke, else the count."""
    for invokes, last, reported in ((0, None, 1), (3, "function_error", 3), (2, "partial", 2)):
        count, response = failure_context(RECORD_AGE_EXCEEDED, invokes, last)
        assert (count, response) == (reported, None)
        document = kinesis_document(condition=RECORD_AGE_EXCEEDED, approximate_invoke_count=count, response=response)
        assert list(document) == ["requestContext", "version", "timestamp", "KinesisBatchInfo"]
        assert document["requestContext"]["condition"] == "RecordAgeExceeded"
        assert document["requestContext"]["approximateInvokeCount"] == reported


def test_failure_context_reports_the_last_answer_for_other_conditions():
    """behaviour §4: after retries are exhausted the count is the invokes and responseContext what the
    function last answered, with the version that answered."""
    assert failure_context(RETRY_ATTEMPTS_EXHAUSTED, 4, "function_error", executed_version="3") == (
        4, ResponseContext(200, "3", "Unhandled"))
    assert failure_context(RETRY_ATTEMPTS_EXHAUSTED, 2, "invalid_response") == (2, ResponseContext(200, "$LATEST", None))
    assert failure_context(MAXIMUM_PAYLOAD_SIZE_EXCEEDED, 0, None) == (0, None)


def test_dynamodb_document_uses_ddb_stream_batch_info():
    """behaviour §4 DynamoDB: same envelope, `DDBStreamBatchInfo` with the seven fields in order."""
    document = kinesis_document(kind="dynamodb", stream_arn=TABLE_STREAM_ARN)
    assert list(document) == ["requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"]
    assert list(document["DDBStreamBatchInfo"]) == [
        "shardId", "startSequenceNumber", "endSequenceNumber", "approximateArrivalOfFirstRecord",
        "approximateArrivalOfLastRecord", "batchSize", "streamArn",
    ]
    assert document["DDBStreamBatchInfo"]["streamArn"] == TABLE_STREAM_ARN
    with pytest.raises(ValueError):
        kinesis_document(kind="sqs")


def test_request_id_defaults_to_a_fresh_uuid4_and_timestamp_to_now():
    """behaviour §4: requestId is a UUID per document; timestamp is ISO-8601 UTC with milliseconds and Z."""
    a = kinesis_document(request_id=None, now=None)
    b = kinesis_document(request_id=None, now=None)
    assert uuid.UUID(a["requestContext"]["requestId"]).version == 4
    assert a["requestContext"]["requestId"] != b["requestContext"]["requestId"]
    assert TS_RE.match(a["timestamp"])
    assert list(a["requestContext"]) == ["requestId", "functionArn", "condition", "approximateInvokeCount"]


def test_iso_millis_truncates_to_milliseconds_in_utc():
    """behaviour §4 timestamps: `YYYY-MM-DDTHH:MM:SS.mmmZ`, UTC whatever the local zone."""
    assert iso_millis(0) == "1970-01-01T00:00:00.000Z"
    assert iso_millis(1573691886.0219) == "2019-11-14T00:38:06.021Z"


def test_response_context_follows_the_last_invoke():
    """behaviour §4 "Recorded against real AWS": whenever the function answered, responseContext has all
    three keys; functionError is "Unhandled" for a function error and null otherwise (a partial
    response, or an invalid partial response: not a function error); never invoked → none."""
    assert response_context(FunctionError("Timeout", "late")).to_dict() == {
        "statusCode": 200, "executedVersion": "$LATEST", "functionError": "Unhandled"}
    assert response_context("function_error") == ResponseContext()
    assert response_context("partial").to_dict() == {"statusCode": 200, "executedVersion": "$LATEST",
                                                      "functionError": None}
    assert response_context("invalid_response").to_dict() == {"statusCode": 200, "executedVersion": "$LATEST",
                                                               "functionError": None}
    assert list(response_context("success").to_dict()) == ["statusCode", "executedVersion", "functionError"]
    assert response_context(Succeeded({"batchItemFailures": []})).function_error is None
    assert response_context(InvocationError("throttled", 429)) is None
    assert response_context("invocation_error") is None
    assert response_context(None) is None
    assert response_context("function_error", executed_version="7").executed_version == "7"
    with pytest.raises(ValueError):
        response_context("nonsense")


def kafka_record(topic="my-topic", partition=0, offset=100, timestamp=1749116692330):
    return {"topic": topic, "partition": partition, "offset": offset, "timestamp": timestamp,
            "timestampType": "CREATE_TIME", "key": "dGVzdC1rZXk=", "value": "dGVzdC12YWx1ZQ==", "headers": []}


def test_kafka_batch_document_shape():
    """behaviour §4 Kafka → SQS/SNS: envelope, KafkaBatchInfo fields in order, recordsInfo per topic-partition."""
    records = [kafka_record(offset=7, timestamp=1000), kafka_record(offset=5, timestamp=500),
               kafka_record(partition=1, offset=3, timestamp=2000), kafka_record(offset=9, timestamp=1500)]
    document = kafka_batch_failure_record(
        condition=RETRY_ATTEMPTS_EXHAUSTED, function_arn=FUNCTION_ARN, approximate_invoke_count=2,
        response=ResponseContext(), event_source_arn=MSK_ARN, bootstrap_servers="b-1:9092,b-2:9092",
        payload_size=2039086, records=records, request_id="r-1", now=NOW)
    assert list(document) == ["requestContext", "responseContext", "version", "timestamp", "KafkaBatchInfo"]
    assert document["requestContext"] == {"requestId": "r-1", "functionArn": FUNCTION_ARN,
                                          "condition": "RetryAttemptsExhausted", "approximateInvokeCount": 2}
    assert document["timestamp"] == "2019-11-14T00:38:06.021Z"
    info = document["KafkaBatchInfo"]
    assert list(info) == ["batchSize", "eventSourceArn", "bootstrapServers", "payloadSize", "recordsInfo"]
    assert info["batchSize"] == 4 and info["payloadSize"] == 2039086 and info["eventSourceArn"] == MSK_ARN
    assert list(info["recordsInfo"]) == ["my-topic-0", "my-topic-1"]
    assert info["recordsInfo"]["my-topic-0"] == {
        "firstRecordOffset": "5", "lastRecordOffset": "9",
        "firstRecordTimestamp": "1970-01-01T00:00:00.500Z", "lastRecordTimestamp": "1970-01-01T00:00:01.500Z"}
    assert info["recordsInfo"]["my-topic-1"]["firstRecordOffset"] == "3"
    assert info["recordsInfo"]["my-topic-1"]["lastRecordOffset"] == "3"


def test_kafka_payload_too_large_has_null_response_context():
    """behaviour §4: MaximumPayloadSizeExceeded (never invoked) → `"responseContext": null` for Kafka."""
    document = kafka_batch_failure_record(
        condition=MAXIMUM_PAYLOAD_SIZE_EXCEEDED, function_arn=FUNCTION_ARN, approximate_invoke_count=0,
        response=None, event_source_arn=MSK_ARN, bootstrap_servers="b-1:9092", payload_size=7_000_000,
        records=[kafka_record()], now=NOW)
    assert "responseContext" in document and document["responseContext"] is None
    assert document["requestContext"]["condition"] == "MaximumPayloadSizeExceeded"


def test_kafka_expired_records_have_no_response_context_key():
    """behaviour §4 "Recorded against real AWS": RecordAgeExceeded documents carry no responseContext key,
    for Kafka as for streams (null stays for MaximumPayloadSizeExceeded)."""
    count, response = failure_context(RECORD_AGE_EXCEEDED, 0, None)
    document = kafka_batch_failure_record(
        condition=RECORD_AGE_EXCEEDED, function_arn=FUNCTION_ARN, approximate_invoke_count=count,
        response=response, event_source_arn=MSK_ARN, bootstrap_servers="b-1:9092", payload_size=10,
        records=[kafka_record()], now=NOW)
    assert list(document) == ["requestContext", "version", "timestamp", "KafkaBatchInfo"]
    assert document["requestContext"]["approximateInvokeCount"] == 1


def test_kafka_per_record_document_for_a_kafka_topic():
    """behaviour §4 Kafka → kafka://topic: batchSize 1, recordInfo, and `payload` as an object holding the one record."""
    record = kafka_record()
    document = kafka_record_failure_record(
        condition=RETRIES_EXHAUSTED, function_arn=FUNCTION_ARN + ":$LATEST", approximate_invoke_count=3,
        response=ResponseContext(), event_source_arn=MSK_ARN, bootstrap_servers="b-1:9098", record=record,
        request_id="r-2", now=NOW)
    assert list(document) == ["requestContext", "responseContext", "version", "timestamp", "KafkaBatchInfo", "payload"]
    assert document["requestContext"]["condition"] == "RetriesExhausted"
    assert document["requestContext"]["approximateInvokeCount"] == 3
    info = document["KafkaBatchInfo"]
    assert list(info) == ["batchSize", "eventSourceArn", "bootstrapServers", "payloadSize", "recordInfo"]
    assert info["batchSize"] == 1
    assert info["recordInfo"] == {"offset": "100", "timestamp": "2025-06-05T09:44:52.330Z"}
    payload = document["payload"]
    assert isinstance(payload, dict)
    assert payload == {"bootstrapServers": "b-1:9098", "eventSource": "aws:kafka", "eventSourceArn": MSK_ARN,
                       "records": {"my-topic-0": [record]}}
    assert list(payload) == ["bootstrapServers", "eventSource", "eventSourceArn", "records"]
    assert info["payloadSize"] == json_size(payload) == len(json.dumps(payload, separators=(",", ":")))


def test_kafka_per_record_document_without_arn_for_self_managed_kafka():
    """behaviour §4: a self-managed cluster has no ARN; the payload carries its own eventSource and no ARN."""
    document = kafka_record_failure_record(
        condition=RETRIES_EXHAUSTED, function_arn=FUNCTION_ARN, approximate_invoke_count=1, response=None,
        event_source_arn=None, bootstrap_servers="k:9092", record=kafka_record(), event_source="SelfManagedKafka")
    assert document["responseContext"] is None
    assert "eventSourceArn" not in document["payload"]
    assert document["payload"]["eventSource"] == "SelfManagedKafka"


def test_with_payload_adds_the_event_as_an_escaped_json_string():
    """behaviour §4 S3: same document plus `payload`, the whole original invocation event as a JSON string."""
    event = {"Records": [{"kinesis": {"data": "eyJhIjoxfQ==", "sequenceNumber": "1"}, "note": "ünï \"q\""}]}
    document = kinesis_document()
    stored = json.loads(dumps(with_payload(document, event)))
    assert list(stored) == list(document) + ["payload"]
    assert isinstance(stored["payload"], str)
    assert json.loads(stored["payload"]) == event
    assert "payload" not in document  # the SQS/SNS document is untouched


def test_s3_object_key_layout():
    """behaviour §4: `aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>`, in UTC,
    the time being the document's own `timestamp` (one instant, not a second clock read)."""
    mapping = "0f8fad5b-d9cb-469f-a165-70867728950e"
    stamp = kinesis_document()["timestamp"]
    key = s3_object_key(mapping, "shardId-000000000001", stamp)
    assert re.fullmatch(
        r"aws/lambda/0f8fad5b-d9cb-469f-a165-70867728950e/shardId-000000000001/2019/11/14/"
        r"2019-11-14T00\.38\.06-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", key), key
    assert s3_object_key(mapping, "s", stamp) != s3_object_key(mapping, "s", stamp)  # random suffix
    # A document written just before midnight is filed under its own day, whenever the key is made.
    late = kinesis_document(now=datetime(2019, 12, 31, 23, 59, 59, 999000, tzinfo=timezone.utc).timestamp())
    assert "/2019/12/31/2019-12-31T23.59.59-" in s3_object_key(mapping, "s", late["timestamp"])


def test_s3_body_keys_are_alphabetical_at_every_level():
    """behaviour §4 "Recorded against real AWS": the S3 object's JSON has its keys in alphabetical order at
    every level; `payload` stays a string."""
    stored = json.loads(dumps(with_payload(kinesis_document(), {"Records": [{"b": 1, "a": 2}]}), sort_keys=True))

    def ordered(value):
        if isinstance(value, dict):
            assert list(value) == sorted(value), list(value)
            for inner in value.values():
                ordered(inner)
    ordered(stored)
    assert list(stored) == ["KinesisBatchInfo", "payload", "requestContext", "responseContext", "timestamp", "version"]
    assert isinstance(stored["payload"], str)


def test_sns_message_drops_payload_over_256_kb():
    """behaviour §4 SNS: over 256 KB the payload is dropped; a document too big without one cannot be sent."""
    small = with_payload(kinesis_document(), {"x": "y"})
    assert json.loads(sns_message(small)) == small  # under the limit: sent whole
    big = with_payload(kinesis_document(), {"blob": "x" * SNS_MAX_MESSAGE_BYTES})
    assert json.loads(sns_message(big)) == kinesis_document()
    with pytest.raises(DestinationError):
        sns_message(kinesis_document(stream_arn="s" * SNS_MAX_MESSAGE_BYTES))


def test_factory_refuses_kafka_topics_and_foreign_arns():
    """behaviour §4: destinations are SQS, SNS, S3 (kafka:// belongs to the Kafka source): a clear, non-retriable error."""
    clients = AwsClients(AwsSettings())
    for target in ("kafka://dead-letters", "arn:aws:lambda:us-east-1:1:function:f", "not-an-arn"):
        with pytest.raises(UnsupportedDestination) as caught:
            make_destination(target, clients, mapping_uuid="m")
        assert caught.value.retriable is False
    assert type(make_destination("arn:aws:s3:::b", clients, mapping_uuid="m")).__name__ == "S3Destination"
    assert type(make_destination("arn:aws:sns:us-east-1:1:t", clients, mapping_uuid="m")).__name__ == "SnsDestination"
    assert type(make_destination("arn:aws:sqs:us-east-1:1:q", clients, mapping_uuid="m")).__name__ == "SqsDestination"
