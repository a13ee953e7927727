"""Malformed records never block their unit (issue 8.3), one test per source on the real backends.

Each unit of order (an SQS FIFO message group, a Kinesis shard, a Kafka partition) gets good
records with malformed ones between them: bodies and data that are not JSON, invalid JSON,
binary and invalid UTF-8, JSON nested past orjson's 1024 levels and past what the matcher walks,
tombstones, and values near each service's size limit. A filter with a data condition runs on
every record (so every record is decoded). Every record behaviour §5 keeps reaches the function, in
order, the ones it filters out are counted, and the unit finishes (queue empty, offsets
committed): one bad record never stalls the ones after it.
(Avro records with an unknown schema id are covered with the schema registry tests.)
"""

from __future__ import annotations

import base64
import json

import pytest
import yaml

from esm.config.loading import parse_config
from tests.support import kafka as kk
from tests.support import recorder as rec
from tests.support.daemon import RECORDER, mapping_config, running, running_config
from tests.support.kinesis import create_stream, kinesis_client, put
from tests.support.sqs import create_queue, sqs_client, wait_until_empty

pytestmark = pytest.mark.usefixtures("backends")


def nested(depth: int) -> str:
    """A JSON object nested `depth` levels: past 1024, orjson refuses it (then it is not JSON to esm)."""
    return '{"k":' * depth + '"ok"' + "}" * depth


def deep_list(depth: int) -> str:
    """`{"keep": [[[...true...]]]}`: JSON orjson reads, with arrays nested deeper than the matcher can
    walk (it walks array elements recursively); esm then judges the data as unreadable."""
    return '{"keep":' + "[" * depth + "true" + "]" * depth + "}"


async def test_sqs_malformed_bodies_do_not_block_their_message_group():
    """behaviour §5 (SQS) + issue 8.3: in one FIFO group, plain text, invalid JSON, JSON with arrays nested
    1000 levels, an object nested 1030 levels and a 200 KB body are filtered like any other message (the JSON pattern cannot apply, the
    metadata branch of $or keeps them); the one the filter rejects is deleted; the others reach the
    function in order and the queue ends empty."""
    recorder = rec.install(rec.Recorder())
    passing = {"pass": {"DataType": "String", "StringValue": "y"}}
    messages = [
        ('{"keep": true, "n": 0}', {}),
        ("hello, not JSON", passing),
        ('{"keep": true', passing),
        (deep_list(1000), passing),
        (nested(1030), passing),
        ('{"keep": false, "n": 5}', {}),
        (json.dumps({"keep": True, "pad": "x" * 200_000}), {}),
        ('{"keep": true, "n": 7}', {}),
    ]
    expected = [body for index, (body, _) in enumerate(messages) if index != 5]
    pattern = json.dumps({"$or": [{"body": {"keep": [True]}}, {"messageAttributes": {"pass": {"stringValue": ["y"]}}}]})
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "malformed", fifo=True)
        for body, attributes in messages:
            await sqs.send_message(QueueUrl=url, MessageBody=body, MessageGroupId="g",
                                   **({"MessageAttributes": attributes} if attributes else {}))
        config = mapping_config({"FunctionName": "recorder", "EventSourceArn": arn, "BatchSize": 3,
                                 "FilterCriteria": {"Filters": [{"Pattern": pattern}]}})
        async with running(config) as daemon:
            await recorder.wait_for(lambda r: len(r.records) >= len(expected), timeout=90)
            await wait_until_empty(sqs, url)
            await daemon.wait_total("esm_deleted_events_total", len(messages))
            assert daemon.total("esm_filtered_out_events_total") == 1
            assert daemon.total("esm_polled_events_total") == len(messages)
    assert recorder.bodies() == expected


