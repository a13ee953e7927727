"""Kafka records as Lambda shapes them (behaviour §2), their batch ids (behaviour §3) and the 6 MB cut with the
Kafka envelope: the pure functions of esm/sources/kafka/records.py."""

from __future__ import annotations

import base64

import orjson
import pytest
from aiokafka.structs import ConsumerRecord
from hypothesis import given, settings
from hypothesis import strategies as st

from esm.core.batching import MAX_PAYLOAD_BYTES, BatchPolicy
from esm.invokers.base import FunctionError, Succeeded
from esm.core.outcomes import FUNCTION_ERROR, PARTIAL, SUCCESS, judge
from esm.sources.kafka.records import (
    kafka_event,
    kafka_event_record,
    kafka_record,
    kafka_records,
    offsets_of,
    payload_cap,
    read_identifier,
    record_epoch,
    signed_bytes,
)

SERVERS = "b-1:9092,b-2:9092"


def message(offset=0, key=b"k", value=b"v", headers=(), partition=0, topic="orders", timestamp=1545084650987,
            timestamp_type=0):
    return ConsumerRecord(topic=topic, partition=partition, offset=offset, timestamp=timestamp,
                          timestamp_type=timestamp_type, key=key, value=value, checksum=None,
                          serialized_key_size=len(key or b""), serialized_value_size=len(value or b""),
                          headers=tuple(headers))


@given(st.binary(max_size=300))
def test_signed_bytes_are_java_bytes(data):
    """behaviour §2 [R17]: header values are Java's signed bytes, -128..127, the same bytes modulo 256."""
    signed = signed_bytes(data)
    assert all(-128 <= b <= 127 for b in signed)
    assert bytes(b & 0xFF for b in signed) == data


def test_non_ascii_header_values_yield_negative_bytes():
    """behaviour §2: non-ASCII UTF-8 yields negatives; each header is a single-entry object, in order."""
    record = kafka_event_record(message(headers=[("a", "é".encode()), ("b", b"ok"), ("a", b"\x80\xff")]))
    assert record["headers"] == [{"a": [-61, -87]}, {"b": [111, 107]}, {"a": [-128, -1]}]


def test_record_fields_and_order():
    """behaviour §2: topic, partition, offset, timestamp (epoch ms), timestampType, base64 key and value, headers."""
    record = kafka_event_record(message(offset=15, key=b"\x00key", value=b"Hello, this is a test."))
    assert list(record) == ["topic", "partition", "offset", "timestamp", "timestampType", "key", "value", "headers"]
    assert record["offset"] == 15 and record["timestamp"] == 1545084650987
    assert record["timestampType"] == "CREATE_TIME"
    assert base64.b64decode(record["key"]) == b"\x00key"
    assert record["value"] == "SGVsbG8sIHRoaXMgaXMgYSB0ZXN0Lg=="
    assert record["headers"] == []


def test_null_key_is_absent_and_log_append_time_is_named():
    """behaviour §2: the key is absent when null; timestampType LOG_APPEND_TIME for broker timestamps."""
    record = kafka_event_record(message(key=None, timestamp_type=1))
    assert "key" not in record and record["timestampType"] == "LOG_APPEND_TIME"
    assert kafka_event_record(message(key=b""))["key"] == ""  # empty is not null


def test_event_groups_by_topic_partition_self_managed_and_msk():
    """behaviour §2: records grouped by "<topic>-<partition>"; SelfManagedKafka without eventSourceArn, aws:kafka with it."""
    records = [kafka_event_record(message(offset=o, partition=p)) for p, o in [(0, 1), (1, 7), (0, 2)]]
    event = kafka_event(records, bootstrap_servers=SERVERS)
    assert event == {"eventSource": "SelfManagedKafka", "bootstrapServers": SERVERS,
                     "records": {"orders-0": [records[0], records[2]], "orders-1": [records[1]]}}
    arn = "arn:aws:kafka:us-east-1:123456789012:cluster/c/abc"
    msk = kafka_event(records[:1], bootstrap_servers=SERVERS, event_source_arn=arn)
    assert list(msk) == ["eventSource", "eventSourceArn", "bootstrapServers", "records"]
    assert msk["eventSource"] == "aws:kafka" and msk["eventSourceArn"] == arn


def test_pipeline_record_ids_and_size():
    """behaviour §3: a record is named by ("<topic>-<partition>", offset); its size is its JSON size."""
    record = kafka_record(message(offset=100, partition=3))
    assert record.item_id == ("orders-3", 100) and record.token == 100
    assert record.size == len(orjson.dumps(record.event))
    assert offsets_of([record]) == "orders-3@100"
    assert record_epoch(record) == pytest.approx(1545084650.987)


