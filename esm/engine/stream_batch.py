"""One stream batch through invoke, retries, bisect, record age and dead-lettering (behaviour §3, §4, §9.2-9.6).

`StreamBatch.run(records)` invokes until every record is settled, strictly in order, so a
checkpoint never passes an unsettled record. Before each invoke, records older than
MaximumRecordAgeInSeconds are given up on (RecordAgeExceeded); after it, `esm.core.decide` says
what the answer means (settle, retry the failed tail, bisect, give up), and this class carries it
out: `settle` for what is done, `DeadLetters` for what is given up on (with what the last invoke
that held those records answered), and a stack of segments for bisect (the first half completely
before the second). Raises `Abandoned` when the lane stops first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from typing import Awaitable, Callable, Hashable, Sequence

from esm.core.conditions import RECORD_AGE_EXCEEDED
from esm.core.decide import Bisect, FailureRules, GiveUp, Retry, Settle, decide, split_expired
from esm.engine.dead_letter import DeadLetters, Failure
from esm.engine.invoke import InvokePath, Send
from esm.core.results import LATEST
from esm.observability.events import Events
from esm.core.outcomes import PARTIAL
from esm.core.records import Disposition, Record
from esm.core.contract import StreamRecordFormat

SettleRecords = Callable[[list[Record], Disposition], Awaitable[None]]


class InvokeCounts:
    """How many invokes held each record of a batch (an on-failure document's approximateInvokeCount).

    Counted only when something is given up: each invoke just notes its segment, so a batch that
    succeeds costs nothing per record; the notes are folded into counts now and then, so that
    endless retries keep it bounded."""

    FOLD = 64

    def __init__(self) -> None:
        self.counts: Counter[Hashable] = Counter()
        self.segments: list[list[Record]] = []

    def add(self, segment: list[Record]) -> None:
        self.segments.append(segment)
        if len(self.segments) >= self.FOLD:
            self._fold()

    def most(self, records: Sequence[Record]) -> int:
        self._fold()
        return max((self.counts[r.item_id] for r in records), default=0)

    def _fold(self) -> None:
        self.counts.update(r.item_id for segment in self.segments for r in segment)
        self.segments.clear()


class StreamBatch:
    def __init__(self, *, unit: str, rules: FailureRules, invoke: InvokePath, send: Send, settle: SettleRecords,
                 dead_letters: DeadLetters, format: StreamRecordFormat, events: Events, stopping: asyncio.Event,
                 log: logging.LoggerAdapter):
        self.unit = unit
        self.rules = rules
        self.invoke = invoke
        self.send = send
        self.settle = settle
        self.dead_letters = dead_letters
        self.format = format
        self.events = events
        self.stopping = stopping
        self.log = log

    def _age(self, record: Record) -> float:
        return time.time() - self.format.arrival(record)

    async def run(self, records: Sequence[Record]) -> None:
        self._last_kind: str | None = None
        self._last_version = LATEST
        self._last_error: str | None = None
        invoked = InvokeCounts()
        stack: list[list[Record]] = [list(records)]  # segments still to settle, the next on top
        while stack:
            await self._segment(stack, invoked)

    async def _segment(self, stack: list[list[Record]], invoked: InvokeCounts) -> None:
        segment = stack.pop()
        retries = 0
        self._last_kind = None
        self._last_error = None
        while segment:
            expired, segment = split_expired(segment, self._age, self.rules.max_age)
            if expired:
                await self._give_up(expired, RECORD_AGE_EXCEEDED, invoked)
            if not segment:
                return
            age = max(0.0, self._age(segment[-1]))
            if self.format.reports_iterator_age:
                self.events.iterator_age(self.unit, age * 1000)
            else:  # Kafka: no IteratorAge, the same reading as the mapping's oldest record age
                self.events.oldest_record_age(self.unit, age)
            answer = await self.invoke.invoke(segment, self.send, self.stopping)
            outcome = answer.outcome
            self._last_kind, self._last_version = outcome.answer, answer.result.executed_version
            invoked.add(segment)
            decision = decide(segment, outcome, self.rules, retries)
            if isinstance(decision, Settle):
                await self.settle(decision.succeeded, Disposition.SUCCEEDED)
                return
            self._last_error = outcome.reason or "function error"
            if outcome.kind == PARTIAL:
                self.events.items_failed(len(outcome.failed_ids))
            else:
                self.events.invoke_failed(len(segment), self._last_error)
            if isinstance(decision, Bisect):
                stack.append(decision.second)
                stack.append(decision.first)
                self.log.info("function error; bisecting %d records", len(segment))
                return
            if decision.succeeded:
                await self.settle(decision.succeeded, Disposition.SUCCEEDED)
            if isinstance(decision, GiveUp):
                await self._give_up(decision.records, decision.condition, invoked)
                return
            assert isinstance(decision, Retry)
            retries += 1
            segment = decision.again
            self.log.info("function error (%s); retry %d of %s for %d record(s)", self._last_error, retries,
                          "unlimited" if self.rules.max_retries == -1 else self.rules.max_retries, len(segment))

    async def _give_up(self, records: list[Record], condition: str, invoked: InvokeCounts) -> None:
        count = invoked.most(records)
        await self.dead_letters.send(self.unit, Failure(
            records=records, condition=condition, invoke_count=count,
            last_error=self._last_error if count else None, last_kind=self._last_kind if count else None,
            executed_version=self._last_version), self.stopping)
        # Delivered to the destination, or dropped without one: settled, so the checkpoint may pass them.
        await self.settle(records, Disposition.DEAD_LETTERED)
