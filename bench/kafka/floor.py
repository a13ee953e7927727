"""The floor for bench/kafka: the least work a Python ESM must do to deliver Kafka records as Lambda does.

One `AIOKafkaConsumer` in a consumer group (auto-commit off) calls `getmany`; every record is
built as Lambda's Kafka event record (topic, partition, offset, timestamp, timestampType, key and
value base64, headers as lists of signed Java bytes: behaviour §2 "Kafka"); each partition's records go
100 at a time into the event envelope (eventSource, bootstrapServers, records under
"<topic>-<partition>"), the event is serialized with `orjson.dumps` and handed to an in-process
no-op handler that parses it with `orjson.loads`; the group's offsets are committed after each
fetch. No filters, no retries, no metrics, no concurrency: anything esm does beyond this is its
own overhead. The record building is written here (not imported from esm) so that the floor does
not move when esm does; `same_as_esm` checks that both build the same event.
"""

from __future__ import annotations

import time
import uuid
from binascii import b2a_base64
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord

TIMESTAMP_TYPES = ("CREATE_TIME", "LOG_APPEND_TIME")


def event_record(message: Any) -> dict[str, Any]:
    """Lambda's view of one record: a null key (or value) is left out, header bytes are signed."""
    record: dict[str, Any] = {"topic": message.topic, "partition": message.partition, "offset": message.offset,
                              "timestamp": message.timestamp,
                              "timestampType": TIMESTAMP_TYPES[message.timestamp_type == 1]}
    if message.key is not None:
        record["key"] = b2a_base64(message.key, newline=False).decode("ascii")
    if message.value is not None:
        record["value"] = b2a_base64(message.value, newline=False).decode("ascii")
    record["headers"] = [{name: [b - 256 if b > 127 else b for b in data or b""]} for name, data in message.headers]
    return record


def event(key: str, records: list[dict[str, Any]], servers: str) -> dict[str, Any]:
    """The self-managed Kafka invocation event for one partition's batch."""
    return {"eventSource": "SelfManagedKafka", "bootstrapServers": servers, "records": {key: records}}


async def handler(payload: bytes) -> None:
    """The in-process no-op function: it only parses its event."""
    orjson.loads(payload)


async def floor_loop(topic: str, total: int, servers: str, batch_size: int = 100,
                     cpu: list[float] | None = None) -> float:
    """Records per second from the first non-empty fetch to the commit of the `total`-th record
    (and, appended to `cpu`, records per second of this process's CPU time over the same span)."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, group_id=f"floor-{uuid.uuid4().hex[:8]}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        seen, start = 0, None
        while seen < total:
            fetched = await consumer.getmany(timeout_ms=200, max_records=500)
            if not fetched:
                continue
            if start is None:
                start, cpu_start = time.perf_counter(), time.process_time()
            for tp, messages in fetched.items():
                key = f"{tp.topic}-{tp.partition}"
                for first in range(0, len(messages), batch_size):
                    records = [event_record(m) for m in messages[first:first + batch_size]]
                    await handler(orjson.dumps(event(key, records, servers)))
                seen += len(messages)
            await consumer.commit()
        if cpu is not None:
            cpu.append(total / max(time.process_time() - cpu_start, 1e-9))
        return total / (time.perf_counter() - (start or time.perf_counter()))
    finally:
        await consumer.stop()


async def same_as_esm(topic: str, servers: str) -> None:
    """Raise unless the floor's event for the topic's first records equals the one esm builds."""
    from esm.sources.kafka.records import kafka_event, kafka_event_record  # only for this check

    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers, enable_auto_commit=False,
                                auto_offset_reset="earliest")
    await consumer.start()
    try:
        fetched: dict[Any, list[Any]] = {}
        while not fetched:
            fetched = await consumer.getmany(timeout_ms=1000, max_records=100)
    finally:
        await consumer.stop()
    tp, messages = next(iter(fetched.items()))
    # The backlog has no keys or headers: add records that have them (non-ASCII bytes, a null header).
    messages = [*messages, ConsumerRecord(tp.topic, tp.partition, 10**9, 1700000000000, 1, b"k\xc3\xa9", None, None,
                                          3, -1, [("h", "é".encode()), ("empty", None)])]
    ours = event(f"{tp.topic}-{tp.partition}", [event_record(m) for m in messages], servers)
    theirs = kafka_event([kafka_event_record(m) for m in messages], bootstrap_servers=servers)
    if orjson.dumps(ours) != orjson.dumps(theirs):
        raise AssertionError("the floor's Kafka event differs from esm's: the floor would not measure the same work")
