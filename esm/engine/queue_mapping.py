"""Runs one mapping of a queue source (esm.core.contract.QueueSource: SQS) on the shared engine:
a scaled pool of pollers.

A queue has no order to keep across its records (a queue with ordered groups, such as SQS FIFO,
keeps each group's order itself: it hands out no record of a group while an earlier one is in
flight), so the queue is served by a pool of pollers, each one batch in flight at a time: gather
(esm.engine.gather, the window from the first record, the 6 MB cap), invoke (the one invoke path;
throttles wait while the records are still held, `hold_seconds`, then they return to the queue),
decide (`Mode.QUEUE`: success settles; a partial batch response settles all but the failures; a
function error settles nothing, so the batch returns after the hold) and settle through the
source. The source's own scaling policy (`scaling`) sizes the pool (behaviour §7); pollers above
its target retire, the newest first, once they hold nothing. On shutdown, records gathered but
not invoked are released (back at once); a batch being invoked finishes and settles within the
shutdown deadline.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from typing import Any

from esm.aio import Stopped, unless_stopped
from esm.core.batching import BatchPolicy
from esm.config.pipeline import PipelineSettings
from esm.config.settings import MappingSettings
from esm.core.decide import Mode, Settle, decide
from esm.engine.gather import gather
from esm.engine.invoke import Abandoned
from esm.engine.mapping_context import MappingContext
from esm.invokers.base import Invoker
from esm.observability.metrics import MappingMetrics
from esm.core.contract import QueueRecordFormat, QueueSource
from esm.core.outcomes import FUNCTION_ERROR, PARTIAL
from esm.core.records import Disposition, Record

log = logging.getLogger("esm.engine")

SCALING_TICK = 1.0


class QueueMapping:
    def __init__(self, mapping: MappingSettings, source_class: Any, runtime: Any, invoker: Invoker,
                 metrics: MappingMetrics):
        self.mapping = mapping
        self.invoker = invoker
        self.metrics = metrics
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        self.settings = PipelineSettings.read(mapping, default_batch_size=source_class.default_batch_size)
        self.source: QueueSource = source_class(mapping, self.settings, runtime, metrics, None)
        self.scaling = self.source.scaling(invoker.max_concurrency)
        self.context: MappingContext[QueueRecordFormat] | None = None
        self._stopping = asyncio.Event()
        self._pollers: dict[int, asyncio.Task[None]] = {}
        self._next_poller = 0
        self._retire_from: float = math.inf  # pollers with this id or a higher one are surplus

    # -- what the supervisor calls -----------------------------------------------------------
    async def connect(self) -> None:
        await self.source.connect()
        if self.context is None:
            self.context = MappingContext(settings=self.settings, format=self.source.format, invoker=self.invoker,
                                           destination=None, metrics=self.metrics,
                                           function_name=self.mapping.function.name, log=self.log, mode=Mode.QUEUE,
                                           group_of=self.source.format.group_of, on_throttle=self._throttled)

    async def run(self) -> None:
        assert self.context is not None, "connect() first"
        scaler = asyncio.create_task(self._scale(), name=f"{self.mapping.name}/scaler")
        try:
            self._resize()
            while self._pollers:
                await asyncio.wait(list(self._pollers.values()), return_when=asyncio.FIRST_COMPLETED)
                for pid, task in list(self._pollers.items()):
                    if task.done():
                        del self._pollers[pid]
                        if not task.cancelled() and task.exception() is not None:
                            raise task.exception()  # type: ignore[misc]
                if not self._stopping.is_set():
                    self._resize()
                self._report_pollers()
        finally:
            scaler.cancel()
            for task in self._pollers.values():
                task.cancel()
            await asyncio.gather(scaler, *self._pollers.values(), return_exceptions=True)
            self._pollers.clear()

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        await self.source.close()

    # -- scaling -------------------------------------------------------------------------------
    async def _scale(self) -> None:
        while not self._stopping.is_set():
            await asyncio.sleep(SCALING_TICK)
            self.scaling.tick()
            self._resize()

    def _throttled(self) -> None:
        self.scaling.back_off()
        self._resize()

    def _resize(self) -> None:
        while len(self._pollers) < self.scaling.target and not self._stopping.is_set():
            pid = self._next_poller
            self._next_poller += 1
            self._pollers[pid] = asyncio.create_task(self._poller(pid), name=f"{self.mapping.name}/poller-{pid}")
        # Pollers beyond the target retire, the newest first: ids only grow and the dict keeps them in
        # order, so the surplus are those from the target-th on (worked out once per change).
        self._retire_from = next(itertools.islice(self._pollers, self.scaling.target, None), math.inf)
        self._report_pollers()

    def _report_pollers(self) -> None:
        """ProvisionedPollers (behaviour §6): the pollers the running lanes stand for, not the target."""
        lanes = sum(not task.done() for task in self._pollers.values())
        if self.context is not None:
            self.context.events.pollers(self.scaling.pollers(lanes))

    def _surplus(self, pid: int) -> bool:
        return pid >= self._retire_from

    # -- one poller ----------------------------------------------------------------------------
    async def _poller(self, pid: int) -> None:
        """Gather a batch, then process it while the next one is gathered (the next receive is in
        flight while this batch is invoked and deleted: its round trips overlap them). Each batch is
        settled only after its own invoke answered, as one at a time would; two gathers alternate
        between their own policy and pending records, so the next batch never takes this one's."""
        context = self.context
        assert context is not None
        gatherers = [self._gatherer(pid), self._gatherer(pid)]
        turn = 0
        ahead: asyncio.Future[list[Record]] | None = None  # the next batch being gathered
        try:
            while not self._stopping.is_set() and not self._surplus(pid):
                if ahead is None:
                    ahead = asyncio.ensure_future(gatherers[turn].next())
                try:
                    records = await asyncio.shield(ahead)  # a cancelled poller still collects it below
                except Stopped:
                    break
                ahead = None
                turn = 1 - turn
                if not records:
                    continue
                if not self._stopping.is_set() and not self._surplus(pid):
                    ahead = asyncio.ensure_future(gatherers[turn].next())
                await self._process(records)
        finally:
            leftover: list[Record] = []
            if ahead is not None:  # a receive under way is never abandoned: what it brings goes back
                try:
                    leftover += await ahead
                except (Stopped, asyncio.CancelledError):
                    pass
            for gatherer in gatherers:
                leftover += gatherer.leftover()
            if leftover:  # gathered but never invoked: visible again at once, for another consumer
                await self._settle(leftover, Disposition.RELEASED)

    def _gatherer(self, pid: int) -> "_Gatherer":
        return _Gatherer(self, pid, BatchPolicy(self.settings.batch_size, self.settings.window))

    async def _pull(self, pid: int, room: int, wait: float | None, *, holding: bool) -> list[Record]:
        context = self.context
        assert context is not None
        in_flight = context.in_flight
        deadline = None if wait is None else time.monotonic() + wait
        while True:
            if self._stopping.is_set():
                raise Stopped()
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return []  # the window is over: invoke what is held, no further receive
            if holding and not in_flight.has_room():
                return []  # invoke what this poller holds rather than wait on the others
            while not in_flight.has_room():  # checked again on waking: others may have woken first
                await unless_stopped(in_flight.room(), self._stopping)
            records = await self.source.receive(room, remaining, in_flight, self._stopping)
            if not records:
                self.scaling.poll_empty()
                if not holding and self._surplus(pid):
                    raise Stopped()  # an idle queue never ends a gather: scaling down happens here
                continue  # the window is still open (checked above): poll again
            self.scaling.polled(len(records))
            kept, dropped = context.keep(records)
            if dropped:
                await self.source.settle([(r.token, Disposition.FILTERED) for r in dropped])
            if kept:
                in_flight.hold(sum(r.size for r in kept))
                return kept

    async def _process(self, records: list[Record]) -> None:
        context = self.context
        assert context is not None
        oldest = min(r.arrived_at for r in records)
        give_up_at = oldest + self.source.hold_seconds - 1  # keep retrying while the records are ours
        try:
            answer = await context.invoke_path.invoke(records, self._send, self._stopping, give_up_at=give_up_at)
        except Abandoned:
            # Stopping: hand them back now; out of time: they return when their hold runs out.
            await self._settle(records, Disposition.RELEASED if self._stopping.is_set() else Disposition.FAILED)
            return
        except BaseException:
            context.in_flight.release(sum(r.size for r in records))
            raise
        outcome = answer.outcome
        self.scaling.batch_done(full=len(records) >= self.settings.batch_size)
        decision = decide(records, outcome, context.rules, 0)
        assert isinstance(decision, Settle)  # a queue never retries in place: failures go back to the source
        succeeded, failed = decision.succeeded, decision.failed
        events = context.events
        if outcome.kind == PARTIAL:
            events.items_failed(len(failed))
            self.log.info("partial batch failure: %d of %d message(s) stay on the queue", len(failed), len(records))
        elif outcome.kind == FUNCTION_ERROR:
            events.invoke_failed(len(records), f"{outcome.reason}; the messages return after the visibility timeout")
            if not self.settings.report_item_failures:
                self.scaling.back_off()
                self._resize()
        await self._settle(succeeded, Disposition.SUCCEEDED)
        await self._settle(failed, Disposition.FAILED)

    async def _send(self, records: Any) -> Any:
        assert self.context is not None
        return await self.invoker.invoke(self.context.format.payload(records))

    async def _settle(self, records: list[Record], disposition: Disposition) -> None:
        if not records:
            return
        try:
            await self.source.settle([(r.token, disposition) for r in records])
        finally:
            assert self.context is not None
            self.context.in_flight.release(sum(r.size for r in records))


class _Gatherer:
    """One of a poller's two gathers: its own BatchPolicy and records received but not yet batched."""

    def __init__(self, mapping: QueueMapping, pid: int, policy: BatchPolicy):
        self.mapping = mapping
        self.pid = pid
        self.policy = policy
        self.pending: deque[Record] = deque()

    async def pull(self, room: int, wait: float | None) -> list[Record]:
        return await self.mapping._pull(self.pid, room, wait, holding=bool(self.policy.records or self.pending))

    async def next(self) -> list[Record]:
        records, _ = await gather(self.policy, self.pending, self.pull)
        return records

    def leftover(self) -> list[Record]:
        return self.policy.take() + list(self.pending)
