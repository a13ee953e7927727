"""The fault scenarios' side for Amazon MQ for ActiveMQ (tests/fault/sides.py's shape): a queue of
the test broker reached through a toxiproxy proxy of its own (the scenario can take the broker
away from esm without stopping it), messages produced straight to the broker, dead letters read
back from ActiveMQ.DLQ, and drained once the broker's statistics show nothing waiting or held."""

from __future__ import annotations

import contextlib
import os
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp

from tests.fault.harness import Proxies
from tests.support import activemq
from tests.support.ledger import Ledger, identity, payload
from tests.support.toxiproxy import Proxy, Toxiproxy


class ActiveMqSide:
    source = "activemq"
    ordered = False

    def __init__(self) -> None:
        self.queue = activemq.queue_name("fault")
        self.secret = ""
        self.proxy: Proxy | None = None
        self._client: Any = None
        self._http: aiohttp.ClientSession | None = None

    @contextlib.asynccontextmanager
    async def made(self) -> AsyncIterator["ActiveMqSide"]:
        upstream = os.environ["ACTIVEMQ_STOMP_URL"].removeprefix("stomp://")
        async with Toxiproxy.from_env() as toxi, toxi.proxy(f"activemq-{self.queue}", upstream) as proxy, \
                activemq.stomp_client() as client, aiohttp.ClientSession() as http:
            self.proxy, self._client, self._http = proxy, client, http
            self.secret = await activemq.make_secret()
            yield self

    def mapping(self, proxied: Proxies, **fields: Any) -> dict[str, Any]:
        assert self.proxy is not None
        mapping = activemq.mapping(self.queue, self.secret, **{"BatchSize": 10, **fields})
        mapping.pop("FunctionName")
        mapping["esm"] = {"broker": f"stomp://{self.proxy.address}"}
        return mapping

    async def produce(self, ledger: Ledger, records: list[tuple[str, str]]) -> None:
        for record_id, key in records:
            ledger.produce(record_id, key)
        await activemq.send(self._client, self.queue, [payload(r, k) for r, k in records])

    def watcher(self, ledger: Ledger) -> Callable[[], Awaitable[None]] | None:
        return None  # a message stays on the broker until acknowledged (checked by `drained`)

    async def read_dead(self, ledger: Ledger) -> None:
        frames = await activemq.drain(activemq.DLQ, idle=1.0,
                                      match=lambda f: f.headers.get("original-destination") == f"/queue/{self.queue}")
        for frame in frames:
            found = identity(frame.body)
            if found:
                ledger.dead_letter(found[0])

    async def drained(self) -> bool:
        assert self._http is not None
        async with self._http.get(f"{activemq.admin_url()}/queue", params={"name": self.queue}) as answer:
            counts = await answer.json()
        return (counts["waiting"], counts["held"]) == (0, 0)
