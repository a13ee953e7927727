"""The stream retry engine: partial responses, bisect, retries, record age (behaviour §3, §4, §9.2, §9.3).

esm.engine.stream_batch carries out esm.core.decide's decisions; the function is scripted here,
the engine's invoke path and batch are real.
"""

from __future__ import annotations

import asyncio
import logging
import time

from esm.invokers.base import FunctionError, InvocationError, Succeeded
from esm.observability.metrics import Metrics
from esm.core.offsets import OffsetTracker
from esm.core.records import Disposition, Record
from esm.core.conditions import RECORD_AGE_EXCEEDED, RETRY_ATTEMPTS_EXHAUSTED
from esm.core.decide import FailureRules as RetryPolicy
from esm.engine.invoke import InvokePath
from esm.engine.stream_batch import StreamBatch
from esm.observability.events import Events

LOG = logging.LoggerAdapter(logging.getLogger("test"), {})


class AgeFormat:
    """The RecordFormat parts a stream batch reads: a record's `arrived_at` here is its age in seconds."""

    reports_iterator_age = False

    def arrival(self, record: Record) -> float:
        return time.time() - record.arrived_at


def records(*ids: int, age: float = 0.0) -> list[Record]:
    return [Record(event={"id": i}, item_id=str(i), size=10, arrived_at=age, token=i) for i in ids]


class Harness:
    def __init__(self, policy: RetryPolicy, answer):
        self.calls: list[list[str]] = []
        self.settled: list[tuple[str, Disposition]] = []
        self.failures = []
        self.metrics = Metrics().for_mapping("m", "kinesis")
        self.answer = answer
        events = Events(self.metrics, LOG)
        path = InvokePath(events=events, log=LOG, report_item_failures=policy.report_item_failures,
                          read_identifier=lambda v: v if isinstance(v, str) and v else None)
        self.batch = StreamBatch(unit="shard-0", rules=policy, invoke=path, send=self.invoke, settle=self.settle,
                                 dead_letters=self, format=AgeFormat(), events=events,
                                 stopping=asyncio.Event(), log=LOG)

    async def invoke(self, batch):
        ids = [r.item_id for r in batch]
        self.calls.append(ids)
        return self.answer(ids, len(self.calls))

    async def settle(self, batch, disposition):
        self.settled.extend((r.item_id, disposition) for r in batch)

    async def send(self, unit, failure, stopping):  # the DeadLetters interface
        self.failures.append(failure)


def fails_on(bad: str):
    def answer(ids, n):
        return FunctionError("Unhandled", "boom") if bad in ids else Succeeded(None)
    return answer


def test_partial_response_retries_from_lowest_failure_and_counts_invokes():
    """Issue 5.8: RBIF, no bisect, record 5 always failing, MaximumRetryAttempts 3 -> batchSize 1, approximateInvokeCount 4."""
    def answer(ids, n):
        return Succeeded({"batchItemFailures": [{"itemIdentifier": "5"}]} if "5" in ids else None)

    h = Harness(RetryPolicy(max_retries=3, report_item_failures=True), answer)
    asyncio.run(h.batch.run(records(3, 4, 5)))
    assert h.calls == [["3", "4", "5"], ["5"], ["5"], ["5"]]
    assert h.settled == [("3", Disposition.SUCCEEDED), ("4", Disposition.SUCCEEDED), ("5", Disposition.DEAD_LETTERED)]
    [failure] = h.failures
    assert failure.condition == RETRY_ATTEMPTS_EXHAUSTED and len(failure.records) == 1 and failure.invoke_count == 4


def test_bisect_isolates_the_poison_record_in_order_without_consuming_retries():
    """behaviour §4 / §9.2: bisect splits until the failing record is alone; splits cost no retry; order holds."""
    h = Harness(RetryPolicy(max_retries=1, bisect=True), fails_on("2"))
    asyncio.run(h.batch.run(records(0, 1, 2, 3, 4, 5, 6, 7)))
    order = [i for i, d in h.settled]
    assert order == ["0", "1", "2", "3", "4", "5", "6", "7"]
    assert dict(h.settled)["2"] is Disposition.DEAD_LETTERED
    assert all(d is Disposition.SUCCEEDED for i, d in h.settled if i != "2")
    alone = [c for c in h.calls if c == ["2"]]
    assert len(alone) == 2  # the first attempt alone plus MaximumRetryAttempts=1 retry
    assert h.failures[0].invoke_count == len([c for c in h.calls if "2" in c])


def test_function_error_without_bisect_retries_the_whole_batch():
    """behaviour §3: a function error retries the batch until MaximumRetryAttempts, then dead-letters all of it."""
    h = Harness(RetryPolicy(max_retries=2), fails_on("1"))
    asyncio.run(h.batch.run(records(0, 1)))
    assert h.calls == [["0", "1"]] * 3
    assert [len(f.records) for f in h.failures] == [2]


def test_invocation_errors_do_not_consume_retries():
    """behaviour §9.1: throttles are retried with backoff and never count against MaximumRetryAttempts."""
    def answer(ids, n):
        return InvocationError("throttled", retry_after=0.0) if n <= 3 else Succeeded(None)
    h = Harness(RetryPolicy(max_retries=0), answer)
    asyncio.run(h.batch.run(records(0)))
    assert h.settled == [("0", Disposition.SUCCEEDED)] and h.failures == []


def test_old_records_are_dead_lettered_before_invoke_without_response():
    """behaviour §9.3: records older than MaximumRecordAgeInSeconds go out as RecordAgeExceeded, never invoked."""
    h = Harness(RetryPolicy(max_age=60), fails_on("none"))
    batch = records(0, 1, age=120) + records(2, age=1)
    asyncio.run(h.batch.run(batch))
    assert h.calls == [["2"]]
    [failure] = h.failures
    assert failure.condition == RECORD_AGE_EXCEEDED and failure.invoke_count == 0 and failure.last_error is None


def test_offset_tracker_releases_only_contiguous_positions():
    """behaviour §9.6: a checkpoint never moves past a record that is not finished."""
    tracker = OffsetTracker()
    for key in (1, 2, 3, 4):
        tracker.register(key)
    tracker.finish(2)
    assert tracker.advance() is None
    tracker.finish(1)
    assert tracker.advance() == 2
    tracker.finish(4)
    assert tracker.advance() is None and tracker.position == 2
    tracker.finish(3)
    assert tracker.advance() == 4
