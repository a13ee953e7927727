"""SQS's config rules and Lambda's defaults for an SQS mapping (behaviour §1, §7): what
CreateEventSourceMapping refuses for a queue, batch size and window by queue type, provisioned mode."""

from __future__ import annotations

from typing import Any

from esm.arns import is_fifo_queue, parse_arn
from esm.config.api_shape import create_mapping_shape
from esm.config.rules import RETRY_CONTROLS, STREAM_ONLY, MappingCheck, not_for
from esm.sources.sqs.scaling import SQS_DEFAULT_MAXIMUM_POLLERS, SQS_DEFAULT_MINIMUM_POLLERS

# AWS's texts (behaviour §10).
NO_STARTING_POSITION = "StartingPosition is not valid for SQS event sources."
WINDOW_REQUIRED = "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"

SQS_FIFO_MAX_BATCH = 10
SQS_MIN_POLLERS = 2  # ProvisionedPollerConfig for SQS (the API shape allows 1, for Kafka)


def check(check: MappingCheck) -> None:
    req = check.request
    arn = parse_arn(check.source_id)
    fifo = arn is not None and is_fifo_queue(arn)
    for key in ("StartingPosition", "StartingPositionTimestamp"):
        if key in req:
            check.refuse(key, NO_STARTING_POSITION)
    not_for(check, STREAM_ONLY + RETRY_CONTROLS + ("Topics", "Queues", "SourceAccessConfigurations"), "SQS")
    if "SelfManagedKafkaEventSourceConfig" in req or "AmazonManagedKafkaEventSourceConfig" in req:
        check.fail("EventSourceArn", "Kafka settings given for an SQS queue")
    if req.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination"):
        check.fail(
            "DestinationConfig.OnFailure",
            "is not supported for SQS event sources; give the queue a redrive policy (dead-letter queue) instead",
        )
    batch = req.setdefault("BatchSize", 10)
    window = req.get("MaximumBatchingWindowInSeconds", 0)
    if fifo:
        if isinstance(batch, int) and batch > SQS_FIFO_MAX_BATCH:
            check.fail("BatchSize", f"must be at most {SQS_FIFO_MAX_BATCH} for a FIFO queue (got {batch})")
        if window:
            check.fail("MaximumBatchingWindowInSeconds", "is not supported for FIFO queues")
    elif isinstance(batch, int) and batch > 10 and not (isinstance(window, int) and window >= 1):
        check.refuse("MaximumBatchingWindowInSeconds", WINDOW_REQUIRED)
    check.batching_window = float(window or 0)
    _check_provisioned(check)


async def queue_exists(clients: Any, arn_text: str) -> bool | None:
    """Whether the queue exists (create asks, as AWS does: behaviour §10); None when SQS does not answer."""
    from botocore.exceptions import ClientError

    arn = parse_arn(arn_text)
    if arn is None:
        return None
    try:
        async with clients.client("sqs", arn.region) as sqs:
            await sqs.get_queue_url(QueueName=arn.resource, QueueOwnerAWSAccountId=arn.account)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        return False if code in ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist") else None
    except Exception:  # noqa: BLE001 - unreachable: told later by the mapping's state
        return None
    return True


def _check_provisioned(check: MappingCheck) -> None:
    """SQS provisioned mode (behaviour §1, §7): pollers 2 to the API's maximums, defaults 2 and
    200, no poller groups, and never together with ScalingConfig.MaximumConcurrency (AWS:
    mutually exclusive)."""
    provisioned = check.request.get("ProvisionedPollerConfig")
    if not isinstance(provisioned, dict):
        return
    provisioned = check.request["ProvisionedPollerConfig"] = dict(provisioned)  # defaults go in a copy
    if (check.request.get("ScalingConfig") or {}).get("MaximumConcurrency") is not None:
        check.fail("ScalingConfig.MaximumConcurrency",
                   "cannot be used together with ProvisionedPollerConfig: maximum concurrency and provisioned mode "
                   "are mutually exclusive scaling options for SQS; in provisioned mode MaximumPollers bounds "
                   "concurrency (up to 10 concurrent invokes per poller)")
    if "PollerGroupName" in provisioned:
        check.fail("ProvisionedPollerConfig.PollerGroupName", "is only supported for Kafka event sources, not SQS")
    members = create_mapping_shape().members["ProvisionedPollerConfig"].members
    for key, default in (("MinimumPollers", SQS_DEFAULT_MINIMUM_POLLERS), ("MaximumPollers", SQS_DEFAULT_MAXIMUM_POLLERS)):
        value = provisioned.setdefault(key, default)
        highest = members[key].metadata["max"]
        if isinstance(value, int) and not isinstance(value, bool) and value < SQS_MIN_POLLERS:
            check.fail(f"ProvisionedPollerConfig.{key}",
                       f"must be between {SQS_MIN_POLLERS} and {highest} for SQS event sources (got {value})")
    low, high = provisioned["MinimumPollers"], provisioned["MaximumPollers"]
    if isinstance(low, int) and isinstance(high, int) and SQS_MIN_POLLERS <= low and high < low:
        check.fail("ProvisionedPollerConfig.MaximumPollers", f"must be at least MinimumPollers ({low}), got {high}")
