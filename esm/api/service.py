"""The control API as one part of the daemon: the mapping store, the manager and the listener.

The mapping store lives in the checkpoint store the daemon opened for the API
(`runtime.checkpoints`, closed by the daemon after `close`). `ControlApi.start` prepares it, adopts the config file's supervisors, starts the mappings the
store holds (in the background: they do not delay start-up), the listener and, for a shared store,
the loop that applies other replicas' changes. When the daemon's `stop` is set it stops the
listener (no change can arrive while mappings drain) and drains the API's mappings at the same
time as the daemon drains the config file's, so shutdown takes one `shutdown_timeout`, not two;
`close` waits for that.
"""

from __future__ import annotations

import asyncio
import logging

from esm.api.manager import MappingManager
from esm.api.server import ApiServer
from esm.checkpoints.mappings import mapping_store_for
from esm.config.settings import Config
from esm.invokers.base import Invoker
from esm.observability.metrics import Metrics
from esm.runtime import Runtime
from esm.supervisor import MappingSupervisor

log = logging.getLogger("esm.api")


class ControlApi:
    def __init__(self, config: Config, runtime: Runtime, invokers: dict[str, Invoker], metrics: Metrics,
                 supervisors: list[MappingSupervisor]):
        assert config.api is not None
        if runtime.checkpoints is None:
            raise RuntimeError("the control API needs the checkpoint store open (runtime.checkpoints)")
        self.store = mapping_store_for(runtime.checkpoints)
        self.manager = MappingManager(dict(config.functions), runtime, invokers, metrics, self.store,
                                      shutdown_timeout=config.shutdown_timeout, base_dir=config.base_dir)
        self.manager.adopt(supervisors)
        # Reads the credentials: fails early.
        self.server = ApiServer(config.api, self.manager, metrics, region_for=runtime.clients.region_for)
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._shutdown: asyncio.Task[None] | None = None

    async def start(self, stop: asyncio.Event) -> None:
        await self.store.open()
        await self.manager.load()
        await self.server.start()
        if self.store.shared:
            sync = asyncio.create_task(self.manager.sync_forever(self._stop), name="api/sync")
            sync.add_done_callback(_report_end)
            self._tasks.append(sync)
        self._tasks.append(asyncio.create_task(self._stop_with(stop), name="api/stop"))

    async def _stop_with(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._begin_shutdown()

    def _begin_shutdown(self) -> None:
        if self._shutdown is None:
            self._stop.set()
            self._shutdown = asyncio.create_task(self._drain(), name="api/shutdown")

    async def _drain(self) -> None:
        await self.server.stop()
        await self.manager.close()

    async def close(self) -> None:
        self._begin_shutdown()
        assert self._shutdown is not None
        await self._shutdown
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def _report_end(task: asyncio.Task[None]) -> None:
    """Replica sync stops only on an error that retrying cannot fix (esm.api.replica_sync.sync_forever)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("stopped applying other replicas' mapping changes: %s", task.exception(),
                  exc_info=task.exception())
