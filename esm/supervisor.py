"""One mapping's life: its state (behaviour §0), its source runner, its readiness.

The supervisor starts the source (retrying until it is reachable), waits for the target to
answer once, then runs the source until asked to stop. State moves Creating -> Enabled (or
Disabled when `Enabled: false`), and Disabling -> Disabled on shutdown; the `esm_mapping_state`
gauge always shows the current one.

A source that meets an error no retry mends (esm.core.contract.MappingStopped: refused
credentials, a queue that does not exist), while connecting or while running, stops this mapping
alone (behaviour §9.11): its state becomes Disabled, `stopped` keeps the error (the control API
answers its code as StateTransitionReason), the `esm_mapping_stopped` gauge names the code, an
error line says what happened, and its readiness checks are settled (a stopped mapping waits for
nothing; the other mappings keep the daemon ready). Its run then waits for the daemon's stop,
so one stopped mapping never ends the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from esm import registry
from esm.config.settings import MappingSettings
from esm.core.backoff import RECONNECT_BACKOFF
from esm.core.contract import STOP_REASONS, MappingStopped
from esm.errors import SourceUnavailable
from esm.invokers.base import Invoker
from esm.invokers.probe import probe_target
from esm.observability.health import Readiness
from esm.observability.metrics import MappingMetrics, Metrics
from esm.runtime import Runtime

log = logging.getLogger("esm.supervisor")


class MappingSupervisor:
    def __init__(self, mapping: MappingSettings, runtime: Runtime, invoker: Invoker, metrics: Metrics,
                 readiness: Readiness, initial_state: str = "Creating"):
        self.mapping = mapping
        self.readiness = readiness
        self.metrics: MappingMetrics = metrics.for_mapping(mapping.uuid, mapping.source)
        metrics.info.labels(mapping.uuid, mapping.source, mapping.name, mapping.function.name, mapping.source_id).set(1)
        self.state = ""
        # Creating for a new mapping; the control API (esm.api.lifecycle) starts one in Enabling or
        # Updating when it re-enables or replaces a mapping.
        self.set_state(initial_state)
        for code in STOP_REASONS:  # a mapping started again is no longer stopped
            with contextlib.suppress(KeyError):
                metrics.stopped.remove(*self.metrics.labels, code)
        self.runner: Any = _runner(mapping, runtime, invoker, self.metrics)
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        self.source_check = f"{mapping.name}/source"
        self.target_check = f"{mapping.name}/target"
        self.stopped: MappingStopped | None = None  # the error that stopped the mapping, if one did
        self._halted = asyncio.Event()  # set by `stop`: a stopped mapping's run returns then

    def set_state(self, state: str) -> None:
        self.state = state
        self.metrics.set_state(state)

    async def start(self) -> None:
        """Connect the source and hear from the target, retrying until both answer."""
        if not self.mapping.enabled:
            self.set_state("Disabled")
            return
        self.readiness.expect(self.source_check)
        self.readiness.expect(self.target_check)
        target = asyncio.ensure_future(self._reach_target())
        try:
            await self._connect_source()
            await target
        except MappingStopped as error:
            self._stop_for(error)
        finally:
            if not target.done():
                target.cancel()
                await asyncio.gather(target, return_exceptions=True)

    def _stop_for(self, error: MappingStopped) -> None:
        """The source said no retry mends what it met: this mapping stops, the others run on."""
        self.stopped = error
        self.set_state("Disabled")
        self.metrics.metrics.stopped.labels(*self.metrics.labels, error.reason).set(1)
        self.readiness.set(self.source_check, True, f"stopped: {error}")
        self.readiness.forget(self.target_check)
        self.log.error("mapping stopped (StateTransitionReason %s): %s", error.reason, error.detail)

    async def _connect_source(self) -> None:
        attempt = 0
        while True:
            try:
                await self.runner.connect()
                self.readiness.set(self.source_check, True)
                return
            except SourceUnavailable as error:
                self.readiness.set(self.source_check, False, str(error))
                attempt += 1
                delay = RECONNECT_BACKOFF.delay(attempt)
                self.log.warning("source not reachable yet, retrying in %.1fs: %s", delay, error)
                await asyncio.sleep(delay)

    async def _reach_target(self) -> None:
        attempt = 0
        while (problem := await probe_target(self.mapping.function)) is not None:
            self.readiness.set(self.target_check, False, problem)
            attempt += 1
            delay = RECONNECT_BACKOFF.delay(attempt)
            self.log.warning("function %s not answering yet, retrying in %.1fs: %s",
                             self.mapping.function.name, delay, problem)
            await asyncio.sleep(delay)
        self.readiness.set(self.target_check, True)

    def not_ready(self) -> list[str]:
        report = self.readiness.report()
        return [f"{name}: {report[name]['detail']}" for name in (self.source_check, self.target_check)
                if name in report and not report[name]["ready"]]

    async def run(self) -> None:
        if not self.mapping.enabled:
            return
        if self.stopped is None:
            self.set_state("Enabled")
            try:
                await self.runner.run()
                return
            except MappingStopped as error:
                self._stop_for(error)
        await self._halted.wait()  # stopped: nothing runs until the daemon (or the API) stops it

    def stop(self) -> None:
        self._halted.set()
        if self.mapping.enabled and self.stopped is None:
            self.set_state("Disabling")
        self.runner.stop()

    async def close(self) -> None:
        await self.runner.close()
        if self.mapping.enabled:
            self.set_state("Disabled")


def _runner(mapping: MappingSettings, runtime: Runtime, invoker: Invoker, metrics: MappingMetrics) -> Any:
    """The engine runner for the mapping's source: its mode (stream or queue) picks the runner."""
    source_class = registry.source(mapping.source)
    return registry.runner(source_class.mode.value)(mapping, source_class, runtime, invoker, metrics)
