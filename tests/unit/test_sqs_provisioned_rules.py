"""SQS provisioned mode (issue 13.6; behaviour §1, §6, §7): what the config accepts, and the scaling policy.

The policy is checked tick by tick here; tests/integration/test_sqs_provisioned.py runs it
against ElasticMQ.
"""

from __future__ import annotations

import pytest
import yaml

from esm.config.loading import parse_config
from esm.errors import ConfigError
from esm.sources.sqs.scaling import ConcurrencyTarget, concurrency_ceiling

SQS = "arn:aws:sqs:us-east-1:000000000000:orders"
FUNCTIONS = {"fn": {"handler": "tests.support.recorder:handle"}}


def parse(**fields):
    doc = {"functions": FUNCTIONS, "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": SQS, **fields}]}
    return parse_config(yaml.safe_dump(doc, sort_keys=False), environ={})


def problems(**fields) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse(**fields)
    return [str(p) for p in caught.value.problems]


# -- validation ------------------------------------------------------------------------------

def test_defaults_are_two_and_two_hundred_pollers():
    """behaviour §1/§7: an empty ProvisionedPollerConfig on SQS means MinimumPollers 2, MaximumPollers 200."""
    request = parse(ProvisionedPollerConfig={}).mappings[0].request
    assert request["ProvisionedPollerConfig"] == {"MinimumPollers": 2, "MaximumPollers": 200}


def test_maximum_concurrency_with_provisioned_mode_is_rejected():
    """behaviour §1/§7 (R2): ScalingConfig.MaximumConcurrency and provisioned mode are mutually exclusive for SQS."""
    found = problems(ProvisionedPollerConfig={"MinimumPollers": 5}, ScalingConfig={"MaximumConcurrency": 50})
    assert len(found) == 1, found
    assert found[0].startswith("event_source_mappings[0].ScalingConfig.MaximumConcurrency: cannot be used together "
                               "with ProvisionedPollerConfig")
    assert "mutually exclusive" in found[0]


@pytest.mark.parametrize("key", ["MinimumPollers", "MaximumPollers"])
def test_one_poller_is_too_few_for_sqs(key):
    """behaviour §7: SQS needs at least 2 pollers (the API shape allows 1, which is for Kafka)."""
    found = problems(ProvisionedPollerConfig={key: 1, **({"MinimumPollers": 1} if key == "MaximumPollers" else {})})
    assert f"event_source_mappings[0].ProvisionedPollerConfig.{key}: must be between 2 and " in "\n".join(found), found


@pytest.mark.parametrize("key, value, limit", [("MinimumPollers", 201, 200), ("MaximumPollers", 10001, 10000)])
def test_upper_limits_come_from_the_api_shape(key, value, limit):
    """behaviour §1 [R1]: the maximums are botocore's (MinimumPollers 200, MaximumPollers 10,000)."""
    assert problems(ProvisionedPollerConfig={key: value}) == [
        f"event_source_mappings[0].ProvisionedPollerConfig.{key}: must be at most {limit} (got {value})"]


def test_maximum_below_minimum_is_rejected():
    """behaviour §7: MaximumPollers must be at least MinimumPollers, including against the default maximum."""
    assert problems(ProvisionedPollerConfig={"MinimumPollers": 10, "MaximumPollers": 4}) == [
        "event_source_mappings[0].ProvisionedPollerConfig.MaximumPollers: must be at least MinimumPollers (10), got 4"]


def test_poller_groups_are_for_kafka_only():
    """API model: PollerGroupName is an Amazon MSK / self-managed Kafka option."""
    assert problems(ProvisionedPollerConfig={"PollerGroupName": "shared"}) == [
        "event_source_mappings[0].ProvisionedPollerConfig.PollerGroupName: is only supported for Kafka event sources, "
        "not SQS"]


# -- the policy ------------------------------------------------------------------------------

def provisioned(min_pollers: int = 2, max_pollers: int = 200, cap: int = 100_000) -> ConcurrencyTarget:
    return ConcurrencyTarget.provisioned(min_pollers=min_pollers, max_pollers=max_pollers, cap=cap)


def idle_tick(scaling: ConcurrencyTarget) -> int:
    scaling.poll_empty()
    return scaling.tick()


def backlog_tick(scaling: ConcurrencyTarget) -> int:
    scaling.polled(10)
    scaling.batch_done(full=True)
    return scaling.tick()


def test_idle_provisioned_mapping_keeps_its_minimum_pollers():
    """behaviour §7: MinimumPollers stay active on an idle queue; on-demand idles down to 2 invokes."""
    warm, on_demand = provisioned(min_pollers=5), ConcurrencyTarget(ceiling=1250)
    for _ in range(100):
        idle_tick(warm)
        idle_tick(on_demand)
    assert warm.target == 5 and warm.pollers(warm.target) == 5
    assert on_demand.target == 2


