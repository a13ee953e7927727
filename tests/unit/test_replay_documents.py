"""On-failure documents read as the record ranges `esm replay` reads again (behaviour §4): esm's own
Kinesis, DynamoDB Streams and Kafka documents (built by esm.destinations.records) name the same shard, sequence
and offset ranges they were written for; anything else is refused by name."""

from __future__ import annotations

import json

import pytest

from esm.destinations.records import (kafka_batch_failure_record, kafka_record_failure_record,
                                      stream_failure_record)
from esm.replay.documents import NotAFailureDocument, PartitionRange, ShardRange, ranges

FN = "arn:aws:lambda:us-east-1:000000000000:function:f"
STREAM = "arn:aws:kinesis:us-east-1:000000000000:stream/s"


def test_kinesis_document_names_its_shard_and_sequence_range():
    document = stream_failure_record(kind="kinesis", condition="RetryAttemptsExhausted", function_arn=FN,
                                     approximate_invoke_count=3, response=None, shard_id="shardId-000000000001",
                                     start_sequence_number="49", end_sequence_number="51", first_arrival=0,
                                     last_arrival=0, batch_size=3, stream_arn=STREAM)
    assert ranges(json.dumps(document)) == [ShardRange(STREAM, "shardId-000000000001", "49", "51", 3)]


def test_dynamodb_document_names_its_shard_and_sequence_range():
    table_stream = "arn:aws:dynamodb:us-east-1:000000000000:table/t/stream/2026-01-01T00:00:00.000"
    document = stream_failure_record(kind="dynamodb", condition="RetryAttemptsExhausted", function_arn=FN,
                                     approximate_invoke_count=3, response=None, shard_id="shardId-00000001-abc",
                                     start_sequence_number="1100", end_sequence_number="1102", first_arrival=0,
                                     last_arrival=0, batch_size=3, stream_arn=table_stream)
    assert "DDBStreamBatchInfo" in document
    assert ranges(json.dumps(document)) == [ShardRange(table_stream, "shardId-00000001-abc", "1100", "1102", 3)]


def test_kafka_batch_document_names_each_partitions_offsets():
    records = [{"topic": "orders-eu", "partition": p, "offset": o, "timestamp": 0} for p, o in
               [(0, 5), (0, 7), (3, 1)]]
    document = kafka_batch_failure_record(condition="RetryAttemptsExhausted", function_arn=FN,
                                          approximate_invoke_count=1, response=None, event_source_arn=None,
                                          bootstrap_servers="b:9092", payload_size=0, records=records)
    assert ranges(json.dumps(document)) == [PartitionRange("orders-eu", 0, 5, 7), PartitionRange("orders-eu", 3, 1, 1)]


def test_kafka_record_document_names_its_one_offset():
    document = kafka_record_failure_record(condition="RetryAttemptsExhausted", function_arn=FN,
                                           approximate_invoke_count=1, response=None, event_source_arn=None,
                                           bootstrap_servers="b:9092",
                                           record={"topic": "t", "partition": 2, "offset": 9, "timestamp": 0})
    assert ranges(json.dumps(document)) == [PartitionRange("t", 2, 9, 9)]


@pytest.mark.parametrize("text", ["not json", "[]", '{"requestContext": {}}', '{"DDBStreamBatchInfo": {}}'])
def test_other_documents_are_refused(text):
    with pytest.raises(NotAFailureDocument):
        ranges(text)
