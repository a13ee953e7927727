"""The queue conformance table: each row is one rule of behaviour §3, §5 and §9 that every queue
source keeps, run once per queue source (the `queue` parameter, tests/conformance/queues.py).

Each row runs esm through its public surface only: a config document and the daemon
(tests/support/daemon.py), the in-process function of tests/conformance/function.py, and what the
queue shows (records waiting, records held by a consumer). Every row ends with the ledger's books
(tests/support/ledger.py, behaviour §9.6): nothing lost, and order kept where the queue keeps it.

A record that must come back does so when its hold runs out (SQS's visibility timeout): such rows
use a short hold. Rows that prove a record was settled, or handed back at once, use a hold longer
than any wait of the row, so a record left held would still be there when the row looks.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import yaml

from tests.conformance.function import FUNCTIONS, Failed, Function, Raw, install, never
from tests.conformance.queues import Held, QueueAdapter
from tests.support.daemon import running
from tests.support.ledger import Ledger, payload
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("backends")

WAIT = 45.0  # the most any single condition may take before the row fails
SHORT_HOLD = 2  # seconds: records that must come back do so quickly
LONG_HOLD = 120  # seconds: longer than any wait, so a record left held is still held when the row looks
KEY = "q"  # the ledger key of records on a queue that keeps no order


# ---------------------------------------------------------------- the row's tools


def config(mapping: dict[str, Any], **top: Any) -> str:
    document = {"functions": FUNCTIONS, "event_source_mappings": [mapping],
                "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 10, "startup_timeout": 30, **top}
    return yaml.safe_dump(document, sort_keys=False)


def new_ledger(queue: QueueAdapter, row: str, *, ordered: bool = False) -> Ledger:
    return Ledger(scenario=f"queue conformance {row}", source=queue.name, ordered=ordered)


async def put(queue: QueueAdapter, ledger: Ledger, ids: list[str], *, group: str | None = None,
              book: bool = True, **extra: Any) -> None:
    """Put one record per id (a ledger payload with `extra` fields; its key is the group). Booked in
    the ledger unless `book` is false (records a filter drops: the function must never have them)."""
    key = group or KEY
    await queue.put([payload(i, key, **extra) for i in ids], group=group)
    if book:
        for record_id in ids:
            ledger.produce(record_id, key)


async def holds(queue: QueueAdapter, expected: Held, what: str) -> None:
    async def reached() -> bool:
        return await queue.held() == expected

    await wait_until(reached, timeout=WAIT, what=what, interval=0.2)


async def processed(ledger: Ledger, ids: list[str], what: str) -> None:
    await wait_until(lambda: ledger.delivered >= set(ids), timeout=WAIT, what=what)


def partial_responses(queue: QueueAdapter) -> dict[str, Any]:
    """FunctionResponseTypes asking for partial batch responses, where the queue source takes them."""
    return {"FunctionResponseTypes": ["ReportBatchItemFailures"]} if queue.capabilities.partial_responses else {}


def invokes_holding(function: Function, record_id: str) -> int:
    return sum(record_id in batch for batch in function.batches)


# ---------------------------------------------------------------- 1. filter settle


async def test_filtered_records_are_settled_without_being_invoked(queue: QueueAdapter):
    """behaviour §3 (SQS: non-matching filtered messages are deleted) and §5: the records
    FilterCriteria rejects never reach the function and leave the queue for good: once the kept
    records are processed the queue holds nothing, waiting or held (the hold outlasts the row)."""
    ledger = new_ledger(queue, "filter settle")
    await queue.create_queue(hold=LONG_HOLD)
    await put(queue, ledger, ["keep0"], kind="keep")
    await put(queue, ledger, ["skip1", "skip2"], kind="skip", book=False)
    await put(queue, ledger, ["keep3"], kind="keep")
    pattern = json.dumps(queue.data_pattern("kind", ["keep"]))

    function = install(Function(queue, ledger))
    async with running(config(queue.mapping(FilterCriteria={"Filters": [{"Pattern": pattern}]}))) as daemon:
        await processed(ledger, ["keep0", "keep3"], "the kept records processed")
        await daemon.wait_total("esm_filtered_out_events_total", 2)
        await holds(queue, Held(0, 0), "the filtered records settled")
    assert sorted(function.ids()) == ["keep0", "keep3"]
    ledger.assert_sound(max_duplicates=0, expect_dead=())


# ---------------------------------------------------------------- 2. partial batch response


@pytest.mark.queue_capability("partial_responses")
async def test_partial_batch_response_returns_only_the_failed_records(queue: QueueAdapter):
    """behaviour §3 (ReportBatchItemFailures on a queue: the records not listed are settled, the
    listed ones come back when their hold runs out): reporting r4 and r2 brings back exactly those
    two, invoked once more; every other record is invoked once."""
    ledger = new_ledger(queue, "partial batch response")
    await queue.create_queue(hold=SHORT_HOLD)
    ids = [f"r{i}" for i in range(6)]
    await put(queue, ledger, ids)
    failing, reported = ("r4", "r2"), set()

    def answer(batch: list[str]) -> Failed | None:
        first_time = [i for i in failing if i in batch and i not in reported]
        reported.update(first_time)
        return Failed(tuple(first_time)) if first_time else None

    function = install(Function(queue, ledger, answer))
    text = config(queue.mapping(BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"]))
    async with running(text):
        await processed(ledger, ids, "every record processed")
        await holds(queue, Held(0, 0), "the queue emptied")
    assert {i: invokes_holding(function, i) for i in ids} == {i: 2 if i in failing else 1 for i in ids}, \
        "only the reported records came back"
    ledger.assert_sound(max_duplicates=0, expect_dead=())


# ---------------------------------------------------------------- 3. function error


async def test_a_function_error_returns_the_whole_batch(queue: QueueAdapter):
    """behaviour §3 (a function error is a complete failure, even with ReportBatchItemFailures; on a
    queue the whole batch returns when its hold runs out): every record of a batch the function
    failed comes back and is invoked again; none is settled as processed by the failed invoke."""
    ledger = new_ledger(queue, "function error")
    await queue.create_queue(hold=SHORT_HOLD)
    ids = [f"e{i}" for i in range(4)]
    await put(queue, ledger, ids)
    failed_once: set[str] = set()

    def answer(batch: list[str]) -> None:
        if not set(batch) <= failed_once:
            failed_once.update(batch)
            raise RuntimeError("function error")

    function = install(Function(queue, ledger, answer))
    text = config(queue.mapping(BatchSize=10, **partial_responses(queue)))
    async with running(text):
        await processed(ledger, ids, "every record processed after its batch came back")
        await holds(queue, Held(0, 0), "the queue emptied")
    assert all(invokes_holding(function, i) >= 2 for i in ids), f"a failed record not invoked again: {function.batches}"
    ledger.assert_sound(max_duplicates=0, expect_dead=())


# ---------------------------------------------------------------- 4. ordered groups


@pytest.mark.queue_capability("ordered_groups")
async def test_an_ordered_group_waits_behind_its_failed_record(queue: QueueAdapter):
    """behaviour §3 (FIFO: in order per group; the function should stop at its first failure and
    return the failed and all unprocessed records; all retries of the affected records complete
    before more records of that group are received): a partial batch response naming only a1 still
    brings back a2 after it, and both are invoked again, in order; group b is not held up."""
    ledger = new_ledger(queue, "ordered group", ordered=True)
    await queue.create_queue(hold=SHORT_HOLD, ordered=True)
    group_a, group_b = ["a0", "a1", "a2"], ["b0", "b1"]
    await put(queue, ledger, group_a, group="a")
    await put(queue, ledger, group_b, group="b")
    reported: list[str] = []

    def answer(batch: list[str]) -> Failed | None:
        if "a1" in batch and not reported:
            reported.append("a1")
            return Failed(("a1",))  # a2 is answered as processed: the queue must not settle it before a1
        return None

    function = install(Function(queue, ledger, answer))
    text = config(queue.mapping(BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"]))
    async with running(text):
        await processed(ledger, group_a + group_b, "every record processed")
        await holds(queue, Held(0, 0), "the queue emptied")
    assert {i: invokes_holding(function, i) for i in group_a + group_b} == {
        "a0": 1, "a1": 2, "a2": 2, "b0": 1, "b1": 1}, f"a2 did not wait behind a1: {function.batches}"
    ledger.assert_sound(max_duplicates=1, expect_dead=())  # a2's first answer counted as processed


# ---------------------------------------------------------------- 5. the hold


@pytest.mark.queue_capability("hold_deadline")
async def test_a_record_held_past_its_hold_comes_back(queue: QueueAdapter):
    """behaviour §1 (a function timeout above the queue's visibility timeout: a batch may be handed
    out again while it is still being processed) and §3: a record is a consumer's only for its hold;
    still unsettled when the hold runs out (its function has not answered), it is handed out again
    and invoked again while the first invoke still runs."""
    ledger = new_ledger(queue, "hold deadline")
    await queue.create_queue(hold=SHORT_HOLD)
    await put(queue, ledger, ["h0"])
    again = asyncio.Event()
    running_at_second: list[int] = []

    async def answer(batch: list[str]) -> None:
        if len(function.batches) == 1:
            await asyncio.wait_for(again.wait(), WAIT)  # answers only once the record came back
        else:
            running_at_second.append(function.in_flight)
            again.set()

    function = install(Function(queue, ledger, answer))
    async with running(config(queue.mapping(BatchSize=10))):
        await wait_until(lambda: invokes_holding(function, "h0") == 2 and function.in_flight == 0,
                         timeout=WAIT, what="h0 invoked again")
        await holds(queue, Held(0, 0), "the queue emptied")
    assert running_at_second == [2], "handed out again while the first invoke still ran"
    ledger.assert_sound(max_duplicates=1, expect_dead=())


# ---------------------------------------------------------------- 6. invalid response


@pytest.mark.queue_capability("partial_responses")
@pytest.mark.parametrize("response", [
    {"batchItemFailures": [{"itemIdentifier": "not-in-the-batch"}]},
    {"batchItemFailures": [{"itemIdentifier": ""}]},
    {"batchItemFailures": [{"itemIdentifier": None}]},
    {"batchItemFailures": [{"id": "wrong-key"}]},
], ids=["unknown", "empty", "null", "wrong-key"])
async def test_an_invalid_function_response_fails_the_whole_batch(queue: QueueAdapter, response: dict[str, Any]):
    """behaviour §3 (a partial batch response naming an itemIdentifier that is "", null, under a wrong
    key or not in the batch is a complete failure): every record of the batch comes back and is
    invoked again; none is settled by the invalid answer."""
    ledger = new_ledger(queue, "invalid response")
    await queue.create_queue(hold=SHORT_HOLD)
    ids = [f"v{i}" for i in range(3)]
    await put(queue, ledger, ids)
    answered: set[str] = set()

    def answer(batch: list[str]) -> Raw | None:
        if not set(batch) <= answered:
            answered.update(batch)
            return Raw(response)
        return None

    function = install(Function(queue, ledger, answer))
    text = config(queue.mapping(BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"]))
    async with running(text):
        await processed(ledger, ids, "every record processed after the invalid answer")
        await holds(queue, Held(0, 0), "the queue emptied")
    assert all(invokes_holding(function, i) >= 2 for i in ids), f"a record not invoked again: {function.batches}"
    ledger.assert_sound(max_duplicates=0, expect_dead=())


# ---------------------------------------------------------------- 7. shutdown mid-batch


@pytest.mark.parametrize("stage", ["gathered", "finishes", "abandoned"])
async def test_shutdown_mid_batch_returns_what_was_in_flight(queue: QueueAdapter, stage: str):
    """behaviour §9.6 (at least once, nothing lost: a record leaves the queue only once processed)
    and docs/design.md (shutdown: gathered records are released, in-flight batches drain within
    shutdown_timeout, the rest is cancelled unacknowledged): the daemon stops while records are
    gathered but not invoked (a batching window still open): they are back on the queue at once,
    long before their hold would end; while the function holds a batch that finishes within the
    drain: it is settled; or while one is still running when the drain ends: it comes back when
    its hold runs out. Restarted, the mapping processes every record left: nothing lost."""
    ledger = new_ledger(queue, f"shutdown mid-batch ({stage})")
    await queue.create_queue(hold=10 if stage == "abandoned" else LONG_HOLD)
    ids = [f"s{i}" for i in range(4)]
    await put(queue, ledger, ids)

    async def first_run(batch: list[str]) -> None:
        if stage == "abandoned":
            await never(batch)
        await asyncio.sleep(1.0)

    function = install(Function(queue, ledger, first_run))
    if stage == "gathered":
        mapping = queue.mapping(BatchSize=10, MaximumBatchingWindowInSeconds=20)
    else:
        mapping = queue.mapping(BatchSize=2)
    # A receive under way is never abandoned (a dropped one would strand what it brings): the drain
    # outlasts one long poll, except where the row wants it to end with the function still running.
    text = config(mapping, shutdown_timeout=3 if stage == "abandoned" else 10)
    async with running(text) as daemon:
        if stage == "gathered":
            await daemon.wait_total("esm_polled_events_total", len(ids))
        else:
            await wait_until(lambda: function.in_flight >= 1, timeout=WAIT, what="a batch in flight")
    left = [i for i in ids if i not in ledger.delivered]
    if stage == "gathered":
        assert function.batches == [], "gathered, never invoked"
    if stage == "finishes":
        assert set(function.ids()) <= ledger.delivered, "a batch that finished within the drain is settled"
    await holds(queue, Held(len(left), 0), f"the {len(left)} unprocessed record(s) back on the queue")

    second = install(Function(queue, ledger))
    async with running(config(queue.mapping(BatchSize=10))):
        await processed(ledger, ids, "every record processed after the restart")
        await holds(queue, Held(0, 0), "the queue emptied")
    assert sorted(second.ids()) == left
    ledger.assert_sound(max_duplicates=0, expect_dead=())
