"""ActiveMQ messages as Lambda hands them to a function (behaviour §2, §9.11), and the source's
QueueRecordFormat.

`activemq_event` builds one message of Lambda's `aws:mq` document from a STOMP MESSAGE frame's
headers and body, keys in the order Lambda's recorded events show them: messageID, messageType
(`jms/bytes-message` when the frame has a content-length header, as ActiveMQ's STOMP bridge
makes a BytesMessage of such a frame, else `jms/text-message`), timestamp, deliveryMode (2
persistent, 1 not), correlationID, replyTo, destination.physicalName, redelivered, type,
expiration, priority, data (base64 of the body), brokerInTime, brokerOutTime, properties (the
user's headers). Absent JMS values are written as Lambda's recordings write them: "" for
correlationID and type, the string "null" for replyTo, 0 for expiration and priority.

STOMP carries no broker times (only OpenWire does): brokerInTime is the message's timestamp (for
a STOMP or JMS producer, when it was sent), brokerOutTime the epoch milliseconds at which esm
received the frame.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Mapping, Sequence

import orjson

from esm.core.records import Record
from esm.filtering.decode import filter_kinesis
from esm.transform import Transform

EVENT_SOURCE = "aws:mq"
TEXT = "jms/text-message"
BYTES = "jms/bytes-message"

# STOMP frame headers that are not the message's properties: the protocol's own, the JMS
# header fields Lambda gives keys of their own, and what the broker adds for its redelivery
# and dead-letter bookkeeping.
NOT_PROPERTIES = frozenset({
    "ack", "subscription", "destination", "message-id", "content-length", "content-type", "receipt",
    "timestamp", "expires", "priority", "persistent", "correlation-id", "reply-to", "type", "redelivered",
    "scheduledJobId", "redeliveryDelay", "original-destination", "originalExpiration", "JMSXGroupID",
    "JMSXGroupSeq", "JMSXUserID",
})


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def physical_name(destination: str) -> str:
    """A STOMP destination (`/queue/orders`) as the JMS queue's physical name (`orders`)."""
    for prefix in ("/queue/", "/topic/"):
        if destination.startswith(prefix):
            return destination[len(prefix):]
    return destination


def activemq_event(headers: Mapping[str, str], body: bytes, received_ms: int) -> dict[str, Any]:
    timestamp = _int(headers.get("timestamp"))
    return {
        "messageID": headers.get("message-id", ""),
        "messageType": BYTES if "content-length" in headers else TEXT,
        "timestamp": timestamp,
        "deliveryMode": 2 if headers.get("persistent") == "true" else 1,
        "correlationID": headers.get("correlation-id", ""),
        "replyTo": headers.get("reply-to", "null"),
        "destination": {"physicalName": physical_name(headers.get("destination", ""))},
        "redelivered": headers.get("redelivered") == "true",
        "type": headers.get("type", ""),
        "expiration": _int(headers.get("expires")),
        "priority": _int(headers.get("priority")),
        "data": base64.b64encode(body).decode("ascii"),
        "brokerInTime": timestamp or received_ms,
        "brokerOutTime": received_ms,
        "properties": {k: v for k, v in headers.items() if k not in NOT_PROPERTIES},
    }


@dataclass(frozen=True, slots=True)
class Delivery:
    """A record's token: the STOMP frame that acknowledges it, and its message id for log lines."""

    frame: Any
    message_id: str


def activemq_record(frame: Any) -> Record:
    received_ms = int(time.time() * 1000)
    event = activemq_event(frame.headers, frame.body, received_ms)
    return Record(event=event, item_id=event["messageID"], size=len(orjson.dumps(event)),
                  arrived_at=time.monotonic(), token=Delivery(frame, event["messageID"]))


@dataclass(frozen=True)
class ActiveMqFormat:
    """ActiveMQ records as a function sees them (esm.core.contract.QueueRecordFormat): a batch is
    `{"eventSource": "aws:mq", "eventSourceArn": ..., "messages": [...]}`; no partial batch
    response (a batch fails as a whole); no groups kept in order; failures go back to the broker."""

    source_arn: str
    transform: Transform | None = None
    group_of: Callable[[Record], Hashable] | None = None

    def events(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        if self.transform is None:
            return [r.event for r in records]
        return [self.transform.apply(r.event) for r in records]

    def payload(self, records: Sequence[Record]) -> bytes:
        return orjson.dumps({"eventSource": EVENT_SOURCE, "eventSourceArn": self.source_arn,
                             "messages": self.events(records)})

    def read_identifier(self, value: Any) -> Hashable | None:
        return None  # Lambda takes no partial batch response from an MQ mapping

    def arrival(self, record: Record) -> float:
        """When the message was sent (its JMS timestamp), else when esm received it."""
        timestamp = record.event.get("timestamp")
        if isinstance(timestamp, int) and timestamp > 0:
            return timestamp / 1000
        return time.time() - (time.monotonic() - record.arrived_at)

    def keep(self, matcher: Any, record: Record) -> bool:
        # Filters see the message's fields with `data` decoded from base64 (JSON when it parses,
        # else the text), exactly as Kinesis's `data` is read inside its `kinesis` object.
        return filter_kinesis(matcher, {"kinesis": record.event})

    def where(self, unit: str, records: Sequence[Record]) -> str:
        return f"{unit or self.source_arn} {records[0].item_id}..{records[-1].item_id}"
