"""One stream batch through invoke, retries, bisect, record age and dead-lettering (SPEC 3, 4, 9.2-9.6).

Shared by the stream sources (Kinesis now, Kafka next). Given a batch in order, `StreamBatch.run`
invokes until every record is settled:
- success: all records succeeded;
- a partial batch response (ReportBatchItemFailures): records before the lowest reported item
  succeeded; the rest are retried as a smaller batch, which counts as a retry;
- a function error: with BisectBatchOnFunctionError a batch of more than one record is split in
  two halves, the first processed completely before the second, and splitting does not consume a
  retry; a batch that cannot be split consumes one retry per failed attempt;
- an invocation error (throttle, unavailable): retried with backoff and jitter, never counted;
- MaximumRetryAttempts exhausted: RetryAttemptsExhausted; records older than
  MaximumRecordAgeInSeconds: RecordAgeExceeded (checked before every invoke). Such records go to
  the on-failure destination with what the last invoke that held them answered (`Failure`), or
  are dropped (counted, logged) only when there is none.
Records settle strictly in order, so a checkpoint never passes an unsettled record.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Hashable, Sequence

from esm.aio import sleep_unless
from esm.destinations.records import RECORD_AGE_EXCEEDED, RETRY_ATTEMPTS_EXHAUSTED
from esm.errors import DestinationError
from esm.invokers.base import LATEST, InvokeResult
from esm.observability.metrics import MappingMetrics
from esm.outcomes import FUNCTION_ERROR, INVOCATION_ERROR, PARTIAL, SUCCESS, Outcome, judge
from esm.records import Disposition, Record

log = logging.getLogger("esm.streams")

BACKOFF_BASE = 0.1
BACKOFF_CAP = 30.0


class BatchAbandoned(Exception):
    """The mapping is stopping between attempts: the unsettled records stay unacknowledged."""


@dataclass(frozen=True)
class RetryPolicy:
    max_retries: int = -1  # -1: until the record expires
    max_age: float = -1  # seconds; -1: no limit
    bisect: bool = False
    report_item_failures: bool = False

    def exhausted(self, retries: int) -> bool:
        return self.max_retries != -1 and retries > self.max_retries


@dataclass(frozen=True)
class Failure:
    """Records that could not be processed, with what the last invoke said (None: never invoked)."""

    records: list[Record]
    condition: str
    invoke_count: int
    last_error: str | None
    last_kind: str | None  # what the last invoke that held them answered (Outcome.answer); None: never invoked
    executed_version: str = LATEST  # the function version that answered that invoke


# The hooks a source provides.
Invoke = Callable[[list[Record]], Awaitable[InvokeResult]]
Settle = Callable[[list[Record], Disposition], Awaitable[None]]
DeadLetter = Callable[[Failure], Awaitable[None]]
RecordAge = Callable[[Record], float]  # seconds since the record entered the stream


class StreamBatch:
    def __init__(self, *, policy: RetryPolicy, invoke: Invoke, settle: Settle, dead_letter: DeadLetter,
                 record_age: RecordAge, metrics: MappingMetrics, read_identifier: Callable[[Any], Hashable | None],
                 stopping: asyncio.Event | None = None, logger: logging.LoggerAdapter | None = None):
        self.policy = policy
        self.invoke = invoke
        self.settle = settle
        self.dead_letter = dead_letter
        self.record_age = record_age
        self.metrics = metrics
        self.read_identifier = read_identifier
        self.stopping = stopping
        self.log = logger or logging.LoggerAdapter(log, {})

    async def run(self, records: Sequence[Record]) -> None:
        """Settle every record, in order; raises BatchAbandoned if the mapping stops first."""
        self._last_kind: str | None = None
        self._last_version = LATEST
        invoke_counts: dict[Hashable, int] = {}
        # A stack of segments still to settle, the next one on top; bisect pushes halves.
        stack: list[list[Record]] = [list(records)]
        while stack:
            await self._settle_segment(stack, invoke_counts)

    async def _settle_segment(self, stack: list[list[Record]], invoke_counts: dict[Hashable, int]) -> None:
        segment = stack.pop()
        retries = 0
        throttles = 0
        last_error: str | None = None
        self._last_kind: str | None = None
        while segment:
            if self.stopping is not None and self.stopping.is_set():
                raise BatchAbandoned()
            segment = await self._expire_old(segment, invoke_counts, last_error)
            if not segment:
                return
            result = await self.invoke(segment)
            outcome = judge(result, report_item_failures=self.policy.report_item_failures,
                            batch_ids=[r.item_id for r in segment], read_identifier=self.read_identifier)
            if outcome.kind == INVOCATION_ERROR:
                self.metrics.invoke_errors.inc()
                throttles += 1
                delay = _backoff(throttles, outcome.retry_after)
                self.log.info("function unavailable (%s); retrying in %.2fs", outcome.reason, delay)
                await asyncio.sleep(delay)
                continue
            throttles = 0
            self._last_kind = outcome.answer
            self._last_version = result.executed_version
            for record in segment:
                invoke_counts[record.item_id] = invoke_counts.get(record.item_id, 0) + 1
            self.metrics.invoked.inc(len(segment))
            self.metrics.observe_invoke(result.duration, outcome.kind, len(segment))
            if outcome.kind == SUCCESS:
                await self.settle(segment, Disposition.SUCCEEDED)
                return
            last_error = outcome.reason or "function error"
            if outcome.kind == PARTIAL:
                segment = await self._keep_failed_tail(segment, outcome)
            else:
                assert outcome.kind == FUNCTION_ERROR
                self.metrics.failed_invoke.inc(len(segment))
                self.metrics.invoke_errors.inc()
                if self.policy.bisect and len(segment) > 1:
                    middle = len(segment) // 2
                    stack.append(segment[middle:])
                    stack.append(segment[:middle])
                    self.log.info("function error; bisecting %d records", len(segment))
                    return
            retries += 1
            if self.policy.exhausted(retries):
                await self._give_up(segment, RETRY_ATTEMPTS_EXHAUSTED, invoke_counts, last_error)
                return
            self.log.info("function error (%s); retry %d of %s for %d record(s)", last_error, retries,
                          "unlimited" if self.policy.max_retries == -1 else self.policy.max_retries, len(segment))

    async def _keep_failed_tail(self, segment: list[Record], outcome: Outcome) -> list[Record]:
        """SPEC 3: the checkpoint moves to the lowest reported item; everything from it on is retried."""
        first_failed = min(i for i, r in enumerate(segment) if r.item_id in outcome.failed_ids)
        self.metrics.failed_invoke.inc(len(outcome.failed_ids))
        if first_failed:
            await self.settle(segment[:first_failed], Disposition.SUCCEEDED)
        return segment[first_failed:]

    async def _expire_old(self, segment: list[Record], invoke_counts: dict[Hashable, int],
                          last_error: str | None) -> list[Record]:
        if self.policy.max_age < 0:
            return segment
        expired = 0
        while expired < len(segment) and self.record_age(segment[expired]) > self.policy.max_age:
            expired += 1
        if expired:
            # In order: only a leading run can be expired, since later records are younger.
            await self._give_up(segment[:expired], RECORD_AGE_EXCEEDED, invoke_counts, last_error)
        return segment[expired:]

    async def _give_up(self, records: list[Record], condition: str, invoke_counts: dict[Hashable, int],
                       last_error: str | None) -> None:
        count = max((invoke_counts.get(r.item_id, 0) for r in records), default=0)
        await self.dead_letter(Failure(records=records, condition=condition, invoke_count=count,
                                       last_error=last_error if count else None,
                                       last_kind=self._last_kind if count else None,
                                       executed_version=self._last_version))
        # Delivered to the destination, or dropped without one: settled, so the checkpoint may pass them.
        await self.settle(records, Disposition.DEAD_LETTERED)


def _backoff(attempt: int, retry_after: float | None) -> float:
    delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** attempt))
    return max(delay, retry_after or 0.0)


def epoch_age(arrival_epoch: float) -> float:
    return time.time() - arrival_epoch


DELIVERY_BACKOFF_CAP = 30.0


async def deliver_until_landed(destination: Any, document: dict[str, Any], *, invocation_event: Any, shard_id: str,
                               stopping: asyncio.Event, metrics: MappingMetrics, function_name: str, where: str,
                               logger: logging.LoggerAdapter, **extra: Any) -> None:
    """Deliver an on-failure document until it lands (SPEC 9.6: the checkpoint or commit waits for it).

    Each failure counts in the destination error metrics and is logged; a stopping worker abandons
    the batch (BatchAbandoned), leaving its records unacknowledged.
    """
    delay = 0.5
    while True:
        try:
            await destination.deliver(document, invocation_event=invocation_event, shard_id=shard_id, **extra)
            return
        except DestinationError as error:
            metrics.destination_errors.inc()
            metrics.metrics.destination_delivery_failures.labels(function_name).inc()
            logger.error("on-failure delivery of %s failed, retrying in %.1fs: %s", where, delay, error)
            if stopping.is_set():
                raise BatchAbandoned() from error
            await sleep_unless(stopping, delay)
            delay = min(DELIVERY_BACKOFF_CAP, delay * 2)
