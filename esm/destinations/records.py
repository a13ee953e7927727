"""The on-failure documents Lambda sends to a destination (behaviour §4), built as plain dicts.

Pure functions, no I/O: the stream (Kinesis, DynamoDB) and Kafka failure records with their keys
in the order behaviour §4 shows, the S3 object key, and the `payload` string S3 documents carry.
Times are epoch seconds in, ISO-8601 UTC with milliseconds and `Z` out (DynamoDB's record arrival
times in whole seconds, `2022-07-13T13:48:01Z`, as AWS writes them: its records carry whole seconds).

`responseContext` follows what the function answered on its last invoke (`failure_context`), as
recorded against real AWS (behaviour §4):
- whenever the function answered, it has all three keys `statusCode`, `executedVersion` and
  `functionError`; `functionError` is `"Unhandled"` for a function error and `null` otherwise (a
  partial batch response, or an invalid one: retried like a failure, but not a function error);
- records given up on for `RecordAgeExceeded` have no `responseContext` key at all, invoked or not,
  and an `approximateInvokeCount` of at least 1;
- records never invoked for another reason (Kafka's `MaximumPayloadSizeExceeded`, schema
  failures) have none in a stream document, and `"responseContext": null` in a Kafka document.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from time import time
from typing import Any, Iterable, Mapping

import orjson

from esm.core.conditions import RECORD_AGE_EXCEEDED
from esm.core.outcomes import FUNCTION_ERROR, INVALID_RESPONSE, INVOCATION_ERROR, PARTIAL, SUCCESS
from esm.core.results import LATEST, FunctionError, InvocationError, InvokeResult, Succeeded

VERSION = "1.0"
UNHANDLED = "Unhandled"

_BATCH_INFO_KEY = {"kinesis": "KinesisBatchInfo", "dynamodb": "DDBStreamBatchInfo"}



@dataclass(frozen=True)
class ResponseContext:
    """Lambda's Invoke answer as a failure record reports it. `function_error=None` is `null`."""

    status_code: int = 200
    executed_version: str = LATEST
    function_error: str | None = UNHANDLED

    def to_dict(self) -> dict[str, Any]:
        return {"statusCode": self.status_code, "executedVersion": self.executed_version,
                "functionError": self.function_error}


def response_context(last: InvokeResult | str | None, *, executed_version: str = LATEST) -> ResponseContext | None:
    """The responseContext for the last invoke of the failing records.

    `last` is that invoke's result, or what it answered (`Outcome.answer`: `function_error`,
    `invalid_response`, `partial`, `success`, `invocation_error`), or None when the records were
    never invoked. A function error is Lambda's `200 / Unhandled`; any other answer is a 200 with
    `functionError: null`; an invocation error (throttled, unreachable) got no answer from the
    function, so there is no context.
    """
    if isinstance(last, FunctionError) or last == FUNCTION_ERROR:
        return ResponseContext(200, executed_version, UNHANDLED)
    if isinstance(last, Succeeded) or last in (PARTIAL, SUCCESS, INVALID_RESPONSE):
        return ResponseContext(200, executed_version, None)
    if last is None or isinstance(last, InvocationError) or last == INVOCATION_ERROR:
        return None
    raise ValueError(f"unknown invoke result {last!r}")


def failure_context(condition: str, invoke_count: int, last: InvokeResult | str | None, *,
                    executed_version: str = LATEST) -> tuple[int, ResponseContext | None]:
    """`approximateInvokeCount` and `responseContext` for records given up on under `condition`.

    AWS reports a record dropped for its age with no responseContext and a count of at least 1
    (1 when it expired before its first invoke); every other condition reports what the last
    invoke answered (`response_context`) and the number of invokes that held the records.
    """
    if condition == RECORD_AGE_EXCEEDED:
        return max(1, invoke_count), None
    return invoke_count, response_context(last, executed_version=executed_version)


