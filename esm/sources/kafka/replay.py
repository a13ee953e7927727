"""`esm replay` for the Kafka source (esm.replay): the mapping's event format, and a partition's
offset range read again from the topic while the broker still holds it (behaviour §4).

The cluster is reached as the source reaches it (`source_cluster`: the brokers, an MSK cluster's
included, and the SASL / TLS settings of SourceAccessConfigurations with their secrets)."""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from esm.config.settings import MappingSettings
from esm.core.records import Record
from esm.replay.documents import PartitionRange, Range
from esm.sources.kafka.cluster import source_cluster
from esm.sources.kafka.records import KafkaFormat, kafka_record
from esm.transform import Transform

# Fetches in a row that bring nothing before a partition's range is taken as read to its end.
EMPTY_FETCHES = 10


def record_format(mapping: MappingSettings, *, region: str, function_arn: str,
                  transform: Transform | None) -> KafkaFormat:
    """The mapping's RecordFormat, built as the source builds it (its servers known once `read` connects)."""
    self_managed = "SelfManagedEventSource" in mapping.request
    return KafkaFormat(event_source_arn=None if self_managed else mapping.source_id, function_arn=function_arn,
                       transform=transform)


def ours(span: Range, mapping: MappingSettings) -> bool:
    """Whether `span` names records of one of the mapping's topics."""
    return isinstance(span, PartitionRange) and span.topic in (mapping.get("Topics") or [])


async def read(clients: Any, span: PartitionRange, form: KafkaFormat, mapping: MappingSettings) -> list[Record] | None:
    """The partition's records from span.first to span.last, or None when the start is gone."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    cluster, _ = await source_cluster(mapping, clients)
    form.connected(cluster.servers)  # the event's bootstrapServers, as the source's
    tp = TopicPartition(span.topic, span.partition)
    # A group id that is never joined nor committed to (the partition is assigned, the position
    # sought): aiokafka's consumer without one cannot be stopped cleanly once assigned.
    consumer = AIOKafkaConsumer(bootstrap_servers=list(cluster.bootstrap_servers), enable_auto_commit=False,
                                group_id=f"esm-replay-{uuid.uuid4().hex[:12]}", **dict(cluster.options))
    try:
        await consumer.start()
    except BaseException:
        with contextlib.suppress(Exception):  # a failed start leaves connections to close
            await consumer.stop()
        raise
    try:
        consumer.assign([tp])
        try:
            beginning = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
        except KafkaError:  # the topic or partition is gone (or never was)
            return None
        if span.first < beginning or span.first >= end:
            return None  # deleted by retention (or never there)
        consumer.seek(tp, span.first)
        records: list[Record] = []
        stop = min(span.last, end - 1)
        empty = 0
        while (not records or records[-1].token < stop) and empty < EMPTY_FETCHES:
            fetched = (await consumer.getmany(tp, timeout_ms=1000)).get(tp, [])
            empty = 0 if fetched else empty + 1
            records.extend(kafka_record(m) for m in fetched if m.offset <= span.last)
        return records
    finally:
        await consumer.stop()
