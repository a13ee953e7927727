"""The SQS event source against ElasticMQ, one test per rule of docs/behaviour.md (SQS columns, sections 1-7, 9).

The daemon runs in the test's event loop with an in-process recording handler
(tests/support/recorder.py); the SIGTERM/SIGKILL tests run it as a real process.
"""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.support import recorder as rec
from tests.support.daemon import mapping_config, running
from tests.support.sqs import create_queue, queue_counts, receive_all, send, sqs_client, wait_until_empty

pytestmark = pytest.mark.usefixtures("backends")


def mapping(arn: str, **fields) -> dict:
    return {"FunctionName": "recorder", "EventSourceArn": arn, **fields}


def metric(daemon, name: str) -> float:
    return sum(s.value for family in daemon.metrics.registry.collect() for s in family.samples if s.name == name)


async def test_success_deletes_the_batch_and_counts_it():
    """behaviour §3: a successful invoke deletes its messages; Polled/Invoked/Deleted counts move (behaviour §6)."""
    recorder = rec.install(rec.Recorder())
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs)
        await send(sqs, url, [f"m{i}" for i in range(15)])
        async with running(mapping_config(mapping(arn))) as daemon:
            await recorder.wait_for(lambda r: len(r.records) >= 15)
            await wait_until_empty(sqs, url)
            assert sorted(recorder.bodies()) == sorted(f"m{i}" for i in range(15))
            assert all(len(batch) <= 10 for batch in recorder.batches)
            await daemon.wait_total("esm_polled_events_total", 15)
            await daemon.wait_total("esm_invoked_events_total", 15)
            await daemon.wait_total("esm_deleted_events_total", 15)
            state = daemon.value("esm_mapping_state", state="Enabled", mapping=daemon_mapping_uuid(daemon), source="sqs")
            assert state == 1


def daemon_mapping_uuid(daemon) -> str:
    for family in daemon.metrics.registry.collect():
        for sample in family.samples:
            if sample.name == "esm_mapping_info":
                return sample.labels["mapping"]
    raise AssertionError("no esm_mapping_info")


async def test_record_shape_reaches_the_function():
    """behaviour §2: the SQS record as Lambda builds it, with message attributes and the queue ARN."""
    recorder = rec.install(rec.Recorder())
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs)
        await send(sqs, url, ["shape"], MessageAttributes={"k": {"DataType": "String", "StringValue": "v"}})
        async with running(mapping_config(mapping(arn))):
            await recorder.wait_for(lambda r: r.records)
        record = recorder.records[0]
        assert record["body"] == "shape" and record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == arn and record["awsRegion"] == "us-east-1"
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert record["attributes"]["SentTimestamp"].isdigit()
        assert record["messageAttributes"]["k"] == {"stringValue": "v", "stringListValues": [],
                                                    "binaryListValues": [], "dataType": "String"}
        assert record["md5OfBody"] and record["receiptHandle"] and record["messageId"]


async def test_filter_deletes_non_matching_messages():
    """behaviour §3/§5: messages the filters reject are deleted, never invoked; FilteredOutEventCount counts them."""
    recorder = rec.install(rec.Recorder())
    pattern = json.dumps({"body": {"status": ["paid"]}})
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs)
        bodies = [json.dumps({"status": "paid", "n": i}) for i in range(4)]
        bodies += [json.dumps({"status": "open", "n": i}) for i in range(6)]
        await send(sqs, url, bodies)
        config = mapping_config(mapping(arn, FilterCriteria={"Filters": [{"Pattern": pattern}]}))
        async with running(config) as daemon:
            await wait_until_empty(sqs, url)
            await recorder.wait_for(lambda r: len(r.records) >= 4)
            assert sorted(json.loads(b)["n"] for b in recorder.bodies()) == [0, 1, 2, 3]
            await daemon.wait_total("esm_filtered_out_events_total", 6)
            await daemon.wait_total("esm_polled_events_total", 10)


async def test_plain_text_body_against_json_filter_is_dropped():
    """behaviour §5: a plain-text body against a JSON body pattern does not match, so it is deleted."""
    recorder = rec.install(rec.Recorder())
    pattern = json.dumps({"body": {"status": ["paid"]}})
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs)
        await send(sqs, url, ["status paid", json.dumps({"status": "paid"})])
        config = mapping_config(mapping(arn, FilterCriteria={"Filters": [{"Pattern": pattern}]}))
        async with running(config) as daemon:
            await wait_until_empty(sqs, url)
            await recorder.wait_for(lambda r: len(r.records) >= 1)
            assert recorder.bodies() == [json.dumps({"status": "paid"})]
            await daemon.wait_total("esm_filtered_out_events_total", 1)


