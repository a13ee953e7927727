"""The long part of the fault matrix (second CI stage, `scripts/test -m slow`; issue 8; behaviour §9.6):
a backend down for 30 seconds and back, the Kafka broker cut off as if restarted, the daemon
SIGKILLed mid-batch and restarted, SIGTERM during a Kafka rebalance.

"Broker restarted" is emulated by disabling the broker's proxy for 30 s (every connection drops,
new ones are refused, esm's consumer is evicted from its group after the session timeout) and
enabling it again: restarting the shared broker itself would disturb the other tests of the run.
"""

from __future__ import annotations

import asyncio

import pytest

import esm.sources.kafka.tuning as kafka_source
from tests.fault.function import slow
from tests.fault.scenario import Run, run_scenario
from tests.fault.sides import KafkaSide, KinesisSide, SqsSide, ids_and_keys

pytestmark = [pytest.mark.usefixtures("backends", "toxiproxy"), pytest.mark.slow]

DOWN_SECONDS = 30
# Small batches, a function that takes its time, two at once: the faults land mid-processing.
SLOWLY = {"decide": lambda batch: slow(0.3), "max_concurrency": 2}


async def mid_processing(run: Run, delivered: int = 10) -> None:
    """Wait until `delivered` records were processed and an invocation is in flight right now."""
    await run.ready.wait()
    await run.until(lambda: len(run.ledger.delivered) >= delivered and run.server.in_flight > 0,
                    what="processing under way, an invocation in flight")


def backend_down(proxy_of):
    async def fault(run: Run) -> None:
        await mid_processing(run)
        async with proxy_of(run).down():
            await asyncio.sleep(DOWN_SECONDS)

    return fault


# ---------------------------------------------------------------- a backend down for 30 s


async def test_sqs_backend_down_30s(tmp_path, matrix):
    """behaviour §9.6: ElasticMQ unreachable for 30 s mid-processing: receives fail and are retried with
    backoff (PollingErrorCount), deletes that fail leave their messages to come back (CommitErrorCount,
    bounded duplicates); after it returns everything is processed and the queue is empty."""
    run = await run_scenario(SqsSide(visibility=10), scenario="sqs/backend-down-30s", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(100, 10), mapping={"BatchSize": 2},
                             fault=backend_down(lambda run: run.proxied.sqs), settle_timeout=240,
                             max_duplicates=20, **SLOWLY)
    assert run.metric("polling_errors") > 0


async def test_kinesis_backend_down_30s(tmp_path, matrix):
    """behaviour §9.6: kinesis-mock unreachable for 30 s mid-processing: GetRecords fails and is retried
    (PollingErrorCount); reading resumes after the last record read, in order, nothing lost."""
    run = await run_scenario(KinesisSide(shards=2), scenario="kinesis/backend-down-30s", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(100, 10), mapping={"BatchSize": 2},
                             fault=backend_down(lambda run: run.proxied.kinesis), settle_timeout=240,
                             max_duplicates=0, **SLOWLY)
    assert run.metric("polling_errors") > 0


async def test_kafka_broker_down_30s_as_a_restart(tmp_path, matrix, monkeypatch, kafka_proxied):
    """behaviour §9.6: the broker unreachable for 30 s (as during a restart): esm's member is evicted from
    the group, its commits fail (CommitErrorCount) or are refused; when the broker is back it rejoins
    and resumes from the committed offsets: nothing lost, order per partition kept, the duplicates
    bounded by what was processed but not yet committed."""
    monkeypatch.setattr(kafka_source, "SESSION_TIMEOUT_MS", 6000)
    monkeypatch.setattr(kafka_source, "HEARTBEAT_INTERVAL_MS", 300)
    monkeypatch.setattr(kafka_source, "LAG_INTERVAL", 1.0)

    def broker(run: Run):
        assert run.proxied.kafka is not None
        return run.proxied.kafka

    run = await run_scenario(KafkaSide(partitions=2), scenario="kafka/broker-down-30s", tmp_path=tmp_path,
                             matrix=matrix, records=ids_and_keys(100, 4), mapping={"BatchSize": 2},
                             fault=backend_down(broker), settle_timeout=240, max_duplicates=30, **SLOWLY)
    assert run.metric("commit_errors") + run.metric("polling_errors") > 0


# ---------------------------------------------------------------- SIGKILL mid-batch, then a restart


def killed_and_restarted(delivered: int = 10):
    async def fault(run: Run) -> None:
        await mid_processing(run, delivered)
        run.procs.current.kill()
        run.ledger.note(f"SIGKILL with {run.server.in_flight} invocation(s) in flight")
        await asyncio.sleep(1)
        await run.procs.start()

    return fault


