"""The fault matrix for the SQS source (issue 8; behaviour §9.6: at least once, nothing lost, every
failure visible in a metric and a log line). Toxiproxy sits between esm and ElasticMQ and between
esm and the function (tests/fault/function.py); each scenario ends with the books of
tests/support/ledger.py: lost must be 0, duplicates bounded, FIFO order per group, queue empty.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fault.function import Item, every_nth_times_out, garbage_first_then_ok, partial, slow, storm
from tests.fault.scenario import Run, run_scenario
from tests.fault.sides import SqsSide, ids_and_keys

pytestmark = pytest.mark.usefixtures("backends", "toxiproxy")

# A delete that lands after a short visibility timeout (a loaded machine) means one more delivery.
LATE_DELETES = 10
# Small batches, a function that takes its time, two at once: the faults land mid-processing.
SLOWLY = {"decide": lambda batch: slow(0.25), "mapping": {"BatchSize": 2}, "max_concurrency": 2}


async def test_sqs_latency_spikes(tmp_path, matrix):
    """behaviour §9.6: 250 ms (±150) on every ElasticMQ and function exchange loses nothing and duplicates nothing."""

    async def fault(run: Run) -> None:
        for proxy in (run.proxied.sqs, run.proxied.function):
            await proxy.latency(250, jitter=150)

    await run_scenario(SqsSide(visibility=30), scenario="sqs/latency-spikes", tmp_path=tmp_path, matrix=matrix,
                       records=ids_and_keys(60, 6), fault=fault, max_duplicates=0)


async def test_sqs_connection_resets_mid_request(tmp_path, matrix):
    """behaviour §9.6: ElasticMQ connections reset mid-request (receives, deletes) for a while: no message is
    lost (an unanswered receive or delete only means a redelivery after the visibility timeout), the
    errors are counted, duplicates stay bounded by the messages in flight."""

    async def fault(run: Run) -> None:
        await run.ready.wait()
        await run.until(lambda: len(run.ledger.delivered) >= 10, what="processing under way")
        # Every connection for 6 s: more than botocore's own retries absorb, so esm must see errors.
        async with run.proxied.sqs.toxic("reset_peer", timeout=300, stream="downstream"):
            await asyncio.sleep(6)

    run = await run_scenario(SqsSide(visibility=4), scenario="sqs/connection-resets", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(80, 8), fault=fault, max_duplicates=80,
                             **SLOWLY)
    assert run.metric("polling_errors") + run.metric("commit_errors") + run.ledger.duplicated() > 0, \
        "the resets must have cost something visible"



async def test_sqs_fifo_order_under_resets_and_latency(tmp_path, matrix):
    """behaviour §3 (FIFO order per MessageGroupId) + 9.6: with latency and connection resets on ElasticMQ,
    each group's messages are still processed in order and none is lost."""

    async def fault(run: Run) -> None:
        await run.proxied.sqs.latency(100, jitter=50)
        await run.ready.wait()
        await run.until(lambda: len(run.ledger.delivered) >= 5, what="processing under way")
        async with run.proxied.sqs.toxic("reset_peer", timeout=200, toxicity=0.5):
            await asyncio.sleep(5)

    await run_scenario(SqsSide(fifo=True, visibility=4), scenario="sqs-fifo/resets+latency", tmp_path=tmp_path,
                       matrix=matrix, records=ids_and_keys(60, 4), fault=fault, max_duplicates=60, **SLOWLY)


# ---------------------------------------------------------------- the function misbehaves


async def test_sqs_function_throttle_storm(tmp_path, matrix):
    """behaviour §9.1/§9.6: a storm of 429/503 answers is an invocation error: retried with backoff while the
    messages are ours, returned to the queue otherwise; nothing lost, the errors counted."""
    run = await run_scenario(SqsSide(visibility=5), scenario="sqs/function-429-503-storm", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(50, 5), decide=storm(30), max_duplicates=LATE_DELETES)
    assert run.metric("invoke_errors") >= 30


