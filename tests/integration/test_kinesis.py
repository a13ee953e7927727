"""The Kinesis source against kinesis-mock (and ElasticMQ/moto for destinations), one test per rule.

docs/behaviour.md Kinesis columns of sections 1-7 and section 9. The daemon runs in the test's loop with the
in-process recording handler; checkpoints live in a per-test SQLite file.
"""

from __future__ import annotations

import base64
import json
from types import MappingProxyType

import pytest
import yaml

from esm.checkpoints import make_checkpoint_store
from esm.config.loading import parse_config
from esm.config.settings import CheckpointSettings
from tests.support import recorder as rec
from tests.support.daemon import RECORDER, running_config
from tests.support.kinesis import create_stream, kinesis_client, put, wait_active
from tests.support.sqs import create_queue, receive_all, sqs_client

pytestmark = pytest.mark.usefixtures("backends")


def config_text(tmp_path, *mappings, functions=None) -> str:
    doc = {"functions": functions or RECORDER, "event_source_mappings": list(mappings),
           "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 10, "startup_timeout": 30,
           "checkpoints": {"sqlite": str(tmp_path / "checkpoints.db")}}
    return yaml.safe_dump(doc, sort_keys=False)


def mapping(arn: str, **fields) -> dict:
    return {"FunctionName": "recorder", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON", **fields}


def data_of(record: dict) -> str:
    return base64.b64decode(record["kinesis"]["data"]).decode()


async def test_records_in_order_with_lambda_shape(tmp_path):
    """behaviour §2/§3: one shard's records arrive in order, shaped like Lambda's Kinesis event."""
    recorder = rec.install(rec.Recorder())
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        sequences = await put(kinesis, name, [("k", f"r{i}".encode()) for i in range(7)])
        async with running_config(parse_config(config_text(tmp_path, mapping(arn, BatchSize=3)))):
            await recorder.wait_for(lambda r: len(r.records) >= 7)
    assert [data_of(r) for r in recorder.records] == [f"r{i}" for i in range(7)]
    assert all(len(b) <= 3 for b in recorder.batches)
    first = recorder.records[0]
    assert first["kinesis"]["sequenceNumber"] == sequences[0] and first["kinesis"]["partitionKey"] == "k"
    assert first["kinesis"]["kinesisSchemaVersion"] == "1.0"
    assert isinstance(first["kinesis"]["approximateArrivalTimestamp"], float)
    assert first["eventID"].endswith(":" + sequences[0]) and first["eventID"].startswith("shardId-")
    assert first["eventSource"] == "aws:kinesis" and first["eventName"] == "aws:kinesis:record"
    assert first["eventSourceARN"] == arn and first["awsRegion"] == "us-east-1"
    # behaviour §4 "Recorded against real AWS": the execution role, never the function ARN; an in-process
    # handler without `role` gets the documented default role in the stream's account.
    assert first["invokeIdentityArn"] == "arn:aws:iam::000000000000:role/service-role/recorder-role"


async def test_invoke_identity_is_the_configured_execution_role(tmp_path):
    """behaviour §4 "Recorded against real AWS": Kinesis records carry `functions.<name>.role` as
    invokeIdentityArn when it is set."""
    recorder = rec.install(rec.Recorder())
    role = "arn:aws:iam::123456789012:role/stream-reader"
    functions = {"recorder": {**RECORDER["recorder"], "role": role}}
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, [("k", b"r0")])
        async with running_config(parse_config(config_text(tmp_path, mapping(arn), functions=functions))):
            await recorder.wait_for(lambda r: r.records)
    assert recorder.records[0]["invokeIdentityArn"] == role


async def test_restart_resumes_from_the_checkpoint(tmp_path):
    """docs/design.md, issue 5.2: after a restart a mapping resumes at its checkpoint, not its StartingPosition."""
    recorder = rec.install(rec.Recorder())
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, [("k", f"a{i}".encode()) for i in range(4)])
        config = parse_config(config_text(tmp_path, mapping(arn)))
        async with running_config(config):
            await recorder.wait_for(lambda r: len(r.records) >= 4)
        await put(kinesis, name, [("k", f"b{i}".encode()) for i in range(3)])
        second = rec.install(rec.Recorder())
        async with running_config(config):
            await second.wait_for(lambda r: len(r.records) >= 3)
    assert [data_of(r) for r in second.records] == ["b0", "b1", "b2"]


