"""`esm replay` on the real backends (behaviour §4): an SQS mapping's DLQ moved back to its queue
(SQS's message move task on ElasticMQ, and receive-send-delete), and on-failure documents (esm's own,
in an ElasticMQ queue or a moto S3 prefix) whose Kinesis, DynamoDB Streams or Kafka records are read
again from kinesis-mock, moto or the Kafka broker and sent to the mapping's function in its event format. A dry run
changes nothing; a document whose records still fail or are gone stays where it was.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import subprocess
import sys
import uuid

import pytest
import yaml
from aiobotocore.session import get_session

from esm.aws import AwsClients
from esm.config.loading import parse_config
from esm.destinations.records import kafka_batch_failure_record, stream_failure_record
from esm.sources.sqs.replay import replay_dlq
from esm.replay.failures import replay_failures
from esm.replay.progress import Progress
from tests.support import kafka as kk
from tests.support.kafka import create_topic, kafka_admin, produce
from tests.support.dynamodb import create_table, dynamodb_client, item, put_items, streams_client
from tests.support.kinesis import create_stream, kinesis_client, put
from tests.support.recorder import Recorder, install
from tests.support.sqs import create_queue, queue_counts, receive_all, send, sqs_client

pytestmark = pytest.mark.usefixtures("backends")

RECORDER = {"recorder": {"handler": "tests.support.recorder:handle"}}


def config_with(mapping: dict, **extra):
    doc = {"functions": RECORDER, "event_source_mappings": [mapping], **extra}
    return parse_config(yaml.safe_dump(doc), base_dir=".")


def quiet() -> Progress:
    return Progress(io.StringIO())


# ---------------------------------------------------------------- SQS: the DLQ back to the queue


@pytest.mark.parametrize("move_task", [True, False], ids=["message-move-task", "receive-send-delete"])
async def test_dlq_messages_move_back_to_the_source_queue(move_task):
    """A dry run counts the DLQ's messages and moves none; --execute moves every one back to the
    source queue (bodies and attributes kept) and leaves the DLQ empty."""
    async with sqs_client() as sqs:
        dlq_url, dlq = await create_queue(sqs, "dlq")
        source_url, source = await create_queue(sqs, dlq_arn=dlq, max_receive=5)
        bodies = [json.dumps({"n": i}) for i in range(3)]
        await send(sqs, dlq_url, bodies, MessageAttributes={"kind": {"DataType": "String", "StringValue": "order"}})
        clients = AwsClients(parse_config(yaml.safe_dump({"functions": RECORDER, "event_source_mappings": [
            {"FunctionName": "recorder", "EventSourceArn": source}]})).aws)

        dry = await replay_dlq(clients, source, dlq=None, execute=False, rate=None, progress=quiet())
        assert dry.dry_run and dry.replayed == 3
        assert await queue_counts(sqs, dlq_url) == (3, 0) and await queue_counts(sqs, source_url) == (0, 0)

        done = await replay_dlq(clients, source, dlq=None, execute=True, rate=100, use_move_task=move_task,
                                progress=quiet())
        assert done.replayed == 3
        moved = (await sqs.receive_message(QueueUrl=source_url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           MessageAttributeNames=["All"]))["Messages"]
        assert sorted(m["Body"] for m in moved) == sorted(bodies)
        if not move_task:  # ours keeps the attributes; ElasticMQ's move task is its own business
            assert all(m["MessageAttributes"]["kind"]["StringValue"] == "order" for m in moved)
        assert await queue_counts(sqs, dlq_url) == (0, 0)


# ---------------------------------------------------------------- Kinesis from an SQS destination


async def kinesis_document(kinesis, items: list[bytes]) -> tuple[str, dict, list[str]]:
    stream, arn = await create_stream(kinesis)
    sequences = await put(kinesis, stream, [("k", data) for data in items])
    shard = (await kinesis.list_shards(StreamName=stream))["Shards"][0]["ShardId"]
    document = stream_failure_record(
        kind="kinesis", condition="RetryAttemptsExhausted", function_arn="arn:aws:lambda:us-east-1:000000000000:function:recorder",
        approximate_invoke_count=3, response=None, shard_id=shard, start_sequence_number=sequences[0],
        end_sequence_number=sequences[-1], first_arrival=0.0, last_arrival=0.0, batch_size=len(items), stream_arn=arn)
    return arn, document, sequences


async def test_kinesis_records_named_by_documents_in_a_queue_are_invoked_again():
    """The records of the document's shard and sequence range reach the function as a Kinesis event;
    the replayed document leaves the queue. A dry run invokes nothing and keeps the document."""
    recorder = install(Recorder())
    async with kinesis_client() as kinesis, sqs_client() as sqs:
        arn, document, sequences = await kinesis_document(kinesis, [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}'])
        destination_url, destination = await create_queue(sqs, "onfailure")
        await send(sqs, destination_url, [json.dumps(document)])
        config = config_with({"FunctionName": "recorder", "EventSourceArn": arn, "StartingPosition": "LATEST"})
        mapping = config.mappings[0]

        dry = await replay_failures(config, mapping, destination, execute=False, rate=None,
                                    clients=AwsClients(config.aws), progress=quiet())
        assert (dry.replayed, dry.documents_left, recorder.batches) == (3, 1, [])
        assert await queue_counts(sqs, destination_url) == (1, 0)

        done = await replay_failures(config, mapping, destination, execute=True, rate=None,
                                     clients=AwsClients(config.aws), progress=quiet())
        assert (done.replayed, done.still_failing, done.gone, done.documents_done) == (3, 0, 0, 1)
        [batch] = recorder.batches
        assert [r["kinesis"]["sequenceNumber"] for r in batch] == sequences
        assert [base64.b64decode(r["kinesis"]["data"]) for r in batch] == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
        assert all(r["eventSource"] == "aws:kinesis" and r["eventSourceARN"] == arn for r in batch)
        assert await queue_counts(sqs, destination_url) == (0, 0)


async def test_still_failing_and_gone_records_leave_their_documents_where_they_were():
    """A function that still fails: the document is visible in the queue again. A deleted stream:
    its records are counted as no longer in the source, the document stays too."""
    def fail(event):
        raise RuntimeError("still broken")

    install(Recorder(behaviour=fail))
    async with kinesis_client() as kinesis, sqs_client() as sqs:
        arn, failing, _ = await kinesis_document(kinesis, [b"a", b"b"])
        gone_arn, gone, _ = await kinesis_document(kinesis, [b"c"])
        gone["KinesisBatchInfo"]["streamArn"] = arn  # the same mapping's stream...
        gone["KinesisBatchInfo"]["shardId"] = "shardId-000000000099"  # ...on a shard it no longer has
        destination_url, destination = await create_queue(sqs, "onfailure")
        await send(sqs, destination_url, [json.dumps(failing), json.dumps(gone)])
        config = config_with({"FunctionName": "recorder", "EventSourceArn": arn, "StartingPosition": "LATEST"})
        summary = await replay_failures(config, config.mappings[0], destination, execute=True, rate=None,
                                        clients=AwsClients(config.aws), progress=quiet())
        assert (summary.replayed, summary.still_failing, summary.gone) == (0, 2, 1)
        assert summary.documents_left == 2 and summary.documents_done == 0
        left = await receive_all(sqs, destination_url)
        assert sorted(json.loads(m["Body"])["KinesisBatchInfo"]["shardId"] for m in left) == sorted(
            [failing["KinesisBatchInfo"]["shardId"], "shardId-000000000099"])


# ---------------------------------------------------------------- Kinesis from an S3 prefix


async def test_kinesis_documents_in_an_s3_prefix_are_replayed_and_removed():
    recorder = install(Recorder())
    endpoint = os.environ["ESM_AWS_ENDPOINT"]
    bucket = f"replay-{uuid.uuid4().hex[:8]}"
    async with kinesis_client() as kinesis, get_session().create_client(
            "s3", region_name="us-east-1", endpoint_url=endpoint, aws_access_key_id="test",
            aws_secret_access_key="test") as s3:
        arn, document, sequences = await kinesis_document(kinesis, [b"x", b"y"])
        await s3.create_bucket(Bucket=bucket)
        key = f"aws/lambda/mapping/{document['KinesisBatchInfo']['shardId']}/2026/01/01/doc-1"
        await s3.put_object(Bucket=bucket, Key=key, Body=json.dumps({**document, "payload": "{}"}).encode())
        config = config_with({"FunctionName": "recorder", "EventSourceArn": arn, "StartingPosition": "LATEST"},
                             aws={"endpoints": {"s3": endpoint}})
        summary = await replay_failures(config, config.mappings[0], f"s3://{bucket}/aws/lambda/", execute=True,
                                        rate=None, clients=AwsClients(config.aws), progress=quiet())
        assert (summary.replayed, summary.documents_done) == (2, 1)
        assert [r["kinesis"]["sequenceNumber"] for r in recorder.records] == sequences
        assert (await s3.list_objects_v2(Bucket=bucket)).get("KeyCount", 0) == 0


# ---------------------------------------------------------------- DynamoDB Streams from an SQS destination


async def test_dynamodb_records_named_by_documents_are_invoked_again():
    """The records of a DDBStreamBatchInfo's shard and sequence range (the 2nd to 4th of 5 writes)
    reach the function as a DynamoDB event, as the source hands them; the document leaves the
    queue. A range past what the stream holds is no longer in the source and its document stays."""
    recorder = install(Recorder())
    async with dynamodb_client() as ddb, streams_client() as streams, sqs_client() as sqs:
        table, arn = await create_table(ddb, "NEW_AND_OLD_IMAGES")
        await put_items(ddb, table, [item(f"k{i}", v=f"v{i}") for i in range(5)])
        shard = (await streams.describe_stream(StreamArn=arn))["StreamDescription"]["Shards"][0]["ShardId"]
        iterator = (await streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                                     ShardIteratorType="TRIM_HORIZON"))["ShardIterator"]
        sequences = [r["dynamodb"]["SequenceNumber"] for r in (await streams.get_records(ShardIterator=iterator))["Records"]]
        assert len(sequences) == 5

        def document(first: str, last: str, count: int) -> dict:
            return stream_failure_record(
                kind="dynamodb", condition="RetryAttemptsExhausted",
                function_arn="arn:aws:lambda:us-east-1:000000000000:function:recorder", approximate_invoke_count=3,
                response=None, shard_id=shard, start_sequence_number=first, end_sequence_number=last,
                first_arrival=0.0, last_arrival=0.0, batch_size=count, stream_arn=arn)

        named = document(sequences[1], sequences[3], 3)
        beyond = str(int(sequences[-1]) + 1000)
        gone = document(beyond, beyond, 1)
        destination_url, destination = await create_queue(sqs, "onfailure")
        await send(sqs, destination_url, [json.dumps(named), json.dumps(gone)])
        config = config_with({"FunctionName": "recorder", "EventSourceArn": arn, "StartingPosition": "LATEST"})

        dry = await replay_failures(config, config.mappings[0], destination, execute=False, rate=None,
                                    clients=AwsClients(config.aws), progress=quiet())
        assert (dry.replayed, dry.gone, dry.documents_left, recorder.batches) == (3, 1, 2, [])

        done = await replay_failures(config, config.mappings[0], destination, execute=True, rate=None,
                                     clients=AwsClients(config.aws), progress=quiet())
        assert (done.replayed, done.still_failing, done.gone) == (3, 0, 1)
        assert (done.documents_done, done.documents_left) == (1, 1)
        [batch] = recorder.batches
        assert [r["dynamodb"]["SequenceNumber"] for r in batch] == sequences[1:4]
        assert [r["dynamodb"]["NewImage"]["v"]["S"] for r in batch] == ["v1", "v2", "v3"]
        assert all(r["eventSource"] == "aws:dynamodb" and r["eventSourceARN"] == arn and r["eventName"] == "INSERT"
                   for r in batch)
        [left] = await receive_all(sqs, destination_url)
        assert json.loads(left["Body"])["DDBStreamBatchInfo"]["startSequenceNumber"] == beyond


# ---------------------------------------------------------------- Kafka


async def test_kafka_offsets_named_by_a_document_are_invoked_again():
    """Offsets 1..3 of the partition (of 5) reach the function as a Kafka event; a range past the
    partition's end is no longer in the source."""
    recorder = kk.install(kk.KafkaRecorder())
    install(recorder)
    async with kafka_admin() as admin, sqs_client() as sqs:
        topic = await create_topic(admin)
        await produce(topic, [kk.Message(value=f"v{i}".encode()) for i in range(5)])
        records = [{"topic": topic, "partition": 0, "offset": o, "timestamp": 0} for o in (1, 2, 3)]
        document = kafka_batch_failure_record(
            condition="RetryAttemptsExhausted", function_arn="arn:aws:lambda:us-east-1:000000000000:function:recorder",
            approximate_invoke_count=1, response=None, event_source_arn=None, bootstrap_servers=kk.bootstrap(),
            payload_size=0, records=records)
        beyond = kafka_batch_failure_record(
            condition="RetryAttemptsExhausted", function_arn="arn:aws:lambda:us-east-1:000000000000:function:recorder",
            approximate_invoke_count=1, response=None, event_source_arn=None, bootstrap_servers=kk.bootstrap(),
            payload_size=0, records=[{"topic": topic, "partition": 0, "offset": 40, "timestamp": 0}])
        destination_url, destination = await create_queue(sqs, "onfailure")
        await send(sqs, destination_url, [json.dumps(document), json.dumps(beyond)])
        mapping = kk.smk_mapping(topic)
        mapping["FunctionName"] = "recorder"
        config = config_with(mapping)
        summary = await replay_failures(config, config.mappings[0], destination, execute=True, rate=None,
                                        clients=AwsClients(config.aws), progress=quiet())
        assert (summary.replayed, summary.gone, summary.documents_done, summary.documents_left) == (3, 1, 1, 1)
        [event] = recorder.events
        assert event["eventSource"] == "SelfManagedKafka" and list(event["records"]) == [f"{topic}-0"]
        assert [(r["offset"], base64.b64decode(r["value"])) for r in event["records"][f"{topic}-0"]] == [
            (1, b"v1"), (2, b"v2"), (3, b"v3")]
        [left] = await receive_all(sqs, destination_url)
        assert "40" in left["Body"]


