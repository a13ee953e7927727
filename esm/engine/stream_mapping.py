"""Runs one mapping of a stream source (Kinesis, DynamoDB Streams, Kafka) on the shared engine.

The source discovers its units and reports them here (`assigned`, `revoked`, `stop`); this class
starts one UnitWorker per unit, stops workers with the reason the source gives, and replaces a
worker that died of an unexpected error with a new one reading from the unit's checkpoint, so a
unit never stalls silently. It is what the supervisor runs: `connect`, `run` until `stop`,
`close`. The supervisor's shutdown deadline bounds the drain: `run` stops every worker (a batch in
flight finishes and settles, nothing more is read) and the source closes each unit (SHUTDOWN).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Hashable, Sequence

from esm.config.pipeline import PipelineSettings
from esm.config.settings import MappingSettings
from esm.engine.mapping_context import MappingContext
from esm.engine.units import UnitWorker
from esm.identity import execution_role_arn
from esm.invokers.base import Invoker
from esm.observability.metrics import MappingMetrics
from esm.core.contract import Source, StopReason, StreamRecordFormat

log = logging.getLogger("esm.engine")

RESTART_DELAY = 1.0


class StreamMapping:
    def __init__(self, mapping: MappingSettings, source_class: Any, runtime: Any, invoker: Invoker,
                 metrics: MappingMetrics):
        self.mapping = mapping
        self.invoker = invoker
        self.metrics = metrics
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        self.settings = PipelineSettings.read(mapping, retry_cap_with_destination=source_class.retry_cap_with_destination,
                                              default_batch_size=source_class.default_batch_size)
        self.source: Source = source_class(mapping, self.settings, runtime, metrics, self._identity)
        self.context: MappingContext[StreamRecordFormat] | None = None
        self.workers: dict[Hashable, UnitWorker] = {}
        self._stopping = asyncio.Event()
        self._restarts: set[asyncio.Task[None]] = set()

    async def _identity(self) -> str:
        """The execution role ARN records name as invokeIdentityArn (esm.identity)."""
        return await execution_role_arn(self.mapping.function, self.invoker, self.source.account)

    # -- what the supervisor calls -----------------------------------------------------------
    async def connect(self) -> None:
        await self.source.connect()
        if self.context is None:
            target = self.settings.destination
            destination = await self.source.destination(target) if target else None
            self.context = MappingContext(settings=self.settings, format=self.source.format, invoker=self.invoker,
                                          destination=destination, metrics=self.metrics,
                                          function_name=self.mapping.function.name, log=self.log,
                                          slots=getattr(self.source, "in_flight_slots", None))

    async def run(self) -> None:
        assert self.context is not None, "connect() first"
        discovery = asyncio.create_task(self.source.discover(self, self._stopping), name=f"{self.mapping.name}/units")
        stopper = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({discovery, stopper}, return_when=asyncio.FIRST_COMPLETED)
            if discovery.done() and not discovery.cancelled() and discovery.exception() is not None:
                raise discovery.exception()  # type: ignore[misc]
        finally:
            stopper.cancel()
            self._stopping.set()
            for task in self._restarts:
                task.cancel()
            await self._stop_workers(list(self.workers.values()), StopReason.SHUTDOWN, drain=None)
            if not discovery.done():
                # Discovery ends on its own once stopping is set (it may be closing a unit).
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(discovery), 5.0)
                discovery.cancel()
            await asyncio.gather(discovery, return_exceptions=True)

    def stop(self) -> None:
        self._stopping.set()

    async def close(self) -> None:
        if self.workers:  # run() was cancelled before it could stop them
            await self._stop_workers(list(self.workers.values()), StopReason.SHUTDOWN, drain=0)
        await self.source.close()
        if self.context is not None and self.context.dead_letters is not None:
            await self.context.dead_letters.close()

    # -- Units: what the source calls ---------------------------------------------------------
    def assigned(self, unit: Hashable, key: str) -> None:
        if self._stopping.is_set() or unit in self.workers:
            return
        assert self.context is not None
        worker = UnitWorker(unit, key, self.source, self.context)
        worker.task = asyncio.create_task(worker.run(), name=f"{self.mapping.name}/{key}")
        worker.task.add_done_callback(lambda task, w=worker: self._ended(w))
        self.workers[unit] = worker

    def stop_unit(self, unit: Hashable, reason: StopReason) -> None:
        worker = self.workers.get(unit)
        if worker is not None:
            worker.stop(reason)

    async def revoked(self, units: Sequence[Hashable], reason: StopReason, drain: float | None) -> None:
        await self._stop_workers([self.workers[u] for u in units if u in self.workers], reason, drain)

    def running(self, unit: Hashable) -> bool:
        return unit in self.workers

    # -- workers ----------------------------------------------------------------------------------
    def _ended(self, worker: UnitWorker) -> None:
        if self.workers.get(worker.unit) is not worker:
            return
        del self.workers[worker.unit]
        task = worker.task
        error = None if task is None or task.cancelled() else task.exception()
        if error is not None:
            self.log.error("worker of %s failed: %r", worker.unit_key, error, exc_info=error)
        if worker.reason is StopReason.FAILED and not self._stopping.is_set():
            restart = asyncio.create_task(self._restart(worker), name=f"{self.mapping.name}/{worker.unit_key}/restart")
            self._restarts.add(restart)
            restart.add_done_callback(self._restarts.discard)

    async def _restart(self, worker: UnitWorker) -> None:
        """A worker that died of an unexpected error is replaced by one reading from the checkpoint."""
        await asyncio.sleep(RESTART_DELAY)
        if not self._stopping.is_set() and self.source.still_assigned(worker.unit):
            self.log.error("worker of %s ended unexpectedly; restarting it from its checkpoint", worker.unit_key)
            self.assigned(worker.unit, worker.unit_key)

    async def _stop_workers(self, workers: list[UnitWorker], reason: StopReason, drain: float | None) -> None:
        for worker in workers:
            worker.stop(reason)
        tasks = [w.task for w in workers if w.task is not None and not w.task.done()]
        if not tasks:
            return
        _, late = await asyncio.wait(tasks, timeout=drain)
        if late:
            self.log.warning("%s: abandoned %d in-flight batch(es) after %.1fs (not acknowledged; they will be "
                             "read again)", reason.value, len(late), drain or 0.0)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
