"""Safety checks: settings that will lose or duplicate messages, warned about before they do.

Each rule reads one mapping's settings plus what its source and its function say about
themselves (`Facts`: the queue's attributes, the function's reserved concurrency) and names
AWS's advice and the fix (behaviour §1, §7). The rules are pure; `gather_facts` asks the
services, and a fact it cannot read (an endpoint that does not serve the call, no network)
only leaves its rules silent and is said in `Facts.unread`.

They run at start (the daemon, once its mappings run) and in `esm validate` (which reads the
queue attributes when the endpoint answers). `report` logs each as a warning (event
`ConfigWarning`) and sets `esm_config_warnings{mapping,check}` to 1, clearing the mapping's
earlier ones, so a run of the checks after a change replaces what the last one said.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterable, Mapping

from botocore.exceptions import BotoCoreError, ClientError

from esm.arns import parse_arn
from esm.config.settings import MappingSettings
from esm.observability.metrics import Metrics

log = logging.getLogger("esm.safety")

# AWS's advice, in numbers (the Lambda developer guide's SQS and scaling pages; behaviour §1, §7).
MIN_MAX_RECEIVE_COUNT = 5
VISIBILITY_PER_FUNCTION_TIMEOUT = 6
# How long reading the facts of one mapping may take: validate must stay quick when nothing answers.
FACTS_TIMEOUT = 10.0
PROBE_CLIENT = {"connect_timeout": 2, "read_timeout": 5, "retries": {"max_attempts": 1}}


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


@dataclass(frozen=True)
class Facts:
    """What the services said about one mapping's source and function."""

    queue: QueueFacts | None = None
    reserved_concurrency: int | None = None  # None: unreserved, or not read
    unread: tuple[str, ...] = ()  # what could not be read, and why


@dataclass(frozen=True)
class ConfigWarning:
    """One rule a mapping breaks: the problem, AWS's advice and the fix."""

    uuid: str
    mapping: str
    check: str
    problem: str
    advice: str
    fix: str

    def line(self) -> str:
        return f"{self.mapping}: [{self.check}] {self.problem}. AWS advises: {self.advice}. Fix: {self.fix}."


Rule = Callable[[MappingSettings, Facts], "tuple[str, str, str] | None"]


def _destination(mapping: MappingSettings) -> str | None:
    return ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")


def sqs_redrive(mapping: MappingSettings, facts: Facts) -> tuple[str, str, str] | None:
    if mapping.source != "sqs" or facts.queue is None or facts.queue.max_receive_count is not None:
        return None
    return ("the queue has no redrive policy: a message the function keeps failing on returns again and "
            "again until the retention period deletes it, unseen",
            "configure a dead-letter queue on the source queue (Lambda's SQS mappings have no on-failure "
            "destination of their own)",
            f"set the queue's RedrivePolicy: a deadLetterTargetArn and maxReceiveCount of at least "
            f"{MIN_MAX_RECEIVE_COUNT}")


def sqs_max_receive_count(mapping: MappingSettings, facts: Facts) -> tuple[str, str, str] | None:
    queue = facts.queue
    if mapping.source != "sqs" or queue is None or queue.max_receive_count is None:
        return None
    if queue.max_receive_count >= MIN_MAX_RECEIVE_COUNT:
        return None
    return (f"maxReceiveCount is {queue.max_receive_count}: a message throttled or caught in a failed batch a "
            f"few times moves to the dead-letter queue without a fair chance",
            f"set maxReceiveCount on the source queue's redrive policy to at least {MIN_MAX_RECEIVE_COUNT}",
            f"raise the RedrivePolicy's maxReceiveCount to {MIN_MAX_RECEIVE_COUNT} or more")


def sqs_visibility_timeout(mapping: MappingSettings, facts: Facts) -> tuple[str, str, str] | None:
    queue = facts.queue
    if mapping.source != "sqs" or queue is None:
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


def sqs_retention(mapping: MappingSettings, facts: Facts) -> tuple[str, str, str] | None:
    queue = facts.queue
    if mapping.source != "sqs" or queue is None or queue.max_receive_count is None or queue.retention is None:
        return None
    needed = queue.max_receive_count * queue.visibility_timeout
    if queue.retention >= needed:
        return None
    return (f"the retention period ({queue.retention:g}s) is shorter than maxReceiveCount "
            f"({queue.max_receive_count}) x the visibility timeout ({queue.visibility_timeout:g}s) = {needed:g}s: "
            f"a message failing every time can expire before it reaches the dead-letter queue",
            "keep messages long enough for every receive the redrive policy allows",
            f"set MessageRetentionPeriod to {needed:g}s or more, or lower maxReceiveCount or the visibility timeout")


def sqs_dead_letter_retention(mapping: MappingSettings, facts: Facts) -> tuple[str, str, str] | None:
    queue = facts.queue
    if mapping.source != "sqs" or queue is None or queue.dead_letter_retention is None or queue.retention is None:
        return None
    if queue.dead_letter_retention > queue.retention:
        return None
    return (f"the dead-letter queue keeps messages {queue.dead_letter_retention:g}s, not longer than the source "
            f"queue ({queue.retention:g}s): a message's age counts from its first enqueue, so it can expire "
            f"in the dead-letter queue soon after it arrives",
            "set the dead-letter queue's retention period longer than the source queue's",
            f"raise the MessageRetentionPeriod of {queue.dead_letter_arn}")


