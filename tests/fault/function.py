"""The function under test in the fault scenarios: a real HTTP server in the test's process.

esm reaches it through a toxiproxy proxy as a `url` target. Every invocation it answers is
written to the scenario's `Ledger` (which records it saw, which it processed). What it answers is
the scenario's `decide(batch)`: a `Reply` per invocation —

- `OK`: 200 and `{}` (processed);
- `ERROR`: 200 with `X-Amz-Function-Error: Unhandled` and a Lambda error object (not processed);
- `GARBAGE`: 200 with a body that is not JSON (behaviour §3: a failed invoke; not processed);
- `status(429)`, `status(503)`: throttled / unavailable (not invoked, behaviour §9.1);
- `timed_out(seconds)`: sleeps past esm's invoke timeout, then answers Lambda's timeout error
  (the runtime was stopped: not processed);
- `partial(ids)`: 200 with `batchItemFailures` for those ids (the others processed).
"""

from __future__ import annotations

import asyncio
import base64
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from aiohttp import web

from tests.support.fake_server import LoopbackApi
from tests.support.ledger import Ledger, identity


@dataclass(frozen=True)
class Reply:
    kind: str  # ok | error | garbage | status | timeout | partial
    status: int = 200
    seconds: float = 0.0
    failed: frozenset[str] = frozenset()


OK = Reply("ok")
ERROR = Reply("error")
GARBAGE = Reply("garbage")


def slow(seconds: float) -> Reply:
    """Processed, after `seconds` of work."""
    return Reply("ok", seconds=seconds)


def status(code: int) -> Reply:
    return Reply("status", status=code)


def timed_out(seconds: float) -> Reply:
    return Reply("timeout", seconds=seconds)


def partial(ids: set[str] | frozenset[str]) -> Reply:
    return Reply("partial", failed=frozenset(ids))


@dataclass
class Item:
    """One record of an invocation: its identity, where it came from, and how often it was seen."""

    id: str | None
    key: str | None
    attempt: int  # 1 the first time the function sees this id
    item_identifier: Any  # what a batchItemFailures entry names it by
    record: dict[str, Any]


def payloads_of(event: dict[str, Any]) -> list[tuple[str | bytes, Any, dict[str, Any]]]:
    """(payload, itemIdentifier, record) for each record of an SQS, Kinesis, DynamoDB Streams, Kafka,
    RabbitMQ or ActiveMQ event: the payload is what the producer wrote (a body, the decoded data or
    value, a DynamoDB item's `doc` attribute), the identifier what a batchItemFailures entry names
    the record by (None where the source has none)."""
    out: list[tuple[str | bytes, Any, dict[str, Any]]] = []
    if isinstance(event.get("rmqMessagesByQueue"), dict):  # Amazon MQ for RabbitMQ (no item identifiers)
        for messages in event["rmqMessagesByQueue"].values():
            out.extend((base64.b64decode(m.get("data") or ""), None, m) for m in messages)
        return out
    if isinstance(event.get("messages"), list):  # Amazon MQ for ActiveMQ
        return [(base64.b64decode(m["data"]), m["messageID"], m) for m in event["messages"]]
    if isinstance(event.get("records"), dict):  # Kafka
        for group in event["records"].values():
            out.extend((base64.b64decode(r["value"]) if r.get("value") else b"",
                        {"partition": f"{r['topic']}-{r['partition']}", "offset": r["offset"]}, r) for r in group)
        return out
    for r in event.get("Records") or []:
        if "kinesis" in r:
            out.append((base64.b64decode(r["kinesis"]["data"]), r["kinesis"]["sequenceNumber"], r))
        elif "dynamodb" in r:
            image = r["dynamodb"].get("NewImage") or {}
            out.append((image.get("doc", {}).get("S", ""), r["dynamodb"]["SequenceNumber"], r))
        else:
            out.append((r.get("body", ""), r.get("messageId"), r))
    return out


