"""The Kafka source against a real Apache Kafka broker (and ElasticMQ for an SQS destination).

docs/behaviour.md Kafka columns of sections 1-7 and section 9 (9.4 partial batch, 9.6 nothing lost, 9.7 one
mode, 9.9 identity). Each test has its own topic and consumer group; the daemon runs in the
test's loop with the in-process recording handler of tests/support/kafka.py, except the SIGKILL
test, which runs it as a process. Group timings are lowered through the source's module
constants (the broker's minimum session timeout is 6 s).
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import esm.sources.kafka.tuning as kafka_source
from esm.config.loading import parse_config
from tests.support import kafka as kk
from tests.support.daemon import running_config
from tests.support.kafka import Message, create_topic, kafka_admin, produce, smk_mapping, value_of
from tests.support.sqs import create_queue, receive_all, sqs_client
from tests.support.kafka import quick_group  # noqa: F401  (autouse: the group's quick timings)
from tests.support.waiting import wait_until


pytestmark = pytest.mark.usefixtures("backends")

ROOT = Path(__file__).resolve().parents[2]



def config_for(*mappings, functions=None) -> str:
    doc = {"functions": functions or kk.FUNCTIONS, "event_source_mappings": list(mappings),
           "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 20, "startup_timeout": 30}
    return yaml.safe_dump(doc, sort_keys=False)


def daemon(*mappings, functions=None):
    return running_config(parse_config(config_for(*mappings, functions=functions)))


def group_of(mapping: dict) -> str:
    return mapping["SelfManagedKafkaEventSourceConfig"]["ConsumerGroupId"]


# ---------------------------------------------------------------- payload


async def test_event_shape_signed_header_bytes_and_absent_key():
    """behaviour §2: records grouped by "<topic>-<partition>", base64 key (absent when null) and value, epoch-ms
    timestamp, CREATE_TIME, headers as single-entry objects of signed bytes; SelfManagedKafka, no ARN."""
    recorder = kk.install(kk.KafkaRecorder())
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        sent = await produce(topic, [
            Message(b'{"n": 1}', key=b"k1",
                    headers=(("h\u00e9", "\u00e9t\u00e9".encode()), ("bin", bytes([0, 127, 128, 255])))),
            Message(b"plain", key=None),
        ])
        mapping = smk_mapping(topic)
        async with daemon(mapping) as d:
            await recorder.wait_for(lambda r: len(r.records) >= 2)
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 2)
            await wait_until(lambda: d.total("esm_committed_events_total") == 2, what="CommittedEventCount 2")
    event = recorder.events[0]
    assert list(event) == ["eventSource", "bootstrapServers", "records"]
    assert event["eventSource"] == "SelfManagedKafka"
    assert event["bootstrapServers"] == os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    assert list(event["records"]) == [f"{topic}-0"]
    first, second = recorder.records
    assert list(first) == ["topic", "partition", "offset", "timestamp", "timestampType", "key", "value", "headers"]
    assert first["topic"] == topic and first["partition"] == 0 and first["offset"] == 0
    assert first["timestamp"] == sent[0].timestamp and first["timestampType"] == "CREATE_TIME"
    assert base64.b64decode(first["key"]) == b"k1" and base64.b64decode(first["value"]) == b'{"n": 1}'
    # "été" is c3 a9 74 c3 a9 in UTF-8: Java bytes -61 -87 116 -61 -87.
    assert first["headers"] == [{"h\u00e9": [-61, -87, 116, -61, -87]}, {"bin": [0, 127, -128, -1]}]
    assert "key" not in second and value_of(second) == "plain" and second["headers"] == []
    assert second["offset"] == 1


async def test_partitions_in_parallel_each_in_order_one_batch_in_flight():
    """behaviour §1/§7: the ordering unit is the partition: partitions are processed in parallel, each in order,
    with one batch in flight per partition and one partition per batch."""
    recorder = kk.install(kk.KafkaRecorder(delay=0.05))
    partitions, per_partition = 4, 15
    async with kafka_admin() as admin:
        topic = await create_topic(admin, partitions)
        await produce(topic, [Message(f"p{p}-{i}".encode(), partition=p)
                              for i in range(per_partition) for p in range(partitions)])
        async with daemon(smk_mapping(topic, BatchSize=4, MaximumBatchingWindowInSeconds=0)):
            await recorder.wait_for(lambda r: len(r.records) >= partitions * per_partition)
    for p in range(partitions):
        seen = [value_of(r) for r in recorder.records if r["partition"] == p]
        assert seen == [f"p{p}-{i}" for i in range(per_partition)]
        offsets = [r["offset"] for r in recorder.records if r["partition"] == p]
        assert offsets == list(range(per_partition))
    assert all(len(event["records"]) == 1 for event in recorder.events)
    assert all(len(batch) <= 4 for batch in recorder.batches)
    assert recorder.max_per_group == 1
    assert recorder.max_in_flight > 1


# ---------------------------------------------------------------- filters


async def test_filters_value_json_plain_and_non_utf8_and_filtered_offsets_committed():
    """behaviour §5: a JSON value is matched as JSON; a plain or non-UTF-8 value does not fit a JSON data pattern,
    so that filter is applied to metadata only (kept, not dropped); filtered-out records are committed."""
    recorder = kk.install(kk.KafkaRecorder())
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        pattern = json.dumps({"topic": [topic], "value": {"kind": ["keep"]}})
        await produce(topic, [
            Message(b'{"kind": "keep", "n": 0}'),
            Message(b'{"kind": "skip", "n": 1}'),
            Message(b"plain text"),
            Message(b"\xff\xfe\xfd"),
            Message(b'{"kind": "skip", "n": 4}'),
        ])
        mapping = smk_mapping(topic, FilterCriteria={"Filters": [{"Pattern": pattern}]})
        async with daemon(mapping) as d:
            await recorder.wait_for(lambda r: len(r.records) >= 3)
            # The last record is filtered out: only the filtered-record commit path can reach 5.
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 5)
            await wait_until(lambda: d.total("esm_filtered_out_events_total") == 2, what="2 filtered out")
            assert d.total("esm_polled_events_total") == 5
    assert [r["offset"] for r in recorder.records] == [0, 2, 3]
    assert base64.b64decode(recorder.records[2]["value"]) == b"\xff\xfe\xfd"


async def test_filtered_out_plain_value_with_plain_pattern():
    """behaviour §5: a plain (non-JSON) value is matched against a plain data pattern."""
    recorder = kk.install(kk.KafkaRecorder())
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(b"alpha"), Message(b"beta"), Message(b"alpha")])
        mapping = smk_mapping(topic, FilterCriteria={"Filters": [{"Pattern": json.dumps({"value": ["alpha"]})}]})
        async with daemon(mapping):
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 3)
            await recorder.wait_for(lambda r: len(r.records) >= 2)
    assert [(r["offset"], value_of(r)) for r in recorder.records] == [(0, "alpha"), (2, "alpha")]


# ---------------------------------------------------------------- error controls


async def test_partial_batch_commits_the_lowest_failed_offset_and_retries_from_it():
    """behaviour §3 / §9.4: with ReportBatchItemFailures, the committed offset becomes the lowest failed offset
    and everything from it on is retried."""
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        mapping = smk_mapping(topic, BatchSize=6, FunctionResponseTypes=["ReportBatchItemFailures"])
        seen_committed: list[dict[int, int]] = []

        async def behaviour(event):
            records = event["records"][f"{topic}-0"]
            if len(recorder.events) == 1:
                return {"batchItemFailures": [{"itemIdentifier": {"partition": f"{topic}-0", "offset": o}}
                                              for o in (4, 2)]}
            # The commit may land a moment after the retry starts (commits are asynchronous): wait
            # for it, then record it; a commit past offset 2 would break the rule.
            seen_committed.append(await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0, 0) > 0, timeout=15))
            return {"batchItemFailures": []} if records else None

        recorder = kk.install(kk.KafkaRecorder(behaviour))
        await produce(topic, [Message(f"r{i}".encode()) for i in range(6)])
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 6)
            assert d.total("esm_failed_invoke_events_total") == 2
    assert [[r["offset"] for r in batch] for batch in recorder.batches] == [[0, 1, 2, 3, 4, 5], [2, 3, 4, 5]]
    assert seen_committed[0] == {0: 2}  # while the retry ran, the group had committed offset 2


async def test_malformed_item_identifier_fails_the_whole_batch():
    """behaviour §3: an itemIdentifier that is not {partition, offset} of the batch fails the whole batch."""
    async with kafka_admin() as admin:
        topic = await create_topic(admin)

        def behaviour(event):
            if len(recorder.events) == 1:
                return {"batchItemFailures": [{"itemIdentifier": {"partition": f"{topic}-0", "offset": "two"}}]}
            if len(recorder.events) == 2:
                return {"batchItemFailures": [{"itemIdentifier": {"partition": f"{topic}-9", "offset": 1}}]}
            return None

        recorder = kk.install(kk.KafkaRecorder(behaviour))
        await produce(topic, [Message(f"r{i}".encode()) for i in range(3)])
        mapping = smk_mapping(topic, FunctionResponseTypes=["ReportBatchItemFailures"])
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 3)
            assert d.total("esm_failed_invoke_events_total") == 6
    assert [[r["offset"] for r in batch] for batch in recorder.batches] == [[0, 1, 2]] * 3


async def test_bisect_isolates_a_poison_record_in_order():
    """behaviour §4 / §9.2: with BisectBatchOnFunctionError the poison record is isolated, every other record is
    processed in order, and without a destination the poison record is dropped and committed past."""
    def behaviour(event):
        if any(value_of(r) == "r4" for r in event["records"][f"{topic}-0"]):
            raise RuntimeError("poison")

    recorder = kk.install(kk.KafkaRecorder(behaviour))
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(f"r{i}".encode()) for i in range(10)])
        mapping = smk_mapping(topic, BatchSize=10, BisectBatchOnFunctionError=True, MaximumRetryAttempts=1)
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 10)
            assert d.total("esm_dropped_events_total") == 1
    succeeded = [value_of(r) for batch in recorder.batches
                 if not any(value_of(x) == "r4" for x in batch) for r in batch]
    assert succeeded == [f"r{i}" for i in range(10) if i != 4]
    assert [[value_of(r) for r in b] for b in recorder.batches].count(["r4"]) == 2  # alone: first try + 1 retry


async def test_retries_exhausted_go_to_an_sqs_destination_as_kafka_batch_info():
    """behaviour §3/§4: after MaximumRetryAttempts the batch goes to the SQS destination as a KafkaBatchInfo
    document (metadata only), and its offsets are committed (behaviour §9.6)."""
    recorder = kk.install(kk.KafkaRecorder(lambda event: (_ for _ in ()).throw(RuntimeError("down"))))
    async with kafka_admin() as admin, sqs_client() as sqs:
        dlq_url, dlq_arn = await create_queue(sqs, "kdlq")
        topic = await create_topic(admin)
        sent = await produce(topic, [Message(f"r{i}".encode()) for i in range(3)])
        mapping = smk_mapping(topic, MaximumRetryAttempts=1, DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 3)
            assert d.total("esm_on_failure_destination_delivered_events_total") == 3
            assert d.total("esm_dropped_events_total") == 0
        messages = await receive_all(sqs, dlq_url)
    assert len(recorder.batches) == 2
    [message] = messages
    document = json.loads(message["Body"])
    assert list(document) == ["requestContext", "responseContext", "version", "timestamp", "KafkaBatchInfo"]
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["approximateInvokeCount"] == 2
    assert document["requestContext"]["functionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:recorder"
    assert document["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                           "functionError": "Unhandled"}
    info = document["KafkaBatchInfo"]
    assert info["batchSize"] == 3 and info["eventSourceArn"] is None
    assert info["bootstrapServers"] == os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    assert info["payloadSize"] == len(json.dumps(recorder.events[0], separators=(",", ":")).encode())
    [(key, span)] = info["recordsInfo"].items()
    assert key == f"{topic}-0" and (span["firstRecordOffset"], span["lastRecordOffset"]) == ("0", "2")
    first_ms = sent[0].timestamp
    assert span["firstRecordTimestamp"] == time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(first_ms / 1000)) \
        + f".{first_ms % 1000:03d}Z"


async def test_records_older_than_maximum_record_age_are_never_invoked():
    """behaviour §3 / §9.3: a record older than MaximumRecordAgeInSeconds (by its Kafka timestamp) goes to the
    destination as RecordAgeExceeded without being invoked. behaviour §4 "Recorded against real AWS" (issue
    13.2): such a document has no responseContext key and an approximateInvokeCount of 1."""
    recorder = kk.install(kk.KafkaRecorder())
    now_ms = int(time.time() * 1000)
    async with kafka_admin() as admin, sqs_client() as sqs:
        dlq_url, dlq_arn = await create_queue(sqs, "kdlq")
        topic = await create_topic(admin)
        await produce(topic, [Message(b"stale", timestamp_ms=now_ms - 3_600_000), Message(b"fresh")])
        mapping = smk_mapping(topic, MaximumRecordAgeInSeconds=60,
                              DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
        async with daemon(mapping):
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 2)
        [message] = await receive_all(sqs, dlq_url)
    assert recorder.values() == ["fresh"]
    document = json.loads(message["Body"])
    assert document["requestContext"]["condition"] == "RecordAgeExceeded"
    assert document["requestContext"]["approximateInvokeCount"] == 1
    assert "responseContext" not in document
    assert document["KafkaBatchInfo"]["recordsInfo"][f"{topic}-0"]["lastRecordOffset"] == "0"


async def test_infinite_retries_with_a_destination_stop_after_ten():
    """behaviour §3: MaximumRetryAttempts -1 with an on-failure destination means at most 10 retries."""
    recorder = kk.install(kk.KafkaRecorder(lambda event: (_ for _ in ()).throw(RuntimeError("down"))))
    async with kafka_admin() as admin, sqs_client() as sqs:
        dlq_url, dlq_arn = await create_queue(sqs, "kdlq")
        topic = await create_topic(admin)
        await produce(topic, [Message(b"only")])
        mapping = smk_mapping(topic, DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
        async with daemon(mapping):
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 1)
        [message] = await receive_all(sqs, dlq_url)
    assert len(recorder.batches) == 11
    assert json.loads(message["Body"])["requestContext"]["approximateInvokeCount"] == 11


async def test_retries_exhausted_go_to_a_kafka_topic_one_message_per_record_with_original_key():
    """behaviour §4: a kafka://topic destination gets one message per failed record, produced with the record's
    key, holding the record in `payload`, condition RetriesExhausted."""
    recorder = kk.install(kk.KafkaRecorder(lambda event: (_ for _ in ()).throw(RuntimeError("down"))))
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        dead = await create_topic(admin, prefix="dlt")
        await produce(topic, [Message(b"v0", key=b"k0", headers=(("h", b"\x01"),)), Message(b"v1", key=None)])
        mapping = smk_mapping(topic, MaximumRetryAttempts=0,
                              DestinationConfig={"OnFailure": {"Destination": f"kafka://{dead}"}})
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 2)
            assert d.total("esm_on_failure_destination_delivered_events_total") == 2
        messages = await kk.read_topic(dead, 2)
    assert len(recorder.batches) == 1
    assert [m.key for m in messages] == [b"k0", None]
    documents = [json.loads(m.value) for m in messages]
    for offset, (document, original) in enumerate(zip(documents, recorder.records)):
        assert document["requestContext"]["condition"] == "RetriesExhausted"
        assert document["requestContext"]["approximateInvokeCount"] == 1
        info = document["KafkaBatchInfo"]
        assert info["batchSize"] == 1 and info["recordInfo"]["offset"] == str(offset)
        payload = document["payload"]
        assert payload["eventSource"] == "SelfManagedKafka" and "eventSourceArn" not in payload
        assert payload["records"] == {f"{topic}-0": [original]}
        assert info["payloadSize"] == len(json.dumps(payload, separators=(",", ":")).encode())


# ---------------------------------------------------------------- starting positions


async def test_latest_skips_earlier_records_and_trim_horizon_reads_them():
    """behaviour §1: StartingPosition LATEST reads only records produced after the group's start was taken;
    TRIM_HORIZON reads from the beginning."""
    recorder = kk.install(kk.KafkaRecorder())
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(b"old")])
        latest = smk_mapping(topic, StartingPosition="LATEST")
        async with daemon(latest):
            # The start of a group without offsets is committed at once: then "new" is after it.
            await kk.wait_for_offsets(admin, group_of(latest), lambda o: o.get(0) == 1)
            await produce(topic, [Message(b"new")])
            await kk.wait_for_offsets(admin, group_of(latest), lambda o: o.get(0) == 2)
        horizon_recorder = kk.install(kk.KafkaRecorder())
        horizon = smk_mapping(topic, StartingPosition="TRIM_HORIZON")
        async with daemon(horizon):
            await kk.wait_for_offsets(admin, group_of(horizon), lambda o: o.get(0) == 2)
    assert recorder.values() == ["new"]
    assert horizon_recorder.values() == ["old", "new"]


async def test_committed_offsets_win_over_starting_position_on_restart():
    """behaviour §1: when the consumer group has committed offsets, StartingPosition is ignored."""
    recorder = kk.install(kk.KafkaRecorder())
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(f"a{i}".encode()) for i in range(3)])
        group = kk.unique("g")
        async with daemon(smk_mapping(topic, group, StartingPosition="TRIM_HORIZON")):
            await kk.wait_for_offsets(admin, group, lambda o: o.get(0) == 3)
        await produce(topic, [Message(f"b{i}".encode()) for i in range(2)])
        second = kk.install(kk.KafkaRecorder())
        async with daemon(smk_mapping(topic, group, StartingPosition="TRIM_HORIZON")):
            await kk.wait_for_offsets(admin, group, lambda o: o.get(0) == 5)
        await produce(topic, [Message(b"c0")])
        third = kk.install(kk.KafkaRecorder())
        async with daemon(smk_mapping(topic, group, StartingPosition="LATEST")):
            await kk.wait_for_offsets(admin, group, lambda o: o.get(0) == 6)
    assert recorder.values() == ["a0", "a1", "a2"]
    assert second.values() == ["b0", "b1"]
    assert third.values() == ["c0"]  # LATEST would have skipped it: the committed offset won


async def test_at_timestamp_starts_at_the_first_record_at_or_after_it():
    """behaviour §1: StartingPosition AT_TIMESTAMP starts each partition at its first record whose timestamp is
    at or after StartingPositionTimestamp."""
    recorder = kk.install(kk.KafkaRecorder())
    now_ms = int(time.time() * 1000)
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(f"r{i}".encode(), timestamp_ms=now_ms - 30000 + i * 10000) for i in range(3)])
        mapping = smk_mapping(topic, StartingPosition="AT_TIMESTAMP",
                              StartingPositionTimestamp=(now_ms - 25000) / 1000)
        async with daemon(mapping):
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 3)
            await recorder.wait_for(lambda r: len(r.records) >= 2)
    assert recorder.values() == ["r1", "r2"]


# ---------------------------------------------------------------- rebalances and crashes


def ownership_problems(records, topic: str) -> list[str]:
    """Replays the source's log: each commit must come while its mapping owns the partition, and a
    partition's committed offset must never move backwards (whoever commits it)."""
    owned: dict[str, set[str]] = {}
    last: dict[str, int] = {}
    problems = []
    for record in records:
        if record.name != "esm.kafka":
            continue
        who, message = getattr(record, "mapping", "?"), record.getMessage()
        units = set(re.findall(rf"{re.escape(topic)}-\d+(?=[,@ ]|$)", message.split(" (")[0]))
        if message.startswith("assigned "):
            owned.setdefault(who, set()).update(units)
        elif message.startswith(("revoked ", "shutdown ")):
            owned.setdefault(who, set()).difference_update(units)
        elif (found := re.match(r"committed (\S+) at (\d+)$", message)):
            unit, offset = found.group(1), int(found.group(2))
            if unit not in owned.get(who, set()):
                problems.append(f"{who} committed {unit} at {offset} without owning it")
            if offset < last.get(unit, -1):
                problems.append(f"{who} moved {unit} back from {last[unit]} to {offset}")
            last[unit] = offset
    return problems


