"""The one invoke path: call the function, judge its answer, wait out throttles (behaviour §9.1).

`InvokePath.invoke(records, send)` returns the judged `Answer` of the first invoke the function
answered (success, partial, function error). An invocation error (throttled, unreachable) is
retried with the one backoff policy (esm.core.backoff), never counted as a retry; the wait ends
early when the lane stops or would pass `give_up_at` (an SQS batch whose visibility timeout runs
out), and then `Abandoned` leaves the records unacknowledged. `invoke_until_success` is the same
path for an invoke that must succeed before its unit moves on (a tumbling window's final invoke):
a function error is retried there too, with the same backoff.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Hashable, Sequence

from esm.aio import sleep_unless
from esm.core.backoff import INVOKE_BACKOFF
from esm.core.results import InvokeResult
from esm.observability.events import Events
from esm.core.outcomes import INVOCATION_ERROR, SUCCESS, Outcome, judge
from esm.core.records import Record

Send = Callable[[Sequence[Record]], Awaitable[InvokeResult]]


class Abandoned(Exception):
    """The lane stops (or the records' time runs out) before they could be settled."""


@dataclass(frozen=True)
class Answer:
    result: InvokeResult
    outcome: Outcome


class InvokePath:
    def __init__(self, *, events: Events, log: logging.LoggerAdapter, report_item_failures: bool,
                 read_identifier: Callable[[Any], Hashable | None], on_throttle: Callable[[], None] | None = None):
        self.events = events
        self.log = log
        self.report_item_failures = report_item_failures
        self.read_identifier = read_identifier
        self.on_throttle = on_throttle

    def for_log(self, log: logging.LoggerAdapter) -> InvokePath:
        """The same path, its events logged with another adapter (a unit's: mapping + unit)."""
        return InvokePath(events=self.events.for_log(log), log=log, report_item_failures=self.report_item_failures,
                          read_identifier=self.read_identifier, on_throttle=self.on_throttle)

    async def invoke(self, records: Sequence[Record], send: Send, stopping: asyncio.Event,
                     give_up_at: float | None = None) -> Answer:
        attempt = 0
        while True:
            if stopping.is_set():
                raise Abandoned()
            result = await send(records)
            outcome = judge(result, report_item_failures=self.report_item_failures,
                            batch_ids=(r.item_id for r in records), read_identifier=self.read_identifier)
            if outcome.kind != INVOCATION_ERROR:
                self.events.batch_invoked(len(records), result.duration, outcome.kind)
                return Answer(result, outcome)
            if self.on_throttle is not None:
                self.on_throttle()
            attempt += 1
            delay = INVOKE_BACKOFF.delay(attempt, outcome.retry_after)
            if give_up_at is not None and time.monotonic() + delay >= give_up_at:
                self.events.invoke_throttled(len(records), outcome.reason, None)
                raise Abandoned()
            self.events.invoke_throttled(len(records), outcome.reason, delay)
            await sleep_unless(stopping, delay)

    async def invoke_until_success(self, send: Send, stopping: asyncio.Event, *, what: str) -> Answer:
        """An invoke without records that holds its unit until the function succeeds (a tumbling
        window's final invoke, behaviour §2): a function error is retried as well, with the one
        backoff policy, until the function succeeds or the lane stops (`Abandoned`)."""
        attempt = 0
        while True:
            answer = await self.invoke([], send, stopping)
            if answer.outcome.kind == SUCCESS:
                return answer
            attempt += 1
            delay = INVOKE_BACKOFF.delay(attempt)
            self.events.invoke_failed(0, f"{what} ({answer.outcome.reason}); the unit waits, retrying in {delay:.1f}s")
            await sleep_unless(stopping, delay)
