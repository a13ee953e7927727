"""The fault matrix's RabbitMQ side (behaviour §9.6, §9.11: at least once, nothing lost): the broker
unreachable for 30 s mid-processing, and esm SIGKILLed mid-batch then restarted. A toxiproxy proxy
of the scenario's own stands between esm and the broker; each scenario ends with the ledger's
books (tests/support/ledger.py): lost 0, duplicates bounded, the queue empty.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.fault.function import slow
from tests.fault.scenario import Run, run_scenario
from tests.fault.sides import RabbitSide, ids_and_keys

pytestmark = [pytest.mark.usefixtures("backends", "toxiproxy"), pytest.mark.slow]

DOWN_SECONDS = 30
SLOWLY = {"decide": lambda batch: slow(0.3), "max_concurrency": 2}


async def mid_processing(run: Run, delivered: int = 10) -> None:
    await run.ready.wait()
    await run.until(lambda: len(run.ledger.delivered) >= delivered and run.server.in_flight > 0,
                    what="processing under way, an invocation in flight")


async def test_rabbitmq_broker_down_30s(tmp_path, matrix):
    """behaviour §9.6, §9.11: the broker unreachable for 30 s mid-processing (every connection drops,
    new ones are refused): acknowledgements of the batch in flight fail (its deliveries go back to
    the queue with the connection), esm connects again with backoff (PollingErrorCount), and when the
    broker is back everything is processed: nothing lost, the duplicates bounded by the batches held."""
    side = RabbitSide()

    async def fault(run: Run) -> None:
        await mid_processing(run)
        assert side.proxy is not None
        async with side.proxy.down():
            await asyncio.sleep(DOWN_SECONDS)

    run = await run_scenario(side, scenario="rabbitmq/broker-down-30s", tmp_path=tmp_path, matrix=matrix,
                             records=ids_and_keys(100, 10), mapping={"BatchSize": 2}, fault=fault,
                             settle_timeout=240, max_duplicates=20, **SLOWLY)
    assert run.metric("polling_errors") > 0


async def test_rabbitmq_sigkill_mid_batch_and_restart(tmp_path, matrix):
    """behaviour §9.6, §9.11: SIGKILL during an invocation: nothing was acknowledged that was not
    processed; the broker requeues the dead connection's deliveries at once and the restarted daemon
    processes them (duplicates bounded by the batch in flight)."""
    side = RabbitSide()

    async def fault(run: Run) -> None:
        await mid_processing(run)
        run.procs.current.kill()
        run.ledger.note(f"SIGKILL with {run.server.in_flight} invocation(s) in flight")
        await asyncio.sleep(1)
        await run.procs.start()

    await run_scenario(side, scenario="rabbitmq/sigkill-mid-batch+restart", tmp_path=tmp_path, matrix=matrix,
                       records=ids_and_keys(60, 6), mapping={"BatchSize": 2}, processes=True, fault=fault,
                       settle_timeout=180, max_duplicates=10, **SLOWLY)