async def test_sqs_function_garbage_and_poison_to_dlq(tmp_path, matrix):
    """behaviour §3 (invalid JSON response = failed invoke) + SQS redrive: records answered with garbage the
    first time are redelivered and processed; poison records that always get garbage end in the
    queue's redrive DLQ after maxReceiveCount; nothing lost, failures counted."""
    poison = {"r0003", "r0011", "r0017", "r0024"}
    run = await run_scenario(SqsSide(visibility=2, max_receive=3), scenario="sqs/function-garbage+poison-dlq",
                             tmp_path=tmp_path, matrix=matrix, records=ids_and_keys(30, 3),
                             decide=garbage_first_then_ok(poison),
                             mapping={"BatchSize": 1}, expect_dead=sorted(poison), max_duplicates=LATE_DELETES)
    assert run.metric("failed_invoke") >= 30 + 2 * len(poison)


async def test_sqs_function_timeouts(tmp_path, matrix):
    """behaviour §9.1: a function that runs past its timeout is a function error; its messages return after
    the visibility timeout and are processed then; nothing lost."""
    run = await run_scenario(SqsSide(visibility=4), scenario="sqs/function-timeouts", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(40, 4), decide=every_nth_times_out(3, 2.5),
                             function_timeout=1,
                             max_duplicates=LATE_DELETES)
    assert run.metric("failed_invoke") > 0


async def test_sqs_function_connection_resets(tmp_path, matrix):
    """behaviour §9.1/§9.6: the function's connections reset mid-request: an invocation error, retried; an
    answer lost on the way back means a redelivery (a bounded duplicate), never a loss."""

    async def fault(run: Run) -> None:
        await run.ready.wait()
        await run.until(lambda: len(run.ledger.delivered) >= 5, what="processing under way")
        async with run.proxied.function.toxic("reset_peer", timeout=50, toxicity=0.5):
            await asyncio.sleep(5)

    await run_scenario(SqsSide(visibility=4), scenario="sqs/function-connection-resets", tmp_path=tmp_path,
                       matrix=matrix, records=ids_and_keys(60, 6), fault=fault, max_duplicates=60, **SLOWLY)


async def test_sqs_function_answers_lost(tmp_path, matrix):
    """behaviour §9.6: the function processes but its answers never arrive (toxiproxy `timeout` downstream):
    esm's invoke timeout makes it a failure, the messages come back and are processed again —
    duplicates (counted, bounded by the batches in flight), nothing lost."""

    async def fault(run: Run) -> None:
        await run.ready.wait()
        await run.until(lambda: len(run.ledger.delivered) >= 5, what="processing under way")
        async with run.proxied.function.toxic("timeout", timeout=0, stream="downstream"):
            await asyncio.sleep(3)

    await run_scenario(SqsSide(visibility=4), scenario="sqs/function-answers-lost", tmp_path=tmp_path,
                       matrix=matrix, records=ids_and_keys(60, 6), fault=fault, function_timeout=1,
                       max_duplicates=60, **SLOWLY)


async def test_sqs_partial_failures_under_latency(tmp_path, matrix):
    """behaviour §3 (ReportBatchItemFailures) + 9.6: reported failures stay on the queue and come back; the
    rest is deleted; with latency on every exchange nothing is lost and nothing processed twice."""

    def decide(batch: list[Item]):
        return partial({i.id for i in batch if i.id and i.attempt == 1 and int(i.id[1:]) % 4 == 0})

    async def fault(run: Run) -> None:
        await run.proxied.sqs.latency(150, jitter=100)

    run = await run_scenario(SqsSide(visibility=3), scenario="sqs/partial-failures+latency", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(40, 4), decide=decide, fault=fault,
                             mapping={"FunctionResponseTypes": ["ReportBatchItemFailures"]},
                             max_duplicates=LATE_DELETES)
    assert run.metric("failed_invoke") >= 10

