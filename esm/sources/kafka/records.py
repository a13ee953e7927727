"""Kafka records as Lambda hands them to a function (behaviour §2), and the ids partial responses use (behaviour §3).

Pure functions, no I/O. A Kafka event has no `Records` array: records are grouped under
`"<topic>-<partition>"` in `records`, each with `key` (base64, absent when the key is null),
`value` (base64), `timestamp` (epoch ms), `timestampType` and `headers`, a list of single-entry
objects whose value is the header's bytes as a JSON array of **signed** Java bytes (-128..127).
Self-managed Kafka events say `"eventSource": "SelfManagedKafka"` and carry no `eventSourceArn`;
Amazon MSK events say `"aws:kafka"` with the cluster ARN.

A record's batch id is `("<topic>-<partition>", offset)`: `read_identifier` turns a partial batch
response's `{"partition": "topic-0", "offset": 100}` into it, or None when it is malformed (which
fails the whole batch, behaviour §3).

`KafkaFormat` is the source's RecordFormat (esm.core.contract): the payload (the Kafka envelope
around one partition's records, `esm.transform` applied), lane keys (the record's key; a null key
stays on the first lane), filtering (schema-aware with a SchemaRegistryConfig), records that failed
the schema step as pre-failures, and the on-failure documents: one per record for a `kafka://`
topic (condition spelled RetriesExhausted), else one per batch (behaviour §4).
"""

from __future__ import annotations

import time
from binascii import a2b_base64, b2a_base64
from typing import Any, Callable, Hashable, Iterable, Mapping, NamedTuple, Sequence

import orjson

from esm.core.batching import ENVELOPE_BYTES, MAX_PAYLOAD_BYTES
from esm.core.conditions import RETRIES_EXHAUSTED, RETRY_ATTEMPTS_EXHAUSTED
from esm.core.records import Record
from esm.destinations.records import json_size, kafka_batch_failure_record, kafka_record_failure_record
from esm.filtering.decode import filter_kafka
from esm.core.contract import Delivery, PreFailure
from esm.transform import Transform

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

    A null key is left out (behaviour §2); so is a null value (a tombstone), for the same reason.
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


# The bytes of an event record's JSON around its variable parts (see `event_size`).
_FIXED_BYTES = len(b'{"topic":"","partition":,"offset":,"timestamp":,"timestampType":"","headers":}')
_KEY_BYTES = len(b',"key":""')
_VALUE_BYTES = len(b',"value":""')


def event_size(event: dict[str, Any]) -> int:
    """`len(orjson.dumps(event))` for a `kafka_event_record`, counted instead of serialized.

    Every string in it but the header names needs no JSON escaping (a topic name is
    [a-zA-Z0-9._-]; key and value are base64; timestampType is a constant), so the size is the
    fixed text plus each part's length; headers, rare, are serialized. The payload cap is counted
    per record, and a serialization per record only to count it was the largest cost of a fetch."""
    size = (_FIXED_BYTES + len(event["topic"]) + len(str(event["partition"])) + len(str(event["offset"]))
            + len(str(event["timestamp"])) + len(event["timestampType"]))
    if "key" in event:
        size += _KEY_BYTES + len(event["key"])
    if "value" in event:
        size += _VALUE_BYTES + len(event["value"])
    headers = event["headers"]
    return size + (len(orjson.dumps(headers)) if headers else 2)


def kafka_record(message: Any, key: str | None = None, arrived_at: float | None = None) -> Record:
    """The pipeline's Record: item id `("<topic>-<partition>", offset)`, token the offset.

    A poller building a whole fetch passes the partition's `key` and one `arrived_at` for all."""
    event = kafka_event_record(message)
    offset = message.offset
    return Record(event=event, item_id=(key or partition_key(message.topic, message.partition), offset),
                  size=event_size(event), arrived_at=time.monotonic() if arrived_at is None else arrived_at,
                  token=offset)


class Fetch(NamedTuple):
    """One partition's fetch as records, with what the poll loop counts of it: `weight`, the
    records' sizes summed (the in-flight cap and the pause threshold count these), and `polled_bytes`,
    the keys' and values' bytes as read (EventPollerThroughputInBytes)."""

    records: list[Record]
    weight: int
    polled_bytes: int


def _digit_bounds(number: int) -> tuple[int, int, int]:
    """(len(str(number)), low, high): every integer in [low, high) has that many characters."""
    digits = len(str(number))
    if number <= 0:
        return digits, number, number + 1  # rare (a -1 timestamp): counted on its own
    return digits, 10 ** (digits - 1), 10 ** digits


def kafka_records(messages: Sequence[Any], key: str, arrived_at: float) -> Fetch:
    """`kafka_record` for every message of one partition's fetch, in one loop: the same records,
    built with the per-fetch parts (topic, partition, key, arrival) computed once. A fetch is where
    esm spends most per record, so this is the one place written for speed: sizes are exact, but an
    offset's and a timestamp's digits are counted only when they leave the range of the previous
    record's (offsets ascend, timestamps stay 13 digits), not by formatting each number."""
    out: list[Record] = []
    append = out.append
    b64 = b2a_base64
    types = TIMESTAMP_TYPES
    new = tuple.__new__  # Record(...) without its Python-level __new__: the same tuple, built in C
    weight = polled = 0
    fixed = 0
    offset_digits = offset_low = offset_high = 0
    stamp_digits = stamp_low = stamp_high = 0
    for message in messages:
        if not fixed:
            fixed = _FIXED_BYTES + len(message.topic) + len(str(message.partition))
        offset, stamp = message.offset, message.timestamp
        if not offset_low <= offset < offset_high:
            offset_digits, offset_low, offset_high = _digit_bounds(offset)
        if not stamp_low <= stamp < stamp_high:
            stamp_digits, stamp_low, stamp_high = _digit_bounds(stamp)
        stamp_type = types.get(message.timestamp_type, "CREATE_TIME")
        event: dict[str, Any] = {"topic": message.topic, "partition": message.partition, "offset": offset,
                                 "timestamp": stamp, "timestampType": stamp_type}
        size = fixed + offset_digits + stamp_digits + len(stamp_type)
        data = message.key
        if data is not None:
            polled += len(data)
            text = b64(data, newline=False).decode("ascii")
            event["key"] = text
            size += _KEY_BYTES + len(text)
        data = message.value
        if data is not None:
            polled += len(data)
            text = b64(data, newline=False).decode("ascii")
            event["value"] = text
            size += _VALUE_BYTES + len(text)
        headers = message.headers
        if headers:
            listed = [{name: signed_bytes(value)} for name, value in headers]
            event["headers"] = listed
            size += len(orjson.dumps(listed))
        else:
            event["headers"] = []
            size += 2
        weight += size
        append(new(Record, (event, (key, offset), size, arrived_at, offset)))
    return Fetch(out, weight, polled)


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