async def test_partial_batch_response_keeps_only_the_failed_message():
    """behaviour §3: with ReportBatchItemFailures, listed messages return after the visibility timeout, the rest are deleted."""
    failed_once: set[str] = set()

    def behaviour(event):
        failures = []
        for record in event["Records"]:
            if record["body"] == "bad" and record["messageId"] not in failed_once:
                failed_once.add(record["messageId"])
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    recorder = rec.install(rec.Recorder(behaviour))
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, visibility=1)
        await send(sqs, url, ["good1", "bad", "good2"])
        config = mapping_config(mapping(arn, FunctionResponseTypes=["ReportBatchItemFailures"]))
        async with running(config) as daemon:
            await recorder.wait_for(lambda r: r.bodies().count("bad") >= 2)
            await wait_until_empty(sqs, url)
            assert recorder.bodies().count("good1") == 1 and recorder.bodies().count("good2") == 1
            retried = [r for r in recorder.records if r["body"] == "bad"]
            assert [r["attributes"]["ApproximateReceiveCount"] for r in retried] == ["1", "2"]
            await daemon.wait_total("esm_failed_invoke_events_total", 1)


@pytest.mark.parametrize("response", [
    {"batchItemFailures": [{"itemIdentifier": ""}]},
    {"batchItemFailures": [{"itemIdentifier": None}]},
    {"batchItemFailures": [{"id": "x"}]},
    {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
])
async def test_invalid_partial_batch_response_fails_the_whole_batch(response):
    """behaviour §3: an empty, null, wrongly-keyed or unknown itemIdentifier fails the whole batch (all redelivered)."""
    calls = {"n": 0}

    def behaviour(event):
        calls["n"] += 1
        return response if calls["n"] == 1 else None

    recorder = rec.install(rec.Recorder(behaviour))
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, visibility=1)
        await send(sqs, url, ["a", "b"])
        config = mapping_config(mapping(arn, FunctionResponseTypes=["ReportBatchItemFailures"],
                                        ScalingConfig={"MaximumConcurrency": 2}))
        async with running(config):
            await recorder.wait_for(lambda r: sorted(r.bodies()).count("a") >= 2 and r.bodies().count("b") >= 2)
            await wait_until_empty(sqs, url)


@pytest.mark.parametrize("response", [None, {}, {"batchItemFailures": []}, {"batchItemFailures": None}])
async def test_empty_partial_batch_response_is_success(response):
    """behaviour §3: a null or empty response, or an empty/null batchItemFailures, deletes the whole batch."""
    recorder = rec.install(rec.Recorder(lambda event: response))
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, visibility=2)
        await send(sqs, url, ["x", "y"])
        config = mapping_config(mapping(arn, FunctionResponseTypes=["ReportBatchItemFailures"]))
        async with running(config) as daemon:
            await wait_until_empty(sqs, url)
            assert sorted(recorder.bodies()) == ["x", "y"]
            await daemon.wait_total("esm_deleted_events_total", 2)


async def test_function_error_returns_messages_and_redrive_moves_them_to_the_dlq():
    """behaviour §3: a function error deletes nothing; after maxReceiveCount SQS moves the message to its DLQ."""
    def behaviour(event):
        raise RuntimeError("always fails")

    recorder = rec.install(rec.Recorder(behaviour))
    async with sqs_client() as sqs:
        dlq_url, dlq_arn = await create_queue(sqs, "dlq")
        url, arn = await create_queue(sqs, visibility=1, dlq_arn=dlq_arn, max_receive=2)
        await send(sqs, url, ["poison"])
        async with running(mapping_config(mapping(arn))) as daemon:
            await recorder.wait_for(lambda r: len(r.records) >= 2)
            await wait_until_empty(sqs, url, timeout=30)
            assert metric(daemon, "esm_failed_invoke_events_total") >= 2
            await daemon.wait_total("esm_deleted_events_total", 0)
        moved = await receive_all(sqs, dlq_url)
        assert [m["Body"] for m in moved] == ["poison"]
        assert [r["attributes"]["ApproximateReceiveCount"] for r in recorder.records[:2]] == ["1", "2"]


async def test_batching_window_collects_more_than_ten():
    """behaviour §1/§3: BatchSize > 10 with a window: repeated receives fill one batch beyond 10 messages."""
    recorder = rec.install(rec.Recorder())
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs)
        await send(sqs, url, [f"w{i}" for i in range(30)])
        config = mapping_config(mapping(arn, BatchSize=50, MaximumBatchingWindowInSeconds=3,
                                        ScalingConfig={"MaximumConcurrency": 2}))
        async with running(config):
            await recorder.wait_for(lambda r: len(r.records) >= 30)
            await wait_until_empty(sqs, url)
        assert max(len(b) for b in recorder.batches) > 10
        assert sorted(recorder.bodies()) == sorted(f"w{i}" for i in range(30))


