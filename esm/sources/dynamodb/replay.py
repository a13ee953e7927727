"""`esm replay` for the DynamoDB Streams source (esm.replay): the mapping's event format, and a shard's
sequence range read again from the table's stream while it still holds it (24 hours; behaviour §4).

The stream is read where the source reads it (`streams_clients`: DynamoDB Streams' endpoint, or
DynamoDB's when only that one is set). An open shard has no end marker: a GetRecords answer with
no records is its tip, so the range ends there.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from esm.arns import parse_arn
from esm.config.settings import MappingSettings
from esm.core.records import Record
from esm.replay.documents import Range, ShardRange
from esm.sources.dynamodb.reader import GET_RECORDS_LIMIT
from esm.sources.dynamodb.records import DynamoDbFormat, dynamodb_record
from esm.sources.dynamodb.source import STREAMS_SERVICE, streams_clients
from esm.transform import Transform

# DynamoDB Streams errors that mean the records are gone (trimmed after 24 hours, the stream or
# shard deleted, a sequence number the shard does not hold), not that the call failed.
GONE = {"ResourceNotFoundException", "TrimmedDataAccessException", "ExpiredIteratorException",
        "ValidationException"}


def record_format(mapping: MappingSettings, *, region: str, function_arn: str,
                  transform: Transform | None) -> DynamoDbFormat:
    """The mapping's RecordFormat, built as the source builds it (without connecting)."""
    return DynamoDbFormat(stream_arn=mapping.source_id, function_arn=function_arn, transform=transform)


def ours(span: Range, mapping: MappingSettings) -> bool:
    """Whether `span` names records of the mapping's table stream."""
    return isinstance(span, ShardRange) and span.stream_arn == mapping.source_id


async def read(clients: Any, span: ShardRange, form: DynamoDbFormat,
               mapping: MappingSettings) -> list[Record] | None:
    """The shard's records from span.first to span.last, or None when the start is gone."""
    arn = parse_arn(span.stream_arn)
    assert arn is not None, span.stream_arn
    region = arn.region or clients.region_for() or "us-east-1"
    first, last = int(span.first), int(span.last)
    records: list[Record] = []
    async with streams_clients(clients).client(STREAMS_SERVICE, arn.region) as streams:
        try:
            iterator = (await streams.get_shard_iterator(
                StreamArn=span.stream_arn, ShardId=span.shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
                SequenceNumber=span.first))["ShardIterator"]
            while iterator:
                answer = await streams.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
                for item in answer.get("Records", []):
                    if int(item["dynamodb"]["SequenceNumber"]) > last:
                        return _whole(records, first)
                    records.append(dynamodb_record(item, span.stream_arn, region))
                if not answer.get("Records"):
                    break  # the tip of an open shard: the range ends here
                iterator = answer.get("NextShardIterator")
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in GONE:
                return None
            raise
    return _whole(records, first)


def _whole(records: list[Record], first: int) -> list[Record] | None:
    """The records read, or None when the range's first record was not among them (trimmed)."""
    if not records or records[0].token != first:
        return None
    return records
