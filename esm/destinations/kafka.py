"""The `kafka://<topic>` on-failure destination: one message per failed record (behaviour §4).

Lambda's `kafka://` means a topic in the source's own cluster, so the destination is built with
that cluster's connection settings (`KafkaCluster`). Each failed record becomes one message whose
value is its failure document (`kafka_record_failure_record`) as JSON and whose key is the
record's original key; keyless records are spread round-robin over the topic's partitions, as
AWS documents. The producer starts on first use and waits for every replica (`acks=all`); a
message either lands or `deliver` raises `DestinationError`, so the source keeps its commit and
tries again (behaviour §9.6). A producer that failed is stopped and started afresh on the next try.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any, Mapping

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from esm.destinations.records import dumps
from esm.errors import DestinationError, UnsupportedDestination

PREFIX = "kafka://"
REQUEST_TIMEOUT_MS = 15000
# A failure document carries its record, which may be as large as the broker accepts.
MAX_REQUEST_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class KafkaCluster:
    """How to reach a Kafka cluster: bootstrap servers plus aiokafka connection keywords
    (security_protocol, sasl_*, ssl_context...; empty for PLAINTEXT)."""

    bootstrap_servers: tuple[str, ...]
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def servers(self) -> str:
        return ",".join(self.bootstrap_servers)


class RoundRobinKeyless:
    """Keyed messages go where Kafka's default partitioner puts them; keyless ones take turns."""

    def __init__(self) -> None:
        self._keyed = DefaultPartitioner()
        self._turn = itertools.count()

    def __call__(self, key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
        if key is not None:
            return self._keyed(key, all_partitions, available)
        choices = available or all_partitions
        return sorted(choices)[next(self._turn) % len(choices)]


class KafkaTopicDestination:
    """An on-failure topic in the source's cluster. `per_record`: one message per failed record."""

    per_record = True

    def __init__(self, target: str, cluster: KafkaCluster):
        if not target.startswith(PREFIX) or not target[len(PREFIX):]:
            raise ValueError(f"{target!r} is not a kafka://<topic> destination")
        self.arn = target
        self.topic = target[len(PREFIX):]
        self.cluster = cluster
        self._producer: AIOKafkaProducer | None = None
        self._opening = asyncio.Lock()

    async def _open(self) -> AIOKafkaProducer:
        async with self._opening:
            if self._producer is None:
                producer = AIOKafkaProducer(
                    bootstrap_servers=list(self.cluster.bootstrap_servers), client_id="esm-on-failure",
                    acks="all", request_timeout_ms=REQUEST_TIMEOUT_MS, max_request_size=MAX_REQUEST_BYTES,
                    partitioner=RoundRobinKeyless(), **dict(self.cluster.options))
                try:
                    await producer.start()
                except (KafkaError, OSError, asyncio.TimeoutError) as error:
                    await _quiet_stop(producer)
                    raise DestinationError(f"{self.arn}: cannot reach {self.cluster.servers}: {error!r}") from error
                self._producer = producer
            return self._producer

    async def deliver(self, document: dict[str, Any], *, invocation_event: Any | None = None, shard_id: str = "",
                      key: bytes | None = None) -> None:
        """Produce one failure document (for one record) with the record's original `key`."""
        producer = await self._open()
        try:
            await producer.send_and_wait(self.topic, dumps(document).encode(), key=key)
        except (KafkaError, OSError, asyncio.TimeoutError) as error:
            self._producer = None
            await _quiet_stop(producer)
            raise DestinationError(f"{self.arn}: produce failed: {type(error).__name__}: {error}") from error

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await _quiet_stop(producer)


async def _quiet_stop(producer: AIOKafkaProducer) -> None:
    try:
        await producer.stop()
    except (KafkaError, OSError, asyncio.TimeoutError):
        pass


def make_kafka_destination(target: str, cluster: KafkaCluster | None) -> KafkaTopicDestination:
    """The destination for `kafka://<topic>`; `cluster` is the source's (None: not a Kafka source)."""
    if cluster is None:
        raise UnsupportedDestination(
            f"on-failure destination {target}: kafka:// topics are only for Kafka sources (same cluster)")
    if not target[len(PREFIX):]:
        raise UnsupportedDestination(f"on-failure destination {target!r}: names no topic")
    return KafkaTopicDestination(target, cluster)
