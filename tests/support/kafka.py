"""Kafka helpers for tests: topics with unique names, producing, reading back, group offsets, and
in-process recording handlers for Kafka events.

Config files in tests name `tests.support.kafka:handle` (in-process, async) or
`tests.support.kafka:file_handler` (for a daemon in another process: it appends every batch to the
file named by ESM_TEST_RECORD_FILE). A test installs a `KafkaRecorder` with `install()`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import json
import os
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator, Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from tests.support.recorder import Recorder

FUNCTIONS = {"recorder": {"handler": "tests.support.kafka:handle", "max_concurrency": 100}}


def bootstrap() -> str:
    return os.environ["KAFKA_BOOTSTRAP_SERVERS"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


# A self-managed cluster reached without authentication gives its VPC entries: AWS requires
# SourceAccessConfigurations of a self-managed cluster, and esm ignores these two for networking.
NO_AUTH: list[dict[str, str]] = [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-0123456789abcdef0"},
                                 {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-0123456789abcdef0"}]


def smk_mapping(topic: str, group: str | None = None, **fields: Any) -> dict[str, Any]:
    """A self-managed Kafka mapping for the recorder, reading `topic` from the test broker."""
    mapping: dict[str, Any] = {
        "FunctionName": "recorder",
        "Topics": [topic],
        "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": bootstrap().split(",")}},
        "SourceAccessConfigurations": NO_AUTH,
        "StartingPosition": "TRIM_HORIZON",
        "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": group or unique("g")},
    }
    mapping.update(fields)
    return mapping


# ---------------------------------------------------------------- group timings


@pytest.fixture(autouse=True)
def quick_group(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rebalances in about a second instead of three; a member that vanished (SIGKILL, cut off) is
    evicted after 6 s, the broker's minimum session timeout; lag metrics every second. A test module
    takes it with `from tests.support.kafka import quick_group`."""
    import esm.sources.kafka.tuning as kafka_source

    monkeypatch.setattr(kafka_source, "SESSION_TIMEOUT_MS", 6000)
    monkeypatch.setattr(kafka_source, "HEARTBEAT_INTERVAL_MS", 300)
    monkeypatch.setattr(kafka_source, "LAG_INTERVAL", 1.0)


# ---------------------------------------------------------------- the broker


@contextlib.asynccontextmanager
async def kafka_admin() -> AsyncIterator[AIOKafkaAdminClient]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap())
    await admin.start()
    try:
        yield admin
    finally:
        await admin.close()


async def create_topic(admin: AIOKafkaAdminClient, partitions: int = 1, prefix: str = "t",
                       configs: dict[str, str] | None = None) -> str:
    name = unique(prefix)
    response = await admin.create_topics([NewTopic(name, partitions, 1, topic_configs=configs or {})])
    assert all(error == 0 for _, error, *_ in response.topic_errors), response
    return name


@dataclass(frozen=True)
class Message:
    value: bytes | None
    key: bytes | None = None
    partition: int | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None


