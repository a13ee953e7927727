"""The run-time set of API mappings, {UUID: entry}, and each mapping's supervisor through its
states (behaviour §0). Every change is applied in the background; the API answers at once:

- create: Creating -> Enabled (or Disabled);
- disable: Disabling -> Disabled: polling stops, in-flight batches finish and settle, gathered
  records go back (the source's own `stop`), checkpoints and commits stay where they are;
- enable: Enabling -> Enabled: a new supervisor resumes from those checkpoints;
- update: Updating -> the prior state: the old supervisor drains as above, one with the new
  settings starts, so the new settings apply from the next batch and no record is lost;
- delete: Deleting -> gone: drained like a disable, then forgotten (checkpoints are left alone).

What may change and what is stored is decided before (esm.api.manager); this module only runs it.
Once `close` began, no change starts a supervisor. Each start (create, update, enable, a replica's
change) runs the safety checks on the new settings in the background (esm.safety: logged and
exported as esm_config_warnings); a delete clears the mapping's warnings.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Coroutine

from esm import safety
from esm.api.entry import TRANSITIONAL, Entry
from esm.config.settings import MappingSettings
from esm.invokers.base import Invoker
from esm.observability.health import Readiness
from esm.observability.metrics import Metrics
from esm.runtime import Runtime
from esm.supervisor import MappingSupervisor

log = logging.getLogger("esm.api")


class Lifecycle:
    def __init__(self, runtime: Runtime, invokers: dict[str, Invoker], metrics: Metrics, *,
                 shutdown_timeout: float):
        self.runtime = runtime
        self.invokers = invokers
        self.metrics = metrics
        self.shutdown_timeout = shutdown_timeout
        self.entries: dict[str, Entry] = {}
        self.closing = False  # once set, no change starts a supervisor
        self._background: set[asyncio.Task[None]] = set()
        self._reviews: dict[str, asyncio.Task[None]] = {}  # the safety checks under way, by UUID
        # API mappings do not gate /readyz: a mapping whose queue does not exist yet must not take
        # the replica (and with it the API that could fix the mapping) out of its Service.
        self._readiness = Readiness()

    # ------------------------------------------------------------------ the changes

    def create(self, entry: Entry) -> None:
        """A new mapping: Creating, then Enabled (its supervisor's own states) or Disabled."""
        self.entries[entry.uuid] = entry
        self.start(entry, "Creating")  # created disabled: answered Disabled at once, as AWS does

    def start(self, entry: Entry, initial_state: str) -> None:
        """A new supervisor for `entry` (or none if disabled), started and run in the background;
        none at all once shutting down (a change that finishes its drain then leaves it stopped)."""
        if self.closing:
            entry.supervisor = None
            return
        self._review(entry)
        if not entry.settings.enabled:
            entry.supervisor = None
            settings = entry.settings  # no supervisor to report it: esm_mapping_state and _info say so here
            self.metrics.for_mapping(settings.uuid, settings.source).set_state("Disabled")
            self.metrics.info.labels(settings.uuid, settings.source, settings.name, settings.function.name,
                                     settings.source_id).set(1)
            return
        supervisor = MappingSupervisor(entry.settings, self.runtime, self.invokers[entry.settings.function.name],
                                       self.metrics, self._readiness, initial_state=initial_state)
        entry.supervisor = supervisor
        entry.problem = None
        entry.task = asyncio.create_task(self._run(entry, supervisor), name=f"{entry.settings.name}/api-run")

    async def _run(self, entry: Entry, supervisor: MappingSupervisor) -> None:
        try:
            await supervisor.start()
            await supervisor.run()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - one mapping failing must not stop the others
            log.exception("mapping %s stopped: %s", entry.uuid, error, extra={"mapping": entry.settings.name})
            entry.problem = f"PROBLEM: {error}"
            entry.reason = f"PROBLEM: {error}"
            if entry.supervisor is supervisor:
                supervisor.set_state("Disabled")

    def change(self, entry: Entry, settings: MappingSettings, document: dict[str, Any]) -> None:
        """Apply the stored `document` (new settings): the old supervisor drains, a new one starts."""
        was_enabled = entry.supervisor is not None
        transition = ("Disabling" if was_enabled and not settings.enabled else
                      "Enabling" if settings.enabled and not was_enabled else "Updating")
        entry.transition = transition
        entry.revision = document.get("Revision", entry.revision)
        entry.last_modified = document.get("LastModified", entry.last_modified)
        entry.reason = None
        entry.problem = None
        entry.settings = settings  # what the API reports at once; the old supervisor keeps its own

        async def apply() -> None:
            try:
                await self.drain(entry, final_state=None)
                self.start(entry, transition)
            finally:
                entry.transition = None

        self._spawn(apply(), f"{settings.name}/{transition.lower()}")

    def delete(self, entry: Entry) -> None:
        entry.transition = "Deleting"

        async def apply() -> None:
            try:
                await self.drain(entry, final_state="Deleting")
            finally:
                self.entries.pop(entry.uuid, None)
                self.metrics.forget_mapping((entry.settings.uuid, entry.settings.source))
                self._forget_review(entry)
                log.info("mapping %s deleted", entry.uuid, extra={"mapping": entry.settings.name})

        self._spawn(apply(), f"{entry.settings.name}/deleting")

    # ------------------------------------------------------------------ safety checks

    def _review(self, entry: Entry) -> None:
        """The safety checks on the settings being started, replacing any under way for the mapping
        (a later change cancels them: what is reported is always about the latest settings)."""
        if self.runtime is None:
            return
        settings = entry.settings

        async def review() -> None:
            [(_, facts, warnings)] = await safety.review([settings], self.runtime.clients)
            for what in facts.unread:
                log.debug("safety checks: %s not read for %s", what, settings.name, extra={"mapping": settings.name})
            if self.entries.get(entry.uuid) is entry and not self.closing:
                safety.report(settings, warnings, self.metrics)

        def finished(task: asyncio.Task[None]) -> None:
            if self._reviews.get(entry.uuid) is task:
                del self._reviews[entry.uuid]

        self._cancel_review(entry.uuid)
        task = asyncio.create_task(review(), name=f"{settings.name}/safety")
        self._reviews[entry.uuid] = task
        task.add_done_callback(finished)

    def _cancel_review(self, uuid: str) -> None:
        task = self._reviews.pop(uuid, None)
        if task is not None:
            task.cancel()

    def _forget_review(self, entry: Entry) -> None:
        """A deleted mapping: no review reports for it any more, its esm_config_warnings series go."""
        self._cancel_review(entry.uuid)
        safety.forget(entry.settings, self.metrics)

    # ------------------------------------------------------------------ stopping

    async def drain(self, entry: Entry, final_state: str | None, timeout: float | None = None) -> None:
        """Stop the supervisor: in-flight batches finish and settle within `timeout` (by default
        the shutdown timeout)."""
        timeout = self.shutdown_timeout if timeout is None else timeout
        supervisor, task = entry.supervisor, entry.task
        entry.task = None
        if supervisor is None:
            return
        if task is not None:
            if supervisor.state in TRANSITIONAL:
                task.cancel()  # still connecting: nothing was read, nothing is in flight
            else:
                supervisor.stop()
            done, late = await asyncio.wait({task}, timeout=timeout)
            if late:
                log.warning("mapping %s: in-flight batches did not finish in %.0fs, cancelled (their records "
                            "are not acknowledged and come back)", entry.uuid, timeout)
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await supervisor.close()
        entry.last_result = entry.processing_result
        entry.supervisor = None
        if final_state:
            supervisor.set_state(final_state)

    async def close(self) -> None:
        """Shutdown: every API mapping drains, then closes, all within one shutdown timeout.

        Changes under way finish their drain first (from now on none starts a supervisor), then
        the remaining mappings drain in what is left of the same deadline."""
        self.closing = True
        for uuid in list(self._reviews):  # warnings are for a running daemon: not worth a wait
            self._cancel_review(uuid)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_timeout
        while self._background:  # again if a request or sync under way when closing began spawned one
            _, late = await asyncio.wait(set(self._background), timeout=max(0.0, deadline - loop.time()))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        entries = [e for e in self.entries.values() if e.origin == "api"]
        left = max(0.0, deadline - loop.time())
        await asyncio.gather(*(self.drain(e, final_state=None, timeout=left) for e in entries),
                             return_exceptions=True)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

