"""esm.transform (behaviour §9.10): JMESPath on each record's decoded payload; identifiers kept; nothing lost."""

import base64
import json

from tests.support.transforms import kafka_transform, kinesis_transform, sqs_transform


def b64(value) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


def test_sqs_body_is_decoded_and_replaced():
    """behaviour §9.10: an SQS JSON body is parsed for the expression; the result replaces it as JSON text."""
    event = {"messageId": "m1", "body": json.dumps({"order": {"id": 7}, "noise": 1})}
    out = sqs_transform("body.order").apply(event)
    assert json.loads(out["body"]) == {"id": 7} and out["messageId"] == "m1"


def test_kinesis_data_is_decoded_and_reencoded():
    """behaviour §9.10: Kinesis data is base64-decoded JSON for the expression, and base64 JSON again after."""
    event = {"eventID": "e", "kinesis": {"sequenceNumber": "1", "partitionKey": "k", "data": b64({"a": {"b": 2}})}}
    out = kinesis_transform("data.a").apply(event)
    assert json.loads(base64.b64decode(out["kinesis"]["data"])) == {"b": 2}
    assert out["kinesis"]["sequenceNumber"] == "1" and out["eventID"] == "e"
    assert event["kinesis"]["data"] == b64({"a": {"b": 2}}), "the original record is not modified"


def test_kafka_value_is_decoded_and_reencoded_and_metadata_is_visible():
    """behaviour §9.10: a Kafka value is decoded; the expression can also read metadata such as the topic."""
    record = {"topic": "t", "partition": 0, "offset": 5, "value": b64({"x": 1})}
    out = kafka_transform("{topic: topic, x: value.x}").apply(record)
    assert json.loads(base64.b64decode(out["value"])) == {"topic": "t", "x": 1}
    assert out["offset"] == 5


def test_a_failing_expression_sends_the_record_unchanged():
    """behaviour §9.10 + "nothing lost": a transform error leaves the record as it was."""
    event = {"messageId": "m", "body": "plain"}
    assert sqs_transform("abs(body)").apply(event) == event  # abs() of a string is a runtime type error