def assigned(records, name: str) -> bool:
    """Whether the source of mapping `name` logged a partition assignment."""
    return any(r.name == "esm.kafka" and getattr(r, "mapping", None) == name and r.getMessage().startswith("assigned ")
               for r in records)


def revoking(records, name: str) -> bool:
    """Whether the source of mapping `name` logged that partitions are being revoked."""
    return any(r.name == "esm.kafka" and getattr(r, "mapping", None) == name and r.getMessage().startswith("revoked")
               for r in records)


@pytest.mark.parametrize("delay, drain", [(0.05, None), (0.8, 0.1)], ids=["in-flight-finishes", "in-flight-abandoned"])
async def test_a_second_consumer_joining_loses_nothing_and_commits_only_owned_partitions(caplog, monkeypatch,
                                                                                         delay, drain):
    """behaviour §9.6 / docs/design.md (Benthos ordered Kafka): when a second daemon joins the group, the partitions are
    shared; revoked partitions are committed while still owned and never after, whether the batch in
    flight finishes or is abandoned (REVOKE_DRAIN_SECONDS); nothing is skipped."""
    if drain is not None:
        monkeypatch.setattr(kafka_source, "REVOKE_DRAIN_SECONDS", drain)
    caplog.set_level(logging.DEBUG, logger="esm.kafka")
    # For the abandoned case, invokes started after the first daemon got going are held until its
    # revoke has begun, so a batch is surely in flight then (on a busy machine the first daemon
    # could otherwise sit between batches at that moment, and nothing would be abandoned).
    gate = asyncio.Event()
    gate.set()

    async def held(event):
        await gate.wait()

    recorder = kk.install(kk.KafkaRecorder(held, delay=delay))
    partitions, first_round, second_round = 4, 24, 8
    async with kafka_admin() as admin:
        topic = await create_topic(admin, partitions)
        group = kk.unique("g")
        await produce(topic, [Message(f"p{p}-{i}".encode(), partition=p)
                              for i in range(first_round) for p in range(partitions)])
        one = smk_mapping(topic, group, BatchSize=3, MaximumBatchingWindowInSeconds=0, esm={"name": "one"})
        two = smk_mapping(topic, group, BatchSize=3, MaximumBatchingWindowInSeconds=0, esm={"name": "two"})
        total = partitions * (first_round + second_round)
        async with daemon(one) as first:
            await recorder.wait_for(lambda r: len(r.records) >= 12)
            if drain is not None:
                gate.clear()
            async with daemon(two) as second:
                if drain is not None:
                    await wait_until(lambda: revoking(caplog.records, "one"), what="the first daemon's revoke")
                    gate.set()
                # The first daemon may read the whole first round before the rebalance ends (a slow
                # join on a busy machine): the second round, on every partition, is produced once the
                # second daemon owns some, so that some of it is the second's to invoke.
                await wait_until(lambda: assigned(caplog.records, "two"), what="the second daemon owns partitions")
                await produce(topic, [Message(f"p{p}-{i}".encode(), partition=p)
                                      for i in range(first_round, first_round + second_round)
                                      for p in range(partitions)])
                await wait_until(lambda: second.total("esm_invoked_events_total") > 0, what="the second daemon invokes")
                await kk.wait_for_offsets(admin, group, lambda o: len(o) == partitions and all(
                    v == first_round + second_round for v in o.values()))
            invoked = (first.total("esm_invoked_events_total"), second.total("esm_invoked_events_total"))
    expected = {f"p{p}-{i}" for p in range(partitions) for i in range(first_round + second_round)}
    assert set(recorder.values()) == expected
    assert len(recorder.records) >= total
    assert invoked[0] > 0 and invoked[1] > 0
    for p in range(partitions):  # no gaps: each batch starts at or before the next unprocessed offset
        high = -1
        for batch in recorder.batches:
            offsets = [r["offset"] for r in batch if r["partition"] == p]
            if offsets:
                assert offsets[0] <= high + 1, f"partition {p}: skipped from {high} to {offsets[0]}"
                assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
                high = max(high, offsets[-1])
    assert ownership_problems(caplog.records, topic) == []
    messages = [r.getMessage() for r in caplog.records if r.name == "esm.kafka"]
    assert any(m.startswith("revoked ") for m in messages)
    assert not [m for m in messages if "refused" in m]  # never even tried to commit a partition not owned
    if drain is not None:
        assert any(m.startswith("revoked: abandoned") for m in messages)


