"""Kinesis records as Lambda hands them to a function (SPEC section 2)."""

from __future__ import annotations

import base64
import time
from datetime import datetime
from typing import Any

import orjson

from esm.records import Record


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