async def test_six_megabyte_cut():
    """behaviour §3: a batch is cut before its payload passes 6 MB (Lambda's invoke limit); nothing is lost."""
    recorder = rec.install(rec.Recorder())
    body = "x" * 250_000
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs)
        for i in range(40):  # SendMessageBatch caps a whole batch at 256 KB: one at a time
            await sqs.send_message(QueueUrl=url, MessageBody=f"{i:03d}{body}")
        config = mapping_config(mapping(arn, BatchSize=100, MaximumBatchingWindowInSeconds=5,
                                        ScalingConfig={"MaximumConcurrency": 2}))
        async with running(config):
            await recorder.wait_for(lambda r: len(r.records) >= 40, timeout=90)
            await wait_until_empty(sqs, url)
        sizes = [len(json.dumps({"Records": b}, separators=(",", ":"))) for b in recorder.batches]
        assert max(sizes) <= 6 * 1024 * 1024
        assert max(len(b) for b in recorder.batches) > 10  # the window did collect; the cap cut it
        assert sorted(r["body"][:3] for r in recorder.records) == [f"{i:03d}" for i in range(40)]


async def test_fifo_order_per_group_groups_in_parallel_and_cap():
    """behaviour §3/§7: FIFO order per MessageGroupId; groups in parallel, a group never with itself; MaximumConcurrency caps."""
    recorder = rec.install(rec.Recorder(delay=0.2))
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, fifo=True)
        for group in ("g1", "g2", "g3", "g4"):
            for i in range(12):
                await sqs.send_message(QueueUrl=url, MessageBody=f"{group}-{i:02d}", MessageGroupId=group)
        config = mapping_config(mapping(arn, BatchSize=3, ScalingConfig={"MaximumConcurrency": 3}))
        async with running(config):
            await recorder.wait_for(lambda r: len(r.records) >= 48, timeout=90)
            await wait_until_empty(sqs, url)
    for group in ("g1", "g2", "g3", "g4"):
        seen = [r["body"] for r in recorder.records if r["attributes"]["MessageGroupId"] == group]
        assert seen == [f"{group}-{i:02d}" for i in range(12)]
    assert recorder.max_per_group == 1
    assert 1 < recorder.max_in_flight <= 3


async def test_fifo_failure_keeps_the_rest_of_the_group():
    """behaviour §3 FIFO: after a reported failure, later messages of the same group are not deleted (order holds)."""
    attempts: dict[str, int] = {}

    def behaviour(event):
        # A careless function: reports only g-1 failed the first time, although g-2 came after it.
        for record in event["Records"]:
            attempts[record["body"]] = attempts.get(record["body"], 0) + 1
        bad = [r for r in event["Records"] if r["body"] == "g-1" and attempts["g-1"] == 1]
        return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in bad]}

    recorder = rec.install(rec.Recorder(behaviour))
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, fifo=True, visibility=1)
        for i in range(3):
            await sqs.send_message(QueueUrl=url, MessageBody=f"g-{i}", MessageGroupId="g")
        config = mapping_config(mapping(arn, FunctionResponseTypes=["ReportBatchItemFailures"]))
        async with running(config):
            await recorder.wait_for(lambda r: r.bodies().count("g-2") >= 2, timeout=30)
            await wait_until_empty(sqs, url)
    bodies = recorder.bodies()
    assert bodies[:3] == ["g-0", "g-1", "g-2"]
    assert bodies[3:] == ["g-1", "g-2"]


async def test_transform_replaces_the_body():
    """behaviour §9.10: esm.transform applies JMESPath to the decoded body; messageId stays for partial responses."""
    recorder = rec.install(rec.Recorder())
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs)
        await send(sqs, url, [json.dumps({"order": {"id": 7}, "noise": "x" * 10})])
        async with running(mapping_config(mapping(arn, esm={"transform": "body.order"}))):
            await recorder.wait_for(lambda r: r.records)
            await wait_until_empty(sqs, url)
    assert json.loads(recorder.records[0]["body"]) == {"id": 7}
    assert recorder.records[0]["messageId"]


async def test_disabled_mapping_does_not_poll():
    """behaviour §0: Enabled: false pauses polling; the state gauge says Disabled."""
    recorder = rec.install(rec.Recorder())
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs)
        await send(sqs, url, ["stay"])
        async with running(mapping_config(mapping(arn, Enabled=False))) as daemon:
            await asyncio.sleep(1.5)
            assert not daemon.task.done(), "a disabled mapping must not stop the daemon"
            await daemon.wait_total("esm_polled_events_total", 0)
            assert daemon.value("esm_mapping_state", state="Disabled", mapping=daemon_mapping_uuid(daemon),
                                source="sqs") == 1
        assert await queue_counts(sqs, url) == (1, 0)
        assert recorder.records == []


async def test_end_to_end_through_the_emulator(backends):
    """behaviour §9.1 / docs/design.md: a url target running the Lambda Runtime Interface Emulator processes a queue."""
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs)
        await send(sqs, url, [f"e{i}" for i in range(12)])
        functions = {"rie": {"url": backends["ESM_FUNCTION_URL"], "timeout": 10}}
        config = mapping_config({"FunctionName": "rie", "EventSourceArn": arn}, functions=functions)
        async with running(config) as daemon:
            await wait_until_empty(sqs, url)
            await daemon.wait_total("esm_invoked_events_total", 12)
            await daemon.wait_total("esm_deleted_events_total", 12)
            await daemon.wait_total("esm_failed_invoke_events_total", 0)
