"""The fault matrix for the Kinesis source (issue 8; behaviour §3, §4, §9.2, §9.6). Toxiproxy sits between esm
and kinesis-mock, the on-failure destination (ElasticMQ) and the function. Every scenario watches
the SQLite checkpoint store while it runs: a checkpoint never covers a record that was neither
processed nor delivered to the destination; order holds per partition key; lost is 0.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fault.function import (
    Item,
    every_nth_times_out,
    garbage_first_then_ok,
    partial,
    poison,
    slow,
    storm,
)
from tests.fault.scenario import Run, run_scenario
from tests.fault.sides import KinesisSide, ids_and_keys

pytestmark = pytest.mark.usefixtures("backends", "toxiproxy")


async def test_kinesis_latency_and_connection_resets(tmp_path, matrix):
    """behaviour §9.6: latency on every kinesis-mock exchange, then connections reset mid-request: reads are
    retried from where they were (no record skipped, none out of order per key), checkpoints only
    cover processed records, polling errors are counted."""

    async def fault(run: Run) -> None:
        await run.proxied.kinesis.latency(200, jitter=100)
        await run.ready.wait()
        await run.until(lambda: len(run.ledger.delivered) >= 10, what="processing under way")
        # Every connection resets 100 ms in, for 10 s: more than botocore's own retries absorb, even when a
        # loaded machine slows the reader's idle polls down.
        async with run.proxied.kinesis.toxic("reset_peer", timeout=100):
            await asyncio.sleep(10)

    run = await run_scenario(KinesisSide(shards=2), scenario="kinesis/latency+connection-resets",
                             tmp_path=tmp_path, matrix=matrix, records=ids_and_keys(80, 8), fault=fault,
                             max_duplicates=0, decide=lambda batch: slow(0.2), mapping={"BatchSize": 2})
    assert run.metric("polling_errors") > 0


async def test_kinesis_function_throttle_storm(tmp_path, matrix):
    """behaviour §9.1: 429/503 from the function are invocation errors: retried with backoff, never counted
    against MaximumRetryAttempts (0 here), so nothing is dead-lettered and nothing lost."""
    run = await run_scenario(KinesisSide(), scenario="kinesis/function-429-503-storm", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(50, 5), decide=storm(6),
                             mapping={"MaximumRetryAttempts": 0}, expect_dead=[], max_duplicates=0)
    assert run.metric("invoke_errors") >= 6


async def test_kinesis_function_garbage_poison_to_destination(tmp_path, matrix):
    """behaviour §3/§4/§9.2: garbage answers fail the batch; with bisect the failing records are isolated, good
    records succeed on retry, poison records exhaust MaximumRetryAttempts and go to the SQS
    destination (exactly those); the checkpoint passes a poison record only after it landed."""
    bad = {"r0004", "r0013", "r0021"}
    run = await run_scenario(KinesisSide(), scenario="kinesis/function-garbage+poison-destination",
                             tmp_path=tmp_path, matrix=matrix, records=ids_and_keys(30, 3),
                             decide=garbage_first_then_ok(bad),
                             mapping={"MaximumRetryAttempts": 1, "BisectBatchOnFunctionError": True},
                             expect_dead=sorted(bad), max_duplicates=0)
    assert run.metric("destination_delivered") == len(bad)
    assert run.metric("failed_invoke") >= 30


async def test_kinesis_function_timeouts(tmp_path, matrix):
    """behaviour §9.1: a function running past its timeout is a function error; with unlimited retries the
    batch is retried until it succeeds; nothing lost, order kept."""
    run = await run_scenario(KinesisSide(), scenario="kinesis/function-timeouts", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(40, 4), decide=every_nth_times_out(3, 2.0),
                             function_timeout=1, max_duplicates=0)
    assert run.metric("failed_invoke") > 0


async def test_kinesis_function_answers_lost_and_resets(tmp_path, matrix):
    """behaviour §9.6: the function's connections reset, then its answers stop arriving: invocation errors
    and timeouts; records are retried (bounded duplicates), the checkpoint waits, nothing lost."""

    async def fault(run: Run) -> None:
        await run.ready.wait()
        await run.until(lambda: len(run.ledger.delivered) >= 5, what="processing under way")
        async with run.proxied.function.toxic("reset_peer", timeout=50, toxicity=0.5):
            await asyncio.sleep(3)
        async with run.proxied.function.toxic("timeout", timeout=0):
            await asyncio.sleep(3)

    await run_scenario(KinesisSide(), scenario="kinesis/function-resets+answers-lost", tmp_path=tmp_path,
                       matrix=matrix, records=ids_and_keys(60, 6), fault=fault, function_timeout=1,
                       decide=lambda batch: slow(0.2), mapping={"BatchSize": 2}, max_duplicates=60)


@pytest.mark.parametrize("destination", ["sqs", "s3"])
async def test_kinesis_destination_down_while_retries_run_out(tmp_path, matrix, destination):
    """behaviour §9.6: records exhaust their retries while the on-failure destination (ElasticMQ, or S3 on
    moto) is down: the delivery is retried (OnFailureDestinationDeliveryErrorCount, a log line), the
    checkpoint stays before them, and when the destination is back they land and processing goes on."""
    bad = {"r0007", "r0022"}

    async def fault(run: Run) -> None:
        proxy = run.proxied.sqs if destination == "sqs" else run.proxied.aws
        await proxy.disable()  # the destination is unreachable for esm
        await run.ready.wait()
        await run.until(lambda: run.daemon is not None and run.daemon.total(
            "esm_on_failure_destination_delivery_errors_total") >= 3, 60, "deliveries failing")
        await asyncio.sleep(2)
        await proxy.enable()

    run = await run_scenario(KinesisSide(destination=destination),
                             scenario=f"kinesis/{destination}-destination-down-during-retries", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(30, 3), decide=poison(bad), fault=fault,
                             mapping={"MaximumRetryAttempts": 1, "BisectBatchOnFunctionError": True},
                             expect_dead=sorted(bad), max_duplicates=0)
    assert run.metric("destination_errors") >= 3
    assert run.metric("destination_delivered") == len(bad)


async def test_kinesis_partial_failures_under_resets(tmp_path, matrix):
    """behaviour §3 (checkpoint at the lowest reported item) + 9.6: partial batch responses while kinesis-mock
    connections reset: everything from the first reported failure is retried, nothing lost."""

    def decide(batch: list[Item]):
        return partial({i.id for i in batch if i.id and i.attempt == 1 and int(i.id[1:]) % 7 == 3})

    async def fault(run: Run) -> None:
        await run.ready.wait()
        async with run.proxied.kinesis.toxic("reset_peer", timeout=150, toxicity=0.5):
            await asyncio.sleep(4)

    run = await run_scenario(KinesisSide(), scenario="kinesis/partial-failures+resets", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(50, 5), decide=decide, fault=fault,
                             mapping={"FunctionResponseTypes": ["ReportBatchItemFailures"]}, max_duplicates=50)
    assert run.metric("failed_invoke") > 0

