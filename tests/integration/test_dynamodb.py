"""The DynamoDB Streams source against moto (and ElasticMQ for destinations), one test per rule.

docs/behaviour.md DynamoDB columns of sections 1-6 (issue 14). The daemon runs in the test's loop with the
in-process recording handler; checkpoints live in a per-test SQLite file. moto serves one shard
per stream that never closes, so lineage is covered by tests/unit/test_dynamodb_lineage.py.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import yaml

from esm.config.loading import parse_config
from tests.support import recorder as rec
from tests.support.daemon import RECORDER, running_config
from tests.support.dynamodb import create_table, dynamodb_client, item, put_items
from tests.support.sqs import create_queue, receive_all, sqs_client

pytestmark = pytest.mark.usefixtures("backends")

# behaviour §2: a DynamoDB record's keys in order, and its `dynamodb` object's.
RECORD_KEYS = ["eventID", "eventName", "eventVersion", "eventSource", "awsRegion", "dynamodb", "eventSourceARN"]
IMAGES = {  # the images each view type carries, by event (AWS's StreamViewType)
    "KEYS_ONLY": {"INSERT": [], "MODIFY": [], "REMOVE": []},
    "NEW_IMAGE": {"INSERT": ["NewImage"], "MODIFY": ["NewImage"], "REMOVE": []},
    "OLD_IMAGE": {"INSERT": [], "MODIFY": ["OldImage"], "REMOVE": ["OldImage"]},
    "NEW_AND_OLD_IMAGES": {"INSERT": ["NewImage"], "MODIFY": ["NewImage", "OldImage"], "REMOVE": ["OldImage"]},
}


def config_text(tmp_path, *mappings, functions=None) -> str:
    doc = {"functions": functions or RECORDER, "event_source_mappings": list(mappings),
           "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 10, "startup_timeout": 30,
           "checkpoints": {"sqlite": str(tmp_path / "checkpoints.db")}}
    return yaml.safe_dump(doc, sort_keys=False)


def mapping(arn: str, **fields) -> dict:
    return {"FunctionName": "recorder", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON", **fields}


def pk(record: dict) -> str:
    return record["dynamodb"]["Keys"]["pk"]["S"]


def value(record: dict) -> str:
    return record["dynamodb"]["NewImage"]["v"]["S"]


@pytest.mark.parametrize("view", list(IMAGES))
async def test_insert_modify_remove_shapes_per_view_type(tmp_path, view):
    """behaviour §2: INSERT, MODIFY and REMOVE arrive as Lambda's DynamoDB records, key by key, with the
    images the stream's view type gives in DynamoDB's typed JSON (binary values base64)."""
    recorder = rec.install(rec.Recorder())
    async with dynamodb_client() as ddb:
        table, arn = await create_table(ddb, view)
        await ddb.put_item(TableName=table, Item={"pk": {"S": "a"}, "n": {"N": "1"}, "b": {"B": b"\x00\xff"}})
        await ddb.update_item(TableName=table, Key={"pk": {"S": "a"}}, UpdateExpression="SET n = :two",
                              ExpressionAttributeValues={":two": {"N": "2"}})
        await ddb.delete_item(TableName=table, Key={"pk": {"S": "a"}})
        async with running_config(parse_config(config_text(tmp_path, mapping(arn)))):
            await recorder.wait_for(lambda r: len(r.records) >= 3)
    region, account = arn.split(":")[3], arn.split(":")[4]
    assert [r["eventName"] for r in recorder.records] == ["INSERT", "MODIFY", "REMOVE"]
    for record in recorder.records:
        assert list(record) == RECORD_KEYS
        assert record["eventVersion"] == "1.1" and record["eventSource"] == "aws:dynamodb"
        assert record["awsRegion"] == region and record["eventSourceARN"] == arn and account in arn
        assert re.fullmatch(r"[0-9a-f]{32}", record["eventID"])
        stream = record["dynamodb"]
        images = IMAGES[view][record["eventName"]]
        assert list(stream) == ["ApproximateCreationDateTime", "Keys", *images, "SequenceNumber", "SizeBytes",
                                "StreamViewType"]
        assert isinstance(stream["ApproximateCreationDateTime"], int)
        assert stream["Keys"] == {"pk": {"S": "a"}}
        assert re.fullmatch(r"[0-9]+", stream["SequenceNumber"]) and isinstance(stream["SizeBytes"], int)
        assert stream["StreamViewType"] == view
    by_event = {r["eventName"]: r["dynamodb"] for r in recorder.records}
    first = {"pk": {"S": "a"}, "n": {"N": "1"}, "b": {"B": "AP8="}}  # base64 of b"\x00\xff"
    if "NewImage" in IMAGES[view]["INSERT"]:
        assert by_event["INSERT"]["NewImage"] == first
        assert by_event["MODIFY"]["NewImage"] == dict(first, n={"N": "2"})
    if "OldImage" in IMAGES[view]["MODIFY"]:
        assert by_event["MODIFY"]["OldImage"] == first
        assert by_event["REMOVE"]["OldImage"] == dict(first, n={"N": "2"})
    sequences = [int(r["dynamodb"]["SequenceNumber"]) for r in recorder.records]
    assert sequences == sorted(sequences)
    assert "invokeIdentityArn" not in recorder.records[0]  # recorded DynamoDB events carry none


async def test_filter_on_event_name_skips_other_changes(tmp_path):
    """behaviour §5 / behaviour §11: a pattern on `eventName` keeps only inserts; the rest is skipped and the
    checkpoint passes it (a restart sees nothing again)."""
    recorder = rec.install(rec.Recorder())
    async with dynamodb_client() as ddb:
        table, arn = await create_table(ddb)
        await put_items(ddb, table, [item("a", v="1"), item("a", v="2"), item("b", v="1")])
        await ddb.delete_item(TableName=table, Key={"pk": {"S": "a"}})
        await put_items(ddb, table, [item("c", v="1")])
        pattern = json.dumps({"eventName": ["INSERT"]})
        config = parse_config(config_text(tmp_path, mapping(arn, FilterCriteria={"Filters": [{"Pattern": pattern}]})))
        async with running_config(config) as daemon:
            await recorder.wait_for(lambda r: len(r.records) >= 3)
            await daemon.wait_total("esm_filtered_out_events_total", 2)
    assert [(r["eventName"], pk(r)) for r in recorder.records] == [("INSERT", "a"), ("INSERT", "b"), ("INSERT", "c")]


async def test_filter_on_a_new_image_attribute(tmp_path):
    """behaviour §11 / behaviour §5: `dynamodb.NewImage.<attr>.S` addresses the typed image as AWS documents."""
    recorder = rec.install(rec.Recorder())
    pattern = json.dumps({"dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}})
    async with dynamodb_client() as ddb:
        table, arn = await create_table(ddb)
        await put_items(ddb, table, [item("a", status="new", v="a"), item("b", status="paid", v="b"),
                                     item("c", status="paid", v="c"), item("d", v="d")])
        config = parse_config(config_text(tmp_path, mapping(arn, FilterCriteria={"Filters": [{"Pattern": pattern}]})))
        async with running_config(config) as daemon:
            await recorder.wait_for(lambda r: len(r.records) >= 2)
            await daemon.wait_total("esm_filtered_out_events_total", 2)
    assert [pk(r) for r in recorder.records] == ["b", "c"]


async def test_parallelization_keeps_per_item_order(tmp_path):
    """behaviour §7: with ParallelizationFactor > 1 batches run concurrently, and each item's changes
    (its Keys) arrive in stream order."""
    recorder = rec.install(rec.Recorder(delay=0.05))
    keys = [f"k{i}" for i in range(6)]
    async with dynamodb_client() as ddb:
        table, arn = await create_table(ddb)
        await put_items(ddb, table, [item(k, v=f"{n:02d}") for n in range(8) for k in keys])
        config = parse_config(config_text(tmp_path, mapping(arn, BatchSize=4, ParallelizationFactor=4)))
        async with running_config(config):
            await recorder.wait_for(lambda r: len(r.records) >= 48)
    for key in keys:
        assert [value(r) for r in recorder.records if pk(r) == key] == [f"{n:02d}" for n in range(8)]
    assert recorder.max_in_flight > 1  # lanes did run at once


async def test_bisect_isolates_a_poison_record_and_dead_letters_it_with_ddb_batch_info(tmp_path):
    """behaviour §4 / §9.2: bisect splits down to the poison record alone; after its retries it goes to
    the on-failure queue with DDBStreamBatchInfo (whole-second arrival times) and every other
    record is processed in order."""
    def behaviour(event):
        if any(pk(r) == "r4" for r in event["Records"]):
            raise RuntimeError("poison")
        return None

    recorder = rec.install(rec.Recorder(behaviour))
    async with dynamodb_client() as ddb, sqs_client() as sqs:
        dlq_url, dlq_arn = await create_queue(sqs, "ddbdlq")
        table, arn = await create_table(ddb)
        await put_items(ddb, table, [item(f"r{i}", v=str(i)) for i in range(10)])
        config = parse_config(config_text(tmp_path, mapping(
            arn, BatchSize=10, BisectBatchOnFunctionError=True, MaximumRetryAttempts=1,
            DestinationConfig={"OnFailure": {"Destination": dlq_arn}})))

        def succeeded(r):
            return [pk(x) for batch in r.batches if not any(pk(y) == "r4" for y in batch) for x in batch]

        async with running_config(config) as daemon:
            await recorder.wait_for(lambda r: "r9" in succeeded(r))
            messages = []
            for _ in range(60):
                messages += await receive_all(sqs, dlq_url)
                if messages:
                    break
            await daemon.wait_total("esm_on_failure_destination_delivered_events_total", 1)
    assert succeeded(recorder) == [f"r{i}" for i in range(10) if i != 4]
    alone = [b for b in recorder.batches if [pk(x) for x in b] == ["r4"]]
    assert len(alone) == 2  # isolated, then retried once
    poison = alone[0][0]
    [message] = messages
    document = json.loads(message["Body"])
    assert list(document) == ["requestContext", "responseContext", "version", "timestamp", "DDBStreamBatchInfo"]
    info = document["DDBStreamBatchInfo"]
    assert list(info) == ["shardId", "startSequenceNumber", "endSequenceNumber", "approximateArrivalOfFirstRecord",
                          "approximateArrivalOfLastRecord", "batchSize", "streamArn"]
    sequence = poison["dynamodb"]["SequenceNumber"]
    assert info["batchSize"] == 1 and info["startSequenceNumber"] == sequence == info["endSequenceNumber"]
    assert info["shardId"].startswith("shardId-") and info["streamArn"] == arn
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", info["approximateArrivalOfFirstRecord"])
    assert info["approximateArrivalOfFirstRecord"] == info["approximateArrivalOfLastRecord"]
    assert document["requestContext"]["condition"] == "RetryAttemptsExhausted"
    # behaviour §9.2: every invoke that held the poison record counts, the bisect steps included.
    held = [b for b in recorder.batches if any(pk(x) == "r4" for x in b)]
    assert document["requestContext"]["approximateInvokeCount"] == len(held) > 2
    assert document["responseContext"]["functionError"] == "Unhandled"


async def test_partial_batch_response_by_sequence_number(tmp_path):
    """behaviour §3: `dynamodb.SequenceNumber` names a failed record; the batch is retried from the lowest
    one reported, and the records before it are not sent again."""
    failed_once: set[str] = set()

    def behaviour(event):
        for record in event["Records"]:
            if pk(record) == "r3" and "r3" not in failed_once:
                failed_once.add("r3")
                return {"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]}
        return {"batchItemFailures": []}

    recorder = rec.install(rec.Recorder(behaviour))
    async with dynamodb_client() as ddb:
        table, arn = await create_table(ddb)
        await put_items(ddb, table, [item(f"r{i}", v=str(i)) for i in range(6)])
        config = parse_config(config_text(tmp_path, mapping(arn, BatchSize=6,
                                                            FunctionResponseTypes=["ReportBatchItemFailures"])))
        async with running_config(config):
            await recorder.wait_for(lambda r: len(r.batches) >= 2)
    assert [pk(r) for r in recorder.batches[0]] == [f"r{i}" for i in range(6)]
    assert [pk(r) for r in recorder.batches[1]] == ["r3", "r4", "r5"]


async def test_restart_resumes_after_the_checkpoint(tmp_path):
    """docs/design.md, issue 14: after a restart a mapping resumes after its checkpoint, not at its StartingPosition."""
    recorder = rec.install(rec.Recorder())
    async with dynamodb_client() as ddb:
        table, arn = await create_table(ddb)
        await put_items(ddb, table, [item(f"a{i}") for i in range(4)])
        config = parse_config(config_text(tmp_path, mapping(arn)))
        async with running_config(config):
            await recorder.wait_for(lambda r: len(r.records) >= 4)
        await put_items(ddb, table, [item(f"b{i}") for i in range(3)])
        second = rec.install(rec.Recorder())
        async with running_config(config):
            await second.wait_for(lambda r: len(r.records) >= 3)
            await asyncio.sleep(1.0)  # a few idle reads: nothing from before the checkpoint comes back
    assert [pk(r) for r in second.records] == ["b0", "b1", "b2"]


async def test_latest_reads_only_new_changes(tmp_path):
    """behaviour §1: StartingPosition LATEST reads only changes made after the mapping started."""
    recorder = rec.install(rec.Recorder())
    async with dynamodb_client() as ddb:
        table, arn = await create_table(ddb)
        await put_items(ddb, table, [item("old")])
        async with running_config(parse_config(config_text(tmp_path, mapping(arn, StartingPosition="LATEST")))):
            await asyncio.sleep(2.5)  # let the shard iterator be taken before the new change
            await put_items(ddb, table, [item("new")])
            await recorder.wait_for(lambda r: r.records)
    assert [pk(r) for r in recorder.records] == ["new"]
