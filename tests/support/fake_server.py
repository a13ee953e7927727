"""How a test's FAKE HTTP API listens: an aiohttp app on 127.0.0.1 and a free port, in the test's
event loop. Each fake (tests/support/*_fake.py) says which routes it serves; this owns the rest."""

from __future__ import annotations

import ssl

from aiohttp import web


class LoopbackApi:
    """Base of the fakes: `routes(app)` adds the fake's handlers; `start()` listens and sets `url`."""

    tls: ssl.SSLContext | None = None
    url: str = ""
    _runner: web.AppRunner | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    async def start(self):  # -> the fake itself, started
        app = web.Application()
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
