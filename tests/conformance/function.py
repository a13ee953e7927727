"""The conformance table's function: one in-process handler for every source, answering by record id.

Config names it `tests.conformance.function:handle`. A row installs a `Function` holding the
source adapter (which turns the source's event into (payload, itemIdentifier) pairs), the row's
ledger (tests/support/ledger.py: every answered invocation is booked there) and `answer(ids)`:
it returns None (all processed), `Failed(ids)` (a partial batch response naming them), `Raw(response)`
(a response returned as is, processing nothing: an invalid one) or raises (a function error); it
may be a coroutine (a slow function).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from tests.conformance.queues import QueueAdapter
from tests.conformance.sources import StreamSource
from tests.support.ledger import Ledger, identity

FUNCTIONS = {"fn": {"handler": "tests.conformance.function:handle", "max_concurrency": 10}}


@dataclass(frozen=True)
class Failed:
    """A partial batch response (ReportBatchItemFailures) naming these record ids."""

    ids: tuple[str, ...]


@dataclass(frozen=True)
class Raw:
    """A response returned as is; the function counts its records as not processed."""

    response: Any


Answer = Callable[[list[str]], "Failed | Raw | None | Awaitable[Failed | Raw | None]"]


class Function:
    def __init__(self, source: StreamSource | QueueAdapter, ledger: Ledger, answer: Answer | None = None):
        self.source = source
        self.ledger = ledger
        self.answer = answer or (lambda ids: None)
        self.batches: list[list[str]] = []  # every invocation's ids, in the order they came
        self.in_flight = 0

    def ids(self) -> list[str]:
        return [i for batch in self.batches for i in batch]

    async def handle(self, event: dict[str, Any]) -> Any:
        pairs = self.source.items(event)
        found = [identity(payload) for payload, _ in pairs]
        assert all(found), f"a record the table did not put: {pairs}"
        ids = [f[0] for f in found if f]
        identifiers = {record_id: identifier for record_id, (_, identifier) in zip(ids, pairs)}
        self.batches.append(ids)
        self.in_flight += 1
        try:
            answer = self.answer(ids)
            if inspect.isawaitable(answer):
                answer = await answer
        except BaseException:
            self.ledger.invoked(ids, [], when=time.time())  # seen, not processed (an error or cancelled)
            raise
        finally:
            self.in_flight -= 1
        if isinstance(answer, Raw):
            self.ledger.invoked(ids, [], when=time.time())
            return answer.response
        failed = set(answer.ids) if isinstance(answer, Failed) else set()
        self.ledger.invoked(ids, [i for i in ids if i not in failed], when=time.time())
        if isinstance(answer, Failed):
            return {"batchItemFailures": [{"itemIdentifier": identifiers[i]} for i in answer.ids]}
        return None


CURRENT: Function | None = None


def install(function: Function) -> Function:
    global CURRENT
    CURRENT = function
    return function


async def handle(event: dict[str, Any], context: Any) -> Any:
    assert CURRENT is not None, "no conformance function installed"
    return await CURRENT.handle(event)


async def never(ids: list[str]) -> None:
    """A function that does not answer until cancelled (or until the row gives up on it)."""
    await asyncio.sleep(3600)