def iso_millis(epoch_seconds: float) -> str:
    """`2019-11-14T00:38:06.021Z`: ISO-8601 UTC, milliseconds, `Z`."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def iso_seconds(epoch_seconds: float) -> str:
    """`2022-07-13T13:48:01Z`: ISO-8601 UTC, whole seconds, `Z` (DDBStreamBatchInfo arrivals)."""
    return datetime.fromtimestamp(int(epoch_seconds), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# How each stream kind writes its records' arrival times in the batch info.
_ARRIVAL_FORMAT = {"kinesis": iso_millis, "dynamodb": iso_seconds}


def _request_context(request_id: str | None, function_arn: str, condition: str, count: int) -> dict[str, Any]:
    if count < 0:
        raise ValueError(f"approximate_invoke_count must be >= 0 (got {count})")
    return {
        "requestId": request_id or str(uuid.uuid4()),
        "functionArn": function_arn,
        "condition": condition,
        "approximateInvokeCount": count,
    }


def stream_failure_record(
    *,
    kind: str,
    condition: str,
    function_arn: str,
    approximate_invoke_count: int,
    response: ResponseContext | None,
    shard_id: str,
    start_sequence_number: str,
    end_sequence_number: str,
    first_arrival: float,
    last_arrival: float,
    batch_size: int,
    stream_arn: str,
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """A Kinesis (`kind="kinesis"`) or DynamoDB (`kind="dynamodb"`) on-failure document (behaviour §4)."""
    try:
        info_key = _BATCH_INFO_KEY[kind]
    except KeyError:
        raise ValueError(f"kind must be 'kinesis' or 'dynamodb' (got {kind!r})") from None
    document: dict[str, Any] = {
        "requestContext": _request_context(request_id, function_arn, condition, approximate_invoke_count)
    }
    if response is not None:  # behaviour §9.3: never invoked, no responseContext
        document["responseContext"] = response.to_dict()
    document["version"] = VERSION
    document["timestamp"] = iso_millis(time() if now is None else now)
    arrival = _ARRIVAL_FORMAT[kind]
    document[info_key] = {
        "shardId": shard_id,
        "startSequenceNumber": str(start_sequence_number),
        "endSequenceNumber": str(end_sequence_number),
        "approximateArrivalOfFirstRecord": arrival(first_arrival),
        "approximateArrivalOfLastRecord": arrival(last_arrival),
        "batchSize": batch_size,
        "streamArn": stream_arn,
    }
    return document


def _kafka_envelope(
    request_id: str | None, function_arn: str, condition: str, count: int, response: ResponseContext | None,
    now: float | None,
) -> dict[str, Any]:
    document: dict[str, Any] = {"requestContext": _request_context(request_id, function_arn, condition, count)}
    if condition != RECORD_AGE_EXCEEDED:  # recorded against AWS: an expired record has no responseContext key
        document["responseContext"] = None if response is None else response.to_dict()
    document["version"] = VERSION
    document["timestamp"] = iso_millis(time() if now is None else now)
    return document


def _kafka_time(record: Mapping[str, Any]) -> str:
    return iso_millis(record["timestamp"] / 1000)  # Kafka event timestamps are epoch milliseconds


def kafka_records_info(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, str]]:
    """`recordsInfo`: per `<topic>-<partition>` (first seen first), its lowest and highest offsets.

    `records` are Kafka event records (`topic`, `partition`, `offset`, `timestamp` in ms).
    """
    ranges: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        key = f"{record['topic']}-{record['partition']}"
        bounds = ranges.get(key)
        if bounds is None:
            ranges[key] = [record, record]
        elif record["offset"] < bounds[0]["offset"]:
            bounds[0] = record
        elif record["offset"] > bounds[1]["offset"]:
            bounds[1] = record
    return {
        key: {
            "firstRecordOffset": str(first["offset"]),
            "lastRecordOffset": str(last["offset"]),
            "firstRecordTimestamp": _kafka_time(first),
            "lastRecordTimestamp": _kafka_time(last),
        }
        for key, (first, last) in ranges.items()
    }


def kafka_batch_failure_record(
    *,
    condition: str,
    function_arn: str,
    approximate_invoke_count: int,
    response: ResponseContext | None,
    event_source_arn: str | None,
    bootstrap_servers: str,
    payload_size: int,
    records: Iterable[Mapping[str, Any]],
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """A Kafka on-failure document for an SQS/SNS/S3 destination (behaviour §4): one per failed batch.

    `records` are the failed batch's Kafka event records; `payload_size` is the invocation payload's
    size in bytes (`json_size(event)`). `batchSize` is the number of records.
    """
    records = list(records)
    document = _kafka_envelope(request_id, function_arn, condition, approximate_invoke_count, response, now)
    document["KafkaBatchInfo"] = {
        "batchSize": len(records),
        "eventSourceArn": event_source_arn,
        "bootstrapServers": bootstrap_servers,
        "payloadSize": payload_size,
        "recordsInfo": kafka_records_info(records),
    }
    return document


def kafka_record_failure_record(
    *,
    condition: str,
    function_arn: str,
    approximate_invoke_count: int,
    response: ResponseContext | None,
    event_source_arn: str | None,
    bootstrap_servers: str,
    record: Mapping[str, Any],
    event_source: str = "aws:kafka",
    request_id: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """The message for one failed record sent to a `kafka://` topic (behaviour §4).

    `payload` is an object (not a string): the invocation event cut down to this one record, which
    is passed through as the event carried it. `payloadSize` is that payload's JSON size in bytes.
    `eventSourceArn` is left out of the payload when the source has none (self-managed Kafka).
    """
    payload: dict[str, Any] = {"bootstrapServers": bootstrap_servers, "eventSource": event_source}
    if event_source_arn is not None:
        payload["eventSourceArn"] = event_source_arn
    payload["records"] = {f"{record['topic']}-{record['partition']}": [dict(record)]}
    document = _kafka_envelope(request_id, function_arn, condition, approximate_invoke_count, response, now)
    document["KafkaBatchInfo"] = {
        "batchSize": 1,
        "eventSourceArn": event_source_arn,
        "bootstrapServers": bootstrap_servers,
        "payloadSize": json_size(payload),
        "recordInfo": {"offset": str(record["offset"]), "timestamp": _kafka_time(record)},
    }
    document["payload"] = payload
    return document


def dumps(document: Any, *, sort_keys: bool = False) -> str:
    """Compact JSON. orjson, or the standard library for what orjson refuses (ints beyond 64 bits)."""
    try:
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS if sort_keys else None).decode()
    except TypeError:  # orjson.JSONEncodeError
        return json.dumps(document, separators=(",", ":"), ensure_ascii=False, sort_keys=sort_keys)


def json_size(document: Any) -> int:
    """Bytes of `document` as compact UTF-8 JSON (Kafka `payloadSize`, SNS's 256 KB limit)."""
    return len(dumps(document).encode())


def with_payload(document: Mapping[str, Any], invocation_event: Any) -> dict[str, Any]:
    """A copy of `document` with `"payload"`: the whole invocation event as a JSON string (S3)."""
    return {**document, "payload": dumps(invocation_event)}


def s3_object_key(mapping_uuid: str, shard_id: str, timestamp: str) -> str:
    """`aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<Random UUID>` (UTC).

    `timestamp` is the document's own (`iso_millis`): the key and the document name one instant.
    """
    moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return (
        f"aws/lambda/{mapping_uuid}/{shard_id}/{moment:%Y/%m/%d}/"
        f"{moment:%Y-%m-%dT%H.%M.%S}-{uuid.uuid4()}"
    )