async def produce(topic: str, messages: list[Message], max_request_size: int = 1048576) -> list[Any]:
    """Produce in list order (one at a time, so order per partition is the list's); returns RecordMetadata."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), acks="all", max_request_size=max_request_size)
    await producer.start()
    try:
        sent = []
        for m in messages:
            sent.append(await producer.send_and_wait(topic, m.value, key=m.key, partition=m.partition,
                                                     headers=list(m.headers) or None, timestamp_ms=m.timestamp_ms))
        return sent
    finally:
        await producer.stop()


async def produce_bulk(topic: str, values: list[bytes], partition: int = 0) -> None:
    """Many small records to one partition, in order, batched by the producer."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap(), acks="all", linger_ms=5)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, partition=partition) for value in values]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(topic: str, count: int, partitions: int = 1, timeout: float = 30.0) -> list[Any]:
    """The first `count` records of `topic` (partitions 0..partitions-1, no group), or fail."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap(), enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic, p) for p in range(partitions)])
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while len(out) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"read {len(out)} of {count} record(s) from {topic} in {timeout}s")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(records)
        return out
    finally:
        await consumer.stop()


async def group_offsets(admin: AIOKafkaAdminClient, group: str) -> dict[int, int]:
    """The group's committed offsets, partition -> offset."""
    offsets = await admin.list_consumer_group_offsets(group)
    return {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def wait_for_offsets(admin: AIOKafkaAdminClient, group: str, condition: Callable[[dict[int, int]], bool],
                           timeout: float = 60.0) -> dict[int, int]:
    deadline = time.monotonic() + timeout
    while True:
        offsets = await group_offsets(admin, group)
        if condition(offsets):
            return offsets
        if time.monotonic() > deadline:
            raise AssertionError(f"group {group} offsets {offsets} did not reach the condition in {timeout}s")
        await asyncio.sleep(0.2)


# ---------------------------------------------------------------- the function


def value_of(record: dict[str, Any]) -> str:
    return base64.b64decode(record["value"]).decode()


class KafkaRecorder(Recorder):
    """Records every Kafka event (`events`) and its records (`batches`, flattened in event order).

    Tracks invokes in flight overall and per partition (`max_per_group` is the most batches of
    one partition seen in flight at once). `behaviour(event)` may return an awaitable.
    """

    def __init__(self, behaviour: Callable[[dict[str, Any]], Any] | None = None, delay: float = 0.0):
        super().__init__(behaviour, delay)
        self.events: list[dict[str, Any]] = []

    def values(self) -> list[str]:
        return [value_of(r) for r in self.records]

    async def handle(self, event: dict[str, Any]) -> Any:
        records = [r for group in event.get("records", {}).values() for r in group]
        groups = set(event.get("records", {}))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        for group in groups:
            self.groups_in_flight[group] = self.groups_in_flight.get(group, 0) + 1
            self.max_per_group = max(self.max_per_group, self.groups_in_flight[group])
        try:
            self.events.append(event)
            self.batches.append(records)
            if self.delay:
                await asyncio.sleep(self.delay)
            answer = self.behaviour(event)
            if inspect.isawaitable(answer):
                answer = await answer
            return answer
        finally:
            self.in_flight -= 1
            for group in groups:
                self.groups_in_flight[group] -= 1
            self.changed.set()


CURRENT = KafkaRecorder()


def install(recorder: KafkaRecorder) -> KafkaRecorder:
    global CURRENT
    CURRENT = recorder
    return recorder


async def handle(event: dict[str, Any], context: Any) -> Any:
    return await CURRENT.handle(event)


def file_handler(event: dict[str, Any], context: Any) -> Any:
    """For a daemon in another process: append the batch's (partition, offset, value), then sleep
    ESM_TEST_SLEEP seconds, then append its end."""
    items = [[r["partition"], r["offset"], value_of(r)] for group in event["records"].values() for r in group]
    with open(os.environ["ESM_TEST_RECORD_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"phase": "start", "items": items, "pid": os.getpid()}) + "\n")
    time.sleep(float(os.environ.get("ESM_TEST_SLEEP", "0")))
    with open(os.environ["ESM_TEST_RECORD_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"phase": "end", "items": items, "pid": os.getpid()}) + "\n")
    return None


# ---------------------------------------------------------------- secured listeners (scripts/backends)

SECURITY_EXPORTS = (
    "KAFKA_SASL_BOOTSTRAP", "KAFKA_SASL_SSL_BOOTSTRAP", "KAFKA_SSL_BOOTSTRAP", "KAFKA_MTLS_BOOTSTRAP",
    "KAFKA_CA_PEM", "KAFKA_CLIENT_CERT_PEM", "KAFKA_CLIENT_KEY_PEM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD",
    "KAFKA_SCRAM256_USERNAME", "KAFKA_SCRAM256_PASSWORD", "KAFKA_SCRAM512_USERNAME", "KAFKA_SCRAM512_PASSWORD",
)


def security() -> dict[str, str]:
    """The SASL/TLS listeners' exports (tests/backends.py requires them before it reuses a shell's
    environment, so the `backends` fixture has put them there)."""
    return {name: os.environ[name] for name in SECURITY_EXPORTS}


def read_pem(path: str) -> str:
    with open(path, encoding="utf-8") as source:
        return source.read()


async def create_secret(value: dict[str, Any], prefix: str = "kafka") -> str:
    """A Secrets Manager secret (moto) holding `value` as JSON; returns its ARN."""
    from aiobotocore.session import get_session

    async with get_session().create_client("secretsmanager") as client:
        created = await client.create_secret(Name=unique(prefix), SecretString=json.dumps(value))
    return str(created["ARN"])
