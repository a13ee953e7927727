"""`esm replay` for the Kinesis source (esm.replay): the mapping's event format, and a shard's
sequence range read again from the stream while it still holds it (behaviour §4)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from esm.arns import parse_arn
from esm.config.settings import MappingSettings
from esm.core.records import Record
from esm.replay.documents import Range, ShardRange
from esm.sources.kinesis.records import KinesisFormat, kinesis_record
from esm.transform import Transform

# Kinesis errors that mean the records are gone, not that the call failed.
GONE = {"ResourceNotFoundException", "InvalidArgumentException", "ExpiredIteratorException"}


def record_format(mapping: MappingSettings, *, region: str, function_arn: str,
                  transform: Transform | None) -> KinesisFormat:
    """The mapping's RecordFormat, built as the source builds it (without connecting)."""
    return KinesisFormat(stream_arn=mapping.source_id, region=region, function_arn=function_arn,
                         transform=transform)


def ours(span: Range, mapping: MappingSettings) -> bool:
    """Whether `span` names records of the mapping's stream."""
    return isinstance(span, ShardRange) and span.stream_arn == mapping.source_id


async def read(clients: Any, span: ShardRange, form: KinesisFormat, mapping: MappingSettings) -> list[Record] | None:
    """The shard's records from span.first to span.last, or None when the start is gone."""
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
                    records.append(kinesis_record(item, span.shard_id, span.stream_arn, region, ""))
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
