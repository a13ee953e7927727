"""The Kinesis event source: shards, leases, checkpoints, and Lambda's stream semantics (SPEC 1-7).

A mapping discovers shards with ListShards every couple of seconds, leases the ones whose parents
are finished (a child never starts before its parent reached SHARD_END), and runs one worker per
leased shard. A worker reads with GetRecords from its checkpoint (or StartingPosition for a new
mapping; TRIM_HORIZON for a child shard), filters, and hands records to ParallelizationFactor
lanes keyed by partition key, so order holds per key. Each lane batches (BatchSize, window from
the first record, 6 MB) and settles its batch through `StreamBatch` (retries, bisect, record age,
on-failure destination). The checkpoint is the contiguous position of settled records, written
through the lease (a lost lease stops the worker without a checkpoint). An expired iterator
resumes after the last record read, never from the starting position. A closed shard is drained,
checkpointed as SHARD_END and released so its children can start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import zlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from esm.aio import Stopped, sleep_unless, unless_stopped
from esm.arns import parse_arn
from esm.batching import BatchPolicy
from esm.checkpoints.base import StoreUnavailable
from esm.config.settings import MappingSettings
from esm.destinations import make_destination
from esm.destinations.records import failure_context, stream_failure_record
from esm.errors import LeaseLost, SourceUnavailable
from esm.filtering import compile_filters
from esm.filtering.decode import filter_kinesis
from esm.identity import execution_role_arn, function_arn
from esm.invokers.base import Invoker, InvokeResult, Succeeded
from esm.observability.metrics import MappingMetrics
from esm.offsets import OffsetTracker
from esm.records import Disposition, Record
from esm.sources import Runtime
from esm.sources.kinesis_efo import tolerate_missing_initial_response
from esm.sources.kinesis_records import arrival_epoch, kinesis_record
from esm.sources.tumbling import WindowState, window_of
from esm.stream_batches import BatchAbandoned, Failure, RetryPolicy, StreamBatch, deliver_until_landed
from esm.transform import kinesis_transform

log = logging.getLogger("esm.kinesis")

DISCOVERY_INTERVAL = 2.0
IDLE_POLL_INTERVAL = 1.0  # Lambda reads each shard about once a second when it is idle
GET_RECORDS_LIMIT = 10000
BACKOFF_CAP = 10.0
# An idle tumbling window closes this long after its end (records carry the stream's arrival time).
WINDOW_IDLE_GRACE = 1.0
SHARD_END = object()  # queued behind a closed shard's last record
NOTHING = object()  # no record carried over to the next batch


@dataclass
class ShardRun:
    shard_id: str
    lease: Any
    task: asyncio.Task[None] | None = None
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    persisted: Any = None  # the last position written to the store
    held: int = 0  # bytes of its records counted in the mapping's in-flight cap and not yet settled
    checkpoint_lock: asyncio.Lock = field(default_factory=asyncio.Lock)


@dataclass
class ShardReader:
    """What a shard's reader shares with the rest of its worker."""

    run: ShardRun
    tracker: OffsetTracker
    queues: list[asyncio.Queue[Any]]
    last_read: str | None  # the last sequence number read; resuming starts after it