async def test_sigkill_then_restart_resumes_from_the_committed_offset(tmp_path):
    """behaviour §9.6: a daemon killed mid-batch loses nothing: the restarted one reads from the group's
    committed offset, so no record is skipped and none before the commit is read again."""
    record_file = tmp_path / "calls.jsonl"
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(f"r{i:02d}".encode()) for i in range(12)])
        mapping = smk_mapping(topic, BatchSize=3, MaximumBatchingWindowInSeconds=0)
        path = tmp_path / "esm.yaml"
        path.write_text(config_for(mapping, functions={"recorder": {"handler": "tests.support.kafka:file_handler"}}))
        # The killed member keeps its partition until its session times out: 6 s, the broker's minimum.
        launcher = ("import sys, esm.sources.kafka.tuning as k; k.SESSION_TIMEOUT_MS = 6000; "
                    "from esm.cli import main; sys.exit(main(['run', '--config', sys.argv[1]]))")

        def start(sleep: float, log_name: str) -> subprocess.Popen:
            env = dict(os.environ, ESM_TEST_RECORD_FILE=str(record_file), ESM_TEST_SLEEP=str(sleep))
            with open(tmp_path / log_name, "w") as log_file:
                return subprocess.Popen([sys.executable, "-c", launcher, str(path)], cwd=ROOT, env=env,
                                        stdout=log_file, stderr=subprocess.STDOUT)

        def events():
            if not record_file.exists():
                return []
            return [json.loads(line) for line in record_file.read_text().splitlines() if line.strip()]

        first = start(1.0, "first.log")
        try:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0, 0) >= 6, timeout=60)
            # Kill it with a batch in flight: its handler has started and not ended.
            await wait_until(lambda: events() and events()[-1]["phase"] == "start", what="a batch in flight")
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
        before = len(events())
        committed = (await kk.group_offsets(admin, group_of(mapping)))[0]
        second = start(0, "second.log")
        try:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 12, timeout=60)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
    started = [item for e in events() if e["phase"] == "start" for item in e["items"]]
    assert {value for _, _, value in started} == {f"r{i:02d}" for i in range(12)}
    assert 6 <= committed < 12
    assert events()[before - 1]["phase"] == "start" and events()[before - 1]["items"][0][1] == committed
    resumed = [offset for e in events()[before:] if e["phase"] == "start" for _, offset, _ in e["items"]]
    assert resumed == list(range(committed, 12))


