"""KafkaFormat (esm/sources/kafka/records.py), the Kafka source's RecordFormat: the payload is exactly
Lambda's Kafka event (behaviour §2), lanes follow the record key (a null key: the first lane), the 6 MB cap
counts the Kafka envelope, and the on-failure documents are one per record for a kafka:// topic
(RetriesExhausted) or one per batch (behaviour §4); plus the tracker's batch methods the source uses."""

from __future__ import annotations

import base64

import orjson
import pytest
from aiokafka.structs import ConsumerRecord

from esm.core.conditions import RETRY_ATTEMPTS_EXHAUSTED
from esm.core.offsets import OffsetTracker
from esm.sources.kafka import decoding
from esm.sources.kafka.records import KafkaFormat, kafka_event, kafka_record, payload_cap
from esm.schemas import SCHEMA_NOT_FOUND, DecodeFailure, SchemaRecord
from tests.support.transforms import kafka_transform

SERVERS = "b-1:9092,b-2:9092"
MSK_ARN = "arn:aws:kafka:us-east-1:123456789012:cluster/c/0b1a2c3d"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:f"


def message(offset: int, key: bytes | None = b"k", value: bytes = b'{"n": 1}', partition: int = 0):
    return ConsumerRecord(topic="orders", partition=partition, offset=offset, timestamp=1545084650987,
                          timestamp_type=0, key=key, value=value, checksum=None,
                          serialized_key_size=len(key or b""), serialized_value_size=len(value), headers=())


def fmt(arn: str | None = None, transform=None) -> KafkaFormat:
    f = KafkaFormat(event_source_arn=arn, function_arn=FUNCTION, transform=transform)
    f.connected(SERVERS)
    return f


@pytest.mark.parametrize("arn", [None, MSK_ARN], ids=["self-managed", "msk"])
def test_payload_is_the_kafka_event_byte_for_byte(arn):
    records = [kafka_record(message(i)) for i in range(3)]
    expected = orjson.dumps(kafka_event([r.event for r in records], bootstrap_servers=SERVERS, event_source_arn=arn))
    assert fmt(arn).payload(records) == expected
    assert fmt(arn).payload(records[:1]) == orjson.dumps(
        kafka_event([records[0].event], bootstrap_servers=SERVERS, event_source_arn=arn))


def test_payload_applies_the_transform_and_documents_do_not():
    records = [kafka_record(message(0, value=b'{"order": {"id": 7}, "noise": 1}'))]
    f = fmt(transform=kafka_transform("value.order"))
    event = orjson.loads(f.payload(records))
    assert base64.b64decode(event["records"]["orders-0"][0]["value"]) == b'{"id":7}'
    [delivery] = f.failure_deliveries("orders-0", records, condition=RETRY_ATTEMPTS_EXHAUSTED, invoke_count=3,
                                      response=None, per_record=False)
    assert delivery.invocation_event["records"]["orders-0"][0]["value"] == records[0].event["value"]


def test_lane_key_is_the_record_key_and_none_for_a_null_key():
    f = fmt()
    assert f.lane_key(kafka_record(message(0, key=b"\x00user-1"))) == b"\x00user-1"
    assert f.lane_key(kafka_record(message(1, key=None))) is None


def test_payload_cap_counts_the_kafka_envelope():
    for arn in (None, MSK_ARN):
        assert fmt(arn).payload_cap("orders-3") == payload_cap("orders", 3, bootstrap_servers=SERVERS,
                                                               event_source_arn=arn)


def test_per_record_documents_for_a_kafka_topic_spell_retries_exhausted_and_carry_the_key():
    records = [kafka_record(message(5, key=b"a")), kafka_record(message(6, key=None))]
    deliveries = fmt().failure_deliveries("orders-0", records, condition=RETRY_ATTEMPTS_EXHAUSTED, invoke_count=2,
                                          response=None, per_record=True)
    assert [d.extra["key"] for d in deliveries] == [b"a", None]
    assert all(d.invocation_event is None for d in deliveries)
    assert all(d.document["requestContext"]["condition"] == "RetriesExhausted" for d in deliveries)


def test_one_batch_document_otherwise():
    records = [kafka_record(message(i)) for i in (5, 6, 7)]
    [delivery] = fmt(MSK_ARN).failure_deliveries("orders-0", records, condition=RETRY_ATTEMPTS_EXHAUSTED,
                                                 invoke_count=2, response=None, per_record=False)
    assert delivery.document["requestContext"]["condition"] == RETRY_ATTEMPTS_EXHAUSTED
    assert delivery.invocation_event == kafka_event([r.event for r in records], bootstrap_servers=SERVERS,
                                                    event_source_arn=MSK_ARN)


def test_a_record_that_failed_its_schema_is_a_pre_failure_and_passes_the_filters():
    base = kafka_record(message(0))
    failed = SchemaRecord(event=base.event, item_id=base.item_id, size=base.size, arrived_at=base.arrived_at,
                          token=base.token, failure=DecodeFailure(SCHEMA_NOT_FOUND, "VALUE", "value: gone"))
    pre = decoding.pre_failure(failed)
    assert pre is not None and (pre.condition, pre.reason) == (SCHEMA_NOT_FOUND, "value: gone")
    assert decoding.pre_failure(base) is None


def test_tracker_batch_methods_release_only_contiguous_finished_offsets():
    """behaviour §9.4/§9.6: finishing a batch out of order never lets the position pass an unfinished offset."""
    tracker = OffsetTracker()
    tracker.register_many([10, 11, 12, 13, 14])
    tracker.finish_many([12, 13])
    assert tracker.advance() is None
    tracker.finish_many([10])
    assert tracker.advance() == 10
    tracker.finish_many([11, 14])
    assert tracker.advance() == 14
    assert tracker.pending == 0
