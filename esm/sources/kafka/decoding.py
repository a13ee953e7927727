"""The schema step of a Kafka mapping with a SchemaRegistryConfig (behaviour §2, §4, §5): a fetch is
validated and decoded (esm.schemas) before records are built and filtered.

`SchemaStep.decode(fetched)` runs on the poll loop's whole `getmany` result (every schema id it
names is looked up once; an unreachable registry rewinds the partition and backs off, losing
nothing). `build` turns a partition's decoded messages into records that carry their decoded
key/value for the filters (`keeps`) and, for a record that failed, the failure: such a record is
never invoked but dead-lettered in partition order by the engine (`pre_failure`:
SCHEMA_NOT_FOUND or DESERIALIZATION_ERROR).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from esm.aws import AwsClients
from esm.config.settings import MappingSettings
from esm.core.records import Record
from esm.filtering.decode import filter_kafka
from esm.observability.metrics import MappingMetrics
from esm.schemas import SchemaDecoder, failure_of, filter_arguments, schema_record, settings_for
from esm.core.contract import PreFailure
from esm.sources.kafka.records import Fetch, kafka_record


def keeps(matcher: Any, record: Record) -> bool:
    """behaviour §5: filters match the decoded key/value; a record that failed its schema is kept, to be
    dead-lettered (it never reaches the filters)."""
    return failure_of(record) is not None or filter_kafka(matcher, record.event, **filter_arguments(record))


def pre_failure(record: Record) -> PreFailure | None:
    failure = failure_of(record)
    return None if failure is None else PreFailure(failure.condition, failure.reason)


class SchemaStep:
    def __init__(self, decoder: SchemaDecoder):
        self.decoder = decoder

    @classmethod
    def for_mapping(cls, mapping: MappingSettings, clients: AwsClients, metrics: MappingMetrics,
                    log: logging.LoggerAdapter) -> "SchemaStep | None":
        registry = settings_for(mapping.request)
        if registry is None:
            return None
        return cls(SchemaDecoder.for_mapping(registry, clients, mapping.extension.secrets, metrics=metrics,
                                             logger=log))

    async def decode(self, fetched: dict[Any, list[Any]], consumer: Any, stopping: asyncio.Event) -> dict[Any, list[Any]]:
        return await self.decoder.decode_fetched(fetched, consumer=consumer, stopping=stopping)

    @staticmethod
    def build(messages: list[Any], key: str, now: float) -> Fetch:
        records = [schema_record(kafka_record(message, key, now), message) for message in messages]
        polled = sum(max(0, m.serialized_key_size) + max(0, m.serialized_value_size) for m in messages)
        return Fetch(records, sum(r.size for r in records), polled)

    async def close(self) -> None:
        await self.decoder.close()
