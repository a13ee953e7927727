"""The Kafka event source on the shared engine (behaviour §1-7, §9.4): self-managed Kafka or an Amazon MSK cluster ARN.

`KafkaSource` only reaches the cluster, reads and commits; the engine (esm.engine.stream_mapping)
gathers, invokes, retries and dead-letters. Units of order are partitions (`TopicPartition`,
named `topic-0`). `connect` settles how to reach the cluster (SASL/TLS from
SourceAccessConfigurations, secrets, an MSK cluster ARN's brokers: esm.sources.kafka.cluster) and
says why it cannot, as SourceUnavailable; `discover` joins the consumer group (ConsumerGroupId,
default the mapping's UUID) and runs the poll loop, the committer and the lag loop (esm.sources.kafka
.group, .commits). `open` settles where a newly assigned partition starts: the group's committed
offset wins; without one, StartingPosition (TRIM_HORIZON / LATEST through `auto_offset_reset`,
AT_TIMESTAMP by `offsets_for_times`), and that start is committed at once, so a restart or a
rebalance before the first record cannot skip records LATEST would have included. `fetch` hands
the worker what the poll loop buffered; `settle` marks offsets finished (filtered records too);
`close_unit` commits the contiguous position while the partition is still owned (REVOKED,
SHUTDOWN) and forgets it, or (FAILED) commits it and has the partition read again from there.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Hashable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError, KafkaError

from esm.aio import Stopped, sleep_unless, unless_stopped
from esm.arns import parse_arn
from esm.config.pipeline import PipelineSettings
from esm.config.settings import MappingSettings
from esm.core.backoff import SOURCE_BACKOFF
from esm.core.records import Disposition
from esm.destinations import make_destination
from esm.destinations.kafka import KafkaCluster
from esm.errors import SourceUnavailable
from esm.identity import function_arn
from esm.observability.events import Events
from esm.observability.metrics import MappingMetrics
from esm.security.kafka_auth import ignored_note
from esm.runtime import Runtime
from esm.core.contract import DEFAULT_CONCURRENCY, NOTHING, Fetched, IdentityLookup, StopReason, Units
from esm.core.decide import Mode
from esm.sources.kafka import decoding, tuning
from esm.sources.kafka.cluster import destination_cluster, source_cluster, why_unreachable
from esm.sources.kafka.commits import Commits
from esm.sources.kafka.decoding import SchemaStep
from esm.sources.kafka.group import Group, PartitionState
from esm.sources.kafka.pollers import pollers_for
from esm.sources.kafka.records import KafkaFormat
from esm.sources.kafka.descriptor import DESCRIPTOR
from esm.transform import transform_for

log = logging.getLogger("esm.kafka")

SUCCEEDED, FILTERED, DEAD_LETTERED = Disposition.SUCCEEDED, Disposition.FILTERED, Disposition.DEAD_LETTERED  # finished


class KafkaSource:
    """One Kafka mapping's source (esm.core.contract.Source)."""

    mode = Mode.STREAM
    default_batch_size = 100
    # With MaximumRetryAttempts -1 and an on-failure destination, Lambda stops after 10 retries (behaviour §3).
    retry_cap_with_destination = 10

    @staticmethod
    def concurrency_ceiling(request: Mapping[str, Any] | None) -> int:
        """No scaling rules of its own: its units and their lanes set how many invokes run at once."""
        return DEFAULT_CONCURRENCY

    def __init__(self, mapping: MappingSettings, settings: PipelineSettings, runtime: Runtime,
                 metrics: MappingMetrics, identity: IdentityLookup | None = None):
        self.mapping = mapping
        self.settings = settings
        self.runtime = runtime
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        self.events = Events(metrics, self.log)
        self.topic: str = (mapping.get("Topics") or [""])[0]
        self_managed = "SelfManagedEventSource" in mapping.request
        config_key = "SelfManagedKafkaEventSourceConfig" if self_managed else "AmazonManagedKafkaEventSourceConfig"
        self.group_id: str = (mapping.get(config_key) or {}).get("ConsumerGroupId") or mapping.uuid
        self.starting_position: str = mapping.get("StartingPosition") or "LATEST"
        self.starting_timestamp = mapping.get("StartingPositionTimestamp")
        arn = None if self_managed else parse_arn(mapping.source_id)
        self.account = arn.account if arn else None
        region = (arn.region if arn else None) or runtime.clients.region_for() or "us-east-1"
        self.schemas = SchemaStep.for_mapping(mapping, runtime.clients, metrics, self.log)
        self.format = KafkaFormat(
            event_source_arn=None if self_managed else mapping.source_id,
            function_arn=function_arn(mapping.function, region, self.account),
            transform=transform_for(settings.transform, DESCRIPTOR.data) if settings.transform else None,
            **(dict(keeps=decoding.keeps, pre_failure=decoding.pre_failure) if self.schemas else {}))
        self.cluster: KafkaCluster | None = None  # settled by connect(): secrets are read then
        self.servers = ""
        # Provisioned mode (behaviour §7, §9.11): the pollers bound the batches in flight, through
        # `in_flight_slots`, which the engine's lanes pass; None on demand.
        self.pollers = pollers_for(mapping, runtime, self.events)
        self.in_flight_slots = self.pollers
        self.group = Group(topic=self.topic, events=self.events, log=self.log, schemas=self.schemas,
                           pool=self.pollers)
        self.commits = Commits(self.events, self.log)

    # -- connecting --------------------------------------------------------------------------------
    async def connect(self) -> None:
        if self.group.consumer is not None:
            return
        cluster, plan = await source_cluster(self.mapping, self.runtime.clients)
        self.cluster, self.servers = cluster, cluster.servers
        self.format.connected(cluster.servers)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=list(cluster.bootstrap_servers),
            client_id=f"esm-{self.mapping.uuid}",
            group_id=self.group_id,
            enable_auto_commit=False,
            auto_offset_reset="earliest" if self.starting_position == "TRIM_HORIZON" else "latest",
            session_timeout_ms=tuning.SESSION_TIMEOUT_MS,
            heartbeat_interval_ms=tuning.HEARTBEAT_INTERVAL_MS,
            max_poll_interval_ms=tuning.MAX_POLL_INTERVAL_MS,
            rebalance_timeout_ms=tuning.REBALANCE_TIMEOUT_MS,
            fetch_max_wait_ms=tuning.FETCH_MAX_WAIT_MS,
            max_poll_records=tuning.MAX_POLL_RECORDS,
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
        self.group.consumer = self.commits.consumer = consumer
        self.log.info("connected to %s over %s", self.servers, plan.describe())
        if note := ignored_note(plan):
            self.log.info(note)

    async def destination(self, target: str) -> Any:
        """The on-failure destination; a kafka:// topic in the source's cluster or esm.on_failure_kafka's."""
        clients = self.runtime.clients
        if not target.startswith("kafka://"):
            return make_destination(target, clients, mapping_uuid=self.mapping.uuid)
        other = await destination_cluster(self.mapping, clients)
        return make_destination(target, clients, mapping_uuid=self.mapping.uuid, kafka=other or self.cluster)

    async def close(self) -> None:
        self.group.stopping.set()
        consumer, self.group.consumer = self.group.consumer, None
        if consumer is not None:
            await _stop_consumer(consumer)
        self.commits.consumer = None
        if self.pollers is not None:
            self.pollers.close()  # its pollers go back to its poller group
        if self.schemas is not None:
            await self.schemas.close()

    # -- units ---------------------------------------------------------------------------------------
    async def discover(self, units: Units, stopping: asyncio.Event) -> None:
        assert self.group.consumer is not None, "connect() first"
        self.group.join(units, self.close_unit)
        self.log.info("consuming %s from %s as group %s (StartingPosition %s when the group has no offsets)",
                      self.topic, self.servers, self.group_id, self.starting_position)
        name = self.mapping.name
        helpers = [asyncio.create_task(self.commits.lag_loop(stopping), name=f"{name}/lag"),
                   asyncio.create_task(self.commits.committer(), name=f"{name}/commits")]
        if self.pollers is not None:
            helpers.append(asyncio.create_task(self.pollers.run(stopping), name=f"{name}/pollers"))
        try:
            await self.group.poll(stopping)
        finally:
            self.group.stop()  # a partition still being opened gives up; workers drain and close their units
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)

    def still_assigned(self, unit: Hashable) -> bool:
        part = self.group.partitions.get(unit)  # type: ignore[call-overload]
        return part is not None and part.state is PartitionState.ASSIGNED and self.group.owns(part.tp)

    async def open(self, unit: Hashable) -> bool:
        """Settle where the partition starts (see the module docstring); False if it was revoked first."""
        part = self.group.partitions.get(unit)  # type: ignore[call-overload]
        if part is None or part.state is not PartitionState.ASSIGNED:
            return False
        part.state = PartitionState.STARTING
        attempt = 0
        while not part.stopping.is_set():
            try:
                committed, position = await unless_stopped(self._start_of(part.tp, part.seek), part.stopping)
                async with self.commits.lock:
                    if part.state is not PartitionState.STARTING:
                        return False
                    if not await self.commits.start(part.tp, part.key, committed, position):
                        raise KafkaError("the start position could not be committed")
                    part.state, part.seek = PartitionState.ACTIVE, False
                if committed is None:
                    self.log.info("no committed offset for %s: starting at %d (%s)", part.key, position,
                                  self.starting_position)
                self.group.resume(part)
                return True
            except Stopped:
                return False
            except IllegalStateError:
                return False  # unassigned while we asked
            except (KafkaError, OSError, asyncio.TimeoutError) as error:
                attempt += 1
                delay = SOURCE_BACKOFF.delay(attempt)
                self.events.polling_failed(f"the start of {part.key}", repr(error), delay)
                await sleep_unless(part.stopping, delay)
        return False

    async def _start_of(self, tp: TopicPartition, seek: bool) -> tuple[int | None, int]:
        """(the group's committed offset or None, the offset reading starts at)."""
        consumer = self.group.consumer
        committed = await consumer.committed(tp)
        if committed is not None and seek:
            consumer.seek(tp, committed)  # a failed worker's records are read again
        elif committed is None and self.starting_position == "AT_TIMESTAMP":
            stamp = int(float(self.starting_timestamp) * 1000)
            found = (await consumer.offsets_for_times({tp: stamp})).get(tp)
            if found is None:  # nothing at or after the timestamp: start at the end
                await consumer.seek_to_end(tp)
            else:
                consumer.seek(tp, found.offset)
        return committed, await consumer.position(tp)

    async def fetch(self, unit: Hashable) -> Fetched:
        part = self.group.partitions.get(unit)  # type: ignore[call-overload]
        if part is None or part.state is not PartitionState.ACTIVE:
            await asyncio.Event().wait()  # no longer read: the engine is stopping this worker
            return NOTHING
        records = await self.group.take(part)
        self.commits.register(part.tp, [r.token for r in records])
        return Fetched(records)

    async def settle(self, unit: Hashable, tokens: Sequence[Any], disposition: Disposition) -> None:
        """Finished offsets (processed, filtered out, dead-lettered) wake the committer: one tracker
        call for the batch."""
        if disposition is SUCCEEDED or disposition is FILTERED or disposition is DEAD_LETTERED:
            self.commits.finish(unit, tokens)  # type: ignore[arg-type]

    async def close_unit(self, unit: Hashable, reason: StopReason) -> None:
        part = self.group.partitions.get(unit)  # type: ignore[call-overload]
        if part is None or part.state is PartitionState.GONE:
            return
        if reason is StopReason.FAILED and part.state is not PartitionState.REVOKING \
                and not self.group.stopping.is_set():
            committed = await self.commits.final(part.tp, forget=False)
            self.group.restart(part)
            self.log.warning("%s: its worker failed; read again from offset %s", part.key, committed)
            return
        self.group.revoking(part)
        committed = await self.commits.final(part.tp, forget=True)
        self.group.forget(part)
        word = "shutdown" if reason is StopReason.SHUTDOWN else "revoked"
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            # The engine gave up waiting for its batch in flight: abandoned, not committed, read again.
            self.log.warning("%s: abandoned the in-flight batch of %s (not committed; it will be read again)",
                             word, part.key)
        self.log.info("%s %s (committed %s@%s)", word, part.key, part.key, committed)


async def _stop_consumer(consumer: Any) -> None:
    """Stop the consumer (it leaves the group, so the others take over at once), whatever the
    broker's state. aiokafka's fetcher cancels its pending fetch requests and then awaits them; one
    sleeping in its retry backoff (the broker away) lets that CancelledError out of `stop()`, which
    would end esm's shutdown with a traceback and exit 1, with the consumer's connections still
    open. That error is not a cancellation of this task: it is swallowed and the client closed."""
    try:
        await consumer.stop()
    except (KafkaError, OSError, asyncio.TimeoutError):
        pass
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise  # this task itself is being cancelled
        client = getattr(consumer, "_client", None)  # what stop() did not reach
        if client is not None:
            with contextlib.suppress(Exception):
                await client.close()