async def test_latest_skips_existing_records(tmp_path):
    """behaviour §1: StartingPosition LATEST reads only records put after the mapping started."""
    recorder = rec.install(rec.Recorder())
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, [("k", b"old")])
        async with running_config(parse_config(config_text(tmp_path, mapping(arn, StartingPosition="LATEST")))):
            import asyncio
            await asyncio.sleep(2.5)  # let the shard iterator be taken before the new record
            await put(kinesis, name, [("k", b"new")])
            await recorder.wait_for(lambda r: r.records)
    assert [data_of(r) for r in recorder.records] == ["new"]


async def test_partial_failure_retries_then_dead_letters_with_invoke_count(tmp_path):
    """Issue 5.8: RBIF, no bisect, 6 records, BatchSize 3, record 5 failing, MaximumRetryAttempts 3:
    records 0-4 delivered in order; the destination gets batchSize 1 with approximateInvokeCount 4."""
    def behaviour(event):
        failed = [r for r in event["Records"] if data_of(r) == "r5"]
        return {"batchItemFailures": [{"itemIdentifier": r["kinesis"]["sequenceNumber"]} for r in failed]}

    recorder = rec.install(rec.Recorder(behaviour))
    async with kinesis_client() as kinesis, sqs_client() as sqs:
        dlq_url, dlq_arn = await create_queue(sqs, "kdlq")
        name, arn = await create_stream(kinesis)
        sequences = await put(kinesis, name, [("k", f"r{i}".encode()) for i in range(6)])
        config = parse_config(config_text(tmp_path, mapping(
            arn, BatchSize=3, MaximumRetryAttempts=3, FunctionResponseTypes=["ReportBatchItemFailures"],
            DestinationConfig={"OnFailure": {"Destination": dlq_arn}})))
        async with running_config(config) as daemon:
            await recorder.wait_for(lambda r: [data_of(x) for x in r.records].count("r5") >= 4)
            messages = []
            for _ in range(40):
                messages += await receive_all(sqs, dlq_url)
                if messages:
                    break
            assert daemon.total("esm_on_failure_destination_delivered_events_total") == 1
    delivered = [data_of(r) for r in recorder.records]
    assert [d for d in delivered if d != "r5"] == ["r0", "r1", "r2", "r3", "r4"]
    [message] = messages
    document = json.loads(message["Body"])
    info = document["KinesisBatchInfo"]
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == sequences[5] == info["endSequenceNumber"]
    assert info["shardId"].startswith("shardId-") and info["streamArn"] == arn
    assert document["requestContext"]["approximateInvokeCount"] == 4
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert document["requestContext"]["functionArn"] == "arn:aws:lambda:us-east-1:000000000000:function:recorder"
    assert document["version"] == "1.0"


async def test_bisect_isolates_a_poison_record_and_keeps_order(tmp_path):
    """behaviour §4 / §9.2: with bisect, a poison record is isolated while every other record is processed in order."""
    def behaviour(event):
        if any(data_of(r) == "r4" for r in event["Records"]):
            raise RuntimeError("poison")
        return None

    recorder = rec.install(rec.Recorder(behaviour))
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, [("k", f"r{i}".encode()) for i in range(10)])
        config = parse_config(config_text(tmp_path, mapping(arn, BatchSize=10, BisectBatchOnFunctionError=True,
                                                            MaximumRetryAttempts=1)))
        def succeeded(r):
            return [data_of(x) for batch in r.batches if not any(data_of(y) == "r4" for y in batch) for x in batch]

        async with running_config(config) as daemon:
            await recorder.wait_for(lambda r: "r9" in succeeded(r) and daemon.total("esm_dropped_events_total") == 1)
    assert succeeded(recorder) == [f"r{i}" for i in range(10) if i != 4]
    assert [b for b in recorder.batches if [data_of(x) for x in b] == ["r4"]]  # isolated, alone


