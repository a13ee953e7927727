"""Group membership of a Kafka mapping: the consumer, the rebalance listener, the poll loop and the
per-partition buffers, with an explicit state per partition.

One `AIOKafkaConsumer` in the mapping's consumer group (auto-commit off) is polled by `poll`: each
`getmany` (at most MAX_POLL_RECORDS) goes through the schema step, if any, and each ACTIVE
partition's records are appended to its buffer, which the partition's worker drains with `take`.
A partition whose buffer passes PAUSE_RECORDS or PAUSE_BYTES is paused, and resumed once its worker
drained the buffer, so the loop never blocks and keeps the membership alive (aiokafka leaves a group
whose consumer stops polling) while memory stays bounded. The buffer is several fetches deep on
purpose: pausing makes aiokafka drop what it fetched ahead for the partition (it crosses the network
again), and aiokafka sends no fetch to a broker while any of its partitions holds unconsumed data, so
asking `getmany` for only some partitions would stall the others. Records fetched for a partition that is not ACTIVE (being
started, revoked, gone) are dropped: never invoked, never committed; the next owner reads them.

A partition moves ASSIGNED (paused until its start is settled) -> STARTING (the source's `open`)
-> ACTIVE (read) -> REVOKING (the listener stops its worker; nothing more is buffered) -> GONE
(committed one last time and forgotten). A worker that failed sends its partition back to
ASSIGNED with `seek` set, so the next `open` reads again from the committed offset.

The listener: on assignment each new partition is paused (synchronously, before any fetch returns)
and reported to the engine (`units.assigned`); on revocation it awaits
`units.revoked(..., REVOKED, drain=REVOKE_DRAIN_SECONDS)`, whose workers close their partitions
(the source commits while still owned), then closes any partition that had no worker.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import ConsumerStoppedError, IllegalStateError, KafkaError

from esm.aio import Stopped, sleep_unless, unless_stopped
from esm.core.backoff import SOURCE_BACKOFF
from esm.core.records import Record
from esm.observability.events import Events
from esm.core.contract import StopReason, Units
from esm.sources.kafka import tuning
from esm.sources.kafka.decoding import SchemaStep
from esm.sources.kafka.pollers import PollerPool
from esm.sources.kafka.records import Fetch, kafka_records, partition_key

BuildRecords = Callable[[list[Any], str, float], Fetch]
CloseUnit = Callable[[TopicPartition, StopReason], Awaitable[None]]


class PartitionState(enum.Enum):
    ASSIGNED = "assigned"  # ours, paused; its worker has not opened it (yet, or again after a failure)
    STARTING = "starting"  # the worker's open() settles where it starts
    ACTIVE = "active"  # read into its buffer
    REVOKING = "revoking"  # being taken away or shut down: nothing more is buffered
    GONE = "gone"  # committed one last time and forgotten


@dataclass(eq=False)
class Partition:
    tp: TopicPartition
    key: str
    state: PartitionState = PartitionState.ASSIGNED
    buffer: deque[tuple[list[Record], int]] = field(default_factory=deque)  # (records, bytes) per fetch, in order
    buffered: int = 0
    buffered_bytes: int = 0  # the buffered records' sizes, for PAUSE_BYTES
    paused: bool = True  # paused from assignment until its start is settled
    seek: bool = False  # read again from the committed offset when opened (its worker failed)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)  # set when REVOKING or GONE

    def drop_buffer(self) -> None:
        self.buffer.clear()
        self.buffered = self.buffered_bytes = 0
        self.arrived.clear()


class Group:
    def __init__(self, *, topic: str, events: Events, log: logging.LoggerAdapter, schemas: SchemaStep | None,
                 pool: PollerPool | None = None):
        self.topic = topic
        self.events = events
        self.log = log
        self.schemas = schemas
        self.build: BuildRecords = schemas.build if schemas is not None else kafka_records
        self.pool = pool  # provisioned mode's pollers (esm.sources.kafka.pollers); None on demand
        self.consumer: Any = None  # the AIOKafkaConsumer, once connected
        self.partitions: dict[TopicPartition, Partition] = {}
        self.stopping = asyncio.Event()
        self._units: Units | None = None
        self._close_unit: CloseUnit | None = None

    def join(self, units: Units, close_unit: CloseUnit) -> None:
        """Subscribe: the group is joined only now, when records can be processed."""
        self._units, self._close_unit = units, close_unit
        self.consumer.subscribe([self.topic], listener=_Listener(self))

    def stop(self) -> None:
        self.stopping.set()
        for part in self.partitions.values():
            part.stopping.set()

    # -- the poll loop -----------------------------------------------------------------------------
    async def poll(self, stopping: asyncio.Event) -> None:
        failures = 0  # consecutive failed fetches: the backoff step
        while not stopping.is_set():
            try:
                # getmany waits through a rebalance; a stop must not wait for one to end.
                fetched = await unless_stopped(
                    self.consumer.getmany(timeout_ms=tuning.POLL_TIMEOUT_MS, max_records=tuning.MAX_POLL_RECORDS),
                    stopping)
                failures = 0
            except (Stopped, ConsumerStoppedError):
                return
            except KafkaError as error:
                failures += 1
                delay = SOURCE_BACKOFF.delay(failures)
                self.events.polling_failed(self.topic, repr(error), delay)
                await sleep_unless(stopping, delay)
                continue
            if fetched and self.schemas is not None:
                # behaviour §5: validate and deserialize before filtering; an unreachable registry backs off here.
                fetched = await self.schemas.decode(fetched, self.consumer, stopping)
            if fetched:
                self._buffer(fetched)

    def _buffer(self, fetched: dict[TopicPartition, list[Any]]) -> None:
        now = time.monotonic()
        size = 0
        for tp, messages in fetched.items():
            part = self.partitions.get(tp)
            if part is None or part.state is not PartitionState.ACTIVE or not messages:
                continue  # fetched just before a revocation or a restart: the next reader reads them
            records, weight, fetched_bytes = self.build(messages, part.key, now)  # weight: as the in-flight cap counts
            part.buffer.append((records, weight))
            part.buffered += len(records)
            part.buffered_bytes += weight
            part.arrived.set()
            size += fetched_bytes
            if (part.buffered >= tuning.PAUSE_RECORDS or part.buffered_bytes >= tuning.PAUSE_BYTES) \
                    and not part.paused:
                self._pause(part)
        if size:
            self.events.records_polled(0, size)  # the records are counted as the engine takes them

    async def take(self, part: Partition) -> list[Record]:
        """What the poll loop buffered for `part` (waits for some): whole fetches, at most MAX_POLL_RECORDS
        and TAKE_BYTES unless the first brought more; resumes the partition once its buffer is drained."""
        while not part.buffer:
            await part.arrived.wait()
        records, weight = part.buffer.popleft()
        limit, byte_limit = tuning.MAX_POLL_RECORDS, tuning.TAKE_BYTES
        # At most about one fetch at a time: the engine checks the in-flight cap before each take,
        # so a take bounds how far past the cap a mapping may go.
        while part.buffer and len(records) + len(part.buffer[0][0]) <= limit \
                and weight + part.buffer[0][1] <= byte_limit:
            more, more_weight = part.buffer.popleft()
            records, weight = records + more, weight + more_weight
        part.buffered -= len(records)
        part.buffered_bytes -= weight
        if not part.buffer:
            part.arrived.clear()
            self.resume(part)
        return records

    # -- pause and resume ------------------------------------------------------------------------
    def _pause(self, part: Partition) -> None:
        part.paused = True
        self.consumer.pause(part.tp)

    def resume(self, part: Partition) -> None:
        if part.paused and part.state is PartitionState.ACTIVE and not part.buffer \
                and self.consumer is not None:
            try:
                self.consumer.resume(part.tp)
                part.paused = False
            except IllegalStateError:  # no longer assigned; the revocation is on its way
                pass

    def restart(self, part: Partition) -> None:
        """Its worker failed: paused and emptied until opened again, then read from the committed offset."""
        part.state = PartitionState.ASSIGNED
        part.seek = True
        part.drop_buffer()
        if self.owns(part.tp):
            self._pause(part)

    def owns(self, tp: TopicPartition) -> bool:
        try:
            return self.consumer is not None and tp in self.consumer.assignment()
        except IllegalStateError:
            return False

    def revoking(self, part: Partition) -> None:
        if part.state is not PartitionState.GONE:
            part.state = PartitionState.REVOKING
        part.stopping.set()
        part.drop_buffer()

    def forget(self, part: Partition) -> None:
        self.revoking(part)
        part.state = PartitionState.GONE
        if self.partitions.get(part.tp) is part:
            del self.partitions[part.tp]
        self.report_pollers()

    # -- assignment and revocation ------------------------------------------------------------------
    def assigned(self, assigned: Iterable[TopicPartition]) -> None:
        if self.consumer is None or self.stopping.is_set() or self._units is None:
            return  # an assignment that races the shutdown: the group hands the partitions on again
        new = sorted(tp for tp in assigned if tp not in self.partitions)
        for tp in new:
            self.consumer.pause(tp)
            self.partitions[tp] = Partition(tp, partition_key(tp.topic, tp.partition))
        if new:
            self.log.info("assigned %s", ", ".join(self.partitions[tp].key for tp in new))
        self.report_pollers()
        for tp in new:
            self._units.assigned(tp, self.partitions[tp].key)

    async def revoked(self, revoked: Iterable[TopicPartition]) -> None:
        parts = [self.partitions[tp] for tp in revoked if tp in self.partitions]
        if not parts or self._units is None or self._close_unit is None:
            return
        for part in parts:
            self.revoking(part)
        await self._units.revoked([p.tp for p in parts], StopReason.REVOKED, drain=tuning.REVOKE_DRAIN_SECONDS)
        for part in parts:
            if part.state is not PartitionState.GONE:  # no worker closed it (none ran, or it was restarting)
                await self._close_unit(part.tp, StopReason.REVOKED)

    def report_pollers(self) -> None:
        """On demand, ProvisionedPollers counts the partitions this mapping works (one in-order worker
        each) and EventPollerUnit those pollers at Lambda's 10 per unit; in provisioned mode the pool
        sizes and reports its pollers within the partitions owned (behaviour §6, §7, §9.11)."""
        if self.pool is not None:
            self.pool.owned(len(self.partitions))
        else:
            self.events.pollers(len(self.partitions), units=True)


class _Listener(ConsumerRebalanceListener):
    def __init__(self, group: Group):
        self.group = group

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.group.revoked(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.group.assigned(assigned)
