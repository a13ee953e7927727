"""The one HTTP listener: /metrics (Prometheus), /healthz (alive) and /readyz (ready).

/healthz answers 200 while the process and its event loop run. /readyz answers 200 only when
every readiness check is true: each enabled mapping has its source connected and its target
answered once (docs/design.md "The command line"); otherwise 503 with what is still missing. The
listener serves nothing else.
"""

from __future__ import annotations

import json
import time

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from esm.observability.metrics import Metrics


class Readiness:
    """Named checks, each false until its owner reports it true."""

    def __init__(self) -> None:
        self._checks: dict[str, tuple[bool, str]] = {}

    def expect(self, name: str, detail: str = "waiting") -> None:
        self._checks.setdefault(name, (False, detail))

    def set(self, name: str, ok: bool, detail: str = "") -> None:
        self._checks[name] = (ok, detail or ("ok" if ok else "not ready"))

    def forget(self, name: str) -> None:
        self._checks.pop(name, None)

    @property
    def ready(self) -> bool:
        return all(ok for ok, _ in self._checks.values())

    def report(self) -> dict[str, dict[str, object]]:
        return {name: {"ready": ok, "detail": detail} for name, (ok, detail) in sorted(self._checks.items())}


async def start_site(app: web.Application, host: str, port: int) -> tuple[web.AppRunner, int]:
    """Serve `app` on host:port; returns its runner (`cleanup()` stops it) and the port it got
    (port 0 asks the OS for a free one). The control API's listener (esm.api.server) uses it too."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    server = site._server  # aiohttp names the bound port nowhere public
    if server is not None and server.sockets:
        port = server.sockets[0].getsockname()[1]
    return runner, port


class HealthServer:
    def __init__(self, metrics: Metrics, readiness: Readiness, host: str, port: int):
        self.metrics = metrics
        self.readiness = readiness
        self.host, self.port = host, port
        self.started_at = time.time()
        self._runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        return app

    async def start(self) -> None:
        self._runner, self.port = await start_site(self.app(), self.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _metrics(self, request: web.Request) -> web.Response:
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "alive", "uptime_seconds": round(time.time() - self.started_at, 1)})

    async def _readyz(self, request: web.Request) -> web.Response:
        ready = self.readiness.ready
        return web.Response(
            status=200 if ready else 503,
            text=json.dumps({"ready": ready, "checks": self.readiness.report()}),
            content_type="application/json",
        )
