"""The SQS record shape Lambda hands a function (behaviour §2)."""

import base64

from esm.sources.sqs.records import sqs_event

ARN = "arn:aws:sqs:us-east-1:000000000000:q"


def test_record_shape_and_attribute_order():
    """behaviour §2 and behaviour §4 "Recorded against real AWS": field names and key order as AWS's recorded
    events show them (md5OfMessageAttributes before md5OfBody; AWSTraceHeader second among the
    attributes), string attribute values, message attributes with list fields, metadata."""
    message = {
        "MessageId": "m1", "ReceiptHandle": "rh", "Body": "hello", "MD5OfBody": "5d41",
        "MD5OfMessageAttributes": "abcd",
        "Attributes": {"SentTimestamp": "1", "ApproximateReceiveCount": "2", "SenderId": "S",
                       "ApproximateFirstReceiveTimestamp": "3", "MessageGroupId": "g", "Unlisted": "x",
                       "AWSTraceHeader": "Root=1", "SequenceNumber": "7", "MessageDeduplicationId": "d"},
        "MessageAttributes": {
            "s": {"StringValue": "v", "DataType": "String"},
            "b": {"BinaryValue": b"\x01\x02", "DataType": "Binary.raw"},
        },
    }
    event = sqs_event(message, ARN, "us-east-1")
    assert list(event) == ["messageId", "receiptHandle", "body", "attributes", "messageAttributes",
                           "md5OfMessageAttributes", "md5OfBody", "eventSource", "eventSourceARN", "awsRegion"]
    assert list(event["attributes"].items()) == [
        ("ApproximateReceiveCount", "2"), ("AWSTraceHeader", "Root=1"), ("SentTimestamp", "1"),
        ("SequenceNumber", "7"), ("MessageGroupId", "g"), ("SenderId", "S"), ("MessageDeduplicationId", "d"),
        ("ApproximateFirstReceiveTimestamp", "3")]
    assert event["messageAttributes"]["s"] == {"stringValue": "v", "stringListValues": [], "binaryListValues": [],
                                               "dataType": "String"}
    assert event["messageAttributes"]["b"]["binaryValue"] == base64.b64encode(b"\x01\x02").decode()
    assert event["eventSource"] == "aws:sqs" and event["eventSourceARN"] == ARN and event["awsRegion"] == "us-east-1"


def test_md5_of_attributes_is_null_without_attributes():
    """behaviour §4 "Recorded against real AWS": a message without attributes carries
    `"md5OfMessageAttributes": null` (present, not left out), in its place before md5OfBody."""
    event = sqs_event({"MessageId": "m", "ReceiptHandle": "r", "Body": "", "MD5OfBody": "x"}, ARN, "us-east-1")
    assert "md5OfMessageAttributes" in event and event["md5OfMessageAttributes"] is None
    assert list(event).index("md5OfMessageAttributes") == list(event).index("md5OfBody") - 1
    assert event["messageAttributes"] == {}
