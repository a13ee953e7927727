"""The rules of SPEC section 1 that the API shape cannot express, and Lambda's defaults.

`check_mapping` takes one mapping request that already passed the API-shape check and returns
its problems (paths relative to the mapping) plus the normalized request with Lambda's
per-source defaults filled in. Rules follow what CreateEventSourceMapping rejects; where the
API would accept a value that esm cannot honour (a source it does not serve), that is an error
too, never a silent ignore.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from esm.arns import NOT_SERVED, is_dynamodb_stream, is_fifo_queue, parse_arn, source_kind
from esm.config.api_shape import create_mapping_shape
from esm.errors import Problem
from esm.filtering import InvalidPatternError, compile_filters, validate_pattern
from esm.filtering.decode import check_source_patterns
from esm.sources.sqs.scaling import SQS_DEFAULT_MAXIMUM_POLLERS, SQS_DEFAULT_MINIMUM_POLLERS
from esm.schemas.config import problems as schema_registry_problems
from esm.security.kafka_auth import HOST_PORT, MAX_BOOTSTRAP_SERVERS, check_access

MAX_FILTERS = 5
MAX_PATTERN_CHARS = 4096
SQS_FIFO_MAX_BATCH = 10
SQS_MIN_POLLERS = 2  # ProvisionedPollerConfig for SQS (the API shape allows 1, for Kafka)
KAFKA_DEFAULT_WINDOW = 0.5
CONSUMER_GROUP_ID = re.compile(r"[a-zA-Z0-9\-/*:_+=.@]{1,200}")

# Keys of AWS SAM's event syntax, answered with the API field to use instead.
SAM_KEYS = {
    "Queue": "use EventSourceArn (the queue ARN); esm takes CreateEventSourceMapping field names",
    "Stream": "use EventSourceArn (the stream or cluster ARN); esm takes CreateEventSourceMapping field names",
    "Broker": "use EventSourceArn; Amazon MQ is not served by esm yet",
    "KafkaBootstrapServers": "use SelfManagedEventSource: {Endpoints: {KAFKA_BOOTSTRAP_SERVERS: [...]}}",
    "ConsumerGroupId": "use SelfManagedKafkaEventSourceConfig.ConsumerGroupId "
    "(or AmazonManagedKafkaEventSourceConfig.ConsumerGroupId for Amazon MSK)",
    "Type": "is SAM's event type; remove it (esm infers the source from EventSourceArn)",
    "Properties": "is SAM's event syntax; put the fields of Properties directly in the mapping",
    "Function": "use FunctionName (a key of functions:)",
}

STREAM_ONLY = ("ParallelizationFactor", "TumblingWindowInSeconds")
RETRY_CONTROLS = ("BisectBatchOnFunctionError", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds")


@dataclass
class MappingCheck:
    problems: list[Problem] = field(default_factory=list)
    source: str = ""
    source_id: str = ""
    request: dict[str, Any] = field(default_factory=dict)
    batching_window: float = 0.0
    # Top-level fields that already failed the API-shape check: no second complaint about them.
    already_reported: frozenset[str] = frozenset()

    def fail(self, path: str, message: str) -> None:
        if re.split(r"[.\[]", path, maxsplit=1)[0] not in self.already_reported:
            self.problems.append(Problem(path, message))


def sam_key_problems(raw: dict[str, Any]) -> list[Problem]:
    return [Problem(key, hint) for key, hint in SAM_KEYS.items() if key in raw]


def check_mapping(request: dict[str, Any], already_reported: frozenset[str] = frozenset()) -> MappingCheck:
    """Check `request` (without the fields in `already_reported`, which failed the shape check)."""
    check = MappingCheck(request=dict(request), already_reported=already_reported)
    _identify_source(check)
    if not check.source:
        return check
    {"sqs": _check_sqs, "kinesis": _check_kinesis, "dynamodb": _check_dynamodb, "kafka": _check_kafka}[check.source](check)
    _check_common(check)
    return check


def _identify_source(check: MappingCheck) -> None:
    req = check.request
    arn_text = req.get("EventSourceArn")
    if "Queues" in req:
        check.fail("Queues", "Amazon MQ is not served by esm yet")
    if "DocumentDBEventSourceConfig" in req:
        check.fail("DocumentDBEventSourceConfig", "Amazon DocumentDB is not served by esm yet")
    if isinstance(arn_text, str) and arn_text:
        arn = parse_arn(arn_text)
        if arn is None:
            return  # the API pattern check already said so
        kind = source_kind(arn)
        if kind in NOT_SERVED:
            check.fail("EventSourceArn",
                       f"{NOT_SERVED[kind]} is not served by esm yet (sources: SQS, Kinesis, DynamoDB Streams, Kafka)")
            return
        if kind not in ("sqs", "kinesis", "dynamodb", "kafka"):
            check.fail("EventSourceArn", f"'{arn.service}' is not an event source; "
                       "esm serves SQS, Kinesis, DynamoDB Streams and Kafka")
            return
        if kind == "dynamodb" and not is_dynamodb_stream(arn):
            check.fail("EventSourceArn", "must be a DynamoDB stream ARN "
                       "(arn:aws:dynamodb:<region>:<account>:table/<table>/stream/<label>), not a table ARN")
            return
        if "SelfManagedEventSource" in req:
            check.fail("SelfManagedEventSource", "not allowed with EventSourceArn (self-managed Kafka has no ARN)")
        check.source, check.source_id = kind, arn_text
    elif "SelfManagedEventSource" in req or "SelfManagedEventSource" in check.already_reported:
        check.source = "kafka"
        servers = req.get("SelfManagedEventSource", {}).get("Endpoints", {}).get("KAFKA_BOOTSTRAP_SERVERS") or []
        topic = (req.get("Topics") or [""])[0]
        check.source_id = f"kafka://{','.join(servers)}/{topic}"
    elif not check.problems:
        check.fail("EventSourceArn", "is required (or SelfManagedEventSource for a self-managed Kafka cluster)")


def _not_for(check: MappingCheck, keys: tuple[str, ...], source_name: str) -> None:
    for key in keys:
        if key in check.request:
            check.fail(key, f"is not supported for {source_name} event sources")


def _check_sqs(check: MappingCheck) -> None:
    req = check.request
    arn = parse_arn(check.source_id)
    fifo = arn is not None and is_fifo_queue(arn)
    _not_for(check, STREAM_ONLY + RETRY_CONTROLS + ("StartingPosition", "StartingPositionTimestamp", "Topics",
                                                    "SourceAccessConfigurations"), "SQS")
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
        check.fail(
            "MaximumBatchingWindowInSeconds",
            f"must be at least 1 when BatchSize is greater than 10 on a standard queue (BatchSize is {batch})",
        )
    check.batching_window = float(window or 0)
    _check_sqs_provisioned(check)


def _check_sqs_provisioned(check: MappingCheck) -> None:
    """SQS provisioned mode (SPEC 1, 7): pollers 2 to the API's maximums, defaults 2 and 200, no
    poller groups, and never together with ScalingConfig.MaximumConcurrency (AWS: mutually exclusive)."""
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


def _check_kinesis(check: MappingCheck) -> None:
    req = check.request
    _not_for(check, ("Topics", "ScalingConfig", "SelfManagedKafkaEventSourceConfig", "SourceAccessConfigurations",
                     "AmazonManagedKafkaEventSourceConfig", "ProvisionedPollerConfig"), "Kinesis")
    req.setdefault("BatchSize", 100)
    _check_starting_position(check)
    _check_retry_controls(check)
    req.setdefault("ParallelizationFactor", 1)
    req.setdefault("TumblingWindowInSeconds", 0)
    check.batching_window = float(req.get("MaximumBatchingWindowInSeconds", 0) or 0)
    _check_destination(check, allow_kafka=False)


def _check_dynamodb(check: MappingCheck) -> None:
    """DynamoDB Streams takes the stream controls Kinesis does (SPEC 1), except AT_TIMESTAMP, which
    CreateEventSourceMapping refuses for a DynamoDB stream with the message below."""
    req = check.request
    _not_for(check, ("Topics", "ScalingConfig", "SelfManagedKafkaEventSourceConfig", "SourceAccessConfigurations",
                     "AmazonManagedKafkaEventSourceConfig", "ProvisionedPollerConfig"), "DynamoDB Streams")
    req.setdefault("BatchSize", 100)
    if req.get("StartingPosition") == "AT_TIMESTAMP":
        check.fail("StartingPosition", f"Unsupported starting position for arn type: {check.source_id}")
    else:
        _check_starting_position(check)
    _check_retry_controls(check)
    req.setdefault("ParallelizationFactor", 1)
    req.setdefault("TumblingWindowInSeconds", 0)
    check.batching_window = float(req.get("MaximumBatchingWindowInSeconds", 0) or 0)
    _check_destination(check, allow_kafka=False)


def _check_kafka(check: MappingCheck) -> None:
    req = check.request
    _not_for(check, STREAM_ONLY + ("ScalingConfig",), "Kafka")
    req.setdefault("BatchSize", 100)
    topics = req.get("Topics")
    if not topics:
        check.fail("Topics", "is required for Kafka event sources (exactly one topic)")
    self_managed = "SelfManagedEventSource" in req or "SelfManagedEventSource" in check.already_reported
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
    kafka_config_key = "SelfManagedKafkaEventSourceConfig" if self_managed else "AmazonManagedKafkaEventSourceConfig"
    kafka_config = req.get(kafka_config_key) or {}
    group = kafka_config.get("ConsumerGroupId")
    if group is not None and not CONSUMER_GROUP_ID.fullmatch(str(group)):
        check.fail(f"{kafka_config_key}.ConsumerGroupId", "must be 1 to 200 characters of [a-zA-Z0-9-/*:_+=.@]")
    # Connection security (esm.security.kafka_auth): the Types Lambda accepts for this kind of cluster.
    for problem in check_access(req.get("SourceAccessConfigurations"), msk=not self_managed):
        check.fail(problem.path, problem.message)
    if kafka_config.get("ConsumptionMode") == "Queue":
        check.fail(f"{kafka_config_key}.ConsumptionMode", "Queue (Kafka share groups) is not served by esm yet; use Stream")
    if isinstance(kafka_config, dict) and "SchemaRegistryConfig" in kafka_config:
        for path, message in schema_registry_problems(kafka_config["SchemaRegistryConfig"],
                                                      f"{kafka_config_key}.SchemaRegistryConfig"):
            check.fail(path, message)
    _check_starting_position(check)
    _check_retry_controls(check)
    window = req.get("MaximumBatchingWindowInSeconds")
    check.batching_window = KAFKA_DEFAULT_WINDOW if window is None else float(window)
    _check_destination(check, allow_kafka=True)
    provisioned = req.get("ProvisionedPollerConfig") or {}
    low, high = provisioned.get("MinimumPollers"), provisioned.get("MaximumPollers")
    if isinstance(low, int) and isinstance(high, int) and high < low:
        check.fail("ProvisionedPollerConfig.MaximumPollers", f"must be at least MinimumPollers ({low})")


def _check_starting_position(check: MappingCheck) -> None:
    req = check.request
    position = req.get("StartingPosition")
    if position is None:
        options = "TRIM_HORIZON or LATEST" if check.source == "dynamodb" else "TRIM_HORIZON, LATEST or AT_TIMESTAMP"
        check.fail("StartingPosition", f"is required for Kinesis, DynamoDB Streams and Kafka event sources ({options})")
        return
    stamp = req.get("StartingPositionTimestamp")
    if position == "AT_TIMESTAMP":
        if stamp is None:
            check.fail("StartingPositionTimestamp", "is required when StartingPosition is AT_TIMESTAMP")
        else:
            seconds = _epoch_seconds(stamp)
            if seconds is None:
                check.fail("StartingPositionTimestamp", f"must be a Unix time in seconds or an ISO 8601 time (got {stamp!r})")
            elif seconds > time.time():
                check.fail("StartingPositionTimestamp", "must not be in the future")
            else:
                req["StartingPositionTimestamp"] = seconds
    elif stamp is not None:
        check.fail("StartingPositionTimestamp", "is only allowed when StartingPosition is AT_TIMESTAMP")


def _epoch_seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, str):
        try:
            return _epoch_seconds(datetime.fromisoformat(value.replace("Z", "+00:00")))
        except ValueError:
            return None
    return None


def _check_retry_controls(check: MappingCheck) -> None:
    req = check.request
    req.setdefault("BisectBatchOnFunctionError", False)
    req.setdefault("MaximumRetryAttempts", -1)
    age = req.setdefault("MaximumRecordAgeInSeconds", -1)
    if isinstance(age, int) and not isinstance(age, bool) and age != -1 and age < 60:
        check.fail("MaximumRecordAgeInSeconds", f"must be -1 (infinite) or between 60 and 604800 (got {age})")


def _check_destination(check: MappingCheck, *, allow_kafka: bool) -> None:
    destination = check.request.get("DestinationConfig") or {}
    target = (destination.get("OnFailure") or {}).get("Destination")
    if not target:
        return
    path = "DestinationConfig.OnFailure.Destination"
    if target.startswith("kafka://"):
        if not allow_kafka:
            check.fail(path, "a kafka:// destination is only supported for Kafka event sources")
        elif target[len("kafka://"):] in (check.request.get("Topics") or []):
            check.fail(path, "must not be the source topic")
        return
    arn = parse_arn(target)
    if arn is None:
        return  # reported by the API pattern check
    if arn.service not in ("sqs", "sns", "s3"):
        check.fail(path, f"must be an SQS queue, SNS topic or S3 bucket ARN (got a {arn.service} ARN)")
    elif arn.service == "sqs" and arn.resource.endswith(".fifo"):
        check.fail(path, "FIFO queues are not supported as on-failure destinations")
    elif arn.service == "sns" and arn.resource.endswith(".fifo"):
        check.fail(path, "FIFO topics are not supported as on-failure destinations")


def _check_common(check: MappingCheck) -> None:
    req = check.request
    req.setdefault("Enabled", True)
    req.setdefault("FunctionResponseTypes", [])
    if "OnSuccess" in (req.get("DestinationConfig") or {}):
        check.fail("DestinationConfig.OnSuccess", "is not supported for event source mappings; only OnFailure is")
    filters = (req.get("FilterCriteria") or {}).get("Filters") or []
    if len(filters) > MAX_FILTERS:
        check.fail("FilterCriteria.Filters", f"must have at most {MAX_FILTERS} filters (got {len(filters)})")
    for i, item in enumerate(filters):
        pattern = item.get("Pattern") if isinstance(item, dict) else None
        if not isinstance(pattern, str):
            continue
        path = f"FilterCriteria.Filters[{i}].Pattern"
        if len(pattern) > MAX_PATTERN_CHARS:
            continue  # the API shape check reports the length
        try:
            validate_pattern(pattern)
        except InvalidPatternError as error:
            check.fail(path, f"Invalid filter pattern definition: {error}")
            continue
        try:
            # SPEC 5: Kinesis and DynamoDB data is filtered as JSON; a plain-text data pattern is a create error.
            check_source_patterns(compile_filters([pattern]), check.source)
        except InvalidPatternError as error:
            check.fail(path, f"Invalid filter pattern definition: {error}")
