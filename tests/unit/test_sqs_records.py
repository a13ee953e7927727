"""The SQS record shape Lambda hands a function (SPEC 2)."""

import base64

from esm.sources.sqs_records import sqs_event

ARN = "arn:aws:sqs:us-east-1:000000000000:q"


def test_record_shape_and_attribute_order():
    """SPEC 2: field names, string attribute values, message attributes with list fields, metadata."""
    message = {
        "MessageId": "m1", "ReceiptHandle": "rh", "Body": "hello", "MD5OfBody": "5d41",
        "MD5OfMessageAttributes": "abcd",
        "Attributes": {"SentTimestamp": "1", "ApproximateReceiveCount": "2", "SenderId": "S",
                       "ApproximateFirstReceiveTimestamp": "3", "MessageGroupId": "g", "Unlisted": "x"},
        "MessageAttributes": {
            "s": {"StringValue": "v", "DataType": "String"},
            "b": {"BinaryValue": b"\x01\x02", "DataType": "Binary.raw"},
        },
    }
    event = sqs_event(message, ARN, "us-east-1")
    assert list(event) == ["messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                           "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion"]
    assert event["attributes"] == {"ApproximateReceiveCount": "2", "SentTimestamp": "1", "MessageGroupId": "g",
                                   "SenderId": "S", "ApproximateFirstReceiveTimestamp": "3"}
    assert event["messageAttributes"]["s"] == {"stringValue": "v", "stringListValues": [], "binaryListValues": [],
                                               "dataType": "String"}
    assert event["messageAttributes"]["b"]["binaryValue"] == base64.b64encode(b"\x01\x02").decode()
    assert event["eventSource"] == "aws:sqs" and event["eventSourceARN"] == ARN and event["awsRegion"] == "us-east-1"


def test_no_md5_of_attributes_without_attributes():
    """SPEC 2: md5OfMessageAttributes is optional (absent when the message has no attributes)."""
    event = sqs_event({"MessageId": "m", "ReceiptHandle": "r", "Body": "", "MD5OfBody": "x"}, ARN, "us-east-1")
    assert "md5OfMessageAttributes" not in event and event["messageAttributes"] == {}
