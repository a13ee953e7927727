"""How a test's HTTP server listens: an aiohttp app on 127.0.0.1 and a free port, in the test's
event loop. Each server (the FAKE APIs in tests/support/*_fake.py, the functions of the fault
scenarios and of the nemesis) says which routes it serves; this owns the rest."""

from __future__ import annotations

import ssl

from aiohttp import web


class LoopbackApi:
    """Base of the servers: `routes(app)` adds the server's handlers; `start()` listens and sets `url`."""

    tls: ssl.SSLContext | None = None
    max_body = 16 * 1024 * 1024  # a function's request: a whole batch, up to Lambda's 6 MB payload and more
    url: str = ""
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self):  # -> the fake itself, started
        app = web.Application(client_max_size=self.max_body)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, ssl_context=self.tls)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
