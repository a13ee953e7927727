"""SQS messages as Lambda hands them to a function (behaviour §2), and the queue's RecordFormat.

`sqs_record` builds one record: its event is Lambda's SQS record (attribute values stay strings,
as SQS returns them; binary message attributes are base64; only the system attributes Lambda
passes on are kept; keys in the order events recorded against AWS show them,
`md5OfMessageAttributes` before `md5OfBody` and `null` when the message has no attributes), its
item id the messageId, its token a `Receipt`. `SqsFormat` is the source's QueueRecordFormat: the
`{"Records": [...]}` payload (with `esm.transform`), messageIds in partial batch responses,
MessageGroupId as the group a FIFO queue keeps in order, and `filter_sqs` for FilterCriteria.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

import orjson

from esm.core.records import Record
from esm.filtering.decode import filter_sqs
from esm.transform import Transform

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


@dataclass(frozen=True, slots=True)
class Receipt:
    """A record's token: the handle that deletes or releases it, and its id for log lines."""

    handle: str
    message_id: str


def sqs_record(message: dict[str, Any], queue_arn: str, region: str) -> Record:
    event = sqs_event(message, queue_arn, region)
    return Record(
        event=event,
        item_id=event["messageId"],
        size=len(orjson.dumps(event)),
        arrived_at=time.monotonic(),
        token=Receipt(message["ReceiptHandle"], event["messageId"]),
    )


def message_group(record: Record) -> str | None:
    return record.event["attributes"].get("MessageGroupId")


@dataclass(frozen=True)
class SqsFormat:
    """SQS records as a function sees them (esm.core.contract.QueueRecordFormat).

    A queue's failures go back to the queue (its redrive policy dead-letters them), so SQS has no
    on-failure documents, and a FIFO queue keeps its groups' order itself (`group_of`)."""

    source_arn: str
    fifo: bool = False
    transform: Transform | None = None

    @property
    def group_of(self) -> Callable[[Record], Hashable] | None:
        """MessageGroupId for a FIFO queue (a group is processed in order); None for a standard queue."""
        return message_group if self.fifo else None

    def events(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        if self.transform is None:
            return [r.event for r in records]
        return [self.transform.apply(r.event) for r in records]

    def payload(self, records: Sequence[Record]) -> bytes:
        return orjson.dumps({"Records": self.events(records)})

    def read_identifier(self, value: Any) -> Hashable | None:
        return value if isinstance(value, str) and value else None

    def arrival(self, record: Record) -> float:
        """When SQS received the message (SentTimestamp, epoch milliseconds as a string)."""
        sent = record.event["attributes"].get("SentTimestamp")
        try:
            return int(sent) / 1000
        except (TypeError, ValueError):
            return time.time() - (time.monotonic() - record.arrived_at)

    def keep(self, matcher: Any, record: Record) -> bool:
        return filter_sqs(matcher, record.event)

    def where(self, unit: str, records: Sequence[Record]) -> str:
        return f"{unit or self.source_arn} {records[0].item_id}..{records[-1].item_id}"
