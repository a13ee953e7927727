"""Kafka provisioned mode against a real broker (issue 22.5; behaviour §6, §7, §9.11).

A poller is the capacity for 5 batches of the mapping in flight at once, within the partitions
the mapping owns: MinimumPollers stay warm on an idle topic, MaximumPollers caps them under a
backlog, and the mappings of one PollerGroupName share event poller units. The pollers are read
from `esm_provisioned_pollers`, the units from `esm_event_poller_units` and the group's gauges.
"""

from __future__ import annotations

import asyncio

import pytest
import yaml

from esm.config.loading import parse_config
from tests.support import kafka as kk
from tests.support.daemon import running_config
from tests.support.kafka import Message, create_topic, kafka_admin, produce, smk_mapping
from tests.support.kafka import quick_group  # noqa: F401  (autouse: the group's quick timings)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.usefixtures("backends")


def config_for(*mappings) -> str:
    doc = {"functions": kk.FUNCTIONS, "event_source_mappings": list(mappings),
           "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 20, "startup_timeout": 30}
    return yaml.safe_dump(doc, sort_keys=False)


def labels_of(config, index: int = 0) -> dict[str, str]:
    return {"mapping": config.mappings[index].uuid, "source": "kafka"}


async def test_minimum_pollers_stay_warm_on_an_idle_topic():
    """behaviour §7: MinimumPollers pollers are kept while nothing arrives; 3 pollers are one unit."""
    kk.install(kk.KafkaRecorder())
    async with kafka_admin() as admin:
        topic = await create_topic(admin, 4)
        mapping = smk_mapping(topic, ProvisionedPollerConfig={"MinimumPollers": 3, "MaximumPollers": 10})
        config = parse_config(config_for(mapping))
        labels = labels_of(config)
        async with running_config(config) as d:
            await wait_until(lambda: d.value("esm_provisioned_pollers", **labels) == 3, what="3 warm pollers")
            assert d.value("esm_event_poller_units", **labels) == 1
            assert d.total("esm_invoked_events_total") == 0


async def test_maximum_pollers_cap_the_batches_in_flight_under_a_backlog():
    """behaviour §7: a backlog grows the pollers from MinimumPollers to MaximumPollers and no further;
    each poller carries at most 5 batches in flight."""
    release = asyncio.Event()

    async def behaviour(event):
        await release.wait()

    recorder = kk.install(kk.KafkaRecorder(behaviour))
    async with kafka_admin() as admin:
        partitions = 16
        topic = await create_topic(admin, partitions)
        await produce(topic, [Message(b"x", partition=p) for p in range(partitions) for _ in range(2)])
        mapping = smk_mapping(topic, BatchSize=1, MaximumBatchingWindowInSeconds=0,
                              ProvisionedPollerConfig={"MinimumPollers": 1, "MaximumPollers": 2})
        config = parse_config(config_for(mapping))
        labels = labels_of(config)
        async with running_config(config) as d:
            # One warm poller carries 5 batches; the other partitions' batches wait, so the pool grows to 2.
            await recorder.wait_for(lambda r: r.in_flight == 10)
            assert d.value("esm_provisioned_pollers", **labels) == 2
            await asyncio.sleep(3)  # several scaling ticks with 6 partitions still waiting: no third poller
            assert recorder.max_in_flight == 10 and d.value("esm_provisioned_pollers", **labels) == 2
            release.set()
            await recorder.wait_for(lambda r: len(r.records) == 2 * partitions)
            assert recorder.max_in_flight == 10


async def test_a_poller_group_shares_its_event_poller_units():
    """behaviour §7: two mappings of one PollerGroupName, 3 warm pollers each, share one event poller
    unit (alone they would take one each); each mapping reports its share of it."""
    kk.install(kk.KafkaRecorder())
    async with kafka_admin() as admin:
        first, second = await create_topic(admin, 4), await create_topic(admin, 4)
        provisioned = {"MinimumPollers": 3, "MaximumPollers": 10, "PollerGroupName": "shared-units"}
        config = parse_config(config_for(smk_mapping(first, ProvisionedPollerConfig=provisioned),
                                         smk_mapping(second, ProvisionedPollerConfig=provisioned)))
        async with running_config(config) as d:
            await wait_until(lambda: d.value("esm_poller_group_pollers", group="shared-units") == 6,
                             what="the group's 6 pollers")
            assert d.value("esm_poller_group_event_poller_units", group="shared-units") == 1
            for index in (0, 1):
                assert d.value("esm_provisioned_pollers", **labels_of(config, index)) == 3
                assert d.value("esm_event_poller_units", **labels_of(config, index)) == pytest.approx(0.3)