async def test_record_age_exceeded_goes_to_destination_without_response(tmp_path):
    """behaviour §9.3: records older than MaximumRecordAgeInSeconds go to the destination as RecordAgeExceeded."""
    recorder = rec.install(rec.Recorder(lambda event: (_ for _ in ()).throw(RuntimeError("down"))))
    async with kinesis_client() as kinesis, sqs_client() as sqs:
        dlq_url, dlq_arn = await create_queue(sqs, "agedlq")
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, [("k", b"old")])
        config = parse_config(config_text(tmp_path, mapping(
            arn, MaximumRecordAgeInSeconds=60, DestinationConfig={"OnFailure": {"Destination": dlq_arn}})))
        # The API's minimum age is 60 s; the rule is the same at 2 s, which keeps the test short.
        request = dict(config.mappings[0].request, MaximumRecordAgeInSeconds=2)
        config = _with_request(config, request)
        async with running_config(config):
            messages = []
            for _ in range(60):
                messages += await receive_all(sqs, dlq_url)
                if messages:
                    break
    document = json.loads(messages[0]["Body"])
    assert document["requestContext"]["condition"] == "RecordAgeExceeded"
    assert document["requestContext"]["approximateInvokeCount"] >= 1
    assert document["KinesisBatchInfo"]["batchSize"] == 1


def _with_request(config, request):
    from dataclasses import replace
    mapping_settings = replace(config.mappings[0], request=MappingProxyType(request))
    return replace(config, mappings=(mapping_settings,))


async def test_filters_skip_records_and_the_checkpoint_passes_them(tmp_path):
    """behaviour §5: Kinesis data is filtered as JSON; non-matching records are skipped (iterator advances)."""
    recorder = rec.install(rec.Recorder())
    pattern = json.dumps({"data": {"kind": ["keep"]}})
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, [("k", json.dumps({"kind": k, "n": i}).encode())
                                  for i, k in enumerate(["keep", "skip", "keep", "skip"])] + [("k", b"not json")])
        config = parse_config(config_text(tmp_path, mapping(arn, FilterCriteria={"Filters": [{"Pattern": pattern}]})))
        async with running_config(config) as daemon:
            await recorder.wait_for(lambda r: len(r.records) >= 2)
            await recorder.wait_for(lambda r: daemon.total("esm_filtered_out_events_total") == 3)
    assert [json.loads(data_of(r))["n"] for r in recorder.records] == [0, 2]


async def test_parallelization_factor_keeps_order_per_partition_key(tmp_path):
    """behaviour §7: ParallelizationFactor > 1 processes a shard in lanes, in order per partition key."""
    recorder = rec.install(rec.Recorder(delay=0.05))
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        items = [(f"key{i % 5}", f"key{i % 5}-{i // 5}".encode()) for i in range(40)]
        await put(kinesis, name, items)
        config = parse_config(config_text(tmp_path, mapping(arn, BatchSize=4, ParallelizationFactor=5)))
        async with running_config(config):
            await recorder.wait_for(lambda r: len(r.records) >= 40)
    for k in range(5):
        seen = [data_of(r) for r in recorder.records if r["kinesis"]["partitionKey"] == f"key{k}"]
        assert seen == [f"key{k}-{i}" for i in range(8)]
    assert recorder.max_in_flight > 1


