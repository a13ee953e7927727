"""The conformance table: each row is one rule of behaviour §3, §4, §5 and §9 that every ordered stream
source keeps, run once per source (the `source` parameter, tests/conformance/sources.py).

Each row runs esm through its public surface only: a config document and the daemon
(tests/support/daemon.py), the in-process function of tests/conformance/function.py, and what
the backends show (the function's invocations, the released position, the on-failure queue on
ElasticMQ). Every row ends with the ledger's books (tests/support/ledger.py, behaviour §9.6): nothing
lost, order kept, no released position past an unfinished record.

The record-age row comes last: on a source whose records cannot be backdated it waits for
records put when the session started, which the earlier rows' time mostly covers.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from typing import Any, AsyncIterator, Callable

import pytest
import yaml

from tests.conformance.function import FUNCTIONS, Failed, Function, install, never
from tests.conformance.sources import AGED_IDS, AGED_PAYLOADS, ORDER_KEY, StreamSource
from tests.support.daemon import running
from tests.support.ledger import Ledger, payload
from tests.support.sqs import create_queue, queue_arn, receive_all, sqs_client
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("backends")

UNIT = "unit"  # the one ordering unit of a row, in the ledger's books
WAIT = 45.0  # the most any single condition may take before the row fails


# ---------------------------------------------------------------- the row's tools


def config(source: StreamSource, mapping: dict[str, Any], **top: Any) -> str:
    document = {"functions": FUNCTIONS, "event_source_mappings": [mapping],
                "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 10, "startup_timeout": 30,
                **source.daemon_settings(), **top}
    return yaml.safe_dump(document, sort_keys=False)


def new_ledger(source: StreamSource, row: str) -> Ledger:
    return Ledger(scenario=f"conformance {row}", source=source.name, ordered=True)


async def put(source: StreamSource, ledger: Ledger, ids: list[str], *, book: bool = True,
              **extra: Any) -> dict[str, int]:
    """Put one record per id (a ledger payload with `extra` fields); id -> position. Booked in the
    ledger unless `book` is false (records a filter drops: the function must never have them)."""
    positions = await source.put([payload(i, ORDER_KEY, **extra) for i in ids])
    for record_id, position in zip(ids, positions):
        if book:
            ledger.produce(record_id, ORDER_KEY, UNIT, position)
    return dict(zip(ids, positions))


async def released(source: StreamSource, ledger: Ledger) -> int | None:
    """The released position, booked in the ledger (stamped after the read: never a false alarm)."""
    position = await source.committed()
    if position is not None:
        ledger.checkpoint(UNIT, position, when=time.time())
    return position


async def released_past(source: StreamSource, ledger: Ledger, position: int, what: str) -> None:
    async def reached() -> bool:
        at = await released(source, ledger)
        return at is not None and at >= position

    await wait_until(reached, timeout=WAIT, what=what, interval=0.2)


@contextlib.asynccontextmanager
async def sampling(source: StreamSource, ledger: Ledger) -> AsyncIterator[list[int | None]]:
    """Reads the released position every 0.1 s while the block runs (every read is booked)."""
    seen: list[int | None] = []

    async def sample() -> None:
        while True:
            seen.append(await released(source, ledger))
            await asyncio.sleep(0.1)

    task = asyncio.create_task(sample())
    try:
        yield seen
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class Destination:
    """An on-failure SQS queue on ElasticMQ and the documents read back from it."""

    def __init__(self, sqs: Any, name: str):
        self.sqs, self.name, self.arn = sqs, name, queue_arn(name)
        self.url: str | None = None
        self.documents: list[dict[str, Any]] = []

    @classmethod
    async def create(cls, sqs: Any) -> "Destination":
        url, arn = await create_queue(sqs, "conf-dlq")
        destination = cls(sqs, arn.rsplit(":", 1)[1])
        destination.url = url
        return destination

    async def come_up(self) -> None:
        self.url = (await self.sqs.create_queue(QueueName=self.name))["QueueUrl"]

    def config(self) -> dict[str, Any]:
        return {"DestinationConfig": {"OnFailure": {"Destination": self.arn}}}

    async def collect(self, until: Callable[[], bool], what: str) -> None:
        """Read the queue until `until()` holds."""
        async def done() -> bool:
            if self.url is not None:
                self.documents += [json.loads(m["Body"]) for m in await receive_all(self.sqs, self.url, wait=0)]
            return until()

        await wait_until(done, timeout=WAIT, what=what, interval=0.3)

    async def wait(self, count: int) -> None:
        await self.collect(lambda: len(self.documents) >= count, f"{count} on-failure document(s)")

    def named(self, source: StreamSource, ledger: Ledger) -> list[set[str]]:
        """The ids of the booked records each document names."""
        spans = [source.dead_span(document)[:2] for document in self.documents]
        return [{p.id for p in ledger.produced.values() if p.position is not None and first <= p.position <= last}
                for first, last in spans]

    def book(self, source: StreamSource, ledger: Ledger) -> list[set[str]]:
        """Book every document's records as dead-lettered; returns the ids each document names."""
        named = self.named(source, ledger)
        for n, (document, ids) in enumerate(zip(self.documents, named)):
            first, last, size = source.dead_span(document)
            assert len(ids) == size, f"batchSize {size} but the span names {sorted(ids)}"
            ledger.dead_letter_range(UNIT, first, last, message=str(n))
        return named