async def test_sqs_sigkill_mid_batch_and_restart(tmp_path, matrix):
    """behaviour §9.6: SIGKILL during an invocation: nothing was deleted that was not processed; the
    unacknowledged messages return after the visibility timeout and the restarted daemon processes
    them (duplicates bounded by the batches in flight)."""
    await run_scenario(SqsSide(visibility=5), scenario="sqs/sigkill-mid-batch+restart", tmp_path=tmp_path,
                       matrix=matrix, records=ids_and_keys(60, 6), mapping={"BatchSize": 2}, processes=True,
                       fault=killed_and_restarted(), settle_timeout=180, max_duplicates=10, **SLOWLY)


async def test_kinesis_sigkill_mid_batch_and_restart(tmp_path, matrix):
    """behaviour §9.6: SIGKILL during an invocation: the restarted daemon resumes from the SQLite checkpoint,
    which never covered an unprocessed record; records after it are read again (bounded duplicates),
    in order."""
    await run_scenario(KinesisSide(), scenario="kinesis/sigkill-mid-batch+restart", tmp_path=tmp_path,
                       matrix=matrix, records=ids_and_keys(60, 6), mapping={"BatchSize": 2}, processes=True,
                       fault=killed_and_restarted(), settle_timeout=180, max_duplicates=10, **SLOWLY)


async def test_kafka_sigkill_mid_batch_and_restart(tmp_path, matrix, kafka_proxied):
    """behaviour §9.6: SIGKILL during an invocation: the group's committed offsets never passed an
    unprocessed record; the restarted daemon (after the dead member's session expires) resumes from
    them, in order per partition, with bounded duplicates."""
    await run_scenario(KafkaSide(partitions=2), scenario="kafka/sigkill-mid-batch+restart", tmp_path=tmp_path,
                       matrix=matrix, records=ids_and_keys(60, 4), mapping={"BatchSize": 2}, processes=True,
                       fault=killed_and_restarted(), settle_timeout=180, max_duplicates=10, **SLOWLY)


# ---------------------------------------------------------------- SIGTERM during a rebalance


async def test_kafka_sigterm_during_rebalance(tmp_path, matrix, kafka_proxied):
    """behaviour §9.6 + graceful shutdown: a second daemon joins the group (a rebalance starts) and the first
    gets SIGTERM in the middle of it: the first finishes or abandons its in-flight batches, commits only
    what was processed, exits 0; the second takes every partition over from the committed offsets —
    nothing lost, order per partition kept."""
    exits: list[int] = []

    async def fault(run: Run) -> None:
        await mid_processing(run)
        first = run.procs.current
        await run.procs.start(wait_ready=False)  # joins the group: a rebalance begins
        # The first gives its partitions up (its revocation is logged), and the group has not
        # finished re-assigning them yet: SIGTERM now.
        await run.until(lambda: "revoked" in first.log.read_text(errors="replace"), 60, "the rebalance began")
        exits.append(await first.terminate(timeout=90))
        run.ledger.note(f"first daemon exited {exits[-1]} on SIGTERM during the rebalance")

    await run_scenario(KafkaSide(partitions=4), scenario="kafka/sigterm-during-rebalance", tmp_path=tmp_path,
                       matrix=matrix, records=ids_and_keys(80, 4), mapping={"BatchSize": 2}, processes=True,
                       fault=fault, settle_timeout=180, max_duplicates=16, **SLOWLY)
    assert exits == [0], f"the first daemon exited {exits}"


# ---------------------------------------------------------------- SIGTERM during a lease hand-over


async def test_kinesis_sigterm_during_lease_handover(tmp_path, matrix):
    """behaviour §9.6 + docs/design.md (replicas share shards through DynamoDB leases): a second replica starts
    taking leases from the first, which gets SIGTERM in the middle of the hand-over: it finishes or
    abandons its batches, checkpoints only what was processed, releases its leases, exits 0; the
    second takes every shard from the checkpoints — nothing lost, order per key kept, and no
    checkpoint (watched in the lease table) ever covered an unprocessed record."""
    exits: list[int] = []

    async def fault(run: Run) -> None:
        await mid_processing(run)
        first = run.procs.current
        second = await run.procs.start(wait_ready=False)
        await run.until(lambda: "processing shard" in second.log.read_text(errors="replace"), 120,
                        "the second replica took a lease")
        exits.append(await first.terminate(timeout=90))
        run.ledger.note(f"first replica exited {exits[-1]} on SIGTERM during the hand-over")

    await run_scenario(KinesisSide(shards=4, leases=True), scenario="kinesis/sigterm-during-lease-handover",
                       tmp_path=tmp_path, matrix=matrix, records=ids_and_keys(200, 8), mapping={"BatchSize": 2},
                       processes=True, fault=fault, settle_timeout=240, max_duplicates=20, **SLOWLY)
    assert exits == [0], f"the first replica exited {exits}"