async def test_split_and_merge_keep_per_key_order(tmp_path):
    """Issue 5.1/5.8: a parent shard is finished before its children start; a split and a merge keep per-key order."""
    recorder = rec.install(rec.Recorder())
    keys = [f"key{i}" for i in range(6)]

    async def put_round(kinesis, name, round_no):
        await put(kinesis, name, [(k, f"{k}-{round_no}".encode()) for k in keys])

    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        await put_round(kinesis, name, 0)
        parent = (await kinesis.list_shards(StreamName=name))["Shards"][0]
        middle = (int(parent["HashKeyRange"]["StartingHashKey"]) + int(parent["HashKeyRange"]["EndingHashKey"])) // 2
        await kinesis.split_shard(StreamName=name, ShardToSplit=parent["ShardId"], NewStartingHashKey=str(middle))
        await wait_active(kinesis, name)
        await put_round(kinesis, name, 1)
        children = [s for s in (await kinesis.list_shards(StreamName=name))["Shards"]
                    if s.get("ParentShardId") == parent["ShardId"]]
        assert len(children) == 2
        await kinesis.merge_shards(StreamName=name, ShardToMerge=children[0]["ShardId"],
                                   AdjacentShardToMerge=children[1]["ShardId"])
        await wait_active(kinesis, name)
        await put_round(kinesis, name, 2)
        config = parse_config(config_text(tmp_path, mapping(arn, BatchSize=2)))
        async with running_config(config):
            await recorder.wait_for(lambda r: len(r.records) >= 3 * len(keys))
    for k in keys:
        assert [data_of(r) for r in recorder.records if r["kinesis"]["partitionKey"] == k] == [f"{k}-{n}" for n in range(3)]
    assert len({r["eventID"].split(":")[0] for r in recorder.records}) == 4  # parent, two children, merged


async def test_sigkill_and_restart_resume_from_the_checkpoint(tmp_path):
    """Issue 5.8: SIGKILL mid-batch, restart: processing resumes at the checkpoint, no record skipped."""
    import asyncio
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    record_file = tmp_path / "calls.jsonl"
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, [("k", f"r{i:02d}".encode()) for i in range(12)])
        path = tmp_path / "esm.yaml"
        path.write_text(config_text(tmp_path, mapping(arn, BatchSize=3),
                                    functions={"recorder": {"handler": "tests.support.recorder:file_handler"}}))

        def start(sleep: float) -> subprocess.Popen:
            env = dict(os.environ, ESM_TEST_RECORD_FILE=str(record_file), ESM_TEST_SLEEP=str(sleep))
            return subprocess.Popen([sys.executable, "-m", "esm", "run", "--config", str(path)], cwd=root, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def events():
            if not record_file.exists():
                return []
            return [json.loads(line) for line in record_file.read_text().splitlines() if line.strip()]

        first = start(sleep=1.0)
        try:
            for _ in range(300):
                if sum(e["phase"] == "end" for e in events()) >= 2:
                    break
                await asyncio.sleep(0.1)
            first.send_signal(signal.SIGKILL)
            first.wait(timeout=30)
        finally:
            if first.poll() is None:
                first.kill()
        before = len(events())
        config = parse_config(path.read_text())
        store = make_checkpoint_store(CheckpointSettings(sqlite=str(tmp_path / "checkpoints.db")), None)
        await store.open()
        shard = (await kinesis.list_shards(StreamName=name))["Shards"][0]["ShardId"]
        checkpoint = await store.get(config.mappings[0].uuid, shard)
        await store.close()
        second = start(sleep=0)
        try:
            for _ in range(300):
                bodies = {b for e in events() if e["phase"] == "start" for b in e["bodies"]}
                if len(bodies) == 12:
                    break
                await asyncio.sleep(0.1)
        finally:
            second.send_signal(signal.SIGTERM)
            second.wait(timeout=60)
    assert {b for e in events() if e["phase"] == "start" for b in e["bodies"]} == {f"r{i:02d}" for i in range(12)}
    assert checkpoint is not None, "two finished batches must have been checkpointed before the kill"
    sequences = [i for e in events() if e["phase"] == "start" for i in e["ids"]]
    resumed = [i for e in events()[before:] if e["phase"] == "start" for i in e["ids"]]
    # The restart reads exactly from the record after the checkpoint: nothing skipped, nothing before it again.
    assert resumed[0] == sorted(set(sequences), key=int)[[*sorted(set(sequences), key=int)].index(checkpoint.position) + 1]
    assert resumed == sorted(resumed, key=int)


async def test_tumbling_windows_carry_state_and_end_with_a_final_invoke(tmp_path):
    """behaviour §2 (tumbling window): windows aligned on arrival time; state carried between invokes; each window
    ends with a final invoke (no records, isFinalInvokeForWindow) holding the accumulated state."""
    from esm.engine.tumbling import window_of

    finals: list[dict] = []
    missing_state_once = {"done": False}

    def behaviour(event):
        if event["isFinalInvokeForWindow"]:
            finals.append(event)
            return {"state": event["state"]}
        if not missing_state_once["done"]:
            missing_state_once["done"] = True
            return {}  # no state: a failed invoke, retried (behaviour §2)
        state = dict(event["state"])
        state["count"] = state.get("count", 0) + len(event["Records"])
        return {"state": state}

    recorder = rec.install(rec.Recorder(behaviour))
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, [("k", f"w{i}".encode()) for i in range(5)])
        config = parse_config(config_text(tmp_path, mapping(arn, BatchSize=2, TumblingWindowInSeconds=2)))
        async with running_config(config):
            await recorder.wait_for(lambda r: len(r.records) >= 5)
            windows = {window_of(r["kinesis"]["approximateArrivalTimestamp"], 2) for r in recorder.records}
            await recorder.wait_for(lambda r: len(finals) >= len(windows), timeout=30)
    per_window: dict[str, int] = {}
    for record in {r["kinesis"]["sequenceNumber"]: r for r in recorder.records}.values():
        start = window_of(record["kinesis"]["approximateArrivalTimestamp"], 2).iso()["start"]
        per_window[start] = per_window.get(start, 0) + 1
    assert {f["window"]["start"]: f["state"]["count"] for f in finals} == per_window
    for final in finals:
        assert final["Records"] == [] and final["isWindowTerminatedEarly"] is False
        assert final["shardId"].startswith("shardId-") and final["eventSourceARN"] == arn
        assert final["window"]["end"] > final["window"]["start"]
    assert len(recorder.records) > 5, "the invoke without state must have been retried"


