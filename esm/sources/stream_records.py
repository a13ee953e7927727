"""How a shard stream's records look in a batch and in an on-failure document: Kinesis and DynamoDB
Streams alike (behaviour §2, §3, §4).

`ShardStreamFormat` is the part of a RecordFormat both share: the `{"Records": [...]}` payload
with `esm.transform`, sequence numbers as partial-response identifiers, the 6 MB cap, and the
on-failure document with its batch info (`KinesisBatchInfo` / `DDBStreamBatchInfo`, by `kind`).
Each source adds where a record's arrival time, lane key and filter view come from.
"""

from __future__ import annotations

from typing import Any

import orjson

from esm.core.batching import MAX_PAYLOAD_BYTES
from esm.core.records import Record
from esm.destinations.records import stream_failure_record
from esm.core.contract import Delivery, PreFailure
from esm.transform import Transform


class ShardStreamFormat:
    kind = ""  # "kinesis" or "dynamodb": which batch info on-failure documents carry
    may_pre_fail = False  # every record it reads can be invoked
    reports_iterator_age = True
    group_of = None

    def __init__(self, *, stream_arn: str, function_arn: str, transform: Transform | None):
        self.source_arn = stream_arn
        self.function_arn = function_arn
        self.transform = transform

    def arrival(self, record: Record) -> float:
        raise NotImplementedError

    def events(self, records: Any) -> list[dict[str, Any]]:
        if self.transform is None:
            return [r.event for r in records]
        return [self.transform.apply(r.event) for r in records]

    def payload(self, records: Any) -> bytes:
        return orjson.dumps({"Records": self.events(records)})

    @staticmethod
    def read_identifier(value: Any) -> str | None:
        return value if isinstance(value, str) and value else None

    def payload_cap(self, unit: str) -> int:
        return MAX_PAYLOAD_BYTES

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
            first_arrival=self.arrival(first), last_arrival=self.arrival(last), batch_size=len(records),
            stream_arn=self.source_arn)
        return [Delivery(document, {"Records": [r.event for r in records]})]
