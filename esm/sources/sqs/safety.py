"""The SQS source's safety checks (esm.safety): the queue's attributes read from the service, and
the rules that warn when its redrive policy, visibility timeout or retention will lose or
duplicate messages, each with AWS's advice and the fix (behaviour §1, §7)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from esm.arns import parse_arn
from esm.config.settings import MappingSettings

# AWS's advice, in numbers (the Lambda developer guide's SQS page; behaviour §1, §7).
MIN_MAX_RECEIVE_COUNT = 5
VISIBILITY_PER_FUNCTION_TIMEOUT = 6


@dataclass(frozen=True)
class QueueFacts:
    """The SQS queue's attributes the rules read."""

    visibility_timeout: float
    retention: float | None  # None: the endpoint does not say (ElasticMQ)
    max_receive_count: int | None  # None: no redrive policy
    dead_letter_arn: str | None = None
    dead_letter_retention: float | None = None  # None: not read

    @classmethod
    def from_attributes(cls, attributes: Mapping[str, str]) -> "QueueFacts":
        policy: dict[str, Any] = {}
        if attributes.get("RedrivePolicy"):
            try:
                policy = json.loads(attributes["RedrivePolicy"])
            except ValueError:
                policy = {}
        count = policy.get("maxReceiveCount")
        return cls(visibility_timeout=float(attributes.get("VisibilityTimeout", 30)),
                   retention=(float(attributes["MessageRetentionPeriod"])
                              if attributes.get("MessageRetentionPeriod") else None),
                   max_receive_count=int(count) if count is not None else None,
                   dead_letter_arn=policy.get("deadLetterTargetArn"))


def redrive(mapping: MappingSettings, queue: QueueFacts | None) -> tuple[str, str, str] | None:
    if queue is None or queue.max_receive_count is not None:
        return None
    return ("the queue has no redrive policy: a message the function keeps failing on returns again and "
            "again until the retention period deletes it, unseen",
            "configure a dead-letter queue on the source queue (Lambda's SQS mappings have no on-failure "
            "destination of their own)",
            f"set the queue's RedrivePolicy: a deadLetterTargetArn and maxReceiveCount of at least "
            f"{MIN_MAX_RECEIVE_COUNT}")


def max_receive_count(mapping: MappingSettings, queue: QueueFacts | None) -> tuple[str, str, str] | None:
    if queue is None or queue.max_receive_count is None:
        return None
    if queue.max_receive_count >= MIN_MAX_RECEIVE_COUNT:
        return None
    return (f"maxReceiveCount is {queue.max_receive_count}: a message throttled or caught in a failed batch a "
            f"few times moves to the dead-letter queue without a fair chance",
            f"set maxReceiveCount on the source queue's redrive policy to at least {MIN_MAX_RECEIVE_COUNT}",
            f"raise the RedrivePolicy's maxReceiveCount to {MIN_MAX_RECEIVE_COUNT} or more")


def visibility_timeout(mapping: MappingSettings, queue: QueueFacts | None) -> tuple[str, str, str] | None:
    if queue is None:
        return None
    needed = VISIBILITY_PER_FUNCTION_TIMEOUT * mapping.function.timeout + mapping.batching_window
    if queue.visibility_timeout >= needed:
        return None
    return (f"the queue's visibility timeout is {queue.visibility_timeout:g}s, below "
            f"{VISIBILITY_PER_FUNCTION_TIMEOUT} x the function timeout ({mapping.function.timeout:g}s) + the "
            f"batching window ({mapping.batching_window:g}s) = {needed:g}s: a throttled or slow batch becomes "
            f"visible again while it is still being worked on, and is processed twice",
            "a visibility timeout of at least six times the function timeout, plus "
            "MaximumBatchingWindowInSeconds",
            f"set the queue's VisibilityTimeout to {needed:g} or more, or lower the function timeout")


def retention(mapping: MappingSettings, queue: QueueFacts | None) -> tuple[str, str, str] | None:
    if queue is None or queue.max_receive_count is None or queue.retention is None:
        return None
    needed = queue.max_receive_count * queue.visibility_timeout
    if queue.retention >= needed:
        return None
    return (f"the retention period ({queue.retention:g}s) is shorter than maxReceiveCount "
            f"({queue.max_receive_count}) x the visibility timeout ({queue.visibility_timeout:g}s) = {needed:g}s: "
            f"a message failing every time can expire before it reaches the dead-letter queue",
            "keep messages long enough for every receive the redrive policy allows",
            f"set MessageRetentionPeriod to {needed:g}s or more, or lower maxReceiveCount or the visibility timeout")


def dead_letter_retention(mapping: MappingSettings, queue: QueueFacts | None) -> tuple[str, str, str] | None:
    if queue is None or queue.dead_letter_retention is None or queue.retention is None:
        return None
    if queue.dead_letter_retention > queue.retention:
        return None
    return (f"the dead-letter queue keeps messages {queue.dead_letter_retention:g}s, not longer than the source "
            f"queue ({queue.retention:g}s): a message's age counts from its first enqueue, so it can expire "
            f"in the dead-letter queue soon after it arrives",
            "set the dead-letter queue's retention period longer than the source queue's",
            f"raise the MessageRetentionPeriod of {queue.dead_letter_arn}")


RULES: dict[str, Callable[[MappingSettings, "QueueFacts | None"], "tuple[str, str, str] | None"]] = {
    "sqs-redrive-policy": redrive,
    "sqs-max-receive-count": max_receive_count,
    "sqs-visibility-timeout": visibility_timeout,
    "sqs-retention": retention,
    "sqs-dead-letter-retention": dead_letter_retention,
}


def _why(error: BaseException) -> str:
    return str(error) or type(error).__name__


async def read_facts(mapping: MappingSettings, clients: Any, unread: list[str],
                     probe: Mapping[str, Any]) -> QueueFacts | None:
    """The queue's attributes, and its dead-letter queue's retention; what cannot be read goes to `unread`."""
    arn = parse_arn(mapping.source_id)
    if arn is None:
        return None
    async with clients.client("sqs", arn.region, **probe) as sqs:
        try:
            url = (await sqs.get_queue_url(QueueName=arn.resource, QueueOwnerAWSAccountId=arn.account))["QueueUrl"]
            attributes = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))["Attributes"]
        except (ClientError, BotoCoreError, OSError) as error:
            unread.append(f"the queue's attributes ({_why(error)})")
            return None
        facts = QueueFacts.from_attributes(attributes)
        if facts.retention is None:
            unread.append("the queue's MessageRetentionPeriod (the endpoint does not return it)")
        dlq = parse_arn(facts.dead_letter_arn) if facts.dead_letter_arn else None
        if dlq is not None:
            try:
                dlq_url = (await sqs.get_queue_url(QueueName=dlq.resource,
                                                   QueueOwnerAWSAccountId=dlq.account))["QueueUrl"]
                dlq_attributes = (await sqs.get_queue_attributes(
                    QueueUrl=dlq_url, AttributeNames=["MessageRetentionPeriod"]))["Attributes"]
            except (ClientError, BotoCoreError, OSError) as error:
                unread.append(f"the dead-letter queue's retention ({_why(error)})")
            else:
                if dlq_attributes.get("MessageRetentionPeriod"):
                    facts = replace(facts, dead_letter_retention=float(dlq_attributes["MessageRetentionPeriod"]))
        return facts
