"""The Kafka event source: a consumer group, one in-order worker per partition, commits (SPEC 1-7, 9.4).

Threads of control (all asyncio tasks of one mapping):
- the **poll loop** (`run`) calls `getmany` on one `AIOKafkaConsumer` in the mapping's consumer
  group (ConsumerGroupId, default the mapping's UUID; auto-commit off), registers every record in
  its partition's offset tracker, applies the filters (a filtered-out record is finished at once)
  and queues the rest to the partition's worker, one list per fetch. A partition whose backlog is
  full is paused, so the loop never blocks and keeps the group membership alive (aiokafka leaves
  a group whose consumer stops polling);
- one **worker per assigned partition** batches its queue (BatchSize, a window from the first
  record, 6 MB with the Kafka envelope) and settles one batch at a time through `StreamBatch`
  (partial batch responses, bisect, retries, record age, on-failure destination), so records of
  a partition are invoked strictly in order and one batch per partition is in flight;
- the **committer** commits every partition's finished position in one request whenever a worker
  or the filters moved one (workers never wait for the broker's round trip);
- the **lag loop** every few seconds retries commits that did not go through and sets OffsetLag
  (per partition), MaxOffsetLag and SumOffsetLag from the partitions' end offsets;
- aiokafka's coordinator calls the **rebalance listener**.

Commits: a record is finished once it was processed, filtered out, delivered to the on-failure
destination or (without one) dropped; the committed offset of a partition is its contiguous
finished position + 1, so on a partial failure it is the lowest failed offset (SPEC 9.4). Every
commit runs under one lock with the revocation's final commit and checks that the partition is
still owned; commits never move backwards.

Rebalances: `on_partitions_revoked` stops the revoked partitions' workers (the batch being invoked
may finish within `REVOKE_DRAIN_SECONDS`, otherwise it is abandoned unacknowledged), commits their
contiguous positions while the partitions are still owned, then forgets them; nothing is
committed for a partition afterwards (and the broker fences a member whose generation is gone).
`on_partitions_assigned` pauses each new partition until its start is settled: the group's
committed offset wins; without one, StartingPosition decides (TRIM_HORIZON / LATEST through
`auto_offset_reset`, AT_TIMESTAMP by `offsets_for_times`) and that start is committed at once, so
a restart or a rebalance before the first record cannot skip records LATEST would have included.

Also: the group is joined in `run()` (not while the target is still awaited); a record whose event
alone passes 6 MB is never invoked (MaximumPayloadSizeExceeded, SPEC 4); a worker that dies of an
unexpected error is replaced by one reading from the committed offset. `connect()` settles how to
reach the cluster (SASL/TLS from SourceAccessConfigurations, secrets, an MSK cluster ARN's brokers:
`esm.sources.kafka_cluster`) and says why it cannot, as SourceUnavailable. With a
SchemaRegistryConfig, each fetch goes through `esm.schemas` before filtering (an unreachable registry
backs off and re-reads); records that fail it are never invoked but dead-lettered in partition order
(SCHEMA_NOT_FOUND / DESERIALIZATION_ERROR, SPEC 4/5).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, ConsumerStoppedError, IllegalStateError, KafkaError

from esm.aio import Stopped, sleep_unless, unless_stopped
from esm.arns import parse_arn
from esm.batching import BatchPolicy
from esm.config.settings import MappingSettings
from esm.destinations import make_destination
from esm.destinations.kafka import KafkaCluster
from esm.destinations.records import (
    MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
    RETRIES_EXHAUSTED,
    failure_context,
    json_size,
    kafka_batch_failure_record,
    kafka_record_failure_record,
)
from esm.errors import SourceUnavailable
from esm.filtering import compile_filters
from esm.filtering.decode import filter_kafka
from esm.identity import function_arn
from esm.invokers.base import Invoker, InvokeResult
from esm.observability.metrics import MappingMetrics
from esm.offsets import OffsetTracker
from esm.records import Disposition, Record
from esm.schemas import SchemaDecoder, failure_of, filter_arguments, schema_record, settings_for
from esm.security.kafka_auth import ignored_note
from esm.sources import Runtime
from esm.sources.kafka_cluster import destination_cluster, source_cluster, why_unreachable
from esm.sources.kafka_records import (
    MSK,
    SELF_MANAGED,
    kafka_event,
    kafka_record,
    offsets_of,
    partition_key,
    payload_cap,
    read_identifier,
    record_epoch,
)
from esm.stream_batches import (
    RETRY_ATTEMPTS_EXHAUSTED,
    BatchAbandoned,
    Failure,
    RetryPolicy,
    StreamBatch,
    deliver_until_landed,
)
from esm.transform import kafka_transform

log = logging.getLogger("esm.kafka")

# Group membership. The broker's group.min.session.timeout.ms is 6 s by default; a member that
# vanished (SIGKILL) holds its partitions until its session times out.
SESSION_TIMEOUT_MS = 10000
HEARTBEAT_INTERVAL_MS = 1000
MAX_POLL_INTERVAL_MS = 300000
REBALANCE_TIMEOUT_MS = 60000  # how long the group waits for members to rejoin (our revoke included)
REVOKE_DRAIN_SECONDS = 15.0  # a revoked partition's in-flight batch may finish within this, else abandoned
POLL_TIMEOUT_MS = 200
FETCH_MAX_WAIT_MS = 100
MAX_POLL_RECORDS = 500
LAG_INTERVAL = 5.0
COMMIT_TIMEOUT = 15.0
BACKOFF_CAP = 10.0
# With MaximumRetryAttempts -1 and an on-failure destination, Lambda stops after 10 retries (SPEC 3).
DESTINATION_RETRY_CAP = 10
POLLERS_PER_UNIT = 10  # Lambda's default pollers per event poller unit (SPEC 7)



@dataclass(eq=False)
class PartitionRun:
    """One assigned partition: its worker's queue, its offset tracker and what the group has committed."""

    tp: TopicPartition
    key: str
    log: logging.LoggerAdapter
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)  # lists of records (one per fetch); None: stop
    backlog: int = 0  # records queued or gathered but not yet in a batch taken for invoking
    held: int = 0  # bytes of its records counted in the mapping's in-flight cap and not yet finished
    tracker: OffsetTracker = field(default_factory=OffsetTracker)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    owned: bool = True  # False once revoked: never committed again
    committed: int | None = None  # the group's committed offset (the next record to read), once known
    paused: bool = True  # paused from assignment until the start position is settled
    started: bool = False
    task: asyncio.Task[None] | None = None


