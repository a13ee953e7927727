"""The SQS event source: pollers that batch, filter, invoke and delete like Lambda (SPEC 1-7).

A mapping runs a pool of workers; each worker long-polls the queue, gathers one batch (BatchSize,
a window that starts at its first record, the 6 MB cap), invokes the function and settles the
batch, one batch at a time. `ConcurrencyTarget` sizes the pool (5 to start, up to
MaximumConcurrency, backing off on throttles and on function errors without
ReportBatchItemFailures; with ProvisionedPollerConfig, 10 invokes per poller between
MinimumPollers and MaximumPollers, scaling faster). The ProvisionedPollers gauge follows the
worker tasks that actually run.

Settling follows SPEC 3: success deletes the batch; a partial batch response deletes all but the
reported failures; a function error deletes nothing, so the batch returns after the visibility
timeout; filtered-out messages are deleted. FIFO queues keep order per MessageGroupId because SQS
hands out no message of a group while an earlier one is in flight; esm adds one guard: after a
reported failure in a group, later messages of that group in the batch are kept too.

Nothing is acknowledged before its outcome is known. On shutdown, records gathered but not yet
invoked are made visible again at once; a batch being invoked finishes and settles within the
shutdown timeout; a receive in flight is never abandoned (its messages would be stranded until
their visibility timeout), so long polls last at most 5 s; a SIGKILL loses nothing
(unacknowledged messages come back after their visibility timeout).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import math
import random
import time
from dataclasses import dataclass
from typing import Any

import orjson
from botocore.exceptions import BotoCoreError, ClientError

from esm.aio import Stopped, unless_stopped
from esm.arns import is_fifo_queue, parse_arn
from esm.batching import BatchPolicy
from esm.config.settings import MappingSettings
from esm.errors import SourceUnavailable
from esm.filtering import compile_filters
from esm.filtering.decode import filter_sqs
from esm.invokers.base import Invoker
from esm.observability.metrics import MappingMetrics
from esm.outcomes import FUNCTION_ERROR, INVOCATION_ERROR, PARTIAL, SUCCESS, judge
from esm.records import Record
from esm.scaling import (
    SQS_DEFAULT_MAXIMUM_POLLERS,
    SQS_DEFAULT_MINIMUM_POLLERS,
    ConcurrencyTarget,
    concurrency_ceiling,
)
from esm.sources import Runtime
from esm.sources.sqs_records import message_group, sqs_record
from esm.transform import sqs_transform

log = logging.getLogger("esm.sqs")

MAX_RECEIVE = 10  # messages per ReceiveMessage call
# A receive is never abandoned (SQS would still hand its messages to the dropped request, stranding
# them until their visibility timeout), so shutdown waits for the ones in flight: 5 s bounds that.
LONG_POLL_SECONDS = 5
RECORD_ENVELOPE_BYTES = 2048  # a record's event around its body: ids, attributes, ARN (at most, roughly)
BACKOFF_BASE = 0.1
BACKOFF_CAP = 30.0


@dataclass(frozen=True)
class QueueInfo:
    url: str
    arn: str
    region: str
    fifo: bool
    visibility_timeout: float
    max_message_size: int = 262144  # the queue's MaximumMessageSize: what one message may add in memory


class SqsMapping:
    """Runs one SQS event source mapping."""

    def __init__(self, mapping: MappingSettings, runtime: Runtime, invoker: Invoker, metrics: MappingMetrics):
        self.mapping = mapping
        self.clients = runtime.clients
        self.invoker = invoker
        self.metrics = metrics
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        arn = parse_arn(mapping.source_id)
        assert arn is not None
        self.arn = arn
        self.batch_size: int = mapping.get("BatchSize")
        self.window = mapping.batching_window
        self.report_failures = "ReportBatchItemFailures" in mapping.get("FunctionResponseTypes", [])
        filters = [f["Pattern"] for f in (mapping.get("FilterCriteria") or {}).get("Filters") or []]
        self.matcher = compile_filters(filters)
        self.transform = sqs_transform(mapping.extension.transform) if mapping.extension.transform else None
        self.scaling = scaling_for(mapping, invoker.max_concurrency)
        self.in_flight = metrics.in_flight(mapping.extension.max_in_flight_bytes)
        self.queue: QueueInfo | None = None
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()
        self._stopping = asyncio.Event()
        self._workers: dict[int, asyncio.Task[None]] = {}
        self._next_worker = 0
        self._retire_from: float = math.inf  # workers with this id or a higher one are surplus

    # -- lifecycle ---------------------------------------------------------------------------
    async def connect(self) -> QueueInfo:
        """Find the queue and its settings; raises SourceUnavailable while it cannot be reached."""
        if self._client is None:
            self._client = await self._stack.enter_async_context(self.clients.client("sqs", self.arn.region))
        try:
            url = (await self._client.get_queue_url(QueueName=self.arn.resource,
                                                    QueueOwnerAWSAccountId=self.arn.account))["QueueUrl"]
            attributes = (await self._client.get_queue_attributes(
                QueueUrl=url, AttributeNames=["VisibilityTimeout", "FifoQueue", "MaximumMessageSize"]))["Attributes"]
        except (ClientError, BotoCoreError, OSError) as error:
            raise SourceUnavailable(f"queue {self.arn} is not reachable: {error}") from error
        self.queue = QueueInfo(
            url=url,
            arn=str(self.arn),
            region=self.arn.region or self.clients.region_for() or "us-east-1",
            fifo=attributes.get("FifoQueue") == "true" or is_fifo_queue(self.arn),
            visibility_timeout=float(attributes.get("VisibilityTimeout", 30)),
            max_message_size=int(attributes.get("MaximumMessageSize", 262144)),
        )
        if self.mapping.function.timeout > self.queue.visibility_timeout:
            self.log.warning(
                "function timeout %.0fs is above the queue's visibility timeout %.0fs: a batch may be "
                "redelivered while it is still being processed (AWS recommends a visibility timeout of "
                "6 x the function timeout + the batching window)",
                self.mapping.function.timeout, self.queue.visibility_timeout)
        return self.queue

    async def run(self) -> None:
        """Poll until `stop()`; returns when every worker has settled or released its batch."""
        assert self.queue is not None, "connect() first"
        self.metrics.set_state("Enabled")
        scaler = asyncio.create_task(self._scale(), name=f"{self.mapping.name}/scaler")
        try:
            self._resize()
            while self._workers:
                await asyncio.wait(list(self._workers.values()), return_when=asyncio.FIRST_COMPLETED)
                for wid, task in list(self._workers.items()):
                    if task.done():
                        del self._workers[wid]
                        if not task.cancelled() and task.exception() is not None:
                            raise task.exception()  # type: ignore[misc]
                if not self._stopping.is_set():
                    self._resize()
                self._report_pollers()
        finally:
            scaler.cancel()
            for task in self._workers.values():
                task.cancel()
            await asyncio.gather(scaler, *self._workers.values(), return_exceptions=True)
            self._workers.clear()

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    # -- scaling -----------------------------------------------------------------------------
    async def _scale(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(1)
            self.scaling.tick()
            self._resize()

    def _resize(self) -> None:
        while len(self._workers) < self.scaling.target and not self._stopping.is_set():
            wid = self._next_worker
            self._next_worker += 1
            self._workers[wid] = asyncio.create_task(self._worker(wid), name=f"{self.mapping.name}/poller-{wid}")
        # Workers beyond the target retire, the newest first: ids only grow, and the dict keeps them
        # in order, so the surplus are those from the target-th on. Worked out here, once per change
        # of the pool or the target, not by each worker on each loop.
        self._retire_from = next(itertools.islice(self._workers, self.scaling.target, None), math.inf)
        self._report_pollers()

    def _report_pollers(self) -> None:
        """ProvisionedPollers (SPEC 6): the pollers the running lanes stand for, not the target."""
        lanes = sum(not task.done() for task in self._workers.values())
        self.metrics.metrics.provisioned_pollers.labels(*self.metrics.labels).set(self.scaling.pollers(lanes))

    def _surplus(self, wid: int) -> bool:
        """Workers beyond the target retire, the newest first (see `_resize`)."""
        return wid >= self._retire_from

    # -- one worker ----------------------------------------------------------------------------
    async def _worker(self, wid: int) -> None:
        policy = BatchPolicy(self.batch_size, self.window)
        carry: list[Record] = []
        while not self._stopping.is_set() and not self._surplus(wid):
            try:
                batch = await self._gather(policy, carry, wid)
            except Stopped:
                break
            if batch:
                try:
                    await self._process(batch)
                finally:
                    self.in_flight.release(sum(record.size for record in batch))
        # Gathered but never invoked: visible again at once, for another consumer.
        leftover = policy.take() + carry
        await self._release(leftover)
        self.in_flight.release(sum(record.size for record in leftover))

    async def _gather(self, policy: BatchPolicy, carry: list[Record], wid: int) -> list[Record]:
        """One batch: until BatchSize, the window (from the first record), or the 6 MB cap.

        Raises Stopped on shutdown, and when this worker is surplus and holds nothing: an idle
        queue never ends a gather, so scaling down happens here."""
        while carry and policy.room:
            if policy.records and not policy.fits(carry[0]):
                return policy.take()
            policy.add(carry.pop(0))
        while policy.room:
            if self._stopping.is_set():
                raise Stopped()
            if policy.records and (self.window <= 0 or policy.remaining() <= 0):
                break
            if not self.in_flight.has_room() and policy.records:
                break  # invoke what this worker holds rather than wait on the others
            while not self.in_flight.has_room():  # checked again on waking: others may have woken first
                await unless_stopped(self.in_flight.room(), self._stopping)
            wait = LONG_POLL_SECONDS if not policy.records else min(LONG_POLL_SECONDS, math.ceil(policy.remaining()))
            count = min(MAX_RECEIVE, policy.room)
            # What the receive may bring is counted while it is under way, so that pollers receiving at
            # once cannot together pass the cap by more than one receive.
            reserved = count * (self.queue.max_message_size + RECORD_ENVELOPE_BYTES)
            self.in_flight.hold(reserved)
            try:
                messages = await self._receive(count, wait)
            finally:
                self.in_flight.release(reserved)
            if not messages:
                self.scaling.poll_empty()
                if not policy.records and not carry and self._surplus(wid):
                    raise Stopped()
                continue
            self.scaling.polled(len(messages))
            records = await self._admit(messages)
            self.in_flight.hold(sum(record.size for record in records))
            if self._stopping.is_set():
                carry.extend(records)  # received during shutdown: released with the rest
                raise Stopped()
            for index, record in enumerate(records):
                if policy.records and not policy.fits(record):
                    carry.extend(records[index:])  # the 6 MB cut: these open the next batch
                    return policy.take()
                policy.add(record)
        return policy.take()

    async def _receive(self, count: int, wait: int) -> list[dict[str, Any]]:
        assert self.queue is not None
        delay = BACKOFF_BASE
        while True:
            try:
                response = await self._client.receive_message(
                    QueueUrl=self.queue.url,
                    MaxNumberOfMessages=count,
                    WaitTimeSeconds=wait,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                return response.get("Messages") or []
            except (ClientError, BotoCoreError, OSError) as error:
                self.metrics.polling_errors.inc()
                self.log.warning("ReceiveMessage failed, retrying in %.1fs: %s", delay, error)
                await unless_stopped(asyncio.sleep(delay), self._stopping)
                delay = min(BACKOFF_CAP, delay * 2)

    async def _admit(self, messages: list[dict[str, Any]]) -> list[Record]:
        """Turn messages into records; delete the ones the filters reject (SPEC 5)."""
        assert self.queue is not None
        records = [sqs_record(m, self.queue.arn, self.queue.region) for m in messages]
        self.metrics.polled.inc(len(records))
        if self.matcher.is_match_all:
            return records
        kept: list[Record] = []
        rejected: list[Record] = []
        for record in records:
            (kept if filter_sqs(self.matcher, record.event) else rejected).append(record)
        if rejected:
            self.metrics.filtered_out.inc(len(rejected))
            await self._delete(rejected)
        return kept

    # -- invoke and settle -----------------------------------------------------------------------
    async def _process(self, records: list[Record]) -> None:
        assert self.queue is not None
        events = [self.transform.apply(r.event) if self.transform else r.event for r in records]
        payload = orjson.dumps({"Records": events})
        batch_ids = [r.item_id for r in records]
        attempt = 0
        while True:
            result = await self.invoker.invoke(payload)
            outcome = judge(result, report_item_failures=self.report_failures, batch_ids=batch_ids)
            if outcome.kind != INVOCATION_ERROR:
                break
            self.metrics.invoke_errors.inc()
            self.scaling.back_off()
            self._resize()
            attempt += 1
            delay = _backoff(attempt, outcome.retry_after)
            # Keep retrying while the messages are still ours; then let them return to the queue.
            oldest = min(r.arrived_at for r in records)
            if time.monotonic() + delay >= oldest + self.queue.visibility_timeout - 1:
                self.log.warning("function unavailable (%s); %d message(s) return to the queue after "
                                 "their visibility timeout", outcome.reason, len(records))
                return
            self.log.info("function unavailable (%s); retrying in %.2fs", outcome.reason, delay)
            await asyncio.sleep(delay)
        self.metrics.invoked.inc(len(records))
        self.metrics.observe_invoke(result.duration, outcome.kind, len(records))
        self.scaling.batch_done(full=len(records) >= self.batch_size)
        if outcome.kind == SUCCESS:
            await self._delete(records)
            return
        if outcome.kind == PARTIAL:
            failed = self._failed_in_order(records, outcome.failed_ids)
            self.metrics.failed_invoke.inc(len(failed))
            await self._delete([r for r in records if r.item_id not in failed])
            self.log.info("partial batch failure: %d of %d message(s) stay on the queue", len(failed), len(records))
            return
        assert outcome.kind == FUNCTION_ERROR
        self.metrics.failed_invoke.inc(len(records))
        self.metrics.invoke_errors.inc()
        if not self.report_failures:
            self.scaling.back_off()
            self._resize()
        self.log.warning("function error (%s); %d message(s) return after the visibility timeout",
                         outcome.reason, len(records))

    def _failed_in_order(self, records: list[Record], failed_ids: frozenset[Any]) -> set[Any]:
        """FIFO: after a failure in a group, the group's later messages must not be deleted either."""
        failed = set(failed_ids)
        if self.queue is not None and self.queue.fifo:
            broken: set[str | None] = set()
            for record in records:
                group = message_group(record)
                if record.item_id in failed:
                    broken.add(group)
                elif group in broken:
                    failed.add(record.item_id)
        return failed

    async def _delete(self, records: list[Record]) -> None:
        await self._batch_call(records, "delete_message_batch", {}, self.metrics.deleted)

    async def _release(self, records: list[Record]) -> None:
        if records:
            await self._batch_call(records, "change_message_visibility_batch", {"VisibilityTimeout": 0}, None)
            self.log.info("released %d gathered message(s) back to the queue", len(records))

    async def _batch_call(self, records: list[Record], operation: str, extra: dict[str, Any], counter: Any) -> None:
        """Delete or release in chunks of 10; entries that fail are retried once, then counted and logged."""
        assert self.queue is not None
        call = getattr(self._client, operation)
        for start in range(0, len(records), MAX_RECEIVE):
            pending = {str(i): r for i, r in enumerate(records[start:start + MAX_RECEIVE])}
            for attempt in range(3):
                entries = [{"Id": i, "ReceiptHandle": r.token, **extra} for i, r in pending.items()]
                try:
                    response = await call(QueueUrl=self.queue.url, Entries=entries)
                except (ClientError, BotoCoreError, OSError) as error:
                    self.log.warning("%s failed (attempt %d): %s", operation, attempt + 1, error)
                    await asyncio.sleep(BACKOFF_BASE * 2 ** attempt)
                    continue
                done = [e["Id"] for e in response.get("Successful") or []]
                if counter is not None:
                    counter.inc(len(done))
                for entry_id in done:
                    pending.pop(entry_id, None)
                if not pending:
                    break
                failures = {f["Id"]: f for f in response.get("Failed") or []}
                if all(f.get("SenderFault") for f in failures.values()):
                    break  # e.g. a receipt handle that expired: retrying cannot help
            if pending:
                self.metrics.commit_errors.inc(len(pending))
                self.log.error("%s: %d message(s) could not be settled and will be redelivered: %s",
                               operation, len(pending), ", ".join(r.item_id for r in pending.values()))


def scaling_for(mapping: MappingSettings, invoker_cap: int) -> ConcurrencyTarget:
    """Provisioned mode when the mapping has ProvisionedPollerConfig, else on-demand (SPEC 7).

    Either way the function target's own concurrency cap bounds the lanes."""
    cap = min(concurrency_ceiling(mapping.request), invoker_cap)
    provisioned = mapping.get("ProvisionedPollerConfig")
    if provisioned is None:
        return ConcurrencyTarget(ceiling=cap)
    return ConcurrencyTarget.provisioned(
        min_pollers=provisioned.get("MinimumPollers", SQS_DEFAULT_MINIMUM_POLLERS),
        max_pollers=provisioned.get("MaximumPollers", SQS_DEFAULT_MAXIMUM_POLLERS),
        cap=cap)


def _backoff(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter; a Retry-After from the target is a floor."""
    delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt))
    return max(delay, retry_after or 0.0)