async def test_a_record_over_6_mb_is_never_invoked_and_goes_to_the_destination():
    """behaviour §4: a record whose event alone exceeds the 6 MB invoke limit goes to the on-failure destination
    as MaximumPayloadSizeExceeded with a null responseContext; the records around it are invoked."""
    recorder = kk.install(kk.KafkaRecorder())
    big = 5 * 1024 * 1024  # base64 makes it about 6.7 MB in the event
    async with kafka_admin() as admin, sqs_client() as sqs:
        dlq_url, dlq_arn = await create_queue(sqs, "kdlq")
        topic = await create_topic(admin, configs={"max.message.bytes": str(8 * 1024 * 1024)})
        await produce(topic, [Message(b"before"), Message(b"x" * big), Message(b"after")],
                      max_request_size=8 * 1024 * 1024)
        mapping = smk_mapping(topic, DestinationConfig={"OnFailure": {"Destination": dlq_arn}})
        async with daemon(mapping) as d:
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == 3)
            assert d.total("esm_on_failure_destination_delivered_events_total") == 1
        [message] = await receive_all(sqs, dlq_url)
    assert recorder.values() == ["before", "after"]
    document = json.loads(message["Body"])
    assert document["requestContext"]["condition"] == "MaximumPayloadSizeExceeded"
    assert document["requestContext"]["approximateInvokeCount"] == 0
    assert document["responseContext"] is None
    info = document["KafkaBatchInfo"]
    assert info["batchSize"] == 1 and info["payloadSize"] > 6 * 1024 * 1024
    assert info["recordsInfo"][f"{topic}-0"]["firstRecordOffset"] == "1"


