"""The control API as one part of the daemon: the mapping store, the manager and the listener.

`ControlApi.start` opens the store, adopts the config file's supervisors, starts the mappings the
store holds (in the background: they do not delay start-up), the listener and, for a shared store,
the loop that applies other replicas' changes. `close` stops the listener first (no change can
arrive while mappings drain), then drains the API's mappings and closes the store.
"""

from __future__ import annotations

import asyncio
import contextlib

from esm.api.manager import MappingManager
from esm.api.server import ApiServer
from esm.checkpoints.mappings import make_mapping_store
from esm.invokers.base import Invoker
from esm.metrics import Metrics
from esm.settings import Config
from esm.sources import Runtime
from esm.supervisor import MappingSupervisor


class ControlApi:
    def __init__(self, config: Config, runtime: Runtime, invokers: dict[str, Invoker], metrics: Metrics,
                 supervisors: list[MappingSupervisor]):
        assert config.api is not None
        self.store = make_mapping_store(config.checkpoints, runtime.clients)
        self.manager = MappingManager(dict(config.functions), runtime, invokers, metrics, self.store,
                                      shutdown_timeout=config.shutdown_timeout, base_dir=config.base_dir)
        self.manager.adopt(supervisors)
        self.server = ApiServer(config.api, self.manager, metrics)  # reads the credentials: fails early
        self._stop = asyncio.Event()
        self._sync: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.store.open()
        await self.manager.load()
        await self.server.start()
        if self.store.shared:
            self._sync = asyncio.create_task(self.manager.sync_forever(self._stop), name="api/sync")

    async def close(self) -> None:
        self._stop.set()
        await self.server.stop()
        if self._sync is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._sync
        await self.manager.close()
        await self.store.close()
