"""Reading the records a range names back from their stream or topic, while the source still holds them.

`read` returns the records in the mapping's own Record shape (so the mapping's RecordFormat builds
the invoke payload), or None when the source no longer holds the start of the range (trimmed
past retention, a deleted stream or topic): those records cannot be replayed from the source.
"""

from __future__ import annotations

import uuid
from typing import Any

from botocore.exceptions import ClientError

from esm.arns import parse_arn
from esm.core.records import Record
from esm.replay.documents import PartitionRange, Range, ShardRange
from esm.sources.kafka.records import kafka_record
from esm.sources.kinesis.records import kinesis_record

# Kinesis errors that mean the records are gone, not that the call failed.
# Fetches in a row that bring nothing before a partition's range is taken as read to its end.
EMPTY_FETCHES = 10
GONE = {"ResourceNotFoundException", "InvalidArgumentException", "ExpiredIteratorException"}


async def read_shard(clients: Any, span: ShardRange, identity_arn: str = "") -> list[Record] | None:
    arn = parse_arn(span.stream_arn)
    assert arn is not None, span.stream_arn
    name = arn.resource.split("/", 1)[1] if "/" in arn.resource else arn.resource
    region = arn.region or clients.region_for() or "us-east-1"
    first, last = int(span.first), int(span.last)
    records: list[Record] = []
    async with clients.client("kinesis", arn.region) as kinesis:
        try:
            iterator = (await kinesis.get_shard_iterator(
                StreamName=name, ShardId=span.shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
                StartingSequenceNumber=span.first))["ShardIterator"]
            while iterator:
                answer = await kinesis.get_records(ShardIterator=iterator, Limit=1000)
                for item in answer.get("Records", []):
                    sequence = int(item["SequenceNumber"])
                    if sequence > last:
                        return records
                    records.append(kinesis_record(item, span.shard_id, span.stream_arn, region, identity_arn))
                if not answer.get("Records") and not answer.get("MillisBehindLatest"):
                    break  # at the tip of the shard: the range ends here
                iterator = answer.get("NextShardIterator")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in GONE:
                return None
            raise
    if not records or int(records[0].event["kinesis"]["sequenceNumber"]) != first:
        return None  # the start of the range was trimmed
    return records


async def read_partition(bootstrap_servers: str, span: PartitionRange) -> list[Record] | None:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.errors import KafkaError

    tp = TopicPartition(span.topic, span.partition)
    # A group id that is never joined nor committed to (the partition is assigned, the position
    # sought): aiokafka's consumer without one cannot be stopped cleanly once assigned.
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False,
                                group_id=f"esm-replay-{uuid.uuid4().hex[:12]}")
    await consumer.start()
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


async def read(clients: Any, span: Range, *, bootstrap_servers: str = "") -> list[Record] | None:
    if isinstance(span, ShardRange):
        return await read_shard(clients, span)
    return await read_partition(bootstrap_servers, span)
