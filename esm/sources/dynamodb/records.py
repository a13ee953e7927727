"""DynamoDB stream records as Lambda hands them to a function (behaviour §2), and as documents name them.

`dynamodb_event` bridges a DynamoDB Streams GetRecords record (as botocore reads it) to Lambda's
record: `eventVersion` "1.1", `awsRegion` and `eventSourceARN` from the stream, the `dynamodb`
object in behaviour §2's key order with `ApproximateCreationDateTime` as whole epoch seconds and binary
attribute values (`B`, `BS`) as base64 strings, so images stay DynamoDB's typed JSON as Lambda
passes them. A delete made by TTL names DynamoDB as its `userIdentity`. Records carry no
`invokeIdentityArn` (recorded DynamoDB events have none). `DynamoDbFormat` is the source's
RecordFormat: the `{"Records": [...]}` payload, item keys for ParallelizationFactor lanes,
filters on the record as it is, `dynamodb.SequenceNumber` partial responses, and the on-failure
document with DDBStreamBatchInfo (behaviour §4).
"""

from __future__ import annotations

import base64
import time
from datetime import datetime
from typing import Any

import orjson

from esm.core.records import Record
from esm.filtering.decode import filter_dynamodb
from esm.sources.stream_records import ShardStreamFormat

EVENT_VERSION = "1.1"
# behaviour §2's order of the `dynamodb` object; a view type leaves some of them out.
STREAM_RECORD_KEYS = ("ApproximateCreationDateTime", "Keys", "NewImage", "OldImage", "SequenceNumber", "SizeBytes",
                      "StreamViewType")
# What Lambda writes for a delete DynamoDB made itself (time to live), whatever the SDK spells.
TTL_IDENTITY = {"type": "Service", "principalId": "dynamodb.amazonaws.com"}


def _typed(value: Any) -> Any:
    """An attribute value (or a map of them) with binary values as base64, as DynamoDB's JSON has them."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, dict):
        return {key: _typed(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_typed(item) for item in value]
    return value


def _epoch_seconds(value: Any) -> int:
    if isinstance(value, datetime):
        return int(value.timestamp())
    if isinstance(value, (int, float)):
        return int(value)
    return int(time.time())


def dynamodb_event(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    raw = record.get("dynamodb") or {}
    stream_record: dict[str, Any] = {}
    for key in STREAM_RECORD_KEYS:
        if key not in raw:
            continue
        value = raw[key]
        if key == "ApproximateCreationDateTime":
            value = _epoch_seconds(value)
        elif key in ("Keys", "NewImage", "OldImage"):
            value = _typed(value)
        stream_record[key] = value
    event: dict[str, Any] = {
        "eventID": record.get("eventID", ""),
        "eventName": record.get("eventName", ""),
        "eventVersion": EVENT_VERSION,
        "eventSource": "aws:dynamodb",
        "awsRegion": region,
        "dynamodb": stream_record,
    }
    if record.get("userIdentity"):
        event["userIdentity"] = dict(TTL_IDENTITY)
    event["eventSourceARN"] = stream_arn
    return event


def dynamodb_record(record: dict[str, Any], stream_arn: str, region: str) -> Record:
    event = dynamodb_event(record, stream_arn, region)
    sequence = event["dynamodb"]["SequenceNumber"]
    return Record(event=event, item_id=sequence, size=len(orjson.dumps(event)), arrived_at=time.monotonic(),
                  token=int(sequence))


def arrival_epoch(record: Record) -> float:
    return float(record.event["dynamodb"].get("ApproximateCreationDateTime") or 0)


class DynamoDbFormat(ShardStreamFormat):
    """DynamoDB records as a function and an on-failure destination see them (esm.core.contract.RecordFormat)."""

    kind = "dynamodb"

    def arrival(self, record: Record) -> float:
        return arrival_epoch(record)

    def lane_key(self, record: Record) -> bytes:
        # The item's primary key, written canonically: one item's changes stay on one lane, in order.
        return orjson.dumps(record.event["dynamodb"].get("Keys") or {}, option=orjson.OPT_SORT_KEYS)

    def keep(self, matcher: Any, record: Record) -> bool:
        return filter_dynamodb(matcher, record.event)
