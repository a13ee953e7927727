"""One mapping's life: its state (behaviour §0), its source runner, its readiness.

The supervisor starts the source (retrying until it is reachable), waits for the target to
answer once, then runs the source until asked to stop. State moves Creating -> Enabled (or
Disabled when `Enabled: false`), and Disabling -> Disabled on shutdown; the `esm_mapping_state`
gauge always shows the current one.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from esm import registry
from esm.config.settings import MappingSettings
from esm.core.backoff import RECONNECT_BACKOFF
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
        self.runner: Any = _runner(mapping, runtime, invoker, self.metrics)
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        self.source_check = f"{mapping.name}/source"
        self.target_check = f"{mapping.name}/target"

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
        await asyncio.gather(self._connect_source(), self._reach_target())

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
        self.set_state("Enabled")
        await self.runner.run()

    def stop(self) -> None:
        if self.mapping.enabled:
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