def invokes_holding(function: Function, record_id: str) -> int:
    return sum(record_id in batch for batch in function.batches)


# ---------------------------------------------------------------- 1. filter settle


async def test_filtered_records_are_never_invoked_and_released(source: StreamSource):
    """behaviour §5 (Kinesis: a non-matching record is skipped, the iterator advances; Kafka: dropped, its
    offset committed) and behaviour §9.6 (a record leaves the source once filtered out): the records
    FilterCriteria rejects never reach the function, the released position moves past them, and a
    restart reads nothing before the record after them again."""
    ledger = new_ledger(source, "filter settle")
    await source.create_unit()
    positions = await put(source, ledger, ["keep0"], kind="keep")
    positions |= await put(source, ledger, ["skip1", "skip2"], kind="skip", book=False)
    positions |= await put(source, ledger, ["keep3"], kind="keep")
    pattern = json.dumps(source.data_pattern("kind", ["keep"]))
    text = config(source, source.mapping(FilterCriteria={"Filters": [{"Pattern": pattern}]}))

    first = install(Function(source, ledger))
    async with running(text) as daemon:
        await wait_until(lambda: "keep3" in first.ids(), timeout=WAIT, what="keep3 invoked")
        await released_past(source, ledger, positions["keep3"], "released past the filtered records")
        await daemon.wait_total("esm_filtered_out_events_total", 2)
    assert first.ids() == ["keep0", "keep3"]

    # Restarted, the mapping reads from the released position: only the record put now.
    positions |= await put(source, ledger, ["keep4"], kind="keep")
    second = install(Function(source, ledger))
    async with running(text) as daemon:
        await wait_until(lambda: "keep4" in second.ids(), timeout=WAIT, what="keep4 invoked")
        await released_past(source, ledger, positions["keep4"], "released past keep4")
        assert daemon.total("esm_polled_events_total") == 1, "read again from before the released position"
    assert second.ids() == ["keep4"]
    ledger.assert_sound(max_duplicates=0, expect_dead=())


# ---------------------------------------------------------------- 2. partial batch response