async def test_enhanced_fan_out_consumer_reads_in_order(tmp_path, caplog):
    """Issue 5.6 / behaviour §7: a stream consumer ARN reads through SubscribeToShard (pushed records), in order,
    including records put while subscribed; events name the stream, not the consumer."""
    import asyncio
    import logging

    caplog.set_level(logging.INFO, logger="esm.kinesis")

    recorder = rec.install(rec.Recorder())
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        consumer = (await kinesis.register_stream_consumer(StreamARN=arn, ConsumerName="esm"))["Consumer"]
        for _ in range(100):
            status = (await kinesis.describe_stream_consumer(ConsumerARN=consumer["ConsumerARN"]))
            if status["ConsumerDescription"]["ConsumerStatus"] == "ACTIVE":
                break
            await asyncio.sleep(0.05)
        await put(kinesis, name, [("k", f"e{i}".encode()) for i in range(5)])
        config = parse_config(config_text(tmp_path, mapping(consumer["ConsumerARN"], BatchSize=2)))
        async with running_config(config) as daemon:
            await recorder.wait_for(lambda r: len(r.records) >= 5)
            await put(kinesis, name, [("k", f"e{i}".encode()) for i in range(5, 8)])
            await recorder.wait_for(lambda r: len(r.records) >= 8)
            assert daemon.total("esm_polled_events_total") == 8
    assert [data_of(r) for r in recorder.records] == [f"e{i}" for i in range(8)]
    assert {r["eventSourceARN"] for r in recorder.records} == {arn}
    assert any("with SubscribeToShard (enhanced fan-out)" in m for m in caplog.messages)
    assert not any("with GetRecords" in m for m in caplog.messages)


async def test_at_timestamp_starts_at_the_given_time(tmp_path):
    """behaviour §1: StartingPosition AT_TIMESTAMP reads the records that arrived at or after StartingPositionTimestamp."""
    import asyncio
    import time

    recorder = rec.install(rec.Recorder())
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, [("k", b"before-1"), ("k", b"before-2")])
        await asyncio.sleep(1.5)
        cut = time.time()
        await asyncio.sleep(0.5)
        await put(kinesis, name, [("k", b"after-1"), ("k", b"after-2")])
        config = parse_config(config_text(tmp_path, mapping(arn, StartingPosition="AT_TIMESTAMP",
                                                            StartingPositionTimestamp=cut)))
        async with running_config(config):
            await recorder.wait_for(lambda r: len(r.records) >= 2)
            await asyncio.sleep(1)  # nothing older shows up late
    assert [data_of(r) for r in recorder.records] == ["after-1", "after-2"]