@pytest.mark.parametrize("identifier, expected", [
    ({"partition": "orders-0", "offset": 100}, ("orders-0", 100)),
    ({"partition": "orders-0", "offset": "100"}, ("orders-0", 100)),
    ({"partition": "orders-0", "offset": 100.0}, ("orders-0", 100)),
    ({"partition": "orders-0", "offset": 0}, ("orders-0", 0)),
    ({"partition": "orders-0"}, None),
    ({"offset": 1}, None),
    ({"partition": "", "offset": 1}, None),
    ({"partition": "orders-0", "offset": -1}, None),
    ({"partition": "orders-0", "offset": 1.5}, None),
    ({"partition": "orders-0", "offset": True}, None),
    ({"partition": "orders-0", "offset": "ten"}, None),
    ({"partition": 0, "offset": 1}, None),
    ("orders-0:100", None),
    (None, None),
])
def test_read_identifier(identifier, expected):
    """behaviour §3: a Kafka itemIdentifier is {"partition": "<topic>-<partition>", "offset": n};
    anything else is malformed."""
    assert read_identifier(identifier) == expected


def test_partial_response_with_kafka_identifiers():
    """behaviour §3: reported {partition, offset} items are partial failures; one not in the batch, or malformed,
    fails the whole batch."""
    ids = [("orders-0", 5), ("orders-0", 6), ("orders-0", 7)]

    def outcome(failures):
        return judge(Succeeded({"batchItemFailures": failures}), report_item_failures=True, batch_ids=ids,
                     read_identifier=read_identifier)

    partial = outcome([{"itemIdentifier": {"partition": "orders-0", "offset": 7}},
                       {"itemIdentifier": {"partition": "orders-0", "offset": 6}}])
    assert partial.kind == PARTIAL and partial.failed_ids == {("orders-0", 6), ("orders-0", 7)}
    assert outcome([{"itemIdentifier": {"partition": "orders-0", "offset": 8}}]).kind == FUNCTION_ERROR
    assert outcome([{"itemIdentifier": {"partition": "orders-1", "offset": 5}}]).kind == FUNCTION_ERROR
    assert outcome([{"itemIdentifier": {"partition": "orders-0", "offest": 5}}]).kind == FUNCTION_ERROR
    assert outcome([{"itemIdentifier": None}]).kind == FUNCTION_ERROR
    assert outcome([]).kind == SUCCESS
    assert judge(FunctionError("E", "m"), report_item_failures=True, batch_ids=ids,
                 read_identifier=read_identifier).kind == FUNCTION_ERROR


@settings(deadline=None, max_examples=60)
@given(st.lists(st.integers(min_value=0, max_value=400_000), min_size=1, max_size=40))
def test_the_payload_cap_keeps_the_kafka_event_within_6_mb(value_sizes):
    """behaviour §2/§3: a batch is cut before the event, envelope included, passes 6 MB; a record alone is sent alone."""
    cap = payload_cap("orders", 0, bootstrap_servers=SERVERS, event_source_arn=None)
    records = [kafka_record(message(offset=i, value=b"x" * (n * 16))) for i, n in enumerate(value_sizes)]
    policy = BatchPolicy(10_000, 0.0, max_bytes=cap)
    batches, current = [], []
    for record in records:
        if current and not policy.fits(record):
            batches.append(policy.take())
        policy.add(record)
        current = policy.records
    batches.append(policy.take())
    for batch in batches:
        size = len(orjson.dumps(kafka_event([r.event for r in batch], bootstrap_servers=SERVERS)))
        assert size <= MAX_PAYLOAD_BYTES or len(batch) == 1
    for earlier, later in zip(batches, batches[1:]):
        grown = kafka_event([r.event for r in earlier + later[:1]], bootstrap_servers=SERVERS)
        assert len(orjson.dumps(grown)) > MAX_PAYLOAD_BYTES  # cut only when the next record would not fit


def test_kafka_destination_partitions_keyed_like_kafka_and_keyless_round_robin():
    """behaviour §4: kafka:// failure messages keep the record's key (Kafka's default partitioning) and
    keyless ones go round-robin over the topic's partitions."""
    from aiokafka.partitioner import DefaultPartitioner

    from esm.destinations.kafka import RoundRobinKeyless

    partitioner, partitions = RoundRobinKeyless(), [0, 1, 2]
    assert [partitioner(None, partitions, partitions) for _ in range(6)] == [0, 1, 2, 0, 1, 2]
    for key in (b"a", b"order-17", b"\x00"):
        assert partitioner(key, partitions, partitions) == DefaultPartitioner()(key, partitions, partitions)


@given(st.lists(st.tuples(st.integers(0, 10**15), st.one_of(st.just(-1), st.integers(0, 10**14)),
                          st.one_of(st.none(), st.binary(max_size=20)), st.one_of(st.none(), st.binary(max_size=40))),
                min_size=1, max_size=30).map(lambda rows: sorted(rows, key=lambda row: row[0])))
def test_a_whole_fetch_is_built_as_record_by_record(rows):
    """behaviour §2 + 3: the fetch loop builds the same records as kafka_record, each sized exactly as its JSON
    (offsets and timestamps of any number of digits, -1 included), and sums what the poll loop counts."""
    messages = [message(offset=o, timestamp=t, key=k, value=v) for o, t, k, v in rows]
    fetch = kafka_records(messages, "orders-0", 5.0)
    assert fetch.records == [kafka_record(m, "orders-0", 5.0) for m in messages]
    assert all(r.size == len(orjson.dumps(r.event)) for r in fetch.records)
    assert fetch.weight == sum(r.size for r in fetch.records)
    assert fetch.polled_bytes == sum(len(m.key or b"") + len(m.value or b"") for m in messages)
