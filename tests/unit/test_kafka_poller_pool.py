"""Kafka provisioned mode (issue 22.5; behaviour §7, §9.11): what the config accepts, and the
poller pool and poller groups tick by tick. tests/integration/test_kafka_pollers.py runs them
against a real broker."""

from __future__ import annotations

import asyncio

import pytest
import yaml

from esm.config.loading import parse_config
from esm.errors import ConfigError
from esm.sources.kafka.pollers import INVOKES_PER_POLLER, PollerGroup, PollerPool, Provisioned

FUNCTIONS = {"fn": {"handler": "tests.support.recorder:handle"}}


def kafka_mapping(topic: str = "orders", **fields) -> dict:
    return {"FunctionName": "fn", "Topics": [topic],
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
            "SourceAccessConfigurations": [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-0123"}],
            "StartingPosition": "TRIM_HORIZON", **fields}


def parse(*mappings):
    doc = {"functions": FUNCTIONS, "event_source_mappings": list(mappings)}
    return parse_config(yaml.safe_dump(doc, sort_keys=False), environ={})


def problems(*mappings) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(*mappings)
    return [str(p) for p in caught.value.problems]


def test_every_provisioned_field_is_accepted_for_kafka():
    """behaviour §1: MinimumPollers, MaximumPollers and PollerGroupName are honoured for Kafka, so accepted."""
    config = parse(kafka_mapping(ProvisionedPollerConfig={"MinimumPollers": 2, "MaximumPollers": 4,
                                                          "PollerGroupName": "shared-1"}))
    assert Provisioned.of(config.mappings[0].request) == Provisioned(minimum=2, maximum=4, group="shared-1")


def test_kafka_poller_limits():
    """behaviour §7: Kafka's MaximumPollers is 1 to 2,000 (not the shape's 10,000) and not below MinimumPollers."""
    [too_many] = problems(kafka_mapping(ProvisionedPollerConfig={"MaximumPollers": 2001}))
    assert "ProvisionedPollerConfig.MaximumPollers" in too_many and "2000" in too_many
    [below] = problems(kafka_mapping(ProvisionedPollerConfig={"MinimumPollers": 5, "MaximumPollers": 4}))
    assert "must be at least MinimumPollers (5)" in below


def test_a_poller_group_holds_at_most_100_mappings_and_2000_maximum_pollers():
    """behaviour §7: a poller group has at most 100 mappings, whose MaximumPollers total at most 2,000."""
    group = {"PollerGroupName": "g"}
    big = [kafka_mapping(f"t{i}", ProvisionedPollerConfig={**group, "MaximumPollers": 1000}) for i in range(3)]
    found = problems(*big)
    assert len(found) == 1 and "event_source_mappings[2].ProvisionedPollerConfig.PollerGroupName" in found[0]
    assert "2000" in found[0]
    many = [kafka_mapping(f"t{i}", ProvisionedPollerConfig={**group, "MaximumPollers": 1}) for i in range(101)]
    [crowded] = problems(*many)
    assert "event_source_mappings[100]" in crowded and "100 mappings" in crowded


def pool(minimum: int = 1, maximum: int = 200, partitions: int = 100, group: PollerGroup | None = None):
    reports: list[tuple[int, float | None]] = []
    made = PollerPool(Provisioned(minimum, maximum, group.name if group else None), group=group,
                      report=lambda n, share: reports.append((n, share)))
    made.owned(partitions)
    return made, reports


def test_minimum_pollers_stay_warm_while_idle():
    """behaviour §7: an idle pool never goes below MinimumPollers (within the partitions owned)."""
    warm, reports = pool(minimum=3, maximum=10)
    for _ in range(20):
        warm.tick()
    assert warm.pollers == 3 and warm.capacity == 3 * INVOKES_PER_POLLER and reports[-1] == (3, None)
    few, _ = pool(minimum=3, partitions=2)
    assert few.pollers == 2  # never more pollers than partitions


async def test_a_backlog_grows_the_pollers_up_to_maximum_and_idleness_gives_them_back():
    """behaviour §7: batches waiting for capacity grow the pool, never past MaximumPollers; idle ticks shrink it."""
    grows, _ = pool(minimum=1, maximum=3)
    entered = 0

    async def batch(release: asyncio.Event) -> None:
        nonlocal entered
        async with grows:
            entered += 1
            await release.wait()

    release = asyncio.Event()
    tasks = [asyncio.create_task(batch(release)) for _ in range(40)]
    await asyncio.sleep(0)
    assert entered == INVOKES_PER_POLLER  # one poller's worth
    grows.tick()
    assert grows.pollers == 3  # what 40 waiting batches need, capped at MaximumPollers
    async with grows._changed:
        grows._changed.notify_all()
    await asyncio.sleep(0)
    assert entered == 3 * INVOKES_PER_POLLER
    release.set()
    await asyncio.gather(*tasks)
    for _ in range(20):
        grows.tick()
    assert grows.pollers == 1


def test_a_poller_group_shares_its_event_poller_units():
    """behaviour §7: the pollers of a group's mappings pack into shared units: 3 + 3 pollers take one unit."""
    group = PollerGroup("g")
    first, first_reports = pool(minimum=3, group=group)
    second, _ = pool(minimum=3, group=group)
    assert (group.pollers, group.units) == (6, 1)
    assert first_reports[-1] == (3, 0.3)  # each mapping's share of the group's units
    second.close()
    assert (group.pollers, group.units) == (3, 1)