async def test_s3_destination_gets_document_with_payload_under_lambda_key_layout(tmp_path):
    """behaviour §4: an S3 on-failure destination stores the document plus the whole invocation payload under
    aws/lambda/<ESM-UUID>/<shardID>/YYYY/MM/DD/YYYY-MM-DDTHH.MM.SS-<uuid>."""
    import asyncio
    import os
    import re
    import uuid

    from aiobotocore.session import get_session

    def behaviour(event):
        raise RuntimeError("always")

    rec.install(rec.Recorder(behaviour))
    bucket = f"esm-failures-{uuid.uuid4().hex[:8]}"
    async with kinesis_client() as kinesis, get_session().create_client(
            "s3", region_name="us-east-1", endpoint_url=os.environ["ESM_AWS_ENDPOINT"],
            aws_access_key_id="test", aws_secret_access_key="test") as s3:
        await s3.create_bucket(Bucket=bucket)
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, [("k", b"lost-1"), ("k", b"lost-2")])
        config = parse_config(config_text(tmp_path, mapping(
            arn, MaximumRetryAttempts=0, DestinationConfig={"OnFailure": {"Destination": f"arn:aws:s3:::{bucket}"}})))
        async with running_config(config):
            for _ in range(100):
                listing = await s3.list_objects_v2(Bucket=bucket)
                if listing.get("KeyCount"):
                    break
                await asyncio.sleep(0.2)
        [entry] = listing["Contents"]
        uuid_ = config.mappings[0].uuid
        assert re.fullmatch(rf"aws/lambda/{uuid_}/shardId-\d+/\d{{4}}/\d{{2}}/\d{{2}}/"
                            r"\d{4}-\d{2}-\d{2}T\d{2}\.\d{2}\.\d{2}-[0-9a-f-]{36}", entry["Key"]), entry["Key"]
        body = await (await s3.get_object(Bucket=bucket, Key=entry["Key"]))["Body"].read()
    document = json.loads(body)
    assert document["KinesisBatchInfo"]["batchSize"] == 2
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    payload = json.loads(document["payload"])
    assert [data_of(r) for r in payload["Records"]] == ["lost-1", "lost-2"]


async def test_transform_rewrites_data_and_keeps_sequence_numbers(tmp_path):
    """behaviour §9.10: esm.transform applies JMESPath to the decoded Kinesis data before invoke."""
    recorder = rec.install(rec.Recorder())
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        sequences = await put(kinesis, name, [("k", json.dumps({"order": {"id": i}, "noise": "x"}).encode())
                                              for i in range(3)])
        config = parse_config(config_text(tmp_path, mapping(arn, esm={"transform": "data.order"})))
        async with running_config(config):
            await recorder.wait_for(lambda r: len(r.records) >= 3)
    assert [json.loads(data_of(r)) for r in recorder.records] == [{"id": 0}, {"id": 1}, {"id": 2}]
    assert [r["kinesis"]["sequenceNumber"] for r in recorder.records] == sequences


async def test_read_errors_are_counted_and_backed_off_without_crashing(tmp_path):
    """Issue 5.7: GetRecords failures (kinesis-mock does not throttle reads, so: the stream deleted under a
    running mapping) are counted in esm_polling_errors_total and retried with backoff; the daemon keeps running."""
    import asyncio

    recorder = rec.install(rec.Recorder())
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis)
        await put(kinesis, name, [("k", b"before")])
        async with running_config(parse_config(config_text(tmp_path, mapping(arn)))) as daemon:
            await recorder.wait_for(lambda r: r.records)
            await kinesis.delete_stream(StreamName=name)
            for _ in range(100):
                if daemon.total("esm_polling_errors_total") >= 2:
                    break
                await asyncio.sleep(0.1)
            errors = daemon.total("esm_polling_errors_total")
            await asyncio.sleep(1)
            assert not daemon.task.done(), "a read error must not stop the daemon"
            later = daemon.total("esm_polling_errors_total")
    assert errors >= 2
    assert later - errors < 20, "retries must back off, not spin"
