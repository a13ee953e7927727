"""Kinesis records as Lambda hands them to a function (behaviour §2), and as documents name them.

`kinesis_record` builds one record (its token is the sequence number as an int, so offsets order);
`KinesisFormat` is the source's RecordFormat: the `{"Records": [...]}` payload (with
`esm.transform`), partition keys for ParallelizationFactor lanes, filtering with `data` decoded,
arrival times, and the on-failure document with KinesisBatchInfo (behaviour §4).
"""

from __future__ import annotations

import base64
import time
from datetime import datetime
from typing import Any

import orjson

from esm.core.records import Record
from esm.filtering.decode import filter_kinesis
from esm.sources.stream_records import ShardStreamFormat
from esm.transform import Transform


def kinesis_event(record: dict[str, Any], shard_id: str, stream_arn: str, region: str, identity_arn: str) -> dict[str, Any]:
    arrival = record.get("ApproximateArrivalTimestamp")
    if isinstance(arrival, datetime):
        arrival = arrival.timestamp()
    sequence = record["SequenceNumber"]
    data = record.get("Data", b"")
    return {
        "kinesis": {
            "kinesisSchemaVersion": "1.0",
            "partitionKey": record.get("PartitionKey", ""),
            "sequenceNumber": sequence,
            "data": base64.b64encode(data if isinstance(data, bytes) else str(data).encode()).decode("ascii"),
            "approximateArrivalTimestamp": round(float(arrival or time.time()), 3),
        },
        "eventSource": "aws:kinesis",
        "eventVersion": "1.0",
        "eventID": f"{shard_id}:{sequence}",
        "eventName": "aws:kinesis:record",
        "invokeIdentityArn": identity_arn,
        "awsRegion": region,
        "eventSourceARN": stream_arn,
    }


def kinesis_record(record: dict[str, Any], shard_id: str, stream_arn: str, region: str, identity_arn: str) -> Record:
    event = kinesis_event(record, shard_id, stream_arn, region, identity_arn)
    return Record(event=event, item_id=event["kinesis"]["sequenceNumber"], size=len(orjson.dumps(event)),
                  arrived_at=time.monotonic(), token=int(event["kinesis"]["sequenceNumber"]))


def arrival_epoch(record: Record) -> float:
    return float(record.event["kinesis"]["approximateArrivalTimestamp"])


class KinesisFormat(ShardStreamFormat):
    """Kinesis records as a function and an on-failure destination see them (esm.core.contract.RecordFormat)."""

    kind = "kinesis"

    def __init__(self, *, stream_arn: str, region: str, function_arn: str, transform: Transform | None):
        super().__init__(stream_arn=stream_arn, function_arn=function_arn, transform=transform)
        self.region = region
        self.identity_arn = ""  # the execution role (esm.identity), set when the source connects

    def arrival(self, record: Record) -> float:
        return arrival_epoch(record)

    def lane_key(self, record: Record) -> bytes:
        return record.event["kinesis"]["partitionKey"].encode()

    def keep(self, matcher: Any, record: Record) -> bool:
        return filter_kinesis(matcher, record.event)
