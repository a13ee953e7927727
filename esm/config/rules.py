"""The rules of behaviour §1 that the API shape cannot express, and Lambda's defaults.

`check_mapping` takes one mapping request that already passed the API-shape check and returns
its problems (paths relative to the mapping) plus the normalized request with Lambda's
per-source defaults filled in. Rules follow what CreateEventSourceMapping rejects; where the
API would accept a value that esm cannot honour (a source it does not serve), that is an error
too, never a silent ignore. Where AWS refuses a request with a fixed text, the rule says that
text, with its error code (`MappingCheck.refuse`): `esm validate` and the control API then give
the user the words AWS gives (behaviour §10). Which source a request names, and that source's own rules and
defaults, come from its descriptor (esm.descriptor); the checks every source shares are here.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Mapping

from esm import registry
from esm.arns import NOT_SERVED, parse_arn
from esm.descriptor import SourceDescriptor
from esm.errors import Problem
from esm.filtering import InvalidPatternError, compile_filters, validate_pattern
from esm.filtering.decode import check_json_data_patterns

MAX_FILTERS = 5
MAX_PATTERN_CHARS = 4096

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

# AWS's own texts for the rules every source shares (behaviour §10).
INVALID = "InvalidParameterValueException"
NO_SOURCE = "Unrecognized event source."
NO_STARTING_POSITION = ("1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: "
                        "Member must not be null.")
TIMESTAMP_WITHOUT_AT_TIMESTAMP = "Timestamp only valid with StartingPosition AT_TIMESTAMP"
INVALID_PATTERN = "Invalid filter pattern definition."
ON_SUCCESS = "Unsupported DestinationConfig parameter for given event source mapping type."

STREAM_ONLY = ("ParallelizationFactor", "TumblingWindowInSeconds")
RETRY_CONTROLS = ("BisectBatchOnFunctionError", "MaximumRetryAttempts", "MaximumRecordAgeInSeconds")
# What no shard stream source (Kinesis, DynamoDB Streams) takes: Kafka's and SQS's settings.
NOT_FOR_STREAMS = ("Topics", "Queues", "ScalingConfig", "SelfManagedKafkaEventSourceConfig", "SourceAccessConfigurations",
                   "AmazonManagedKafkaEventSourceConfig", "ProvisionedPollerConfig")


@dataclass
class MappingCheck:
    problems: list[Problem] = field(default_factory=list)
    source: str = ""
    source_id: str = ""
    request: dict[str, Any] = field(default_factory=dict)
    batching_window: float = 0.0
    # Top-level fields that already failed the API-shape check: no second complaint about them.
    already_reported: frozenset[str] = frozenset()
    # The mapping's `esm:` keys as written (a source's `claims` may read them, e.g. esm.broker).
    extension: Mapping[str, Any] = field(default_factory=dict)

    def fail(self, path: str, message: str, code: str = "") -> None:
        if re.split(r"[.\[]", path, maxsplit=1)[0] not in self.already_reported:
            self.problems.append(Problem(path, message, code))

    def refuse(self, path: str, aws_text: str, code: str = INVALID, detail: str = "") -> None:
        """A problem AWS answers with the fixed `aws_text` (and `code`): said in AWS's words, with
        esm's `detail` for `esm validate`."""
        if re.split(r"[.\[]", path, maxsplit=1)[0] not in self.already_reported:
            self.problems.append(Problem(path, aws_text, code, detail))


def sam_key_problems(raw: dict[str, Any]) -> list[Problem]:
    return [Problem(key, hint) for key, hint in SAM_KEYS.items() if key in raw]


def check_mapping(request: dict[str, Any], already_reported: frozenset[str] = frozenset(),
                  extension: Mapping[str, Any] | None = None) -> MappingCheck:
    """Check `request` (without the fields in `already_reported`, which failed the shape check);
    `extension` is the mapping's `esm:` section as written."""
    check = MappingCheck(request=dict(request), already_reported=already_reported, extension=dict(extension or {}))
    descriptor = _identify_source(check)
    if descriptor is None:
        return check
    registry.import_path(descriptor.rules)(check)
    _check_common(check, descriptor)
    return check


def _identify_source(check: MappingCheck) -> SourceDescriptor | None:
    """The descriptor of the source the request names (setting check.source and source_id), or None."""
    req = check.request
    arn_text = req.get("EventSourceArn")
    if "DocumentDBEventSourceConfig" in req:
        check.fail("DocumentDBEventSourceConfig", "Amazon DocumentDB is not served by esm yet")
    descriptors: list[SourceDescriptor] = registry.descriptors()
    arnless = [d for d in descriptors if d.arnless is not None]
    if isinstance(arn_text, str) and arn_text:
        found = _named_by_arn(check, arn_text, descriptors)
        if found is not None:
            for other in arnless:
                if other.arnless is not None and other.arnless.key in req:
                    check.fail(other.arnless.key, other.arnless.with_arn)
            check.source_id = arn_text
    else:
        found = next((d for d in arnless if d.arnless is not None
                      and (d.arnless.key in req or d.arnless.key in check.already_reported)), None)
        if found is not None and found.arnless is not None:
            check.source_id = found.arnless.source_id(req)
        elif not check.problems:
            check.refuse("EventSourceArn", NO_SOURCE)
    if found is not None:
        check.source = found.kind
    return found


