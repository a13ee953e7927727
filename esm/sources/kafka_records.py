"""Kafka records as Lambda hands them to a function (SPEC 2), and the ids partial responses use (SPEC 3).

Pure functions, no I/O. A Kafka event has no `Records` array: records are grouped under
`"<topic>-<partition>"` in `records`, each with `key` (base64, absent when the key is null),
`value` (base64), `timestamp` (epoch ms), `timestampType` and `headers`, a list of single-entry
objects whose value is the header's bytes as a JSON array of **signed** Java bytes (-128..127).
Self-managed Kafka events say `"eventSource": "SelfManagedKafka"` and carry no `eventSourceArn`;
Amazon MSK events say `"aws:kafka"` with the cluster ARN.

A record's batch id is `("<topic>-<partition>", offset)`: `read_identifier` turns a partial batch
response's `{"partition": "topic-0", "offset": 100}` into it, or None when it is malformed (which
fails the whole batch, SPEC 3).
"""

from __future__ import annotations

import time
from binascii import b2a_base64
from typing import Any, Hashable, Iterable, Mapping, Sequence

import orjson

from esm.batching import ENVELOPE_BYTES, MAX_PAYLOAD_BYTES
from esm.records import Record

SELF_MANAGED = "SelfManagedKafka"
MSK = "aws:kafka"
TIMESTAMP_TYPES = {0: "CREATE_TIME", 1: "LOG_APPEND_TIME"}


def signed_bytes(data: bytes | bytearray | None) -> list[int]:
    """Java's view of `data`: each byte as a signed value, -128..127 (a null header value is [])."""
    if not data:
        return []
    return [b - 256 if b > 127 else b for b in data]


def partition_key(topic: str, partition: int) -> str:
    return f"{topic}-{partition}"


def _b64(data: bytes) -> str:
    return b2a_base64(data, newline=False).decode("ascii")


def kafka_event_record(message: Any) -> dict[str, Any]:
    """One record of the event from an aiokafka `ConsumerRecord` (or anything with its fields).

    A null key is left out (SPEC 2); so is a null value (a tombstone), for the same reason.
    """
    record: dict[str, Any] = {
        "topic": message.topic,
        "partition": message.partition,
        "offset": message.offset,
        "timestamp": message.timestamp,
        "timestampType": TIMESTAMP_TYPES.get(message.timestamp_type, "CREATE_TIME"),
    }
    key, value, headers = message.key, message.value, message.headers
    if key is not None:
        record["key"] = _b64(key)
    if value is not None:
        record["value"] = _b64(value)
    record["headers"] = [{name: signed_bytes(data)} for name, data in headers] if headers else []
    return record


def kafka_record(message: Any, key: str | None = None, arrived_at: float | None = None) -> Record:
    """The pipeline's Record: item id `("<topic>-<partition>", offset)`, token the offset.

    A poller building a whole fetch passes the partition's `key` and one `arrived_at` for all."""
    event = kafka_event_record(message)
    offset = message.offset
    return Record(event=event, item_id=(key or partition_key(message.topic, message.partition), offset),
                  size=len(orjson.dumps(event)), arrived_at=time.monotonic() if arrived_at is None else arrived_at,
                  token=offset)


def kafka_event(records: Iterable[Mapping[str, Any]], *, bootstrap_servers: str,
                event_source_arn: str | None = None) -> dict[str, Any]:
    """The invocation event for `records` (event records, in order), grouped by topic-partition."""
    grouped: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        grouped.setdefault(partition_key(record["topic"], record["partition"]), []).append(record)
    event: dict[str, Any] = {"eventSource": SELF_MANAGED if event_source_arn is None else MSK}
    if event_source_arn is not None:
        event["eventSourceArn"] = event_source_arn
    event["bootstrapServers"] = bootstrap_servers
    event["records"] = grouped
    return event


def envelope_bytes(topic: str, partition: int, *, bootstrap_servers: str, event_source_arn: str | None) -> int:
    """Bytes of the event around one partition's records (the event with an empty record list)."""
    empty = kafka_event([], bootstrap_servers=bootstrap_servers, event_source_arn=event_source_arn)
    empty["records"] = {partition_key(topic, partition): []}
    return len(orjson.dumps(empty))


def payload_cap(topic: str, partition: int, *, bootstrap_servers: str, event_source_arn: str | None) -> int:
    """The `max_bytes` to give a BatchPolicy so that records plus the Kafka envelope fit in 6 MB.

    BatchPolicy counts its own `{"Records":[]}` envelope; the difference is taken off here.
    """
    envelope = envelope_bytes(topic, partition, bootstrap_servers=bootstrap_servers, event_source_arn=event_source_arn)
    return MAX_PAYLOAD_BYTES - (envelope - ENVELOPE_BYTES)


def read_identifier(value: Any) -> Hashable | None:
    """`{"partition": "topic-0", "offset": 100}` -> `("topic-0", 100)`; None when malformed.

    The offset is a JSON number (an integer); a string of digits is accepted too, as Lambda's
    Java runtime libraries serialize it either way. Anything else (missing keys, empty partition,
    a negative or fractional offset, booleans) is malformed.
    """
    if not isinstance(value, dict):
        return None
    partition, offset = value.get("partition"), value.get("offset")
    if not isinstance(partition, str) or not partition:
        return None
    if isinstance(offset, bool):
        return None
    if isinstance(offset, str) and offset.isascii() and offset.isdigit():
        offset = int(offset)
    elif isinstance(offset, float) and offset.is_integer():
        offset = int(offset)
    if not isinstance(offset, int) or offset < 0:
        return None
    return (partition, offset)


def record_epoch(record: Record) -> float:
    """When the record entered the topic (its timestamp), in epoch seconds; for MaximumRecordAgeInSeconds."""
    stamp = record.event.get("timestamp")
    if isinstance(stamp, int) and stamp >= 0:
        return stamp / 1000
    return time.time()  # no timestamp (-1): treat as new rather than expire it at once


def offsets_of(records: Sequence[Record]) -> str:
    """`topic-0@15..17` for logs."""
    if not records:
        return "-"
    key, first = records[0].item_id
    last = records[-1].item_id[1]
    return f"{key}@{first}" if first == last else f"{key}@{first}..{last}"
