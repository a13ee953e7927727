"""DynamoDB records and their format (issue 14; behaviour §2, §3, §4, §5): the bridge from GetRecords to
Lambda's record, lanes by item key, filters, partial-response identifiers, and the on-failure
document with DDBStreamBatchInfo."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import orjson

from esm.core.records import Record
from esm.destinations.records import stream_failure_record
from esm.filtering import compile_filters
from esm.sources.dynamodb.records import DynamoDbFormat, dynamodb_event, dynamodb_record
from tests.support.transforms import dynamodb_transform

ARN = "arn:aws:dynamodb:eu-west-1:111122223333:table/orders/stream/2024-01-01T00:00:00.000"
FUNCTION = "arn:aws:lambda:eu-west-1:111122223333:function:f"


def raw(sequence: str = "111", name: str = "MODIFY", **stream) -> dict:
    """A record as botocore reads DynamoDB Streams' GetRecords (moto's and AWS's shape)."""
    return {"eventID": "e1", "eventName": name, "eventVersion": "1.0", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"ApproximateCreationDateTime": datetime(2022, 7, 13, 13, 48, 1, 750000, tzinfo=timezone.utc),
                         "Keys": {"pk": {"S": "a"}, "sk": {"N": "1"}},
                         "NewImage": {"pk": {"S": "a"}, "sk": {"N": "1"}, "b": {"B": b"\x01\x02"},
                                      "m": {"M": {"bs": {"BS": [b"x", b"y"]}, "l": {"L": [{"B": b"z"}]}}}},
                         "OldImage": {"pk": {"S": "a"}, "sk": {"N": "1"}},
                         "SequenceNumber": sequence, "SizeBytes": 42, "StreamViewType": "NEW_AND_OLD_IMAGES",
                         **stream}}


def test_record_is_lambdas_shape_in_spec_order():
    """behaviour §2: keys in order, eventVersion 1.1, region and ARN from the stream, creation time in whole
    epoch seconds, SizeBytes passed through, no invokeIdentityArn."""
    event = dynamodb_event(raw(), ARN, "eu-west-1")
    assert list(event) == ["eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb",
                           "eventSourceARN"]
    assert event["eventVersion"] == "1.1" and event["eventSource"] == "aws:dynamodb"
    assert event["awsRegion"] == "eu-west-1" and event["eventSourceARN"] == ARN
    stream = event["dynamodb"]
    assert list(stream) == ["ApproximateCreationDateTime", "Keys", "NewImage", "OldImage", "SequenceNumber",
                            "SizeBytes", "StreamViewType"]
    assert stream["ApproximateCreationDateTime"] == 1657720081 and isinstance(stream["ApproximateCreationDateTime"], int)
    assert stream["SizeBytes"] == 42 and stream["SequenceNumber"] == "111"


def test_binary_values_become_base64_and_typed_json_stays_typed():
    """behaviour §2 / issue 14.2: images stay DynamoDB's typed JSON; B and BS (nested in M and L too) are base64."""
    image = dynamodb_event(raw(), ARN, "eu-west-1")["dynamodb"]["NewImage"]
    assert image == {"pk": {"S": "a"}, "sk": {"N": "1"}, "b": {"B": "AQI="},
                     "m": {"M": {"bs": {"BS": ["eA==", "eQ=="]}, "l": {"L": [{"B": "eg=="}]}}}}
    json.dumps(image)  # JSON all the way down


def test_ttl_deletes_name_dynamodb_as_user_identity():
    """Issue 14.2: a delete made by TTL carries userIdentity {type: Service, principalId: dynamodb.amazonaws.com},
    before eventSourceARN; other records have none."""
    record = raw(name="REMOVE")
    record["userIdentity"] = {"PrincipalId": "dynamodb.amazonaws.com", "Type": "Service"}
    event = dynamodb_event(record, ARN, "eu-west-1")
    assert event["userIdentity"] == {"type": "Service", "principalId": "dynamodb.amazonaws.com"}
    assert list(event)[-2:] == ["userIdentity", "eventSourceARN"]
    assert "userIdentity" not in dynamodb_event(raw(), ARN, "eu-west-1")


def test_keys_only_records_carry_no_images():
    """behaviour §2: a view type without images gives a `dynamodb` object without NewImage/OldImage."""
    record = raw()
    del record["dynamodb"]["NewImage"], record["dynamodb"]["OldImage"]
    assert "NewImage" not in dynamodb_event(record, ARN, "r")["dynamodb"]


def fmt(transform=None) -> DynamoDbFormat:
    return DynamoDbFormat(stream_arn=ARN, function_arn=FUNCTION, transform=transform)


