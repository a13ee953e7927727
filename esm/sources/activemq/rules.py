"""Amazon MQ for ActiveMQ's config rules and Lambda's defaults for it (behaviour §1, §9.11):
one queue, a BASIC_AUTH secret, BatchSize 1..10,000 (default 100), a window up to 300 s (default
0.5 s); what Lambda refuses for an MQ mapping is refused. `claims` tells an ActiveMQ mapping from a
RabbitMQ one on the broker ARN both share: esm.broker's scheme (stomp://, stomp+ssl://), or, without
esm.broker, the engine mq:DescribeBroker names (esm.sources.amazonmq). `broker_address` reads a URI,
`stomp_endpoint` picks the STOMP one of the endpoints DescribeBroker lists."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

from esm.config.rules import RETRY_CONTROLS, STREAM_ONLY, MappingCheck, not_for
from esm.sources import amazonmq

TITLE = "Amazon MQ for ActiveMQ"
SCHEMES = {"stomp": False, "stomp+ssl": True}  # scheme -> TLS
DEFAULT_PORTS = {False: 61613, True: 61614}  # Amazon MQ's STOMP ports
DEFAULT_BATCH_SIZE = 100
MAX_BATCH_SIZE = 10_000
DEFAULT_WINDOW = 0.5
BASIC_AUTH = "BASIC_AUTH"
NO_BROKER = "needs esm.broker (the broker's URI) or a broker DescribeBroker can find"
# Settings Lambda takes for streams, Kafka or SQS but not for an Amazon MQ mapping.
NOT_FOR_MQ = STREAM_ONLY + RETRY_CONTROLS + (
    "StartingPosition", "StartingPositionTimestamp", "DestinationConfig", "FunctionResponseTypes", "Topics",
    "SelfManagedEventSource", "SelfManagedKafkaEventSourceConfig", "AmazonManagedKafkaEventSourceConfig",
    "ProvisionedPollerConfig", "DocumentDBEventSourceConfig")


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    tls: bool

    def __str__(self) -> str:
        return f"{'stomp+ssl' if self.tls else 'stomp'}://{self.host}:{self.port}"


def broker_address(uri: Any) -> BrokerAddress | str:
    """esm.broker as an address, or what is wrong with it."""
    if not isinstance(uri, str) or "://" not in uri:
        return "must be the broker's URI: stomp://host:port or stomp+ssl://host:port"
    parts = urlsplit(uri)
    if parts.scheme not in SCHEMES:
        return f"has the scheme {parts.scheme!r}; ActiveMQ is reached at stomp:// or stomp+ssl://"
    if parts.username or parts.password:
        return "must not hold a user or password: they come from the BASIC_AUTH secret"
    try:
        port = parts.port
    except ValueError:
        return "has a port that is not a number from 1 to 65535"
    if not parts.hostname:
        return "names no host"
    tls = SCHEMES[parts.scheme]
    return BrokerAddress(parts.hostname, port or DEFAULT_PORTS[tls], tls)


def stomp_endpoint(endpoints: list[str]) -> BrokerAddress | None:
    """The STOMP endpoint of those DescribeBroker lists (stomp+ssl:// on Amazon MQ), if any."""
    for uri in endpoints:
        address = broker_address(uri)
        if isinstance(address, BrokerAddress):
            return address
    return None


def claims(request: Mapping[str, Any], extension: Mapping[str, Any]) -> bool:
    """An ActiveMQ mapping: esm.broker is a STOMP URI or, without esm.broker, DescribeBroker says
    the broker's engine is ActiveMQ."""
    broker = extension.get("broker")
    if broker is None:
        arn = request.get("EventSourceArn")
        return isinstance(arn, str) and amazonmq.engine_of(arn) == amazonmq.ACTIVEMQ
    return isinstance(broker, str) and urlsplit(broker).scheme in SCHEMES


def check(check: MappingCheck) -> None:
    req = check.request
    not_for(check, NOT_FOR_MQ, TITLE)
    queues = req.get("Queues")
    if not (isinstance(queues, list) and len(queues) == 1 and isinstance(queues[0], str) and queues[0]):
        check.fail("Queues", "must name exactly one queue of the broker")
    _check_access(check, req.get("SourceAccessConfigurations"))
    batch = req.setdefault("BatchSize", DEFAULT_BATCH_SIZE)
    if isinstance(batch, int) and not 1 <= batch <= MAX_BATCH_SIZE:
        check.fail("BatchSize", f"must be between 1 and {MAX_BATCH_SIZE} for {TITLE} (got {batch})")
    window = req.get("MaximumBatchingWindowInSeconds")
    check.batching_window = DEFAULT_WINDOW if window is None else float(window)
    if "broker" in check.extension:
        address = broker_address(check.extension["broker"])
        if isinstance(address, str):
            check.fail("esm.broker", address)
    elif amazonmq.engine_of(check.source_id) != amazonmq.ACTIVEMQ:
        check.fail("esm.broker", NO_BROKER)  # the source finds the broker's endpoints when it connects


def _check_access(check: MappingCheck, access: Any) -> None:
    entries = [e for e in access or [] if isinstance(e, dict)]
    kinds = [e.get("Type") for e in entries]
    if kinds.count(BASIC_AUTH) != 1:
        check.fail("SourceAccessConfigurations",
                   f"must hold one {BASIC_AUTH} entry: the Secrets Manager secret with the broker user's "
                   "username and password")
    for index, kind in enumerate(kinds):
        if kind != BASIC_AUTH:
            check.fail(f"SourceAccessConfigurations[{index}].Type",
                       f"{kind} is not supported for {TITLE} event sources (only {BASIC_AUTH})")


def secret_uri(request: Mapping[str, Any]) -> str:
    """The BASIC_AUTH secret's URI (the rules made sure there is one)."""
    return next(e["URI"] for e in request["SourceAccessConfigurations"] if e.get("Type") == BASIC_AUTH)