def _named_by_arn(check: MappingCheck, arn_text: str, descriptors: list[SourceDescriptor]) -> SourceDescriptor | None:
    """The source whose ARN service this is and whose ARN check passes; else None, said in `check`."""
    arn = parse_arn(arn_text)
    if arn is None:
        return None  # the API pattern check already said so
    titles = [d.title for d in descriptors]
    candidates = [d for d in descriptors if arn.service in d.arn_services]
    if not candidates and arn.service in NOT_SERVED:
        check.fail("EventSourceArn", f"{NOT_SERVED[arn.service]} is not served by esm yet "
                   f"(sources: {', '.join(titles)})")
        return None
    if not candidates:
        check.fail("EventSourceArn", f"'{arn.service}' is not an event source; "
                   f"esm serves {', '.join(titles[:-1])} and {titles[-1]}")
        return None
    found = candidates[0] if len(candidates) == 1 else _claimant(check, candidates)
    if found is None:
        return None
    refused = registry.import_path(found.arn_check)(arn) if found.arn_check else None
    if refused:
        check.fail("EventSourceArn", refused)
        return None
    return found


def _claimant(check: MappingCheck, candidates: list[SourceDescriptor]) -> SourceDescriptor | None:
    """Of sources sharing an ARN service, the one whose `claims` takes the request; else None, said."""
    for candidate in candidates:
        if candidate.claims is not None and registry.import_path(candidate.claims[0])(check.request, check.extension):
            return candidate
    ways = "; ".join(f"{d.title}: {d.claims[1]}" for d in candidates if d.claims is not None)
    check.fail("EventSourceArn", f"names a resource {' and '.join(d.title for d in candidates)} share, and "
               f"nothing in the mapping says which it is ({ways})")
    return None


async def not_found(ask: Callable[[], Awaitable[None]], code: str) -> bool | None:
    """For a source's `exists` probe: False when `ask` fails with the service's not-found `code`,
    True when it answers, None when the service does not answer (unreachable: not missing)."""
    from botocore.exceptions import ClientError

    try:
        await ask()
    except ClientError as error:
        return False if error.response.get("Error", {}).get("Code") == code else None
    except Exception:  # noqa: BLE001 - unreachable or refused: told later by the mapping's state
        return None
    return True


def not_for(check: MappingCheck, keys: tuple[str, ...], source_name: str) -> None:
    for key in keys:
        if key in check.request:
            check.fail(key, f"is not supported for {source_name} event sources")


def check_starting_position(check: MappingCheck, default: str | None = None) -> None:
    """StartingPosition and its timestamp; a source whose StartingPosition AWS does not require
    gives its `default`."""
    req = check.request
    position = req.get("StartingPosition")
    if position is None and default is not None:
        position = req["StartingPosition"] = default
    if position is None:
        check.refuse("StartingPosition", NO_STARTING_POSITION)
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
        check.refuse("StartingPositionTimestamp", TIMESTAMP_WITHOUT_AT_TIMESTAMP)


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


def check_retry_controls(check: MappingCheck, *, defaults: bool = True) -> None:
    """Retries, record age and bisect; with `defaults`, AWS's defaults go in the request (it
    answers them for streams, not for Kafka: behaviour §10)."""
    req = check.request
    if defaults:
        req.setdefault("BisectBatchOnFunctionError", False)
        req.setdefault("MaximumRetryAttempts", -1)
        req.setdefault("MaximumRecordAgeInSeconds", -1)
    age = req.get("MaximumRecordAgeInSeconds", -1)
    if isinstance(age, int) and not isinstance(age, bool) and age != -1 and age < 60:
        check.fail("MaximumRecordAgeInSeconds", f"must be -1 (infinite) or between 60 and 604800 (got {age})")


# ARN destinations that refuse FIFO resources, with the message saying so.
FIFO_REFUSED = {"sqs": "FIFO queues are not supported as on-failure destinations",
                "sns": "FIFO topics are not supported as on-failure destinations"}


def check_destination(check: MappingCheck, *, allow_kafka: bool) -> None:
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
    if arn.service not in registry.DESTINATIONS:
        check.fail(path, f"must be an SQS queue, SNS topic or S3 bucket ARN (got a {arn.service} ARN)")
    elif arn.resource.endswith(".fifo") and arn.service in FIFO_REFUSED:
        check.fail(path, FIFO_REFUSED[arn.service])


def check_stream_controls(check: MappingCheck) -> None:
    """What the shard streams (Kinesis, DynamoDB Streams) share after the starting position:
    retries, lanes, tumbling windows, the batching window and the on-failure destination."""
    req = check.request
    check_retry_controls(check)
    req.setdefault("ParallelizationFactor", 1)
    req.setdefault("TumblingWindowInSeconds", 0)
    check.batching_window = float(req.get("MaximumBatchingWindowInSeconds", 0) or 0)
    check_destination(check, allow_kafka=False)


def _check_common(check: MappingCheck, descriptor: SourceDescriptor) -> None:
    req = check.request
    req.setdefault("Enabled", True)
    req.setdefault("FunctionResponseTypes", [])
    if "OnSuccess" in (req.get("DestinationConfig") or {}):
        check.refuse("DestinationConfig.OnSuccess", ON_SUCCESS)
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
            check.refuse(path, INVALID_PATTERN, detail=str(error))
            continue
        try:
            matcher = compile_filters([pattern])
            if descriptor.data.json_patterns_only:
                # behaviour §5: Kinesis and DynamoDB data is filtered as JSON; a plain-text data
                # pattern is a create error.
                check_json_data_patterns(matcher, descriptor.data.key, check.source)
        except InvalidPatternError as error:
            check.refuse(path, INVALID_PATTERN, detail=str(error))
