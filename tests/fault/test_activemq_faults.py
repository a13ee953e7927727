"""The fault matrix's ActiveMQ side (behaviour §9.6, §9.11: at least once, nothing lost): the broker
taken away from esm for 30 s mid-processing (its proxy disabled: every connection drops, new ones
are refused), and esm SIGKILLed mid-batch and restarted. Each ends with the ledger's books
(tests/support/ledger.py): lost 0, duplicates bounded by what was in flight, the queue empty."""

from __future__ import annotations

import pytest

from tests.fault.activemq_side import ActiveMqSide
from tests.fault.scenario import Run, run_scenario
from tests.fault.sides import ids_and_keys
from tests.fault.test_slow_faults import SLOWLY, backend_down, killed_and_restarted

pytestmark = [pytest.mark.usefixtures("backends", "toxiproxy"), pytest.mark.slow]


def broker(run: Run):
    assert run.side.proxy is not None
    return run.side.proxy


async def test_activemq_broker_down_30s(tmp_path, matrix):
    """behaviour §9.6, §9.11: the broker unreachable for 30 s mid-processing: the STOMP connection
    drops, acknowledgements of the messages it carried cannot land, and esm reconnects once the
    broker is back; the broker redelivers what was not acknowledged: nothing lost, duplicates
    bounded by the messages in flight and prefetched."""
    await run_scenario(ActiveMqSide(), scenario="activemq/broker-down-30s", tmp_path=tmp_path, matrix=matrix,
                       records=ids_and_keys(100, 10), mapping={"BatchSize": 2}, fault=backend_down(broker),
                       settle_timeout=240, max_duplicates=40, **SLOWLY)


async def test_activemq_sigkill_mid_batch_and_restart(tmp_path, matrix):
    """behaviour §9.6, §9.11: SIGKILL during an invocation: nothing was acknowledged that was not
    processed; the broker redelivers what the killed process held, and the restarted one processes
    it (duplicates bounded by the batches in flight and prefetched)."""
    await run_scenario(ActiveMqSide(), scenario="activemq/sigkill-mid-batch+restart", tmp_path=tmp_path,
                       matrix=matrix, records=ids_and_keys(60, 6), mapping={"BatchSize": 2}, processes=True,
                       fault=killed_and_restarted(), settle_timeout=180, max_duplicates=20, **SLOWLY)