# ---------------------------------------------------------------- metrics and connection


async def test_offset_lag_and_committed_event_count():
    """behaviour §6: OffsetLag per partition and MaxOffsetLag / SumOffsetLag are latest minus committed offsets;
    CommittedEventCount sums the committed offset deltas; ProvisionedPollers and EventPollerUnit count
    the partitions worked."""
    release = asyncio.Event()

    async def behaviour(event):
        await release.wait()

    recorder = kk.install(kk.KafkaRecorder(behaviour))
    async with kafka_admin() as admin:
        topic = await create_topic(admin, 2)
        await produce(topic, [Message(b"a", partition=0)] * 5 + [Message(b"b", partition=1)] * 3)
        mapping = smk_mapping(topic, BatchSize=1)
        uuid = parse_config(config_for(mapping)).mappings[0].uuid
        labels = {"mapping": uuid, "source": "kafka"}
        async with daemon(mapping) as d:
            def lag(partition):
                return d.value("esm_offset_lag", **labels, topic=topic, partition=str(partition))

            # Both partitions hold their first record in flight: nothing is committed past the start.
            await recorder.wait_for(lambda r: len(r.batches) == 2)
            await wait_until(lambda: (lag(0), lag(1)) == (5, 3), what="OffsetLag 5 and 3")
            await wait_until(lambda: d.value("esm_max_offset_lag", **labels) == 5, what="MaxOffsetLag 5")
            await wait_until(lambda: d.value("esm_sum_offset_lag", **labels) == 8, what="SumOffsetLag 8")
            assert d.value("esm_committed_events_total", **labels) == 0
            # ProvisionedPollers: one poller per partition worked; EventPollerUnit: 10 pollers per unit.
            assert d.value("esm_provisioned_pollers", **labels) == 2
            assert d.value("esm_event_poller_units", **labels) == 1
            release.set()
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o == {0: 5, 1: 3})
            await wait_until(lambda: d.value("esm_sum_offset_lag", **labels) == 0, what="SumOffsetLag 0")
            assert (lag(0), lag(1)) == (0, 0) and d.value("esm_max_offset_lag", **labels) == 0
            assert d.value("esm_committed_events_total", **labels) == 8