def items_of(event: dict[str, Any]) -> list[tuple[str | None, str | None, Any, dict[str, Any]]]:
    """(id, key, itemIdentifier, record) for each record of any source's event."""
    return [(*(identity(text) or (None, None)), identifier, record) for text, identifier, record in payloads_of(event)]


Decide = Callable[[list[Item]], Reply]


@dataclass
class FunctionServer(LoopbackApi):
    ledger: Ledger
    decide: Decide = lambda batch: OK
    seen: dict[str, int] = field(default_factory=dict)
    replies: list[str] = field(default_factory=list)
    in_flight: int = 0  # invocations being answered right now

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{tail:.*}", self._handle)

    async def __aenter__(self) -> "FunctionServer":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()

    def count(self, kind: str) -> int:
        return self.replies.count(kind)

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        try:
            return await self._answer(request)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request) -> web.Response:
        event = json.loads(await request.read())
        batch = []
        for record_id, key, identifier, record in items_of(event):
            if record_id is not None:
                self.seen[record_id] = self.seen.get(record_id, 0) + 1
            batch.append(Item(record_id, key, self.seen.get(record_id or "", 0), identifier, record))
        reply = self.decide(batch)
        self.replies.append(reply.kind if reply.kind != "status" else str(reply.status))
        ids = [i.id for i in batch]
        if reply.seconds:
            await asyncio.sleep(reply.seconds)
        processed: list[str] = []
        if reply.kind == "ok":
            processed = [i for i in ids if i]
        elif reply.kind == "partial":
            processed = [i.id for i in batch if i.id and i.id not in reply.failed]
        # Only what the function answered counts: it records before the answer leaves.
        self.ledger.invoked(ids, processed)
        if reply.kind == "ok":
            return web.json_response({})
        if reply.kind == "partial":
            failures = [{"itemIdentifier": i.item_identifier} for i in batch if i.id in reply.failed]
            return web.json_response({"batchItemFailures": failures})
        if reply.kind == "error":
            return web.json_response({"errorType": "FaultTest", "errorMessage": "the scenario says fail"},
                                     headers={"X-Amz-Function-Error": "Unhandled"})
        if reply.kind == "garbage":
            return web.Response(status=200, body=b"<html>\x00\xffnot json at all", content_type="text/html")
        if reply.kind == "timeout":
            return web.json_response({"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out"},
                                     headers={"X-Amz-Function-Error": "Unhandled"})
        return web.Response(status=reply.status, text=f"throttled ({reply.status})")


# ---------------------------------------------------------------- behaviours shared by the scenarios


def storm(limit: int) -> Decide:
    """The first `limit` invocations answer 429 or 503 (a throttling storm), then all succeed."""
    calls = {"n": 0}

    def decide(batch: list[Item]) -> Reply:
        calls["n"] += 1
        if calls["n"] <= limit:
            return status(429 if calls["n"] % 2 else 503)
        return OK

    return decide


def garbage_first_then_ok(poison: set[str] = frozenset()) -> Decide:  # type: ignore[assignment]
    """A batch holding a record seen for the first time, or a poison record, gets garbage."""

    def decide(batch: list[Item]) -> Reply:
        if any(i.id in poison or i.attempt == 1 for i in batch):
            return GARBAGE
        return OK

    return decide


def poison(ids: set[str], reply: Reply = ERROR) -> Decide:
    """A batch holding one of `ids` fails with `reply`; any other succeeds."""

    def decide(batch: list[Item]) -> Reply:
        return reply if any(i.id in ids for i in batch) else OK

    return decide


def every_nth_times_out(n: int, seconds: float) -> Decide:
    """Every n-th invocation (the first included) runs `seconds` and times out; the others succeed."""
    calls = {"n": 0}

    def decide(batch: list[Item]) -> Reply:
        calls["n"] += 1
        return timed_out(seconds) if calls["n"] % n == 1 else OK

    return decide
