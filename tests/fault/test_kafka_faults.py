"""The fault matrix for the Kafka source (issue 8; behaviour §3, §9.4, §9.6). esm reads the broker through its
PROXIED listener, which advertises a toxiproxy port (KAFKA_PROXIED_BOOTSTRAP), so every connection
esm makes to the broker, bootstrap and reconnects alike, crosses the proxy. The group's committed
offsets are watched while each scenario runs: a commit never passes a record that was neither
processed nor delivered to the on-failure destination; order holds per partition.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.fault.function import every_nth_times_out, garbage_first_then_ok, poison, slow, storm
from tests.fault.scenario import Run, run_scenario
from tests.fault.sides import KafkaSide, ids_and_keys
from tests.support.kafka import quick_group  # noqa: F401  (autouse: the group's quick timings)


pytestmark = pytest.mark.usefixtures("backends", "toxiproxy", "kafka_proxied")


# A rebalance (a heartbeat late on a loaded machine) makes the batches in flight be read again:
# duplicates within what two partitions can have in flight, never a loss.
REREAD = 20



async def test_kafka_latency_and_connection_resets(tmp_path, matrix, caplog):
    """behaviour §9.6: latency on every broker exchange, then connections reset mid-request (fetches,
    commits, heartbeats): the consumer reconnects through the advertised (proxied) address, commits
    only what was processed, nothing is lost and each partition stays in order. The resets are
    retried inside the Kafka client, so what shows them is its log lines (no esm counter moves
    unless a commit or a poll fails outright)."""
    caplog.set_level(logging.WARNING, logger="aiokafka")

    async def fault(run: Run) -> None:
        assert run.proxied.kafka is not None
        await run.proxied.kafka.latency(100, jitter=50)
        await run.ready.wait()
        await run.until(lambda: len(run.ledger.delivered) >= 10, what="processing under way")
        async with run.proxied.kafka.toxic("reset_peer", timeout=200):
            await asyncio.sleep(5)

    await run_scenario(KafkaSide(), scenario="kafka/latency+connection-resets", tmp_path=tmp_path, matrix=matrix,
                       records=ids_and_keys(80, 4), decide=lambda batch: slow(0.2), fault=fault,
                       mapping={"BatchSize": 2}, max_duplicates=80)
    assert any(r.name.startswith("aiokafka") and r.levelno >= logging.WARNING and "closed" in r.getMessage()
               for r in caplog.records), "the resets must show in a log line"


async def test_kafka_function_throttle_storm(tmp_path, matrix):
    """behaviour §9.1: 429/503 answers are invocation errors, retried without counting against
    MaximumRetryAttempts (0 here): nothing is dead-lettered, nothing lost."""
    run = await run_scenario(KafkaSide(), scenario="kafka/function-429-503-storm", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(40, 4), decide=storm(8),
                             mapping={"MaximumRetryAttempts": 0}, expect_dead=[], max_duplicates=REREAD)
    assert run.metric("invoke_errors") >= 8


async def test_kafka_function_garbage_poison_to_destination(tmp_path, matrix):
    """behaviour §3/§4/§9.2: garbage answers fail the batch; bisect isolates the failing records; poison ones
    exhaust their retries and go to the SQS destination (exactly those); the commit passes them only
    after they landed."""
    bad = {"r0005", "r0014", "r0026"}
    run = await run_scenario(KafkaSide(), scenario="kafka/function-garbage+poison-destination", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(32, 4), decide=garbage_first_then_ok(bad),
                             mapping={"MaximumRetryAttempts": 1, "BisectBatchOnFunctionError": True},
                             expect_dead=sorted(bad), max_duplicates=REREAD)
    assert run.metric("destination_delivered") == len(bad)


async def test_kafka_function_timeouts(tmp_path, matrix):
    """behaviour §9.1: a function running past its timeout is a function error, retried; nothing lost."""
    run = await run_scenario(KafkaSide(), scenario="kafka/function-timeouts", tmp_path=tmp_path, matrix=matrix,
                             records=ids_and_keys(40, 4), decide=every_nth_times_out(3, 2.0), function_timeout=1,
                             max_duplicates=REREAD)
    assert run.metric("failed_invoke") > 0


async def test_kafka_destination_down_while_retries_run_out(tmp_path, matrix):
    """behaviour §9.6: records exhaust their retries while the SQS destination is down: deliveries are retried
    and counted, the commit stays before them; once the destination is back they land."""
    bad = {"r0006", "r0019"}

    async def fault(run: Run) -> None:
        await run.proxied.sqs.disable()
        await run.ready.wait()
        await run.until(lambda: run.daemon is not None and run.daemon.total(
            "esm_on_failure_destination_delivery_errors_total") >= 3, 60, "deliveries failing")
        await asyncio.sleep(2)
        await run.proxied.sqs.enable()

    run = await run_scenario(KafkaSide(), scenario="kafka/destination-down-during-retries", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(32, 4), decide=poison(bad), fault=fault,
                             mapping={"MaximumRetryAttempts": 1, "BisectBatchOnFunctionError": True},
                             expect_dead=sorted(bad), max_duplicates=REREAD)
    assert run.metric("destination_errors") >= 3
    assert run.metric("destination_delivered") == len(bad)
