"""A replica (re)started while its DynamoDB lease and checkpoint store is unreachable (behaviour §9.6).

Found by the nemesis (issue 23, seed 7): a replica restarted during a short network outage to moto
exited 1 at once (StoreUnavailable from opening the store), where a source or target that is away
at startup is waited for until `startup_timeout` (exit 3 after it). The store is now waited for
the same way: these scenarios take it away through its toxiproxy proxy before the daemon starts.
"""

from __future__ import annotations

import asyncio
import logging

import pytest
import yaml

from esm.config.loading import parse_config
from esm.daemon import StartupTimeout, run_daemon
from esm.observability.metrics import Metrics
from tests.fault.function import FunctionServer
from tests.fault.harness import config_doc, proxies
from tests.fault.sides import KinesisSide, ids_and_keys
from tests.support.ledger import Ledger
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("backends", "toxiproxy")


async def test_a_lease_store_away_at_startup_is_waited_for(tmp_path, caplog, matrix):
    """The store refuses connections when the daemon starts: it retries (a warning each time) instead
    of exiting, becomes ready once the store is back, and processes every record in order."""
    caplog.set_level(logging.WARNING, logger="esm.daemon")
    ledger = Ledger("kinesis/lease-store-away-at-startup", "kinesis", ordered=True)
    side = KinesisSide(destination=None, leases=True)
    async with FunctionServer(ledger) as server, side.made(), proxies(server.url) as proxied:
        doc = config_doc(side.mapping(proxied), proxied, tmp_path=tmp_path)
        doc["checkpoints"] = side.checkpoints(tmp_path)
        await side.produce(ledger, ids_and_keys(20, 4))
        stop, ready = asyncio.Event(), asyncio.Event()
        await proxied.aws.disable()
        task = asyncio.create_task(run_daemon(parse_config(yaml.safe_dump(doc)), stop=stop, metrics=Metrics(),
                                              ready=ready))
        try:
            await wait_until(lambda: task.done() or "checkpoint store unavailable" in caplog.text, 60,
                             "the daemon retries the store")
            assert not task.done(), f"the daemon ended while the store was away: {task.exception()!r}"
            await proxied.aws.enable()
            await wait_until(lambda: task.done() or ready.is_set(), 90, "the daemon ready once the store is back")
            assert not task.done(), f"the daemon ended: {task.exception()!r}"
            await wait_until(lambda: not ledger.lost(), 90, "every record processed")
        finally:
            stop.set()
            await asyncio.wait_for(task, 60)
    matrix(ledger)
    ledger.assert_sound(max_duplicates=0)


async def test_a_lease_store_away_for_the_whole_startup_timeout_is_exit_3(tmp_path):
    """The store stays away: after `startup_timeout` the start ends with StartupTimeout (exit 3),
    naming the store."""
    ledger = Ledger("kinesis/lease-store-away-past-startup-timeout", "kinesis", ordered=True)
    side = KinesisSide(destination=None, leases=True)
    async with FunctionServer(ledger) as server, side.made(), proxies(server.url) as proxied:
        doc = config_doc(side.mapping(proxied), proxied, tmp_path=tmp_path, startup_timeout=3)
        doc["checkpoints"] = side.checkpoints(tmp_path)
        async with proxied.aws.down():
            with pytest.raises(StartupTimeout, match="checkpoint store still unreachable"):
                await asyncio.wait_for(run_daemon(parse_config(yaml.safe_dump(doc)), stop=asyncio.Event(),
                                                  metrics=Metrics()), 120)
