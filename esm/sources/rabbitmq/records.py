"""RabbitMQ messages as Lambda hands them to a function (behaviour §2, §9.11), and the source's
RecordFormat.

`rmq_record` builds one record from a delivered message: its event is one message of Lambda's
`rmqMessagesByQueue` list (`basicProperties` field for field in Lambda's order, `redelivered`, the
body as base64 `data`), its token a `Delivery`. Lambda writes the properties as its Java client
and JSON writer give them, and esm writes what the recorded events show: an AMQP long-string
header as `{"bytes": [...]}` (its UTF-8 bytes, each a signed Java byte), a byte-array header as
a list of numbers, a timestamp (the `timestamp` property, a timestamp header) as
"Jan 1, 1970, 12:33:41 AM" in UTC, an absent property as null. `RabbitFormat` is the source's
QueueRecordFormat: the `{"eventSource": "aws:rmq", ..., "rmqMessagesByQueue": {"<queue>::<vhost>":
[...]}}` payload (with `esm.transform`), FilterCriteria on the decoded `data`, no ordered groups.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import time
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Sequence

import orjson

from esm.core.records import Record
from esm.filtering.decode import filter_kinesis
from esm.transform import Transform

EVENT_SOURCE = "aws:rmq"


@dataclass(frozen=True, slots=True)
class Delivery:
    """A record's token: its delivery tag on the channel that delivered it (`channel`: which
    connection of the source, since a tag means nothing on another), and an id for log lines."""

    tag: int
    channel: int
    message_id: str


def lambda_time(value: dt.datetime) -> str:
    """A timestamp as Lambda writes it: "Jan 1, 1970, 12:33:41 AM" (UTC, US English)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.timezone.utc)
    hour = value.hour % 12 or 12
    return (f"{value.strftime('%b')} {value.day}, {value.year}, "
            f"{hour}:{value.minute:02d}:{value.second:02d} {'AM' if value.hour < 12 else 'PM'}")


def _java_bytes(raw: bytes) -> list[int]:
    # Java's bytes are signed: 0x80..0xff are written as -128..-1.
    return [b - 256 if b > 127 else b for b in raw]


def header_value(value: Any) -> Any:
    """One AMQP field-table value as Lambda writes it (see the module docstring)."""
    if isinstance(value, str):  # a long string (the client decodes UTF-8 ones to str)
        return {"bytes": _java_bytes(value.encode("utf-8"))}
    if isinstance(value, bytes):  # a long string that is not UTF-8
        return {"bytes": _java_bytes(value)}
    if isinstance(value, bytearray):  # a byte array
        return _java_bytes(bytes(value))
    if isinstance(value, dt.datetime):
        return lambda_time(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): header_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [header_value(v) for v in value]
    return value  # numbers, booleans, null


def _expiration(value: Any) -> str | None:
    """The `expiration` property: milliseconds as the message carries them (a string)."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(int(round(value * 1000)))  # the client hands it over in seconds
    if isinstance(value, dt.timedelta):
        return str(int(round(value.total_seconds() * 1000)))
    return str(value)


def basic_properties(message: Any) -> dict[str, Any]:
    """A delivered message's properties, in Lambda's order (`message`: an aio-pika IncomingMessage)."""
    headers = message.headers
    timestamp = message.timestamp
    return {
        "contentType": message.content_type,
        "contentEncoding": message.content_encoding,
        "headers": header_value(dict(headers)) if headers else None,
        "deliveryMode": _delivery_mode(message.delivery_mode),
        "priority": message.priority,
        "correlationId": message.correlation_id,
        "replyTo": message.reply_to,
        "expiration": _expiration(message.expiration),
        "messageId": message.message_id,
        "timestamp": lambda_time(timestamp) if isinstance(timestamp, dt.datetime) else None,
        "type": message.type,
        "userId": message.user_id,
        "appId": message.app_id,
        "clusterId": getattr(message, "cluster_id", None) or None,  # the client reads an absent one as ""
        "bodySize": len(message.body),
    }


def _delivery_mode(value: Any) -> int | None:
    return None if value is None else int(value)


def rmq_event(message: Any) -> dict[str, Any]:
    return {
        "basicProperties": basic_properties(message),
        "redelivered": bool(message.redelivered),
        "data": base64.b64encode(message.body).decode("ascii"),
    }


def rmq_record(message: Any, channel: int) -> Record:
    event = rmq_event(message)
    tag = int(message.delivery_tag)
    ident = message.message_id or f"{channel}/{tag}"
    return Record(
        event=event,
        item_id=ident,
        size=len(orjson.dumps(event)),
        arrived_at=time.monotonic(),
        token=Delivery(tag, channel, ident),
    )


def queue_key(queue: str, vhost: str) -> str:
    """`<queue>::<vhost>`: how Lambda names the queue in `rmqMessagesByQueue`."""
    return f"{queue}::{vhost}"


@dataclass(frozen=True)
class RabbitFormat:
    """RabbitMQ records as a function sees them (esm.core.contract.QueueRecordFormat).

    A failed batch goes back to the broker whole (its own delivery limit and dead-letter exchange
    take it from there), so there are no on-failure documents and no partial batch responses."""

    source_arn: str
    queue: str
    transform: Transform | None = None
    group_of: Callable[[Record], Hashable] | None = None  # RabbitMQ keeps no groups in order for Lambda

    def events(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        if self.transform is None:
            return [r.event for r in records]
        return [self.transform.apply(r.event) for r in records]

    def payload(self, records: Sequence[Record]) -> bytes:
        return orjson.dumps({"eventSource": EVENT_SOURCE, "eventSourceArn": self.source_arn,
                             "rmqMessagesByQueue": {self.queue: self.events(records)}})

    def read_identifier(self, value: Any) -> Hashable | None:
        return None  # no partial batch responses for Amazon MQ (behaviour §3)

    def arrival(self, record: Record) -> float:
        """When the message was received: AMQP carries no broker time, and a `timestamp` property is
        the publisher's (whole seconds, often absent), so esm's own receive time stands for it."""
        return time.time() - (time.monotonic() - record.arrived_at)

    def keep(self, matcher: Any, record: Record) -> bool:
        # Filters see the message's fields with `data` decoded from base64 (JSON, else text), the
        # way a Kinesis record's fields are seen: the shared decoder for a top-level base64 `data`.
        return filter_kinesis(matcher, {"kinesis": record.event})

    def where(self, unit: str, records: Sequence[Record]) -> str:
        return f"{self.queue} {records[0].item_id}..{records[-1].item_id}"