async def test_kinesis_binary_and_malformed_data_do_not_block_the_shard(tmp_path):
    """behaviour §5 (Kinesis) + issue 8.3: binary data, invalid UTF-8, plain text, JSON arrays nested 1000 levels and a
    ~1 MB binary record sit between JSON records; a data pattern skips what it cannot read unless the
    metadata branch of $or keeps it, and a transform leaves binary data unchanged. Every kept record
    reaches the function in shard order; the skipped ones are counted."""
    recorder = rec.install(rec.Recorder())
    big = bytes(range(256)) * 3900  # ~1 MB, under Kinesis' 1 MiB record limit with its key
    items = [
        ("a", b'{"keep": true, "n": 0}'),
        ("pass", bytes(range(256))),
        ("drop", b"\xff\xfe\xfd invalid UTF-8"),
        ("pass", b"hello, not JSON"),
        ("pass", deep_list(1000).encode()),
        ("pass", big),
        ("x", b'{"keep": false}'),
        ("z", b'{"keep": true, "n": 7}'),
    ]
    kept = [0, 1, 3, 4, 5, 7]
    # The transform re-encodes JSON it could read (compact), and leaves everything else as it came.
    expected = [b'{"keep":true,"n":0}', bytes(range(256)), b"hello, not JSON", deep_list(1000).encode(), big,
                b'{"keep":true,"n":7}']
    pattern = json.dumps({"$or": [{"data": {"keep": [True]}}, {"partitionKey": ["pass"]}]})
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, items)
        doc = {"functions": RECORDER, "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 10,
               "startup_timeout": 30, "checkpoints": {"sqlite": str(tmp_path / "checkpoints.db")},
               "event_source_mappings": [{
                   "FunctionName": "recorder", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON",
                   "BatchSize": 3, "FilterCriteria": {"Filters": [{"Pattern": pattern}]}, "esm": {"transform": "data"}}]}
        async with running_config(parse_config(yaml.safe_dump(doc, sort_keys=False))) as daemon:
            await recorder.wait_for(lambda r: len(r.records) >= len(kept), timeout=90)
            await daemon.wait_total("esm_filtered_out_events_total", 2)
            assert daemon.total("esm_polled_events_total") == len(items)
    assert [r["kinesis"]["partitionKey"] for r in recorder.records] == [items[i][0] for i in kept]
    assert [base64.b64decode(r["kinesis"]["data"]) for r in recorder.records] == expected


async def test_kafka_malformed_values_do_not_block_the_partition():
    """behaviour §5 (Kafka) + issue 8.3: a value that is not UTF-8, a tombstone, plain text, invalid JSON, JSON
    arrays nested 1000 levels and a ~900 KB binary value are filtered on their metadata only (the data pattern
    is ignored for them); the JSON value the pattern rejects is filtered out. Every other record reaches
    the function in partition order and the group's committed offset reaches the end."""
    recorder = kk.install(kk.KafkaRecorder())
    values = [
        b'{"keep": true, "n": 0}',
        b"\xff\xfe\xfd invalid UTF-8",
        None,
        b"hello, not JSON",
        b'{"keep": true',
        b'{"keep": false}',
        deep_list(1000).encode(),
        bytes(range(256)) * 3500,
        b'{"keep": true, "n": 8}',
    ]
    kept = [i for i in range(len(values)) if i != 5]
    async with kk.kafka_admin() as admin:
        topic = await kk.create_topic(admin)
        await kk.produce(topic, [kk.Message(value, key=b"k") for value in values])
        pattern = json.dumps({"value": {"keep": [True]}, "topic": [topic]})
        mapping = kk.smk_mapping(topic, BatchSize=4, FilterCriteria={"Filters": [{"Pattern": pattern}]})
        doc = {"functions": kk.FUNCTIONS, "event_source_mappings": [mapping], "metrics": {"listen": "127.0.0.1:0"},
               "shutdown_timeout": 20, "startup_timeout": 30}
        async with running_config(parse_config(yaml.safe_dump(doc, sort_keys=False))) as daemon:
            await recorder.wait_for(lambda r: len(r.records) >= len(kept), timeout=90)
            group = mapping["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"]
            await kk.wait_for_offsets(admin, group, lambda o: o.get(0) == len(values))
            assert daemon.total("esm_filtered_out_events_total") == 1
    assert [r["offset"] for r in recorder.records] == kept
    assert [base64.b64decode(r["value"]) if "value" in r else None for r in recorder.records] == [values[i] for i in kept]