def test_provisioned_scales_faster_than_on_demand():
    """behaviour §7 / R19: provisioned mode adds up to 1,000 concurrent invokes a minute, on-demand 300."""
    warm, on_demand = provisioned(), ConcurrencyTarget(ceiling=1250)
    for _ in range(60):
        backlog_tick(warm)
        backlog_tick(on_demand)
    assert on_demand.target == 5 + 300
    assert warm.target >= 20 + 1000  # the two warm pollers' 20 invokes, plus a minute of growth


def test_warm_pollers_open_ten_invokes_each_on_the_first_busy_tick():
    """behaviour §7: idle, a provisioned mapping keeps one lane per minimum poller; with a backlog each warm
    poller carries 10 concurrent invokes at once, before any further scaling."""
    warm = provisioned(min_pollers=3)
    assert warm.target == 3
    assert backlog_tick(warm) == 30
    assert backlog_tick(warm) == 30 + 17


def test_ceiling_is_ten_invokes_per_maximum_poller():
    """behaviour §7: each poller carries up to 10 concurrent invokes, so MaximumPollers x 10 bounds concurrency."""
    warm = provisioned(min_pollers=2, max_pollers=3)
    for _ in range(20):
        backlog_tick(warm)
    assert warm.target == 30 and warm.pollers(warm.target) == 3


def test_the_function_targets_cap_still_bounds_lanes():
    """behaviour §9.1: a target's max_concurrency bounds concurrent invokes, provisioned or not."""
    warm = provisioned(min_pollers=2, max_pollers=200, cap=7)
    for _ in range(5):
        backlog_tick(warm)
    assert warm.target == 7


def test_pollers_count_lanes_ten_per_poller_and_never_below_the_idle_minimum():
    """behaviour §6: ProvisionedPollers for SQS: a poller per 10 busy lanes, the minimum kept while idle."""
    warm = provisioned(min_pollers=3, max_pollers=5)
    assert [warm.pollers(n) for n in (0, 1, 3, 10, 30, 31, 50)] == [0, 1, 3, 3, 3, 4, 5]
    assert ConcurrencyTarget(ceiling=10).pollers(7) == 7  # on-demand: a poller is a lane


def test_backoff_never_goes_below_the_minimum_pollers():
    """behaviour §3/§7: throttles halve concurrency; provisioned mode keeps its minimum pollers."""
    warm = provisioned(min_pollers=4)
    for _ in range(10):
        warm.back_off()
    assert warm.target == 4


def test_concurrency_ceiling_of_a_mapping():
    """behaviour §7: on demand MaximumConcurrency (default 1,250); provisioned 10 per MaximumPollers, at most 20,000."""
    assert concurrency_ceiling({}) == 1250
    assert concurrency_ceiling({"ScalingConfig": {"MaximumConcurrency": 40}}) == 40
    assert concurrency_ceiling({"ProvisionedPollerConfig": {"MinimumPollers": 2, "MaximumPollers": 7}}) == 70
    assert concurrency_ceiling({"ProvisionedPollerConfig": {}}) == 2000
    assert concurrency_ceiling({"ProvisionedPollerConfig": {"MaximumPollers": 10000}}) == 20000


def test_a_shared_target_allows_what_a_provisioned_mapping_may_run():
    """behaviour §7 / issue 13.6: each poller carries up to 10 invokes, so a target without its own
    max_concurrency is not capped at on-demand's 1,250 behind a provisioned mapping of 200 pollers."""
    from esm.daemon import build_invokers

    provisioned = build_invokers(parse(ProvisionedPollerConfig={"MinimumPollers": 2, "MaximumPollers": 200}))
    assert provisioned["fn"].max_concurrency == 2000
    on_demand = build_invokers(parse(ScalingConfig={"MaximumConcurrency": 40}))
    assert on_demand["fn"].max_concurrency == 40


def test_with_the_control_api_a_target_is_not_capped_by_the_config_file_alone():
    """Issue 15 / behaviour §7: mappings created through the API use the same invokers, so a target
    without max_concurrency must not be capped at one invoke because no config mapping uses it."""
    from esm.daemon import build_invokers

    doc = {"functions": {**FUNCTIONS, "spare": {"handler": "tests.support.recorder:handle"}},
           "event_source_mappings": [{"FunctionName": "fn", "EventSourceArn": SQS}],
           "api": {"listen": "127.0.0.1:0"}}
    invokers = build_invokers(parse_config(yaml.safe_dump(doc, sort_keys=False), environ={}))
    assert invokers["spare"].max_concurrency == 20_000
    assert invokers["fn"].max_concurrency == 20_000
    without_api = build_invokers(parse(BatchSize=5))
    assert without_api["fn"].max_concurrency == 1250