async def test_an_unreachable_cluster_and_msk_arns_are_source_unavailable():
    """Source contract / behaviour §1: connect() raises SourceUnavailable while the cluster cannot be reached;
    an Amazon MSK cluster ARN whose brokers cannot be looked up (GetBootstrapBrokers) is SourceUnavailable too,
    naming the cluster (tests/integration/test_kafka_security.py resolves one)."""
    import socket

    from esm.aws import AwsClients
    from esm.config.settings import AwsSettings
    from esm.errors import SourceUnavailable
    from esm.invokers import make_invoker
    from esm.observability.metrics import Metrics
    from esm.runtime import Runtime
    from esm.engine.stream_mapping import StreamMapping
    from esm.sources.kafka.source import KafkaSource

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"127.0.0.1:{probe.getsockname()[1]}"
    smk = smk_mapping("orders")
    smk["SelfManagedEventSource"]["Endpoints"]["KAFKA_BOOTSTRAP_SERVERS"] = [closed]
    msk = {"FunctionName": "recorder", "Topics": ["orders"], "StartingPosition": "LATEST",
           "EventSourceArn": "arn:aws:kafka:us-east-1:123456789012:cluster/c/0b1a2c3d-4e5f"}
    config = parse_config(config_for(smk, msk))
    runtime = Runtime(clients=AwsClients(AwsSettings()))
    for settings, message in zip(config.mappings, ("is not reachable", "Amazon MSK cluster arn:aws:kafka:")):
        invoker = make_invoker(settings.function, config.aws, default_concurrency=1)
        source = StreamMapping(settings, KafkaSource, runtime, invoker, Metrics().for_mapping(settings.uuid, "kafka"))
        with pytest.raises(SourceUnavailable, match=message):
            await source.connect()
        await source.close()
        await invoker.close()


