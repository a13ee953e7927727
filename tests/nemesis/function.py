"""The nemesis's function: one HTTP server for every mapping and replica, failing a seeded fraction.

esm reaches it as a `url` target through each replica's own function proxy, at
`/fn/<replica>/<source>`. Each invocation is written to that source's ledger (which records it
saw, in order, and which it processed) and counted per replica (for the metrics check).

While `failing` is on, an invocation fails with probability `fail_rate`, drawn from the seeded
generator: a partial batch response naming one record (every mapping that has them reports batch
item failures; on Amazon MQ, which has none, a function error instead), a function error, a timeout
(answered after esm's invoke timeout) or a throttle (429). A record produced as poison fails every
time it is presented (on Amazon MQ with its whole batch), so it ends in the dead-letter place.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fault.function import payloads_of
from tests.support.fake_server import LoopbackApi
from tests.support.ledger import Ledger, identity

FAILURES = ("partial", "error", "timeout", "throttle")
# Sources without partial batch responses (Amazon MQ, behaviour §1): a batch succeeds or fails whole,
# so a partial failure or a poison record there fails the whole invocation and nothing in it is processed.
WHOLE_BATCH = frozenset({"rabbitmq", "activemq"})


def records_of(event: dict[str, Any]) -> list[tuple[str | None, str | None, Any, dict[str, Any], bool]]:
    """(id, key, itemIdentifier, record, poison) for each record of any source's event."""
    out = []
    for text, identifier, record in payloads_of(event):
        doc = _doc(text) if text else {}
        out.append((doc.get("id"), doc.get("key"), identifier, record, bool(doc.get("poison"))))
    return out


def _doc(text: str | bytes) -> dict[str, Any]:
    found = identity(text)
    if found is None:
        return {}
    return json.loads(text)


@dataclass
class NemesisFunction(LoopbackApi):
    ledgers: dict[str, Ledger]  # source name -> its ledger
    seed: int
    fail_rate: float = 0.08
    invoke_timeout: float = 5.0
    failing: bool = True
    rng: random.Random = field(init=False)
    replies: Counter[str] = field(default_factory=Counter)  # (source, reply kind) -> count
    appearances: Counter[str] = field(default_factory=Counter)  # source -> records presented (with repeats)
    failed_invocations: Counter[str] = field(default_factory=Counter)  # source -> invocations answered as failed
    dynamodb_unit: str = ""  # the DynamoDB stream's shard: its records' positions are learnt when seen
    in_flight: int = 0

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed * 7919 + 1)

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/fn/{replica}/{source}", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            return await self._answer(request.match_info["source"], await request.read())
        finally:
            self.in_flight -= 1

    def _choose(self, batch: list[tuple[Any, ...]]) -> str:
        if any(poison for *_, poison in batch):
            return "poison"
        if self.failing and self.rng.random() < self.fail_rate:
            return self.rng.choice(FAILURES)
        return "ok"

    async def _answer(self, source: str, body: bytes) -> web.Response:
        ledger = self.ledgers[source]
        batch = records_of(json.loads(body))
        kind = self._choose(batch)
        if source in WHOLE_BATCH and kind in ("partial", "poison"):
            kind = "error" if kind == "partial" else "poison-batch"
        self.replies[f"{source}:{kind}"] += 1
        ids = [b[0] for b in batch]
        self.appearances[source] += len(batch)
        if source == "dynamodb":  # PutItem does not say where the record went; the stream record does
            for record_id, _key, sequence, _record, _poison in batch:
                produced = ledger.produced.get(record_id or "")
                if produced is not None and produced.position is None:
                    produced.unit, produced.position = self.dynamodb_unit, int(sequence)
        failed: set[str] = set()
        if kind == "poison":
            failed = {b[0] for b in batch if b[-1]}
        elif kind == "partial" and batch:
            failed = {self.rng.choice(batch)[0]}
        if kind == "timeout":
            await asyncio.sleep(self.invoke_timeout + 1)
        whole = kind in ("error", "timeout", "throttle", "poison-batch")  # the invocation failed: nothing processed
        processed = [] if whole else [i for i in ids if i and i not in failed]
        # Recorded before the answer leaves: what the function did is what it did, whatever esm hears.
        ledger.invoked(ids, processed)
        if kind == "ok":
            return web.json_response({})
        self.failed_invocations[source] += 1
        if kind in ("partial", "poison"):
            return web.json_response({"batchItemFailures": [
                {"itemIdentifier": b[2]} for b in batch if b[0] in failed]})
        if kind == "throttle":
            return web.Response(status=429, text="throttled")
        error = {"timeout": "Sandbox.Timedout", "poison-batch": "NemesisPoison"}.get(kind, "NemesisFault")
        return web.json_response({"errorType": error, "errorMessage": "the nemesis says fail"},
                                 headers={"X-Amz-Function-Error": "Unhandled"})
