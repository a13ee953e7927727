"""Kinesis records as Lambda hands them to a function (SPEC section 2), and as documents name them.

`kinesis_record` builds one record (its token is the sequence number as an int, so offsets order);
`KinesisFormat` is the source's RecordFormat: the `{"Records": [...]}` payload (with
`esm.transform`), partition keys for ParallelizationFactor lanes, filtering with `data` decoded,
arrival times, and the on-failure document with KinesisBatchInfo (SPEC 4).
"""

from __future__ import annotations

import base64
import time
from datetime import datetime
from typing import Any

import orjson

from esm.core.batching import MAX_PAYLOAD_BYTES
from esm.core.records import Record
from esm.destinations.records import stream_failure_record
from esm.filtering.decode import filter_kinesis
from esm.sources.base import Delivery, PreFailure
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


class KinesisFormat:
    """Kinesis records as a function and an on-failure destination see them (esm.sources.base.RecordFormat)."""

    may_pre_fail = False  # every record it reads can be invoked
    reports_iterator_age = True
    group_of = None

    def __init__(self, *, stream_arn: str, region: str, function_arn: str, transform: Transform | None,
                 kind: str = "kinesis"):
        self.source_arn = stream_arn
        self.region = region
        self.function_arn = function_arn
        self.transform = transform
        self.kind = kind
        self.identity_arn = ""  # the execution role (esm.identity), set when the source connects

    def events(self, records: Any) -> list[dict[str, Any]]:
        if self.transform is None:
            return [r.event for r in records]
        return [self.transform.apply(r.event) for r in records]

    def payload(self, records: Any) -> bytes:
        return orjson.dumps({"Records": self.events(records)})

    @staticmethod
    def read_identifier(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    def arrival(self, record: Record) -> float:
        return arrival_epoch(record)

    def payload_cap(self, unit: str) -> int:
        return MAX_PAYLOAD_BYTES

    def lane_key(self, record: Record) -> bytes:
        return record.event["kinesis"]["partitionKey"].encode()

    def keep(self, matcher: Any, record: Record) -> bool:
        return filter_kinesis(matcher, record.event)

    def pre_failure(self, record: Record) -> PreFailure | None:
        return None

    def where(self, unit: str, records: Any) -> str:
        return f"{unit} {records[0].item_id}..{records[-1].item_id}"

    def failure_deliveries(self, unit: str, records: Any, *, condition: str, invoke_count: int, response: Any,
                           per_record: bool) -> list[Delivery]:
        first, last = records[0], records[-1]
        document = stream_failure_record(
            kind=self.kind, condition=condition, function_arn=self.function_arn,
            approximate_invoke_count=invoke_count, response=response, shard_id=unit,
            start_sequence_number=first.item_id, end_sequence_number=last.item_id,
            first_arrival=arrival_epoch(first), last_arrival=arrival_epoch(last), batch_size=len(records),
            stream_arn=self.source_arn)
        return [Delivery(document, {"Records": [r.event for r in records]})]
