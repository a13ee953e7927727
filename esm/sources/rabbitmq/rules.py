"""Amazon MQ for RabbitMQ's config rules and Lambda's defaults (behaviour §1, §9.11): one queue,
BASIC_AUTH and at most one VIRTUAL_HOST, BatchSize up to 10,000 (default 100), a batching window
of 0.5 s unless given, and what Lambda refuses for an Amazon MQ mapping. Also `claims` (which MQ
requests are RabbitMQ's) and `check_extension` (`esm.broker`, the broker's URI)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from esm.config.rules import RETRY_CONTROLS, STREAM_ONLY, MappingCheck, not_for
from esm.errors import Problem

TITLE = "Amazon MQ for RabbitMQ"
SCHEMES = ("amqp", "amqps")
DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 10000
DEFAULT_WINDOW = 0.5  # seconds: Lambda's default for Amazon MQ, which the integer API field cannot say
BASIC_AUTH = "BASIC_AUTH"
VIRTUAL_HOST = "VIRTUAL_HOST"

# Lambda's settings that an Amazon MQ mapping does not take: a failed batch goes back to the broker
# whole (no partial responses, retries, bisecting or destinations), and there is no position to start at.
NOT_FOR_MQ = STREAM_ONLY + RETRY_CONTROLS + (
    "StartingPosition", "StartingPositionTimestamp", "Topics", "SelfManagedEventSource",
    "SelfManagedKafkaEventSourceConfig", "AmazonManagedKafkaEventSourceConfig", "ProvisionedPollerConfig",
    "DocumentDBEventSourceConfig",
)


def claims(request: dict[str, Any], extension: dict[str, Any] | None) -> bool:
    """Whether an `mq` broker's mapping is RabbitMQ's: its `esm.broker` is an amqp:// or amqps://
    URI; without one, its SourceAccessConfigurations name a VIRTUAL_HOST (which only RabbitMQ has)
    or DescribeBroker says the broker's engine is RabbitMQ."""
    broker = (extension or {}).get("broker")
    if isinstance(broker, str):
        return urlsplit(broker).scheme.lower() in SCHEMES
    if any(isinstance(c, dict) and c.get("Type") == VIRTUAL_HOST
           for c in request.get("SourceAccessConfigurations") or []):
        return True
    arn = request.get("EventSourceArn")
    if not isinstance(arn, str):
        return False
    from esm.sources.amazonmq import RABBITMQ, engine_of  # asks mq:DescribeBroker (once per ARN)

    return engine_of(arn) == RABBITMQ


def check(check: MappingCheck) -> None:
    req = check.request
    not_for(check, NOT_FOR_MQ, TITLE)
    if req.get("FunctionResponseTypes"):
        check.fail("FunctionResponseTypes", f"is not supported for {TITLE} event sources: a batch succeeds or "
                   "fails as a whole and a failed batch goes back to the broker")
    if (req.get("DestinationConfig") or {}).get("OnFailure"):
        check.fail("DestinationConfig.OnFailure", f"is not supported for {TITLE} event sources; give the queue "
                   "a dead-letter exchange and a delivery limit (a quorum queue's x-delivery-limit) instead")
    _check_queues(check)
    _check_access(check)
    batch = req.setdefault("BatchSize", DEFAULT_BATCH_SIZE)
    if isinstance(batch, int) and not isinstance(batch, bool) and batch > MAX_BATCH_SIZE:
        check.fail("BatchSize", f"must be at most {MAX_BATCH_SIZE} for {TITLE} event sources (got {batch})")
    window = req.get("MaximumBatchingWindowInSeconds")
    check.batching_window = DEFAULT_WINDOW if window is None else float(window or 0)


def _check_queues(check: MappingCheck) -> None:
    queues = check.request.get("Queues")
    if queues is None:
        check.fail("Queues", f"is required for {TITLE} event sources: the one queue to read")
    elif isinstance(queues, list) and len(queues) != 1:
        check.fail("Queues", f"must name exactly one queue (got {len(queues)})")


def _check_access(check: MappingCheck) -> None:
    configs = check.request.get("SourceAccessConfigurations")
    if not isinstance(configs, list) or not configs:
        check.fail("SourceAccessConfigurations", f"needs a {BASIC_AUTH} secret (its username and password) "
                   f"for {TITLE} event sources")
        return
    kinds = [c.get("Type") for c in configs if isinstance(c, dict)]
    for i, kind in enumerate(kinds):
        if kind not in (BASIC_AUTH, VIRTUAL_HOST):
            check.fail(f"SourceAccessConfigurations[{i}].Type",
                       f"{kind} is not supported for {TITLE} event sources (only {BASIC_AUTH} and {VIRTUAL_HOST})")
    for kind in (BASIC_AUTH, VIRTUAL_HOST):
        if kinds.count(kind) > 1:
            check.fail("SourceAccessConfigurations", f"must have at most one {kind} (got {kinds.count(kind)})")
    if BASIC_AUTH not in kinds:
        check.fail("SourceAccessConfigurations", f"needs a {BASIC_AUTH} secret (its username and password) "
                   f"for {TITLE} event sources")


def access(request: Any) -> tuple[str, str]:
    """The BASIC_AUTH secret's URI and the virtual host ("/" when none is given) of a checked request."""
    secret, vhost = "", "/"
    for config in request.get("SourceAccessConfigurations") or []:
        if config.get("Type") == BASIC_AUTH:
            secret = config.get("URI", "")
        elif config.get("Type") == VIRTUAL_HOST:
            vhost = config.get("URI", "/")
    return secret, vhost


def check_extension(extension: Any, request: dict[str, Any], kind: str) -> list[Problem]:
    """`esm.broker`, when given: an amqp:// or amqps:// URI naming a host, with no user or password
    (those come from the BASIC_AUTH secret) and no path (the virtual host is VIRTUAL_HOST's). Left
    out, the running source asks mq:DescribeBroker for the broker's endpoints."""
    broker = extension.raw.get("broker")
    if broker is None:
        return []
    if not isinstance(broker, str):
        return [Problem("esm.broker", "must be the broker's URI, e.g. amqps://b-1234.mq.us-east-1.amazonaws.com:5671")]
    parts = urlsplit(broker)
    problems = []
    if parts.scheme.lower() not in SCHEMES or not parts.hostname:
        problems.append(Problem("esm.broker",
                                f"must be an amqp:// or amqps:// URI naming the broker's host (got {broker!r})"))
    if parts.username is not None or parts.password is not None:
        problems.append(Problem("esm.broker",
                                "must not carry a user or password: they come from the BASIC_AUTH secret"))
    if parts.path not in ("", "/"):
        problems.append(Problem("esm.broker", "must not name a virtual host: give it as a VIRTUAL_HOST "
                                              "SourceAccessConfiguration"))
    try:
        parts.port
    except ValueError:
        problems.append(Problem("esm.broker", f"has an invalid port (got {broker!r})"))
    return problems