class _Listener(ConsumerRebalanceListener):
    def __init__(self, mapping: "KafkaMapping"):
        self.mapping = mapping

    async def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        await self.mapping._revoked(revoked)

    async def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        self.mapping._assigned(assigned)


class KafkaMapping:
    """Runs one Kafka event source mapping (self-managed Kafka or an Amazon MSK cluster ARN)."""

    def __init__(self, mapping: MappingSettings, runtime: Runtime, invoker: Invoker, metrics: MappingMetrics):
        self.mapping = mapping
        self.runtime = runtime
        self.invoker = invoker
        self.metrics = metrics
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        request = mapping.request
        self.topic: str = (mapping.get("Topics") or [""])[0]
        self.self_managed = "SelfManagedEventSource" in request
        servers = (((mapping.get("SelfManagedEventSource") or {}).get("Endpoints") or {})
                   .get("KAFKA_BOOTSTRAP_SERVERS") or [])
        # Settled by connect(): secrets are read and MSK brokers looked up then (esm.sources.kafka_cluster).
        self.cluster: KafkaCluster | None = None
        self.servers = ",".join(servers)  # for MSK, the chosen broker string once connected
        self.event_source_arn: str | None = None if self.self_managed else mapping.source_id
        self.event_source = SELF_MANAGED if self.self_managed else MSK
        config_key = "SelfManagedKafkaEventSourceConfig" if self.self_managed else "AmazonManagedKafkaEventSourceConfig"
        self.group_id: str = (mapping.get(config_key) or {}).get("ConsumerGroupId") or mapping.uuid
        self.starting_position: str = mapping.get("StartingPosition") or "LATEST"
        self.starting_timestamp = mapping.get("StartingPositionTimestamp")
        arn = parse_arn(mapping.source_id) if not self.self_managed else None
        region = (arn.region if arn else None) or runtime.clients.region_for() or "us-east-1"
        self.function_arn = function_arn(mapping.function, region, arn.account if arn else None)
        self.batch_size: int = mapping.get("BatchSize") or 100
        self.window = mapping.batching_window
        filters = [f["Pattern"] for f in (mapping.get("FilterCriteria") or {}).get("Filters") or []]
        self.matcher = compile_filters(filters)
        self.transform = kafka_transform(mapping.extension.transform) if mapping.extension.transform else None
        target = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        self.destination: Any = None
        # A kafka:// topic is built in connect(), with the source's cluster or esm.on_failure_kafka's.
        self._kafka_target = target if target and target.startswith("kafka://") else None
        if target and not self._kafka_target:
            self.destination = make_destination(target, runtime.clients, mapping_uuid=mapping.uuid)
        retries = int(mapping.get("MaximumRetryAttempts", -1))
        if retries == -1 and target:
            retries = DESTINATION_RETRY_CAP
        self.policy = RetryPolicy(
            max_retries=retries,
            max_age=float(mapping.get("MaximumRecordAgeInSeconds", -1)),
            bisect=bool(mapping.get("BisectBatchOnFunctionError", False)),
            report_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
        )
        # SPEC 9.7: MaximumPollers bounds how many partitions have a batch in flight at once.
        pollers = (mapping.get("ProvisionedPollerConfig") or {}).get("MaximumPollers")
        self._slots = asyncio.Semaphore(pollers) if pollers else None
        self.max_pollers: int | None = pollers
        self.in_flight = metrics.in_flight(mapping.extension.max_in_flight_bytes)
        self.high_water = max(2 * self.batch_size, MAX_POLL_RECORDS)
        self.low_water = self.high_water // 2
        self._consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self._partitions: dict[TopicPartition, PartitionRun] = {}
        self._lock = asyncio.Lock()  # commits and revocation: a revoked partition is never committed
        self._dirty = asyncio.Event()  # a finished position may have moved (see _committer)
        # SchemaRegistryConfig: records are validated and decoded (esm.schemas) before filtering.
        registry = settings_for(request)
        self.schemas = (SchemaDecoder.for_mapping(registry, runtime.clients, mapping.extension.secrets,
                                                   metrics=metrics, logger=self.log)
                        if registry is not None else None)

    # -- lifecycle ---------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._consumer is not None:
            return
        clients = self.runtime.clients
        cluster, plan = await source_cluster(self.mapping, clients)
        self.cluster, self.servers = cluster, cluster.servers
        if self._kafka_target and self.destination is None:
            other = await destination_cluster(self.mapping, clients)
            self.destination = make_destination(self._kafka_target, clients, mapping_uuid=self.mapping.uuid,
                                                kafka=other or cluster)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=list(cluster.bootstrap_servers),
            client_id=f"esm-{self.mapping.uuid}",
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if self.starting_position == "TRIM_HORIZON" else "latest",
            session_timeout_ms=SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
            max_poll_interval_ms=MAX_POLL_INTERVAL_MS,
            rebalance_timeout_ms=REBALANCE_TIMEOUT_MS,
            fetch_max_wait_ms=FETCH_MAX_WAIT_MS,
            max_poll_records=MAX_POLL_RECORDS,
            **dict(cluster.options),
        )
        try:
            await consumer.start()
        except (KafkaError, OSError, asyncio.TimeoutError) as error:
            with contextlib.suppress(Exception):
                await consumer.stop()
            reason = await why_unreachable(cluster)  # aiokafka only says "Unable to bootstrap"
            raise SourceUnavailable(f"Kafka cluster {self.servers} ({plan.describe()}) is not reachable: "
                                    f"{reason or repr(error)}") from error
        self._consumer = consumer
        self.log.info("connected to %s over %s", self.servers, plan.describe())
        if note := ignored_note(plan):
            self.log.info(note)

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        if self._partitions:  # run() was cancelled before it could stop them
            await self._stop_partitions(list(self._partitions.values()), drain=0, reason="shutdown")
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            with contextlib.suppress(KafkaError, OSError, asyncio.TimeoutError):
                await consumer.stop()  # leaves the group, so the others take over at once
        if self.destination is not None:
            await self.destination.close()
        if self.schemas is not None:
            await self.schemas.close()

    async def run(self) -> None:
        assert self._consumer is not None, "connect() first"
        # The group is joined only now, when records can be processed (not while the target is awaited).
        self._consumer.subscribe([self.topic], listener=_Listener(self))
        self.log.info("consuming %s from %s as group %s (StartingPosition %s when the group has no offsets)",
                      self.topic, self.servers, self.group_id, self.starting_position)
        helpers = [asyncio.create_task(self._lag_loop(), name=f"{self.mapping.name}/lag"),
                   asyncio.create_task(self._committer(), name=f"{self.mapping.name}/commits")]
        try:
            delay = 0.2
            while not self._stopping.is_set():
                try:
                    # getmany waits through a rebalance; a stop must not wait for one to end.
                    fetched = await unless_stopped(
                        self._consumer.getmany(timeout_ms=POLL_TIMEOUT_MS, max_records=MAX_POLL_RECORDS),
                        self._stopping)
                    delay = 0.2
                except (Stopped, ConsumerStoppedError):
                    break
                except KafkaError as error:
                    self.metrics.polling_errors.inc()
                    self.log.warning("polling %s failed (%r); backing off %.1fs", self.topic, error, delay)
                    await sleep_unless(self._stopping, delay)
                    delay = min(BACKOFF_CAP, delay * 2)
                    continue
                if self.schemas is not None and fetched:
                    # SPEC 5: validate and deserialize before filtering; an unreachable registry backs off here.
                    fetched = await self.schemas.decode_fetched(fetched, consumer=self._consumer,
                                                                stopping=self._stopping)
                for tp, messages in fetched.items():
                    self._accept(tp, messages)
                for run in self._partitions.values():
                    self._maybe_resume(run)  # paused for the in-flight cap by a busier partition
                self._restart_failed_workers()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._stop_partitions(list(self._partitions.values()), drain=None, reason="shutdown")

    # -- the poll loop -----------------------------------------------------------------------
    def _accept(self, tp: TopicPartition, messages: list[Any]) -> None:
        run = self._partitions.get(tp)
        if run is None or not run.owned or run.stopping.is_set():
            # Fetched just before a revocation: neither invoked nor committed; the next owner reads them.
            return
        if not messages:
            return
        if run.committed is None:
            run.committed = messages[0].offset  # nothing before the first record read was ours
        now = time.monotonic()
        records = [kafka_record(message, run.key, now) for message in messages]
        if self.schemas is not None:
            records = [schema_record(record, message) for record, message in zip(records, messages)]
        for message in messages:
            run.tracker.register(message.offset)
        if not self.matcher.is_match_all:
            kept = []
            for record in records:
                if filter_kafka(self.matcher, record.event) if self.schemas is None else self._schema_keeps(record):
                    kept.append(record)
                else:
                    run.tracker.finish(record.token)
            if len(kept) < len(records):
                self.metrics.filtered_out.inc(len(records) - len(kept))
                self._commit_soon()  # once the records before them are finished, they commit too
            records = kept
        if records:
            run.queue.put_nowait(records)
            run.backlog += len(records)
            size = sum(record.size for record in records)
            run.held += size
            self.in_flight.hold(size)
        self.metrics.polled.inc(len(messages))
        self.metrics.metrics.poller_throughput.labels(*self.metrics.labels).inc(
            sum(max(0, m.serialized_key_size) + max(0, m.serialized_value_size) for m in messages))
        if (run.backlog >= self.high_water or not self.in_flight.has_room()) and not run.paused:
            if not self.in_flight.has_room():
                self.in_flight.record_wait()
            run.paused = True
            self._consumer.pause(tp)  # type: ignore[union-attr]

    def _schema_keeps(self, record: Record) -> bool:
        """SPEC 5: filters match the decoded key/value; a record that failed its schema is kept, to be
        dead-lettered (it never reaches the filters)."""
        return failure_of(record) is not None or filter_kafka(self.matcher, record.event, **filter_arguments(record))

    def _maybe_resume(self, run: PartitionRun) -> None:
        if run.paused and run.started and run.owned and not run.stopping.is_set() \
                and run.backlog <= self.low_water and self.in_flight.has_room() and self._consumer is not None:
            try:
                self._consumer.resume(run.tp)
                run.paused = False
            except IllegalStateError:  # no longer assigned; the revocation is on its way
                pass

    def _restart_failed_workers(self) -> None:
        """A worker that died of an unexpected error is replaced by one reading from the committed
        offset (what it had gathered is read again), so a partition never stalls silently."""
        for tp, run in list(self._partitions.items()):
            task = run.task
            if task is None or not task.done() or run.stopping.is_set() or not run.owned:
                continue
            if self._consumer is None or tp not in self._consumer.assignment():
                continue  # no longer assigned: the revocation cleans it up
            error = None if task.cancelled() else task.exception()
            run.log.error("worker of %s ended unexpectedly (%r); restarting it at offset %s", run.key, error,
                          run.committed, exc_info=error)
            run.stopping.set()
            run.owned = False  # the old run never commits again; the new one takes over
            self.in_flight.release(run.held)
            run.held = 0
            self._start_partition(tp, seek=run.committed)

    # -- assignment and revocation -------------------------------------------------------------
    def _assigned(self, assigned: Iterable[TopicPartition]) -> None:
        """Start a worker per new partition, paused (synchronously, before any fetch returns) until
        its start position is settled."""
        if self._consumer is None or self._stopping.is_set():
            return  # an assignment that races the shutdown: the group hands the partitions on again
        new = [tp for tp in assigned if tp not in self._partitions]
        for tp in sorted(new):
            self._start_partition(tp)
        if new:
            self.log.info("assigned %s", ", ".join(partition_key(tp.topic, tp.partition) for tp in sorted(new)))
        self._report_pollers()

    def _report_pollers(self) -> None:
        """ProvisionedPollers: the partitions this mapping works (one in-order worker each), within
        MaximumPollers; EventPollerUnit: those pollers at Lambda's default of 10 per unit (SPEC 6, 7)."""
        pollers = len(self._partitions)
        if self.max_pollers:
            pollers = min(pollers, self.max_pollers)
        gauges = self.metrics.metrics
        gauges.provisioned_pollers.labels(*self.metrics.labels).set(pollers)
        gauges.event_poller_units.labels(*self.metrics.labels).set(-(-pollers // POLLERS_PER_UNIT))

    def _start_partition(self, tp: TopicPartition, seek: int | None = None) -> None:
        consumer = self._consumer
        assert consumer is not None
        consumer.pause(tp)
        if seek is not None:
            consumer.seek(tp, seek)
        key = partition_key(tp.topic, tp.partition)
        run = PartitionRun(tp, key, logging.LoggerAdapter(log, {"mapping": self.mapping.name, "unit": key}))
        run.task = asyncio.create_task(self._partition(run), name=f"{self.mapping.name}/{key}")
        self._partitions[tp] = run

    async def _revoked(self, revoked: Iterable[TopicPartition]) -> None:
        runs = [self._partitions[tp] for tp in revoked if tp in self._partitions]
        await self._stop_partitions(runs, drain=REVOKE_DRAIN_SECONDS, reason="revoked")

    async def _stop_partitions(self, runs: list[PartitionRun], *, drain: float | None, reason: str) -> None:
        """Stop workers (their batch in flight may finish within `drain` seconds; None: no limit),
        commit their contiguous positions while still owned, then forget them."""
        for run in runs:
            run.stopping.set()
            run.queue.put_nowait(None)  # wakes a worker waiting for records
        tasks = [run.task for run in runs if run.task is not None and not run.task.done()]
        try:
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=drain)
                for task in late:
                    task.cancel()
                if late:
                    self.log.warning("%s: abandoned %d in-flight batch(es) after %.1fs (not committed; "
                                     "they will be read again)", reason, len(late), drain or 0.0)
                await asyncio.gather(*late, return_exceptions=True)
        finally:
            for task in tasks:
                if not task.done():
                    task.cancel()
        async with self._lock:
            await self._commit_locked(runs)
            for run in runs:
                run.owned = False
                self.in_flight.release(run.held)  # read but never finished: the next owner reads them again
                run.held = 0
                if self._partitions.get(run.tp) is run:
                    del self._partitions[run.tp]
                with contextlib.suppress(KeyError):
                    self.metrics.metrics.offset_lag.remove(*self.metrics.labels, run.tp.topic, str(run.tp.partition))
            self._report_pollers()
        if runs:
            self.log.info("%s %s (committed %s)", reason, ", ".join(r.key for r in runs),
                          ", ".join(f"{r.key}@{r.committed}" for r in runs))

    # -- commits ---------------------------------------------------------------------------------
    def _commit_soon(self) -> None:
        """Some partition's finished position may have moved: wake the committer."""
        self._dirty.set()

    async def _committer(self) -> None:
        """Commits every owned partition's finished position in one request whenever one moved.

        Workers only mark records finished and go on to their next batch: awaiting a commit round
        trip per batch, serialized under the lock, was what bounded throughput. Positions that
        move while a commit is in flight go out in the next one."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            async with self._lock:
                await self._commit_locked(list(self._partitions.values()))

    async def _commit_locked(self, runs: list[PartitionRun]) -> None:
        """Commit each owned run's contiguous position + 1 where it moved forward; the caller holds `_lock`."""
        if self._consumer is None:
            return
        targets: dict[PartitionRun, int] = {}
        for run in runs:
            if not run.owned:
                continue
            run.tracker.advance()
            if run.tracker.position is None:
                continue
            target = int(run.tracker.position) + 1  # type: ignore[call-overload]
            if run.committed is None or target > run.committed:
                targets[run] = target
        if targets:
            await self._commit_offsets(targets)

    async def _commit_offsets(self, targets: dict[PartitionRun, int]) -> bool:
        assert self._consumer is not None
        where = ", ".join(f"{run.key}@{offset}" for run, offset in targets.items())
        try:
            # aiokafka retries retriable commit errors (coordinator away) without end: bound it, so the
            # lock is not held through an outage; the lag loop and the next batch try again.
            await asyncio.wait_for(self._consumer.commit({run.tp: offset for run, offset in targets.items()}),
                                   COMMIT_TIMEOUT)
        except (CommitFailedError, IllegalStateError) as error:
            # The group moved on without us: the partitions may belong to another member now.
            self.metrics.commit_errors.inc()
            self.log.warning("commit of %s refused, the partitions may have a new owner: %s", where, error)
            return False
        except (KafkaError, OSError, asyncio.TimeoutError) as error:
            self.metrics.commit_errors.inc()
            self.log.warning("commit of %s failed (retried with the next one): %r", where, error)
            return False
        for run, offset in targets.items():
            previous = offset if run.committed is None else run.committed
            run.committed = offset
            self.metrics.committed.inc(max(0, offset - previous))
        self.log.debug("committed %s", where)
        return True

    # -- one partition ---------------------------------------------------------------------------
    async def _start(self, run: PartitionRun) -> bool:
        """Settle where the partition starts; False if it was revoked first."""
        consumer = self._consumer
        assert consumer is not None
        delay = 0.2
        while not run.stopping.is_set():
            try:
                committed = await consumer.committed(run.tp)
                if run.stopping.is_set():
                    return False
                if committed is None and self.starting_position == "AT_TIMESTAMP":
                    stamp = int(float(self.starting_timestamp) * 1000)
                    found = (await consumer.offsets_for_times({run.tp: stamp})).get(run.tp)
                    if run.stopping.is_set():
                        return False
                    if found is None:  # nothing at or after the timestamp: start at the end
                        await consumer.seek_to_end(run.tp)
                    else:
                        consumer.seek(run.tp, found.offset)
                position = await consumer.position(run.tp)
                if run.stopping.is_set():
                    return False
                async with self._lock:
                    if not run.owned:
                        return False
                    if committed is None:
                        # Pin the start: StartingPosition applies once, to a group without offsets.
                        if not await self._commit_offsets({run: position}):
                            raise KafkaError("the start position could not be committed")
                        run.log.info("no committed offset for %s: starting at %d (%s)", run.key, position,
                                     self.starting_position)
                    else:
                        run.committed = committed
                run.started = True
                self._maybe_resume(run)
                return True
            except IllegalStateError:
                return False  # unassigned while we asked
            except (KafkaError, OSError, asyncio.TimeoutError) as error:
                self.metrics.polling_errors.inc()
                run.log.warning("cannot settle the start of %s (%r); retrying in %.1fs", run.key, error, delay)
                await sleep_unless(run.stopping, delay)
                delay = min(BACKOFF_CAP, delay * 2)
        return False

    async def _partition(self, run: PartitionRun) -> None:
        if not await self._start(run):
            return
        cap = payload_cap(run.tp.topic, run.tp.partition, bootstrap_servers=self.servers,
                          event_source_arn=self.event_source_arn)
        policy = BatchPolicy(self.batch_size, self.window, max_bytes=cap)

        async def settle(records: list[Record], disposition: Disposition) -> None:
            size = 0
            for record in records:
                run.tracker.finish(record.token)
                size += record.size
            run.held -= size
            self.in_flight.release(size)
            self._commit_soon()

        batch = StreamBatch(policy=self.policy, invoke=lambda records: self._invoke(records), settle=settle,
                            dead_letter=lambda failure: self._dead_letter(run, failure),
                            record_age=lambda record: time.time() - record_epoch(record), metrics=self.metrics,
                            read_identifier=read_identifier, stopping=run.stopping, logger=run.log)
        pending: deque[Record] = deque()  # records of fetched chunks not yet in a batch, in order
        while not run.stopping.is_set():
            if not pending:
                chunk = await run.queue.get()
                if chunk is None:
                    return
                pending.extend(chunk)
            if self.schemas is not None and failure_of(pending[0]) is not None:
                try:
                    await self._undecodable(run, pending, settle)
                except BatchAbandoned:
                    return
                continue
            policy.add(pending.popleft())
            while policy.room:
                if not pending:
                    try:
                        if self.window > 0 and policy.remaining() > 0:
                            chunk = await asyncio.wait_for(run.queue.get(), policy.remaining())
                        else:
                            chunk = run.queue.get_nowait()
                    except (asyncio.TimeoutError, asyncio.QueueEmpty):
                        break
                    if chunk is None:
                        return  # stopping: what was gathered is neither invoked nor committed
                    pending.extend(chunk)
                if not policy.fits(pending[0]):
                    break  # the 6 MB cut: that record opens the next batch
                if self.schemas is not None and failure_of(pending[0]) is not None:
                    break  # failed its schema: dead-lettered after this batch, in partition order
                policy.add(pending.popleft())
            records = policy.take()
            run.backlog -= len(records)
            self._maybe_resume(run)
            try:
                if len(records) == 1 and not policy.fits(records[0]):
                    await self._too_large(run, records, settle)
                elif self._slots is None:
                    await batch.run(records)
                else:
                    async with self._slots:
                        await batch.run(records)
            except BatchAbandoned:
                return

    async def _too_large(self, run: PartitionRun, records: list[Record], settle: Any) -> None:
        """SPEC 4: a record whose event alone passes 6 MB is never invoked: it goes to the on-failure
        destination as MaximumPayloadSizeExceeded (responseContext null), or is dropped without one."""
        await self._dead_letter(run, Failure(records=records, condition=MAXIMUM_PAYLOAD_SIZE_EXCEEDED,
                                             invoke_count=0, last_error=None, last_kind=None))
        await settle(records, Disposition.DEAD_LETTERED)

    async def _undecodable(self, run: PartitionRun, pending: deque[Record], settle: Any) -> None:
        """SPEC 4/5: records that failed the schema registry step are never invoked: the run of them at
        the head of `pending` (one condition, at most BatchSize) goes to the on-failure destination
        with condition SCHEMA_NOT_FOUND or DESERIALIZATION_ERROR, or is dropped without one."""
        first = failure_of(pending[0])
        assert first is not None
        records = [pending.popleft()]
        while pending and len(records) < self.batch_size:
            failure = failure_of(pending[0])
            if failure is None or failure.condition != first.condition:
                break
            records.append(pending.popleft())
        run.backlog -= len(records)
        self._maybe_resume(run)
        reasons = "; ".join(dict.fromkeys(f.reason for f in map(failure_of, records) if f is not None))
        await self._dead_letter(run, Failure(records=records, condition=first.condition, invoke_count=0,
                                             last_error=reasons, last_kind=None))
        await settle(records, Disposition.DEAD_LETTERED)

    async def _invoke(self, records: list[Record]) -> InvokeResult:
        events = [self.transform.apply(r.event) for r in records] if self.transform else [r.event for r in records]
        event = kafka_event(events, bootstrap_servers=self.servers, event_source_arn=self.event_source_arn)
        return await self.invoker.invoke(orjson.dumps(event))

    # -- records that cannot be processed ----------------------------------------------------------
    async def _dead_letter(self, run: PartitionRun, failure: Failure) -> None:
        records = failure.records
        where = offsets_of(records)
        if self.destination is None:
            self.metrics.dropped.inc(len(records))
            run.log.error("%s: dropped %d record(s) at %s (no on-failure destination): %s", failure.condition,
                          len(records), where, failure.last_error or "never invoked")
            return
        count, response = failure_context(failure.condition, failure.invoke_count, failure.last_kind,
                                          executed_version=failure.executed_version)
        if getattr(self.destination, "per_record", False):
            # kafka://topic: one message per record, keyed by the record's own key (SPEC 4).
            condition = RETRIES_EXHAUSTED if failure.condition == RETRY_ATTEMPTS_EXHAUSTED else failure.condition
            for record in records:
                document = kafka_record_failure_record(
                    condition=condition, function_arn=self.function_arn,
                    approximate_invoke_count=count, response=response,
                    event_source_arn=self.event_source_arn, bootstrap_servers=self.servers, record=record.event,
                    event_source=self.event_source)
                key = record.event.get("key")
                await self._deliver(run, document, None, where, key=base64.b64decode(key) if key is not None else None)
        else:
            event = kafka_event([r.event for r in records], bootstrap_servers=self.servers,
                                event_source_arn=self.event_source_arn)
            document = kafka_batch_failure_record(
                condition=failure.condition, function_arn=self.function_arn,
                approximate_invoke_count=count, response=response,
                event_source_arn=self.event_source_arn, bootstrap_servers=self.servers,
                payload_size=json_size(event), records=[r.event for r in records])
            await self._deliver(run, document, event, where)
        self.metrics.destination_delivered.inc(len(records))
        run.log.warning("%s: %d record(s) at %s sent to %s", failure.condition, len(records), where,
                        self.destination.arn)

    async def _deliver(self, run: PartitionRun, document: dict[str, Any], event: Any, where: str,
                       **extra: Any) -> None:
        await deliver_until_landed(self.destination, document, invocation_event=event, shard_id=run.key,
                                   stopping=run.stopping, metrics=self.metrics,
                                   function_name=self.mapping.function.name, where=where, logger=run.log, **extra)

    # -- lag -----------------------------------------------------------------------------------------
    async def _lag_loop(self) -> None:
        while not self._stopping.is_set():
            await sleep_unless(self._stopping, LAG_INTERVAL)
            if self._stopping.is_set():
                return
            await self.refresh_lag()

    async def refresh_lag(self) -> None:
        """Retry commits that did not go through, then set OffsetLag, MaxOffsetLag and SumOffsetLag."""
        runs = [r for r in self._partitions.values() if r.owned and r.started]
        async with self._lock:
            await self._commit_locked(runs)
        known = [r for r in runs if r.owned and r.committed is not None]
        if not known or self._consumer is None:
            return
        try:
            ends = await self._consumer.end_offsets([r.tp for r in known])
        except (KafkaError, OSError, asyncio.TimeoutError) as error:
            self.metrics.polling_errors.inc()
            self.log.warning("reading end offsets failed: %r", error)
            return
        lags = []
        for run in known:
            end = ends.get(run.tp)
            if end is None or not run.owned or run.committed is None:
                continue
            lag = max(0, end - run.committed)
            lags.append(lag)
            self.metrics.offset_lag(run.tp.topic, run.tp.partition, lag)
        gauges = self.metrics.metrics
        gauges.max_offset_lag.labels(*self.metrics.labels).set(max(lags, default=0))
        gauges.sum_offset_lag.labels(*self.metrics.labels).set(sum(lags))