def plain_keeps(matcher: Any, record: Record) -> bool:
    return filter_kafka(matcher, record.event)


def no_pre_failure(record: Record) -> PreFailure | None:
    return None


class KafkaFormat:
    """Kafka records as a function and an on-failure destination see them (esm.core.contract.RecordFormat).

    `keep` and `pre_failure` are the schema step's (esm.sources.kafka.decoding) when the mapping
    has a SchemaRegistryConfig. `bootstrap_servers` is set once the source has connected (for an
    MSK cluster ARN, the broker string chosen then)."""

    reports_iterator_age = False

    def __init__(self, *, event_source_arn: str | None, function_arn: str, transform: Transform | None,
                 keeps: Callable[[Any, Record], bool] = plain_keeps,
                 pre_failure: Callable[[Record], PreFailure | None] = no_pre_failure):
        self.source_arn = event_source_arn
        self.event_source = SELF_MANAGED if event_source_arn is None else MSK
        self.function_arn = function_arn
        self.transform = transform
        self.keep = keeps  # type: ignore[method-assign]
        self.pre_failure = pre_failure  # type: ignore[method-assign]
        self.may_pre_fail = pre_failure is not no_pre_failure  # only with a schema registry
        self.bootstrap_servers = ""
        self._heads: dict[str, bytes] = {}  # unit -> the payload's bytes before its records
        self._caps: dict[str, int] = {}

    def connected(self, bootstrap_servers: str) -> None:
        self.bootstrap_servers = bootstrap_servers
        self._heads.clear()
        self._caps.clear()

    def events(self, records: Sequence[Record]) -> list[dict[str, Any]]:
        if self.transform is None:
            return [r.event for r in records]
        return [self.transform.apply(r.event) for r in records]

    def payload(self, records: Sequence[Record]) -> bytes:
        """kafka_event's bytes, built once per batch: a lane's records are all of one partition, so
        the envelope up to the partition's record list is the same for every batch of it."""
        first = records[0].event
        unit = partition_key(first["topic"], first["partition"])
        head = self._heads.get(unit)
        if head is None:
            empty = self._envelope(unit)
            head = self._heads[unit] = orjson.dumps(empty)[:-len(b"[]}}")]
        return b"".join((head, orjson.dumps(self.events(records)), b"}}"))

    def _envelope(self, unit: str) -> dict[str, Any]:
        event = kafka_event([], bootstrap_servers=self.bootstrap_servers, event_source_arn=self.source_arn)
        event["records"] = {unit: []}
        return event

    def read_identifier(self, value: Any) -> Hashable | None:
        return read_identifier(value)

    def arrival(self, record: Record) -> float:
        return record_epoch(record)

    def payload_cap(self, unit: str) -> int:
        """6 MB less what the Kafka envelope of `unit` adds beyond BatchPolicy's own envelope."""
        cap = self._caps.get(unit)
        if cap is None:
            cap = self._caps[unit] = MAX_PAYLOAD_BYTES - (len(orjson.dumps(self._envelope(unit))) - ENVELOPE_BYTES)
        return cap

    def lane_key(self, record: Record) -> bytes | None:
        key = record.event.get("key")
        return None if key is None else a2b_base64(key)

    def where(self, unit: str, records: Sequence[Record]) -> str:
        return offsets_of(records)

    def failure_deliveries(self, unit: str, records: Sequence[Record], *, condition: str, invoke_count: int,
                           response: Any, per_record: bool) -> list[Delivery]:
        if per_record:
            # kafka://topic: one message per record, keyed by the record's own key (behaviour §4).
            spelled = RETRIES_EXHAUSTED if condition == RETRY_ATTEMPTS_EXHAUSTED else condition
            deliveries = []
            for record in records:
                document = kafka_record_failure_record(
                    condition=spelled, function_arn=self.function_arn, approximate_invoke_count=invoke_count,
                    response=response, event_source_arn=self.source_arn, bootstrap_servers=self.bootstrap_servers,
                    record=record.event, event_source=self.event_source)
                key = record.event.get("key")
                deliveries.append(Delivery(document, None, {"key": a2b_base64(key) if key is not None else None}))
            return deliveries
        events = [r.event for r in records]
        event = kafka_event(events, bootstrap_servers=self.bootstrap_servers, event_source_arn=self.source_arn)
        document = kafka_batch_failure_record(
            condition=condition, function_arn=self.function_arn, approximate_invoke_count=invoke_count,
            response=response, event_source_arn=self.source_arn, bootstrap_servers=self.bootstrap_servers,
            payload_size=json_size(event), records=events)
        return [Delivery(document, event)]
