"""The fault matrix for the Kafka source (issue 8; behaviour §3, §9.4, §9.6). esm reads the broker through its
PROXIED listener, which advertises a toxiproxy port (KAFKA_PROXIED_BOOTSTRAP), so every connection
esm makes to the broker, bootstrap and reconnects alike, crosses the proxy. The group's committed
offsets are watched while each scenario runs: a commit never passes a record that was neither
processed nor delivered to the on-failure destination; order holds per partition.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer

from esm.sources.kafka.source import _stop_consumer
from tests.fault.function import every_nth_times_out, garbage_first_then_ok, poison, slow, storm
from tests.fault.scenario import Run, run_scenario
from tests.fault.sides import KafkaSide, ids_and_keys
from tests.support.kafka import create_topic, kafka_admin, produce_bulk, unique
from tests.support.kafka import quick_group  # noqa: F401  (autouse: the group's quick timings)
from tests.support.toxiproxy import Toxiproxy
from tests.support.waiting import wait_until


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


# ---------------------------------------------------------------- stopping while the broker is away

BACKOFF_MS = 2000  # a failed fetch sleeps this long: stop() surely finds the fetch request in its backoff


async def _fetching_then_cut_off(topic: str, proxy: Any, caplog: pytest.LogCaptureFixture) -> AIOKafkaConsumer:
    """A group consumer through the broker's proxy that has read the topic; then the broker goes
    away and the consumer's fetcher fails a fetch and sleeps in its retry backoff."""
    await proxy.enable()
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=os.environ["KAFKA_PROXIED_BOOTSTRAP"], group_id=unique("away"),
                                enable_auto_commit=False, auto_offset_reset="earliest", retry_backoff_ms=BACKOFF_MS)
    await consumer.start()
    read = 0
    while read < 3:
        read += sum(len(batch) for batch in (await consumer.getmany(timeout_ms=1000)).values())
    caplog.clear()
    await proxy.disable()
    await wait_until(lambda: any("Failed fetch messages" in r.getMessage() for r in caplog.records), 60,
                     "a fetch failed (its request now sleeps in the retry backoff)")
    return consumer


async def test_kafka_consumer_stops_cleanly_while_the_broker_is_away(caplog):
    """Graceful shutdown (docs/operations.md: SIGTERM ... closes its clients and exits 0) with the
    broker unreachable, as during a broker restart. aiokafka's `stop()` cancels its pending fetch
    requests and awaits them, and one sleeping in its retry backoff lets that CancelledError out of
    `stop()` (first consumer: the precondition). esm's stop swallows it, since this task is not the
    one cancelled, and closes the client. Regression: the nemesis (seed 2026) SIGTERMed a replica
    during a broker restart, and esm exited 1 with that CancelledError's traceback."""
    caplog.set_level(logging.ERROR, logger="aiokafka.consumer.fetcher")
    async with kafka_admin() as admin:
        topic = await create_topic(admin, partitions=1, prefix="away")
    await produce_bulk(topic, [b"r1", b"r2", b"r3"])
    async with Toxiproxy.from_env() as toxi, \
            toxi.proxy("kafka-away", os.environ["KAFKA_PROXIED_UPSTREAM"],
                       listen=os.environ["KAFKA_PROXIED_BOOTSTRAP"]) as proxy:
        plain = await _fetching_then_cut_off(topic, proxy, caplog)
        with pytest.raises(asyncio.CancelledError):
            await plain.stop()
        consumer = await _fetching_then_cut_off(topic, proxy, caplog)
        await _stop_consumer(consumer)  # returns: no CancelledError, no traceback at shutdown
        assert asyncio.current_task().cancelling() == 0  # type: ignore[union-attr]
