"""Kafka's config rules and Lambda's defaults for a Kafka mapping (behaviour §1): self-managed
clusters (bootstrap servers) or Amazon MSK (a cluster ARN), one topic, the consumer group id,
connection security (esm.config.kafka_access), the schema registry, a kafka:// on-failure
destination, and the batching window's 500 ms default."""

from __future__ import annotations

import re
from typing import Any

from esm.config.rules import (
    STREAM_ONLY,
    MappingCheck,
    check_destination,
    check_retry_controls,
    check_starting_position,
    not_for,
    not_found,
)
from esm.config.schema_registry import problems as schema_registry_problems
from esm.arns import parse_arn
from esm.config.kafka_access import HOST_PORT, MAX_BOOTSTRAP_SERVERS, check_access

KAFKA_DEFAULT_WINDOW = 0.5
CONSUMER_GROUP_ID = re.compile(r"[a-zA-Z0-9\-/*:_+=.@]{1,200}")


KAFKA_DEFAULT_STARTING_POSITION = "LATEST"

# ProvisionedPollerConfig fields AWS accepts for Kafka that esm does not honour yet.
NOT_HONOURED = {"MinimumPollers": "no warm consumers are kept beyond the partitions assigned",
                "PollerGroupName": "poller groups sharing one budget are not served"}


def check(check: MappingCheck) -> None:
    req = check.request
    not_for(check, STREAM_ONLY + ("ScalingConfig", "Queues"), "Kafka")
    req.setdefault("BatchSize", 100)
    topics = req.get("Topics")
    if not topics:
        check.fail("Topics", "is required for Kafka event sources (exactly one topic)")
    self_managed = "SelfManagedEventSource" in req or "SelfManagedEventSource" in check.already_reported
    _check_cluster(check, self_managed)
    kafka_config_key = "SelfManagedKafkaEventSourceConfig" if self_managed else "AmazonManagedKafkaEventSourceConfig"
    _check_kafka_config(check, kafka_config_key, self_managed)
    # AWS requires StartingPosition for Kinesis and DynamoDB Streams only; a Kafka mapping without
    # one starts a new consumer group at the end of the topic, as Kafka consumers do (behaviour §1).
    check_starting_position(check, default=KAFKA_DEFAULT_STARTING_POSITION)
    check_retry_controls(check, defaults=False)  # AWS answers no retry defaults for Kafka (behaviour §10)
    window = req.get("MaximumBatchingWindowInSeconds")
    check.batching_window = KAFKA_DEFAULT_WINDOW if window is None else float(window)
    check_destination(check, allow_kafka=True)
    provisioned = req.get("ProvisionedPollerConfig") or {}
    # MaximumPollers caps the partitions worked at once; what esm cannot honour yet is refused by
    # name, never accepted and ignored (behaviour §1).
    for key, why in NOT_HONOURED.items():
        if key in provisioned:
            check.fail(f"ProvisionedPollerConfig.{key}", f"is not served by esm yet for Kafka ({why}); leave it out")


def _check_cluster(check: MappingCheck, self_managed: bool) -> None:
    """Bootstrap servers for a self-managed cluster, and the config block matching the cluster's kind."""
    req = check.request
    if "SelfManagedEventSource" in req:
        servers = req["SelfManagedEventSource"].get("Endpoints", {}).get("KAFKA_BOOTSTRAP_SERVERS")
        path = "SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS"
        if not servers:
            check.fail(path, "is required: 1 to 10 host:port entries")
        elif len(servers) > MAX_BOOTSTRAP_SERVERS:
            check.fail(path, f"must have at most {MAX_BOOTSTRAP_SERVERS} entries (got {len(servers)})")
        else:
            for i, server in enumerate(servers):
                if not (isinstance(server, str) and HOST_PORT.match(server)):
                    check.fail(f"{path}[{i}]", f"must be host:port (got {server!r})")
        if "AmazonManagedKafkaEventSourceConfig" in req:
            check.fail("AmazonManagedKafkaEventSourceConfig", "is for Amazon MSK; use SelfManagedKafkaEventSourceConfig")
    elif "SelfManagedKafkaEventSourceConfig" in req and not self_managed:  # not when SelfManagedEventSource is malformed
        check.fail("SelfManagedKafkaEventSourceConfig", "is for self-managed Kafka; use AmazonManagedKafkaEventSourceConfig")


def _check_kafka_config(check: MappingCheck, kafka_config_key: str, self_managed: bool) -> None:
    """The cluster's config block (group id, consumption mode, schema registry) and its connection security."""
    req = check.request
    kafka_config = req.get(kafka_config_key) or {}
    group = kafka_config.get("ConsumerGroupId")
    if group is not None and not CONSUMER_GROUP_ID.fullmatch(str(group)):
        check.fail(f"{kafka_config_key}.ConsumerGroupId", "must be 1 to 200 characters of [a-zA-Z0-9-/*:_+=.@]")
    # Connection security (esm.config.kafka_access): the Types Lambda accepts for this kind of cluster.
    for problem in check_access(req.get("SourceAccessConfigurations"), msk=not self_managed):
        check.fail(problem.path, problem.message)
    if kafka_config.get("ConsumptionMode") == "Queue":
        check.fail(f"{kafka_config_key}.ConsumptionMode", "Queue (Kafka share groups) is not served by esm yet; use Stream")
    if isinstance(kafka_config, dict) and "SchemaRegistryConfig" in kafka_config:
        for path, message in schema_registry_problems(kafka_config["SchemaRegistryConfig"],
                                                      f"{kafka_config_key}.SchemaRegistryConfig"):
            check.fail(path, message)


async def cluster_exists(clients: Any, arn_text: str) -> bool | None:
    """Whether the MSK cluster exists (create asks, as AWS does: behaviour §10); None when MSK
    does not answer."""
    arn = parse_arn(arn_text)

    async def ask() -> None:
        async with clients.client("kafka", arn.region if arn else None) as kafka:
            await kafka.describe_cluster_v2(ClusterArn=arn_text)

    return await not_found(ask, "NotFoundException")