def test_payload_and_partial_response_identifier():
    """behaviour §2/§3: the payload is {"Records": [...]}; an itemIdentifier is the record's dynamodb.SequenceNumber,
    and tokens order by the number."""
    records = [dynamodb_record(raw(str(s)), ARN, "eu-west-1") for s in (9, 10)]
    assert orjson.loads(fmt().payload(records)) == {"Records": [r.event for r in records]}
    assert [r.item_id for r in records] == ["9", "10"] and records[0].token < records[1].token
    assert fmt().read_identifier("10") == "10"
    assert fmt().read_identifier("") is None and fmt().read_identifier(None) is None and fmt().read_identifier(10) is None


def test_lane_key_is_the_items_keys_written_canonically():
    """behaviour §7 (ParallelizationFactor): one item's changes share a lane whatever the key order in the record."""
    a = dynamodb_record(raw(), ARN, "r")
    b = dynamodb_record(raw(Keys={"sk": {"N": "1"}, "pk": {"S": "a"}}), ARN, "r")
    c = dynamodb_record(raw(Keys={"pk": {"S": "b"}, "sk": {"N": "1"}}), ARN, "r")
    assert fmt().lane_key(a) == fmt().lane_key(b) != fmt().lane_key(c)


def test_filters_address_event_name_and_typed_images():
    """behaviour §5 / behaviour §11: patterns on eventName and dynamodb.NewImage.<attr>.S match the record as sent."""
    record = dynamodb_record(raw(), ARN, "r")
    assert fmt().keep(compile_filters(['{"eventName": ["MODIFY"]}']), record)
    assert not fmt().keep(compile_filters(['{"eventName": ["INSERT"]}']), record)
    assert fmt().keep(compile_filters(['{"dynamodb": {"NewImage": {"pk": {"S": ["a"]}}}}']), record)
    assert not fmt().keep(compile_filters(['{"dynamodb": {"Keys": {"sk": {"N": ["2"]}}}}']), record)


def test_arrival_is_the_creation_time():
    """behaviour §6: IteratorAge, MaximumRecordAgeInSeconds and windows use ApproximateCreationDateTime."""
    assert fmt().arrival(dynamodb_record(raw(), ARN, "r")) == 1657720081.0


def test_transform_applies_to_the_dynamodb_object():
    """behaviour §9.10 esm.transform: the expression sees the record (as for SQS) and its result replaces `dynamodb`."""
    record = dynamodb_record(raw(), ARN, "r")
    [event] = fmt(dynamodb_transform("{id: dynamodb.Keys.pk.S, seq: dynamodb.SequenceNumber}")).events([record])
    assert event["dynamodb"] == {"id": "a", "seq": "111"} and event["eventName"] == "MODIFY"


def test_failure_document_has_ddb_stream_batch_info_with_whole_seconds():
    """behaviour §4: DynamoDB's document is the stream envelope with DDBStreamBatchInfo, record arrivals in
    whole seconds as AWS writes them (2022-07-13T13:48:01Z); Kinesis keeps milliseconds."""
    records = [dynamodb_record(raw("7"), ARN, "eu-west-1"),
               dynamodb_record(raw("8", ApproximateCreationDateTime=1657720090), ARN, "eu-west-1")]
    [delivery] = fmt().failure_deliveries("shardId-1", records, condition="RetryAttemptsExhausted", invoke_count=3,
                                          response=None, per_record=False)
    info = delivery.document["DDBStreamBatchInfo"]
    assert info == {"shardId": "shardId-1", "startSequenceNumber": "7", "endSequenceNumber": "8",
                    "approximateArrivalOfFirstRecord": "2022-07-13T13:48:01Z",
                    "approximateArrivalOfLastRecord": "2022-07-13T13:48:10Z", "batchSize": 2, "streamArn": ARN}
    assert delivery.document["requestContext"]["functionArn"] == FUNCTION
    assert delivery.invocation_event == {"Records": [r.event for r in records]}
    kinesis = stream_failure_record(kind="kinesis", condition="RetryAttemptsExhausted", function_arn=FUNCTION,
                                    approximate_invoke_count=1, response=None, shard_id="s", start_sequence_number="1",
                                    end_sequence_number="1", first_arrival=1657720081.75, last_arrival=1657720081.75,
                                    batch_size=1, stream_arn="arn:aws:kinesis:r:1:stream/s")
    assert kinesis["KinesisBatchInfo"]["approximateArrivalOfFirstRecord"] == "2022-07-13T13:48:01.750Z"


def test_record_size_is_its_json():
    """behaviour §3 (6 MB cap): a record's size is its JSON as sent."""
    record: Record = dynamodb_record(raw(), ARN, "r")
    assert record.size == len(orjson.dumps(record.event))