async def test_a_busy_partition_is_paused_not_buffered_without_bound():
    """docs/design.md (back-pressure): while a partition's worker is busy, the poller pauses that partition once its
    queue is full instead of reading the whole backlog into memory; nothing is lost when it resumes."""
    release = asyncio.Event()

    async def behaviour(event):
        await release.wait()

    recorder = kk.install(kk.KafkaRecorder(behaviour))
    backlog = 4000
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await kk.produce_bulk(topic, [f"r{i}".encode() for i in range(backlog)])
        mapping = smk_mapping(topic, BatchSize=10)
        async with daemon(mapping) as d:
            uuid = parse_config(config_for(mapping)).mappings[0].uuid
            await recorder.wait_for(lambda r: len(r.batches) == 1)
            # The lag loop has run (it publishes the lag) while the first batch is still held.
            await wait_until(lambda: d.value("esm_offset_lag", mapping=uuid, source="kafka", topic=topic,
                                             partition="0") == backlog, what="OffsetLag of the whole backlog")
            bound = max(2 * 10, kafka_source.MAX_POLL_RECORDS) + kafka_source.MAX_POLL_RECORDS
            assert d.total("esm_polled_events_total") <= bound
            release.set()
            await kk.wait_for_offsets(admin, group_of(mapping), lambda o: o.get(0) == backlog)
    values = recorder.values()
    assert values == [f"r{i}" for i in range(backlog)]


async def test_transform_rewrites_the_value_and_keeps_offsets():
    """behaviour §9.10: esm.transform applies JMESPath to the decoded Kafka value before invoke; offsets stay."""
    recorder = kk.install(kk.KafkaRecorder())
    async with kafka_admin() as admin:
        topic = await create_topic(admin)
        await produce(topic, [Message(json.dumps({"order": {"id": i}, "noise": 1}).encode()) for i in range(3)])
        mapping = smk_mapping(topic, esm={"transform": "value.order"})
        async with daemon(mapping):
            await recorder.wait_for(lambda r: len(r.records) >= 3)
    assert [json.loads(value_of(r)) for r in recorder.records] == [{"id": 0}, {"id": 1}, {"id": 2}]
    assert [r["offset"] for r in recorder.records] == [0, 1, 2]