def reserved_concurrency(mapping: MappingSettings, facts: Facts) -> tuple[str, str, str] | None:
    maximum = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
    reserved = facts.reserved_concurrency
    if mapping.function.kind != "lambda" or maximum is None or reserved is None or reserved >= int(maximum):
        return None
    return (f"the function's reserved concurrency ({reserved}) is below the mapping's MaximumConcurrency "
            f"({maximum}): invokes beyond it are throttled, and throttled messages count as receives toward "
            f"the dead-letter queue",
            "keep MaximumConcurrency at or below the function's reserved concurrency",
            f"lower ScalingConfig.MaximumConcurrency to {reserved}, or raise the function's reserved concurrency")


def kafka_infinite_retries(mapping: MappingSettings, facts: Facts) -> tuple[str, str, str] | None:
    if mapping.source != "kafka" or int(mapping.get("MaximumRetryAttempts", -1)) != -1 or _destination(mapping):
        return None
    return ("MaximumRetryAttempts is -1 (infinite) and there is no on-failure destination: one record the "
            "function always fails on stops its partition for good",
            "bound the retries and keep what fails in an on-failure destination",
            "set DestinationConfig.OnFailure (retries then stop after 10), or MaximumRetryAttempts")


RULES: dict[str, Rule] = {
    "sqs-redrive-policy": sqs_redrive,
    "sqs-max-receive-count": sqs_max_receive_count,
    "sqs-visibility-timeout": sqs_visibility_timeout,
    "sqs-retention": sqs_retention,
    "sqs-dead-letter-retention": sqs_dead_letter_retention,
    "lambda-reserved-concurrency": reserved_concurrency,
    "kafka-infinite-retries": kafka_infinite_retries,
}


def check(mapping: MappingSettings, facts: Facts) -> list[ConfigWarning]:
    """Every rule `mapping` breaks, given `facts`."""
    found = []
    for name, rule in RULES.items():
        broken = rule(mapping, facts)
        if broken is not None:
            found.append(ConfigWarning(mapping.uuid, mapping.name, name, *broken))
    return found


# -- reading the facts ----------------------------------------------------------------------------

def _why(error: BaseException) -> str:
    return str(error) or type(error).__name__


async def _queue_facts(clients: Any, arn_text: str, unread: list[str]) -> QueueFacts | None:
    arn = parse_arn(arn_text)
    if arn is None:
        return None
    async with clients.client("sqs", arn.region, **PROBE_CLIENT) as sqs:
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


async def _reserved_concurrency(clients: Any, function: str, unread: list[str]) -> int | None:
    arn = parse_arn(function)
    async with clients.client("lambda", arn.region if arn else None, **PROBE_CLIENT) as client:
        try:
            answer = await client.get_function_concurrency(FunctionName=function)
        except (ClientError, BotoCoreError, OSError) as error:
            unread.append(f"the function's reserved concurrency ({_why(error)})")
            return None
    value = answer.get("ReservedConcurrentExecutions")
    return int(value) if value is not None else None


async def gather_facts(mapping: MappingSettings, clients: Any) -> Facts:
    """What the rules need from the services for `mapping` (queue attributes for SQS, reserved
    concurrency for a `lambda:` target with MaximumConcurrency); what cannot be read goes to `unread`."""
    unread: list[str] = []
    queue = None
    reserved = None

    async def read() -> None:
        nonlocal queue, reserved
        if mapping.source == "sqs":
            queue = await _queue_facts(clients, mapping.source_id, unread)
        if mapping.function.kind == "lambda" and (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency"):
            assert mapping.function.lambda_arn is not None
            reserved = await _reserved_concurrency(clients, mapping.function.lambda_arn, unread)

    try:
        await asyncio.wait_for(read(), FACTS_TIMEOUT)
    except asyncio.TimeoutError:
        unread.append(f"no answer within {FACTS_TIMEOUT:g}s")
    return Facts(queue=queue, reserved_concurrency=reserved, unread=tuple(unread))


async def review(mappings: Iterable[MappingSettings], clients: Any) -> list[tuple[MappingSettings, Facts, list[ConfigWarning]]]:
    """Each mapping with its facts and the rules it breaks (the facts read concurrently)."""
    mappings = list(mappings)
    facts = await asyncio.gather(*(gather_facts(m, clients) for m in mappings))
    return [(m, f, check(m, f)) for m, f in zip(mappings, facts)]


def report(mapping: MappingSettings, warnings: list[ConfigWarning], metrics: Metrics | None) -> None:
    """Log each warning and set esm_config_warnings for `mapping` to exactly these checks."""
    if metrics is not None:
        forget(mapping.uuid, metrics)
        for warning in warnings:
            metrics.config_warnings.labels(mapping.uuid, warning.check).set(1)
    for warning in warnings:
        log.warning("%s", warning.line(), extra={"mapping": mapping.name, "event": "ConfigWarning",
                                                 "check": warning.check})


def forget(uuid: str, metrics: Metrics) -> None:
    """Clear the mapping's esm_config_warnings series (before a new review, or when it is deleted)."""
    family = metrics.config_warnings
    for name in RULES:
        try:
            family.remove(uuid, name)
        except KeyError:
            pass


async def review_and_report(mappings: Iterable[MappingSettings], clients: Any, metrics: Metrics | None) -> None:
    """The checks as the daemon runs them: every warning logged and exported; unread facts at debug."""
    for mapping, facts, warnings in await review(mappings, clients):
        for what in facts.unread:
            log.debug("safety checks: %s not read for %s", what, mapping.name, extra={"mapping": mapping.name})
        report(mapping, warnings, metrics)

