"""A small client for toxiproxy's HTTP API (TOXIPROXY_URL, started by scripts/backends).

Toxiproxy is a real TCP proxy: the fault tests put one proxy between esm and each thing it talks
to (ElasticMQ, kinesis-mock, the Kafka broker, moto, the function) and point esm's config at the
proxy's listen address. Faults are toxics on a proxy (latency, reset_peer, timeout, bandwidth,
limit_data, slow_close) or the proxy disabled (the backend is down: connections are refused and
open ones closed) and enabled again.

    async with Toxiproxy.from_env() as toxi:
        proxy = await toxi.create("sqs", upstream="127.0.0.1:9324")   # listens on a free port
        await proxy.add("latency", latency=300, jitter=100)
        async with proxy.down():                                       # backend down, then back
            ...
"""

from __future__ import annotations

import contextlib
import os
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator
from urllib.parse import urlsplit

import aiohttp

UPSTREAM, DOWNSTREAM = "upstream", "downstream"  # client -> server, server -> client


class ToxiproxyError(Exception):
    pass


def host_port(url_or_address: str) -> str:
    """'http://127.0.0.1:9324/x' or '127.0.0.1:9324' -> '127.0.0.1:9324'."""
    if "://" in url_or_address:
        parts = urlsplit(url_or_address)
        return f"{parts.hostname}:{parts.port}"
    return url_or_address


class Toxiproxy:
    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_env(cls) -> "Toxiproxy":
        return cls(os.environ["TOXIPROXY_URL"])

    async def __aenter__(self) -> "Toxiproxy":
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, body: Any = None) -> Any:
        assert self._session is not None, "use `async with Toxiproxy(...)`"
        async with self._session.request(method, self.url + path, json=body) as response:
            text = await response.text()
            if response.status >= 300:
                raise ToxiproxyError(f"{method} {path} -> {response.status}: {text}")
            return await response.json(content_type=None) if text.strip() else None

    async def version(self) -> str:
        assert self._session is not None
        async with self._session.get(self.url + "/version") as response:
            return await response.text()

    async def create(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> "Proxy":
        """A proxy to `upstream` (host:port or a URL); listen 127.0.0.1:0 takes a free port."""
        name = f"{name}-{uuid.uuid4().hex[:8]}"  # unique: a crashed test's leftovers never collide
        data = await self.request("POST", "/proxies", {"name": name, "listen": listen,
                                                       "upstream": host_port(upstream), "enabled": True})
        return Proxy(self, data["name"], data["listen"], data["upstream"])

    async def delete(self, name: str) -> None:
        with contextlib.suppress(ToxiproxyError):  # already gone
            await self.request("DELETE", f"/proxies/{name}")

    @contextlib.asynccontextmanager
    async def proxy(self, name: str, upstream: str, listen: str = "127.0.0.1:0") -> AsyncIterator["Proxy"]:
        """A proxy for the duration of a block, deleted afterwards (its connections close)."""
        proxy = await self.create(name, upstream, listen)
        try:
            yield proxy
        finally:
            await self.delete(proxy.name)


@dataclass
class Proxy:
    client: Toxiproxy
    name: str
    listen: str
    upstream: str

    @property
    def address(self) -> str:
        return self.listen

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    def url(self, path: str = "") -> str:
        return f"http://{self.listen}{path}"

    # -- toxics -------------------------------------------------------------------------------
    async def add(self, kind: str, *, stream: str = DOWNSTREAM, toxicity: float = 1.0, name: str | None = None,
                  **attributes: Any) -> str:
        """Add a toxic; returns its name. `kind`: latency (latency, jitter ms), reset_peer (timeout ms:
        a TCP RST after that long), timeout (timeout ms: data stops, closed after that long; 0 never),
        bandwidth (rate KB/s), slow_close (delay ms), limit_data (bytes: closed after that many)."""
        name = name or f"{kind}-{stream}-{uuid.uuid4().hex[:6]}"
        await self.client.request("POST", f"/proxies/{self.name}/toxics", {
            "name": name, "type": kind, "stream": stream, "toxicity": toxicity, "attributes": attributes})
        return name

    async def remove(self, toxic: str) -> None:
        await self.client.request("DELETE", f"/proxies/{self.name}/toxics/{toxic}")

    async def clear(self) -> None:
        """Remove every toxic."""
        data = await self.client.request("GET", f"/proxies/{self.name}")
        for toxic in data.get("toxics") or []:
            await self.remove(toxic["name"])

    @contextlib.asynccontextmanager
    async def toxic(self, kind: str, **kwargs: Any) -> AsyncIterator[str]:
        name = await self.add(kind, **kwargs)
        try:
            yield name
        finally:
            await self.remove(name)

    async def latency(self, ms: int, jitter: int = 0, **kwargs: Any) -> str:
        return await self.add("latency", latency=ms, jitter=jitter, **kwargs)

    async def reset_peer(self, after_ms: int = 0, **kwargs: Any) -> str:
        return await self.add("reset_peer", timeout=after_ms, **kwargs)

    async def timeout(self, ms: int = 0, **kwargs: Any) -> str:
        return await self.add("timeout", timeout=ms, **kwargs)

    async def bandwidth(self, kb_per_second: int, **kwargs: Any) -> str:
        return await self.add("bandwidth", rate=kb_per_second, **kwargs)

    async def limit_data(self, size: int, **kwargs: Any) -> str:
        return await self.add("limit_data", bytes=size, **kwargs)

    # -- up and down ---------------------------------------------------------------------------
    async def disable(self) -> None:
        """The backend is down: the listener closes (new connections are refused), open ones drop."""
        await self.client.request("POST", f"/proxies/{self.name}", {"enabled": False})

    async def enable(self) -> None:
        await self.client.request("POST", f"/proxies/{self.name}", {"enabled": True})

    @contextlib.asynccontextmanager
    async def down(self) -> AsyncIterator[None]:
        await self.disable()
        try:
            yield
        finally:
            await self.enable()