async def test_partial_batch_response_retries_from_the_lowest_reported_item(source: StreamSource):
    """behaviour §3 (itemIdentifier: Kinesis/DynamoDB checkpoint at the lowest reported sequence number,
    all records from it on retried) and behaviour §9.4 (Kafka: the committed offset becomes the lowest
    failed offset): with ReportBatchItemFailures, reporting r4 and r2 retries from r2; r0 and r1 are
    never invoked again, and while the retry runs the released position covers exactly r0, r1."""
    ledger = new_ledger(source, "partial batch response")
    await source.create_unit()
    ids = [f"r{i}" for i in range(6)]
    positions = await put(source, ledger, ids)
    released_during_retry: list[int | None] = []

    async def answer(batch: list[str]) -> Failed | None:
        if len(function.batches) == 1:
            return Failed(("r4", "r2"))  # not in order: the lowest one counts
        # A commit may land a moment after the retry starts (Kafka commits asynchronously): wait
        # for the first released position, then record it; one past r1 would break the rule.
        released_during_retry.append(await first_released(source))
        return None

    function = install(Function(source, ledger, answer))
    text = config(source, source.mapping(BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"]))
    async with running(text):
        await released_past(source, ledger, positions["r5"], "released past r5")
    assert function.batches == [ids, ids[2:]], "retried from the lowest reported item, and only that"
    assert released_during_retry == [positions["r1"]], "during the retry: released through r1, not past r2"
    ledger.assert_sound(max_duplicates=4, expect_dead=())


async def first_released(source: StreamSource, timeout: float = 15.0) -> int | None:
    """The first position the source releases (None if nothing is released within `timeout`)."""
    deadline = time.monotonic() + timeout
    while (position := await source.committed()) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return position


# ---------------------------------------------------------------- 3. bisect


async def test_bisect_isolates_a_poison_record_and_sends_it_to_the_destination(source: StreamSource):
    """behaviour §4 (BisectBatchOnFunctionError: split on a function error, splitting does not use the retry
    quota) and behaviour §9.2 (a batch of one uses one retry per attempt; approximateInvokeCount counts every
    invocation that held the record): a poison record is isolated to a batch of one, tried
    1 + MaximumRetryAttempts times alone, then sent to the on-failure destination; every other record
    is processed exactly once, in order, and the stream moves on."""
    ledger = new_ledger(source, "bisect")
    await source.create_unit()
    ids = [f"r{i}" for i in range(10)]
    positions = await put(source, ledger, ids)

    def answer(batch: list[str]) -> None:
        if "r4" in batch:
            raise RuntimeError("poison")

    function = install(Function(source, ledger, answer))
    async with sqs_client() as sqs:
        destination = await Destination.create(sqs)
        text = config(source, source.mapping(BatchSize=10, BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
                                             **destination.config()))
        async with running(text):
            await released_past(source, ledger, positions["r9"], "released past r9")
            await destination.wait(1)
    processed = [i for batch in function.batches if "r4" not in batch for i in batch]
    assert processed == [i for i in ids if i != "r4"], "the others: each once, in order"
    assert function.batches.count(["r4"]) == 2, "isolated to a batch of one: first try + 1 retry"
    [document] = destination.documents
    assert destination.book(source, ledger) == [{"r4"}]
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["approximateInvokeCount"] == invokes_holding(function, "r4")
    ledger.assert_sound(max_duplicates=0, expect_dead={"r4"})


# ---------------------------------------------------------------- 4. retries exhausted


async def test_retries_exhausted_go_to_the_destination_and_the_stream_moves_on(source: StreamSource):
    """behaviour §3 (streams: function errors are retried until MaximumRetryAttempts, then discarded to the
    on-failure destination and processing continues; MaximumRetryAttempts does not count the first
    attempt) and behaviour §4 (condition RetryAttemptsExhausted): MaximumRetryAttempts 2 gives 3 invokes of
    the failing batch, one document naming exactly its records, and the next record is processed."""
    ledger = new_ledger(source, "retries exhausted")
    await source.create_unit()
    failing = ["b0", "b1", "b2"]
    positions = await put(source, ledger, failing)

    def answer(batch: list[str]) -> None:
        if set(batch) & set(failing):
            raise RuntimeError("always")

    function = install(Function(source, ledger, answer))
    async with sqs_client() as sqs:
        destination = await Destination.create(sqs)
        text = config(source, source.mapping(BatchSize=10, MaximumRetryAttempts=2, **destination.config()))
        async with running(text):
            await destination.wait(1)
            positions |= await put(source, ledger, ["after0"])
            await wait_until(lambda: "after0" in function.ids(), timeout=WAIT, what="after0 invoked")
            await released_past(source, ledger, positions["after0"], "released past after0")
    assert function.batches == [failing] * 3 + [["after0"]], "1 + MaximumRetryAttempts invokes, then on"
    [document] = destination.documents
    assert destination.book(source, ledger) == [set(failing)]
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["approximateInvokeCount"] == 3
    ledger.assert_sound(max_duplicates=0, expect_dead=set(failing))


# ---------------------------------------------------------------- 6. destination down


async def test_destination_down_holds_the_position_until_the_document_lands(source: StreamSource):
    """behaviour §9.6 (if delivery to a destination fails, the checkpoint does not move; nothing lost):
    while the on-failure queue does not exist, the failed records are not released; once the queue
    exists the document lands, the records are released and the stream moves on."""
    ledger = new_ledger(source, "destination down")
    await source.create_unit()
    failing = ["x0", "x1"]
    positions = await put(source, ledger, failing)

    def answer(batch: list[str]) -> None:
        if set(batch) & set(failing):
            raise RuntimeError("always")

    function = install(Function(source, ledger, answer))
    async with sqs_client() as sqs:
        destination = Destination(sqs, f"conf-late-{uuid.uuid4().hex[:10]}")  # not created yet
        text = config(source, source.mapping(BatchSize=10, MaximumRetryAttempts=0, **destination.config()))
        async with running(text) as daemon:
            async def retried_or_released() -> bool:
                # Two failed deliveries (so one retry), or the position released past x0 (the rule broken).
                at = await released(source, ledger)
                return (daemon.total("esm_on_failure_destination_delivery_errors_total") >= 2
                        or (at is not None and at >= positions["x0"]))

            async with sampling(source, ledger) as while_down:
                await wait_until(retried_or_released, timeout=WAIT, what="two failed deliveries", interval=0.1)
            assert while_down and all(p is None or p < positions["x0"] for p in while_down), \
                f"released {while_down} while the destination was down; x0 is at {positions['x0']}"
            assert daemon.total("esm_on_failure_destination_delivered_events_total") == 0
            await destination.come_up()
            await destination.wait(1)
            positions |= await put(source, ledger, ["after0"])
            await released_past(source, ledger, positions["after0"], "released past after0")
    assert "after0" in function.ids()
    assert destination.book(source, ledger) == [set(failing)]
    assert destination.documents[0]["requestContext"]["condition"] == "RetryAttemptsExhausted"
    ledger.assert_sound(max_duplicates=0, expect_dead=set(failing))


# ---------------------------------------------------------------- 7. shutdown mid-batch


@pytest.mark.parametrize("slow", ["finishes", "fails", "abandoned"])
async def test_shutdown_mid_batch_loses_nothing(source: StreamSource, slow: str):
    """behaviour §9.6 (at least once, nothing lost: a record leaves the source only once processed), behaviour §0
    (streams resume from the last checkpoint) and docs/design.md (shutdown_timeout drains in-flight batches):
    the daemon is stopped while the function holds a batch — one that succeeds within the drain, one
    that fails within it (its retry is left to the next run), or one still running when the drain
    ends. No released position ever covers a record the function had not processed; a batch that
    succeeded within the drain is released; restarted, the mapping resumes right after the released
    position and every record is processed."""
    ledger = new_ledger(source, f"shutdown mid-batch ({slow})")
    await source.create_unit()
    ids = [f"r{i}" for i in range(8)]
    positions = await put(source, ledger, ids)
    order = [positions[i] for i in ids]

    async def first_run(batch: list[str]) -> None:
        if len(function.batches) == 2:  # the second batch: the daemon is stopped while it runs
            if slow == "abandoned":
                await never(batch)
            await asyncio.sleep(1.0)
            if slow == "fails":
                raise RuntimeError("failed while the daemon stops: to be retried, not released")

    function = install(Function(source, ledger, first_run))
    text = config(source, source.mapping(BatchSize=2), shutdown_timeout=3)
    async with sampling(source, ledger):
        async with running(text):
            await wait_until(lambda: len(function.batches) == 2 and function.in_flight == 1, timeout=WAIT,
                             what="the second batch in flight")
        stopped_at = await released(source, ledger)

    second = install(Function(source, ledger))
    async with sampling(source, ledger):
        async with running(text):
            await released_past(source, ledger, positions["r7"], "released past r7")
    assert set(ids) <= set(function.ids()) | set(second.ids())
    resumed_at = 0 if stopped_at is None else order.index(stopped_at) + 1
    assert second.batches[0][0] == ids[resumed_at], f"released through {stopped_at}, resumed at {second.batches[0]}"
    if slow == "finishes":
        assert stopped_at is not None and stopped_at >= positions[function.batches[1][-1]], \
            "a batch that finished within the drain is released"
    ledger.assert_sound()


# ---------------------------------------------------------------- 5. record age (last: see the module docstring)


async def test_records_older_than_the_maximum_age_go_to_the_destination(source: StreamSource):
    """behaviour §3 (streams: records are retried until they exceed MaximumRecordAgeInSeconds, then
    discarded to the on-failure destination and processing continues), behaviour §9.3 and behaviour §4 "Recorded
    against real AWS" (condition RecordAgeExceeded; no responseContext; approximateInvokeCount 1 for a
    record that expired before its first invoke): records already older than the age are never
    invoked, land in the destination, and do not hold up the records after them."""
    if not source.capabilities.record_age:
        # The source does not offer MaximumRecordAgeInSeconds: the mapping must be refused.
        with pytest.raises(Exception, match="MaximumRecordAgeInSeconds"):
            async with running(config(source, source.mapping(MaximumRecordAgeInSeconds=60))):
                pass
        return
    ledger = new_ledger(source, "record age")
    old = list(AGED_IDS)
    old_positions = await source.put_old(list(AGED_PAYLOADS), older_than=60)
    for record_id, position in zip(old, old_positions):
        ledger.produce(record_id, ORDER_KEY, UNIT, position)
    positions = await put(source, ledger, ["fresh0", "fresh1"])

    function = install(Function(source, ledger))
    async with sqs_client() as sqs:
        destination = await Destination.create(sqs)
        text = config(source, source.mapping(BatchSize=10, MaximumRecordAgeInSeconds=60, **destination.config()))
        async with running(text):
            await released_past(source, ledger, positions["fresh1"], "released past fresh1")
            await wait_until(lambda: ledger.delivered >= {"fresh0", "fresh1"}, timeout=WAIT, what="fresh invoked")
            await destination.collect(lambda: set(old) <= set().union(*destination.named(source, ledger)),
                                      "the old records in on-failure documents")
    assert function.ids() == ["fresh0", "fresh1"], "old records are never invoked; the fresh ones are"
    named = destination.book(source, ledger)
    assert set().union(*named) == set(old) and sum(len(n) for n in named) == len(old)
    for document in destination.documents:
        assert document["requestContext"]["condition"] == "RecordAgeExceeded"
        assert "responseContext" not in document
        assert document["requestContext"]["approximateInvokeCount"] == 1
    ledger.assert_sound(max_duplicates=0, expect_dead=set(old))

