"""SQS provisioned mode against ElasticMQ (issue 13.6; behaviour §6 ProvisionedPollers, behaviour §7 scaling).

The floor and the ceiling are read from the `esm_provisioned_pollers` gauge and from the poller
tasks the daemon runs (it runs in the test's event loop); the ramp is a count of concurrent
invokes sampled by the test's own handler at the start of every invoke, compared between the two
modes on the same backlog: which concurrency each reached within its first invokes, not how long
anything took.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.support import recorder as rec
from tests.support.daemon import RunningDaemon, mapping_config, running
from tests.support.sqs import create_queue, send, sqs_client, wait_until_empty
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("backends")

FUNCTIONS = {"recorder": {"handler": "tests.support.recorder:handle", "max_concurrency": 200}}


def mapping(arn: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"FunctionName": "recorder", "EventSourceArn": arn, "esm": {"name": name}, **fields}


def pollers(daemon: RunningDaemon, name: str) -> float:
    """The esm_provisioned_pollers gauge of the mapping called `name`."""
    for family in daemon.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "esm_mapping_info" and sample.labels["name"] == name:
                return daemon.value("esm_provisioned_pollers", mapping=sample.labels["mapping"], source="sqs")
    raise AssertionError(f"no mapping named {name}")


def poller_tasks(name: str) -> int:
    """Worker tasks of the mapping `name` that are polling or invoking right now."""
    return sum(1 for task in asyncio.all_tasks()
               if task.get_name().startswith(f"{name}/poller-") and not task.done())


class Sampler(rec.Recorder):
    """A recorder that notes, at the start of every invoke, how many invokes are running (itself
    included) and, when given a gauge to read, the pollers the daemon reports at that moment."""

    def __init__(self, delay: float):
        super().__init__(delay=delay)
        self.concurrency: list[int] = []
        self.gauge_samples: list[float] = []
        self.read_gauge: Any = None

    async def handle(self, event: dict[str, Any]) -> Any:
        self.concurrency.append(self.in_flight + 1)
        if self.read_gauge is not None:
            self.gauge_samples.append(self.read_gauge())
        return await super().handle(event)


async def test_minimum_pollers_stay_up_on_an_idle_queue():
    """behaviour §7: with ProvisionedPollerConfig, MinimumPollers pollers stay active on an idle queue, while an
    on-demand mapping beside it idles down to 2; behaviour §6: esm_provisioned_pollers reports them."""
    rec.install(rec.Recorder())
    async with sqs_client() as sqs:
        _, idle_arn = await create_queue(sqs, "idle")
        _, warm_arn = await create_queue(sqs, "warm")
        config = mapping_config(mapping(idle_arn, "on-demand"),
                                mapping(warm_arn, "warm", ProvisionedPollerConfig={"MinimumPollers": 5}),
                                functions=FUNCTIONS)
        async with running(config) as daemon:
            seen: list[float] = []

            def on_demand_idled() -> bool:
                seen.append(pollers(daemon, "warm"))
                return pollers(daemon, "on-demand") == 2 and poller_tasks("on-demand") == 2

            await wait_until(on_demand_idled, timeout=90, what="the on-demand mapping idling down to 2")
            assert min(seen) == max(seen) == 5, seen
            assert poller_tasks("warm") == 5
            await asyncio.sleep(2)  # more idle ticks: the floor holds
            assert pollers(daemon, "warm") == 5 and poller_tasks("warm") == 5


async def test_maximum_pollers_bound_concurrency_at_ten_invokes_each():
    """behaviour §7: each poller carries up to 10 concurrent invokes, never more than MaximumPollers pollers:
    MaximumPollers 3 means at most 30 invokes at once, and the gauge never passes 3."""
    sampler = rec.install(Sampler(delay=1.0))
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, visibility=60)
        await send(sqs, url, [f"c{i}" for i in range(1500)])
        config = mapping_config(mapping(arn, "capped", ProvisionedPollerConfig={"MinimumPollers": 2,
                                                                                "MaximumPollers": 3}),
                                functions=FUNCTIONS)
        async with running(config) as daemon:
            sampler.read_gauge = lambda: pollers(daemon, "capped")
            await sampler.wait_for(lambda r: len(r.records) >= 1500, timeout=120)
            await wait_until_empty(sqs, url)
    assert max(sampler.concurrency) <= 30, sampler.concurrency
    # Grown past what the two warm pollers carry (a third poller: more than 20 lanes), and no further.
    assert max(sampler.gauge_samples) == 3 and min(sampler.gauge_samples) >= 2, sampler.gauge_samples


async def ramp(fields: dict[str, Any], name: str) -> list[int]:
    """Concurrency at the start of each invoke while a mapping works through a 1,500-message backlog."""
    sampler = rec.install(Sampler(delay=0.5))
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, name, visibility=60)
        await send(sqs, url, [f"{name}{i}" for i in range(1500)])
        async with running(mapping_config(mapping(arn, name, **fields), functions=FUNCTIONS)):
            await sampler.wait_for(lambda r: len(r.records) >= 1500, timeout=180)
            await wait_until_empty(sqs, url)
    return sampler.concurrency


async def test_provisioned_mode_ramps_up_faster_than_on_demand_on_the_same_backlog():
    """behaviour §7 / R19: provisioned mode scales 3x faster (up to 1,000 concurrent invokes a minute against
    300, from warm pollers of 10 invokes each): over the same first invokes of the same backlog it
    reaches a concurrency on-demand mode does not."""
    on_demand = await ramp({}, "on-demand")
    provisioned = await ramp({"ProvisionedPollerConfig": {"MinimumPollers": 2}}, "provisioned")
    first = 60
    assert len(on_demand) >= first and len(provisioned) >= first
    slow, fast = max(on_demand[:first]), max(provisioned[:first])
    assert fast >= 1.5 * slow, (on_demand[:first], provisioned[:first])  # measured here: 36 against 15