class KinesisMapping:
    """Runs one Kinesis event source mapping."""

    def __init__(self, mapping: MappingSettings, runtime: Runtime, invoker: Invoker, metrics: MappingMetrics):
        self.mapping = mapping
        self.runtime = runtime
        self.invoker = invoker
        self.metrics = metrics
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        arn = parse_arn(mapping.source_id)
        assert arn is not None
        self.arn = arn
        self.stream_arn = mapping.source_id.split("/consumer/")[0]
        # Enhanced fan-out when EventSourceArn names a stream consumer (SPEC 7).
        self.consumer_arn = mapping.source_id if "/consumer/" in mapping.source_id else None
        self.stream_name = self.stream_arn.split(":stream/")[1]
        self.region = arn.region or runtime.clients.region_for() or "us-east-1"
        self.function_arn = function_arn(mapping.function, arn.region or "us-east-1", arn.account)
        self.identity_arn: str | None = None  # the execution role, read once on connect (esm.identity)
        self.batch_size: int = mapping.get("BatchSize")
        self.window = mapping.batching_window
        self.window_seconds = int(mapping.get("TumblingWindowInSeconds", 0) or 0)
        # A tumbling window's state belongs to the shard: one lane per shard when windows are on.
        self.lanes = 1 if self.window_seconds else int(mapping.get("ParallelizationFactor", 1))
        self.policy = RetryPolicy(
            max_retries=mapping.get("MaximumRetryAttempts", -1),
            max_age=float(mapping.get("MaximumRecordAgeInSeconds", -1)),
            bisect=bool(mapping.get("BisectBatchOnFunctionError", False)),
            report_item_failures="ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", []),
        )
        filters = [f["Pattern"] for f in (mapping.get("FilterCriteria") or {}).get("Filters") or []]
        self.matcher = compile_filters(filters)
        self.transform = kinesis_transform(mapping.extension.transform) if mapping.extension.transform else None
        target = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        self.destination = make_destination(target, runtime.clients, mapping_uuid=mapping.uuid) if target else None
        self.in_flight = metrics.in_flight(mapping.extension.max_in_flight_bytes)
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()
        self._stopping = asyncio.Event()
        self._shards: dict[str, ShardRun] = {}
        self._finished: set[str] = set()

    @property
    def store(self) -> Any:
        return self.runtime.checkpoints

    # -- lifecycle ---------------------------------------------------------------------------
    async def connect(self) -> None:
        if self.identity_arn is None:
            self.identity_arn = await execution_role_arn(self.mapping.function, self.invoker, self.arn.account)
        if self._client is None:
            self._client = await self._stack.enter_async_context(self.runtime.clients.client("kinesis", self.arn.region))
            tolerate_missing_initial_response(self._client)
        try:
            await self._client.describe_stream_summary(StreamName=self.stream_name)
        except (ClientError, BotoCoreError, OSError) as error:
            raise SourceUnavailable(f"stream {self.stream_arn} is not reachable: {error}") from error

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        if self.destination is not None:
            await self.destination.close()
        await self._stack.aclose()
        self._client = None

    async def run(self) -> None:
        try:
            while not self._stopping.is_set():
                await self._discover()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), DISCOVERY_INTERVAL)
        finally:
            for run in self._shards.values():
                run.stopping.set()
            tasks = [r.task for r in self._shards.values() if r.task is not None]
            try:
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                for task in tasks:
                    task.cancel()
                for run in list(self._shards.values()):
                    with contextlib.suppress(Exception):
                        await self.store.release(run.lease)
                self._shards.clear()

    # -- shards and leases ---------------------------------------------------------------------
    async def _list_shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamName": self.stream_name}
        while True:
            response = await self._client.list_shards(**kwargs)
            shards.extend(response.get("Shards") or [])
            token = response.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}

    async def _is_finished(self, shard_id: str) -> bool:
        if shard_id in self._finished:
            return True
        checkpoint = await self.store.get(self.mapping.uuid, shard_id)
        if checkpoint is not None and checkpoint.shard_end:
            self._finished.add(shard_id)
            return True
        return False

    async def _parents_finished(self, parents: list[str], by_id: dict[str, Any]) -> bool:
        """A child starts once each parent still in the stream reached SHARD_END (expired parents are gone)."""
        for parent in parents:
            if parent in by_id and not await self._is_finished(parent):
                return False
        return True

    async def _discover(self) -> None:
        try:
            shards = await self._list_shards()
        except (ClientError, BotoCoreError, OSError) as error:
            self.metrics.polling_errors.inc()
            self.log.warning("ListShards failed: %s", error)
            return
        by_id = {s["ShardId"]: s for s in shards}
        # Forget workers that ended (shard end, lost lease, failure).
        for shard_id, run in list(self._shards.items()):
            if run.task is not None and run.task.done():
                del self._shards[shard_id]
                if not run.task.cancelled() and run.task.exception() is not None:
                    self.log.error("shard %s worker failed: %r", shard_id, run.task.exception())
        try:
            await self._balance(by_id)
        except StoreUnavailable as error:
            self.log.warning("checkpoint store unavailable; leases unchanged this round: %s", error)

    async def _balance(self, by_id: dict[str, Any]) -> None:
        held = await self.store.renew([r.lease for r in self._shards.values()])
        held_units = {lease.unit for lease in held}
        for shard_id, run in list(self._shards.items()):
            if shard_id not in held_units:
                self.log.warning("lease on %s lost; stopping its worker without a checkpoint", shard_id)
                run.stopping.set()
            else:
                run.lease = next(lease for lease in held if lease.unit == shard_id)
        eligible = []
        for shard_id, shard in by_id.items():
            if shard_id in self._shards or await self._is_finished(shard_id):
                continue
            parents = [p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p]
            if await self._parents_finished(parents, by_id):
                eligible.append(shard_id)
        if not eligible:
            return
        for lease in await self.store.acquire(self.mapping.uuid, eligible, self.runtime.owner):
            shard = by_id[lease.unit]
            run = ShardRun(lease.unit, lease)
            child = any(p in by_id for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p)
            run.task = asyncio.create_task(self._shard(run, child), name=f"{self.mapping.name}/{lease.unit}")
            self._shards[lease.unit] = run
            self.log.info("processing shard %s", lease.unit)

    # -- one shard -------------------------------------------------------------------------------
    async def _iterator(self, shard_id: str, after: str | None, child: bool) -> str:
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard_id}
        if after is not None:
            kwargs |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": after}
        elif child:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"  # a child shard is read from its start
        else:
            position = self.mapping.get("StartingPosition")
            kwargs["ShardIteratorType"] = position
            if position == "AT_TIMESTAMP":
                kwargs["Timestamp"] = self.mapping.get("StartingPositionTimestamp")
        return (await self._client.get_shard_iterator(**kwargs))["ShardIterator"]

    async def _shard(self, run: ShardRun, child: bool) -> None:
        checkpoint = await self.store.get(self.mapping.uuid, run.shard_id)
        tracker = OffsetTracker()
        queues = [asyncio.Queue[Any](maxsize=max(2 * self.batch_size, 100)) for _ in range(self.lanes)]
        lane = self._windowed_lane if self.window_seconds else self._lane
        lanes = [asyncio.create_task(lane(run, queue, tracker), name=f"{run.shard_id}/lane-{i}")
                 for i, queue in enumerate(queues)]
        reader = ShardReader(run, tracker, queues, checkpoint.position if checkpoint else None)
        try:
            read = self._read_subscribed if self.consumer_arn else self._read_polling
            if await read(reader, child):
                await self._finish_shard(run, queues, tracker)
        except LeaseLost:
            self.log.warning("lease on %s lost; stopping without a checkpoint", run.shard_id)
        finally:
            run.stopping.set()
            for queue in queues:
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait(None)  # wakes a lane waiting for records; a busy lane sees `stopping`
            await asyncio.gather(*lanes, return_exceptions=True)
            self.in_flight.release(run.held)  # read but never settled: read again from the checkpoint
            run.held = 0

    def _running(self, run: ShardRun) -> bool:
        return not run.stopping.is_set() and not self._stopping.is_set()

    async def _take(self, reader: "ShardReader", raw_records: list[dict[str, Any]]) -> None:
        """Records read from the shard: register them in order, filter, hand the rest to their lane."""
        run, tracker = reader.run, reader.tracker
        while not self.in_flight.has_room() and self._running(run):
            with contextlib.suppress(Stopped):  # the in-flight cap: lanes settle before more is queued
                await unless_stopped(self.in_flight.room(), run.stopping)
        filtered = False
        for raw in raw_records:
            record = kinesis_record(raw, run.shard_id, self.stream_arn, self.region, self.identity_arn or "")
            tracker.register(record.token)
            reader.last_read = record.item_id
            self.metrics.polled.inc()
            if not self.matcher.is_match_all and not filter_kinesis(self.matcher, record.event):
                self.metrics.filtered_out.inc()
                tracker.finish(record.token)
                filtered = True
                continue
            lane = zlib.crc32(record.event["kinesis"]["partitionKey"].encode()) % self.lanes
            run.held += record.size
            self.in_flight.hold(record.size)
            await reader.queues[lane].put(record)
        if filtered:
            await self._checkpoint(run, tracker)  # skipped records move the checkpoint too

    async def _read_polling(self, reader: "ShardReader", child: bool) -> bool:
        """GetRecords about once a second while idle; True when the shard is closed and fully read."""
        run = reader.run
        self.log.info("reading %s with GetRecords", run.shard_id)
        iterator = await self._iterator(run.shard_id, reader.last_read, child)
        delay = 0.2
        while self._running(run):
            try:
                response = await self._client.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
                delay = 0.2
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code == "ExpiredIteratorException":  # resume after the last record read
                    self.log.info("iterator of %s expired; resuming after %s", run.shard_id,
                                  reader.last_read or "the starting position")
                    iterator = await self._iterator(run.shard_id, reader.last_read, child)
                    continue
                self.metrics.polling_errors.inc()
                self.log.warning("GetRecords on %s failed (%s); backing off %.1fs", run.shard_id, code, delay)
                await sleep_unless(run.stopping, delay)
                delay = min(BACKOFF_CAP, delay * 2 * random.uniform(0.8, 1.2))
                continue
            except (BotoCoreError, OSError) as error:
                self.metrics.polling_errors.inc()
                self.log.warning("GetRecords on %s failed: %s", run.shard_id, error)
                await sleep_unless(run.stopping, delay)
                delay = min(BACKOFF_CAP, delay * 2)
                continue
            records = response.get("Records") or []
            await self._take(reader, records)
            iterator = response.get("NextShardIterator")
            if iterator is None:
                return True
            if not records:
                await sleep_unless(run.stopping, IDLE_POLL_INTERVAL)
        return False

    async def _read_subscribed(self, reader: "ShardReader", child: bool) -> bool:
        """Enhanced fan-out: SubscribeToShard pushes records; a subscription ends (5 minutes on AWS) and is
        renewed after the last sequence number seen. True when the shard is closed and fully read."""
        run = reader.run
        self.log.info("reading %s with SubscribeToShard (enhanced fan-out)", run.shard_id)
        continuation = reader.last_read
        delay = 0.2
        while self._running(run):
            position: dict[str, Any]
            if continuation is not None:
                position = {"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": continuation}
            elif child:
                position = {"Type": "TRIM_HORIZON"}
            else:
                position = {"Type": self.mapping.get("StartingPosition")}
                if position["Type"] == "AT_TIMESTAMP":
                    position["Timestamp"] = self.mapping.get("StartingPositionTimestamp")
            try:
                response = await self._client.subscribe_to_shard(ConsumerARN=self.consumer_arn,
                                                                 ShardId=run.shard_id, StartingPosition=position)
                stream = response["EventStream"]
                events = stream.__aiter__()
                try:
                    while self._running(run):
                        event = await self._next_or_stop(run, events)
                        if event is None:
                            break
                        shard_event = event.get("SubscribeToShardEvent") or {}
                        await self._take(reader, shard_event.get("Records") or [])
                        continuation = shard_event.get("ContinuationSequenceNumber") or reader.last_read
                        if shard_event.get("ContinuationSequenceNumber") is None and "ContinuationSequenceNumber" in shard_event:
                            return True
                        if shard_event.get("ChildShards") and not shard_event.get("Records"):
                            return True
                finally:
                    stream.close()
                delay = 0.2
            except (ClientError, BotoCoreError, OSError) as error:
                self.metrics.polling_errors.inc()
                self.log.warning("SubscribeToShard on %s failed: %s; retrying in %.1fs", run.shard_id, error, delay)
                await sleep_unless(run.stopping, delay)
                delay = min(BACKOFF_CAP, delay * 2)
        return False

    async def _next_or_stop(self, run: ShardRun, events: Any) -> Any:
        """The next pushed event, or None when the shard worker stops or the subscription ends."""
        try:
            return await unless_stopped(events.__anext__(), run.stopping)
        except (Stopped, StopAsyncIteration):
            return None

    async def _finish_shard(self, run: ShardRun, queues: list[asyncio.Queue[Any]], tracker: OffsetTracker) -> None:
        for queue in queues:
            await queue.put(SHARD_END)  # lanes close what they hold open (a tumbling window), then drain
        drained = asyncio.ensure_future(asyncio.gather(*(queue.join() for queue in queues)))
        stopped = asyncio.ensure_future(run.stopping.wait())
        await asyncio.wait({drained, stopped}, return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        stopped.cancel()
        await self._checkpoint(run, tracker)
        if tracker.pending == 0 and not run.stopping.is_set():
            position = str(tracker.position) if tracker.position is not None else "SHARD_END"
            await self.store.put(self.mapping.uuid, run.shard_id, position, shard_end=True, lease=run.lease)
            self._finished.add(run.shard_id)
            await self.store.release(run.lease)
            self.log.info("shard %s finished (SHARD_END)", run.shard_id)

    async def _checkpoint(self, run: ShardRun, tracker: OffsetTracker) -> None:
        """Write the contiguous position if it moved; a failed write is retried with the next one.
        Lanes checkpoint concurrently: the lock keeps writes in order, so a checkpoint never goes back."""
        tracker.advance()
        async with run.checkpoint_lock:
            position = tracker.position
            if position is None or position == run.persisted:
                return
            try:
                await self.store.put(self.mapping.uuid, run.shard_id, str(position), lease=run.lease)
                run.persisted = position
            except StoreUnavailable as error:
                self.metrics.commit_errors.inc()
                self.log.warning("checkpoint of %s not written (retried with the next one): %s", run.shard_id, error)

    # -- one lane ----------------------------------------------------------------------------------
    async def _lane(self, run: ShardRun, queue: asyncio.Queue[Record | None], tracker: OffsetTracker) -> None:
        """Batch this lane's records and settle each batch in order; every queue item is marked done once."""
        policy = BatchPolicy(self.batch_size, self.window)

        async def settle(records: list[Record], disposition: Disposition) -> None:
            for record in records:
                tracker.finish(record.token)
            await self._checkpoint(run, tracker)

        batch = StreamBatch(policy=self.policy, invoke=lambda records: self._invoke(run, records), settle=settle,
                            dead_letter=lambda failure: self._dead_letter(run, failure),
                            record_age=lambda record: time.time() - arrival_epoch(record), metrics=self.metrics,
                            read_identifier=_sequence_identifier, stopping=run.stopping, logger=self.log)
        carry: Any = NOTHING
        while not run.stopping.is_set():
            item = carry if carry is not NOTHING else await queue.get()
            carry = NOTHING
            if item is None:
                queue.task_done()
                return
            if item is SHARD_END:
                queue.task_done()
                continue
            policy.add(item)
            while policy.room:
                try:
                    if self.window > 0 and policy.remaining() > 0:
                        item = await asyncio.wait_for(queue.get(), policy.remaining())
                    else:
                        item = queue.get_nowait()
                except (asyncio.TimeoutError, asyncio.QueueEmpty):
                    break
                if item is None or item is SHARD_END:
                    carry = item  # handled at the top of the loop, after this batch
                    break
                if not policy.fits(item):
                    carry = item  # the 6 MB cut: it opens the next batch
                    break
                policy.add(item)
            records = policy.take()
            try:
                await batch.run(records)
            except (BatchAbandoned, LeaseLost):
                run.stopping.set()
                return
            finally:
                self._settled(run, records)
                for _ in records:
                    queue.task_done()

    def _settled(self, run: ShardRun, records: list[Record]) -> None:
        """A batch is done with (settled, or abandoned with its shard): its bytes leave the in-flight cap."""
        size = sum(record.size for record in records)
        run.held -= size
        self.in_flight.release(size)

    async def _windowed_lane(self, run: ShardRun, queue: asyncio.Queue[Any], tracker: OffsetTracker) -> None:
        """Tumbling windows (esm/sources/tumbling.py): batches never cross a window; the checkpoint
        moves when a window's final invoke succeeded."""
        windows = WindowState()
        settled: list[Record] = []

        async def settle(records: list[Record], disposition: Disposition) -> None:
            settled.extend(records)  # finished in the tracker when the window closes

        batch = StreamBatch(policy=self.policy, invoke=lambda records: self._invoke_window(run, windows, records),
                            settle=settle, dead_letter=lambda failure: self._dead_letter(run, failure),
                            record_age=lambda record: time.time() - arrival_epoch(record), metrics=self.metrics,
                            read_identifier=_sequence_identifier, stopping=run.stopping, logger=self.log)
        policy = BatchPolicy(self.batch_size, self.window)
        carry: Any = NOTHING
        try:
            while not run.stopping.is_set():
                if carry is not NOTHING:
                    item, carry = carry, NOTHING
                else:
                    idle = None if windows.window is None else max(0.0, windows.window.end + WINDOW_IDLE_GRACE - time.time())
                    try:
                        item = await asyncio.wait_for(queue.get(), idle)
                    except asyncio.TimeoutError:
                        await self._close_window(run, windows, settled, tracker)  # idle past its end
                        continue
                if item is None:
                    queue.task_done()
                    return
                if item is SHARD_END:
                    await self._close_window(run, windows, settled, tracker)
                    queue.task_done()
                    continue
                window = window_of(arrival_epoch(item), self.window_seconds)
                if windows.window is not None and window != windows.window:
                    await self._close_window(run, windows, settled, tracker)
                if windows.window is None:
                    windows.reset(window)
                policy.add(item)
                while policy.room:
                    try:
                        if self.window > 0 and policy.remaining() > 0:
                            nxt = await asyncio.wait_for(queue.get(), policy.remaining())
                        else:
                            nxt = queue.get_nowait()
                    except (asyncio.TimeoutError, asyncio.QueueEmpty):
                        break
                    if (nxt is None or nxt is SHARD_END or not policy.fits(nxt)
                            or window_of(arrival_epoch(nxt), self.window_seconds) != window):
                        carry = nxt
                        break
                    policy.add(nxt)
                records = policy.take()
                try:
                    await batch.run(records)
                finally:
                    self._settled(run, records)
                    for _ in records:
                        queue.task_done()
                if windows.terminated_early:
                    await self._close_window(run, windows, settled, tracker)
        except (BatchAbandoned, LeaseLost):
            run.stopping.set()

    async def _close_window(self, run: ShardRun, windows: WindowState, settled: list[Record],
                            tracker: OffsetTracker) -> None:
        """The final invoke of a window (no records, its state); retried until it succeeds (SPEC 2)."""
        if windows.window is None:
            return
        attempt = 0
        while True:
            if run.stopping.is_set():
                raise BatchAbandoned()
            payload = windows.payload([], shard_id=run.shard_id, stream_arn=self.stream_arn, final=True)
            result = windows.take_state(await self.invoker.invoke(payload))
            if isinstance(result, Succeeded):
                break
            attempt += 1
            self.metrics.invoke_errors.inc()
            delay = min(BACKOFF_CAP, 0.2 * 2 ** attempt) * random.uniform(0.5, 1.0)
            self.log.warning("final invoke of window %s on %s failed (the shard waits), retrying in %.1fs",
                             windows.window.iso()["start"], run.shard_id, delay)
            await sleep_unless(run.stopping, delay)
        for record in settled:
            tracker.finish(record.token)
        settled.clear()
        windows.reset(None)
        await self._checkpoint(run, tracker)

    async def _invoke_window(self, run: ShardRun, windows: WindowState, records: list[Record]) -> InvokeResult:
        self.metrics.iterator_age(run.shard_id, max(0.0, time.time() - arrival_epoch(records[-1])) * 1000)
        payload = windows.payload(self._events(records), shard_id=run.shard_id, stream_arn=self.stream_arn,
                                  final=False)
        return windows.take_state(await self.invoker.invoke(payload))

    async def _invoke(self, run: ShardRun, records: list[Record]) -> InvokeResult:
        self.metrics.iterator_age(run.shard_id, max(0.0, time.time() - arrival_epoch(records[-1])) * 1000)
        payload = orjson.dumps({"Records": self._events(records)})
        return await self.invoker.invoke(payload)

    def _events(self, records: list[Record]) -> list[dict[str, Any]]:
        """The records as the function sees them: with `esm.transform` applied, if there is one."""
        if self.transform is None:
            return [r.event for r in records]
        return [self.transform.apply(r.event) for r in records]

    async def _dead_letter(self, run: ShardRun, failure: Failure) -> None:
        records = failure.records
        first, last = records[0], records[-1]
        positions = f"{run.shard_id} {first.item_id}..{last.item_id}"
        if self.destination is None:
            self.metrics.dropped.inc(len(records))
            self.log.error("%s: dropped %d record(s) at %s (no on-failure destination): %s",
                           failure.condition, len(records), positions, failure.last_error or "never invoked")
        else:
            count, response = failure_context(failure.condition, failure.invoke_count, failure.last_kind,
                                              executed_version=failure.executed_version)
            document = stream_failure_record(
                kind="kinesis", condition=failure.condition, function_arn=self.function_arn,
                approximate_invoke_count=count, response=response,
                shard_id=run.shard_id, start_sequence_number=first.item_id, end_sequence_number=last.item_id,
                first_arrival=arrival_epoch(first), last_arrival=arrival_epoch(last), batch_size=len(records),
                stream_arn=self.stream_arn)
            event = {"Records": [r.event for r in records]}
            await deliver_until_landed(self.destination, document, invocation_event=event,
                                       shard_id=run.shard_id, stopping=run.stopping, metrics=self.metrics,
                                       function_name=self.mapping.function.name, where=positions, logger=self.log)
            self.metrics.destination_delivered.inc(len(records))
            self.log.warning("%s: %d record(s) at %s sent to %s", failure.condition, len(records), positions,
                             self.destination.arn)


def _sequence_identifier(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