async def test_kafka_replay_reaches_the_cluster_with_the_mappings_sasl_and_tls_settings(backends):
    """The replay's consumer connects as the source does: SASL/SCRAM-SHA-512 over TLS on the broker's
    SASL_SSL listener, credentials and root CA from Secrets Manager (SourceAccessConfigurations); the
    event names that listener as its bootstrapServers."""
    sec = kk.security()
    recorder = kk.install(kk.KafkaRecorder())
    install(recorder)
    async with kafka_admin() as admin, sqs_client() as sqs:
        topic = await create_topic(admin)
        await produce(topic, [kk.Message(value=f"s{i}".encode()) for i in range(3)])  # over PLAINTEXT
        user = await kk.create_secret({"username": sec["KAFKA_SCRAM512_USERNAME"],
                                       "password": sec["KAFKA_SCRAM512_PASSWORD"]})
        ca = await kk.create_secret({"certificate": kk.read_pem(sec["KAFKA_CA_PEM"])})
        mapping = kk.smk_mapping(topic)
        mapping["FunctionName"] = "recorder"
        mapping["SelfManagedEventSource"]["Endpoints"]["KAFKA_BOOTSTRAP_SERVERS"] = [sec["KAFKA_SASL_SSL_BOOTSTRAP"]]
        mapping["SourceAccessConfigurations"] = [{"Type": "SASL_SCRAM_512_AUTH", "URI": user},
                                                 {"Type": "SERVER_ROOT_CA_CERTIFICATE", "URI": ca}]
        document = kafka_batch_failure_record(
            condition="RetryAttemptsExhausted", function_arn="arn:aws:lambda:us-east-1:000000000000:function:recorder",
            approximate_invoke_count=1, response=None, event_source_arn=None,
            bootstrap_servers=sec["KAFKA_SASL_SSL_BOOTSTRAP"], payload_size=0,
            records=[{"topic": topic, "partition": 0, "offset": o, "timestamp": 0} for o in (0, 1, 2)])
        destination_url, destination = await create_queue(sqs, "onfailure")
        await send(sqs, destination_url, [json.dumps(document)])
        config = config_with(mapping)
        summary = await replay_failures(config, config.mappings[0], destination, execute=True, rate=None,
                                        clients=AwsClients(config.aws), progress=quiet())
        assert (summary.replayed, summary.gone, summary.documents_done) == (3, 0, 1)
        [event] = recorder.events
        assert event["bootstrapServers"] == sec["KAFKA_SASL_SSL_BOOTSTRAP"]
        assert [base64.b64decode(r["value"]) for r in event["records"][f"{topic}-0"]] == [b"s0", b"s1", b"s2"]


# ---------------------------------------------------------------- the command


def test_esm_replay_is_a_dry_run_by_default_and_prints_the_summary(tmp_path):
    async def make() -> tuple[str, str]:
        async with sqs_client() as sqs:
            dlq_url, dlq = await create_queue(sqs, "dlq")
            _, source = await create_queue(sqs, dlq_arn=dlq, max_receive=5)
            await send(sqs, dlq_url, ["a", "b"])
            return source, dlq_url

    source, dlq_url = asyncio.run(make())
    path = tmp_path / "esm.yaml"
    path.write_text(yaml.safe_dump({"functions": RECORDER, "event_source_mappings": [
        {"FunctionName": "recorder", "EventSourceArn": source, "esm": {"name": "orders"}}]}))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
    run = subprocess.run([sys.executable, "-m", "esm", "replay", "--config", str(path), "--mapping", "orders", "--dlq"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert "would replay: 2" in run.stdout and "dry run" in run.stdout
    run = subprocess.run([sys.executable, "-m", "esm", "replay", "--config", str(path), "--mapping", "orders", "--dlq",
                          "--execute"], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert "replayed: 2" in run.stdout
