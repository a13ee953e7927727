"""SQS messages as Lambda hands them to a function (SPEC section 2), and their sizes.

Attribute values stay strings, as SQS returns them; binary message attributes are base64.
Only the system attributes Lambda passes on are kept. Keys come in the order events recorded
against AWS show them, `md5OfMessageAttributes` before `md5OfBody` and `null` when the message
has no attributes.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson

from esm.records import Record

# The system attributes Lambda includes, in the order its recorded events show them.
SYSTEM_ATTRIBUTES = (
    "ApproximateReceiveCount",
    "AWSTraceHeader",
    "SentTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "SenderId",
    "MessageDeduplicationId",
    "ApproximateFirstReceiveTimestamp",
    "DeadLetterQueueSourceArn",
)


def message_attribute(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "StringValue" in value:
        out["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        out["binaryValue"] = _b64(value["BinaryValue"])
    out["stringListValues"] = list(value.get("StringListValues") or [])
    out["binaryListValues"] = [_b64(v) for v in value.get("BinaryListValues") or []]
    out["dataType"] = value.get("DataType", "String")
    return out


def _b64(value: bytes | str) -> str:
    return base64.b64encode(value if isinstance(value, bytes) else value.encode()).decode("ascii")


def sqs_event(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = message.get("Attributes") or {}
    event: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {name: attributes[name] for name in SYSTEM_ATTRIBUTES if name in attributes},
        "messageAttributes": {
            name: message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfMessageAttributes": message.get("MD5OfMessageAttributes") or None,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    return event


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> Record:
    event = sqs_event(message, queue_arn, region)
    return Record(
        event=event,
        item_id=event["messageId"],
        size=len(orjson.dumps(event)),
        arrived_at=time.monotonic(),
        token=message["ReceiptHandle"],
    )


def message_group(record: Record) -> str | None:
    return record.event["attributes"].get("MessageGroupId")
