"""Each test backend from scripts/backends answers, through the libraries esm itself uses.

One message in and out of every real service: ElasticMQ (SQS), kinesis-mock, Kafka, moto (S3)
and the Lambda Runtime Interface Emulator running tests/functions/programmable.py. The AWS
clients are built without an endpoint: they must find the backend through the exported
AWS_ENDPOINT_URL_<SERVICE> variables, exactly as esm's own clients will.
"""

from __future__ import annotations

import asyncio
import json
import uuid

import aiohttp
import pytest
from aiobotocore.session import get_session
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

pytestmark = pytest.mark.backends


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


async def test_sqs_elasticmq_round_trip(backends: dict[str, str]) -> None:
    """ElasticMQ: create a queue, its ARN is arn:aws:sqs:us-east-1:000000000000:<name>,
    a sent message is received with the same body and deleted."""
    name = unique("smoke")
    async with get_session().create_client("sqs") as sqs:
        assert sqs.meta.endpoint_url == backends["ESM_SQS_ENDPOINT"]
        url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
        attrs = await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        assert attrs["Attributes"]["QueueArn"] == f"arn:aws:sqs:us-east-1:000000000000:{name}"

        await sqs.send_message(QueueUrl=url, MessageBody="hello sqs")
        got = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=5)
        [message] = got["Messages"]
        assert message["Body"] == "hello sqs"
        await sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        await sqs.delete_queue(QueueUrl=url)


async def test_kinesis_mock_round_trip(backends: dict[str, str]) -> None:
    """kinesis-mock: create a one-shard stream, it becomes ACTIVE quickly, a record put on it
    is read back from TRIM_HORIZON with the same data and partition key."""
    name = unique("smoke")
    async with get_session().create_client("kinesis") as kinesis:
        assert kinesis.meta.endpoint_url == backends["ESM_KINESIS_ENDPOINT"]
        await kinesis.create_stream(StreamName=name, ShardCount=1)
        for _ in range(100):
            summary = await kinesis.describe_stream_summary(StreamName=name)
            if summary["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE":
                break
            await asyncio.sleep(0.05)
        else:
            pytest.fail(f"stream {name} never became ACTIVE")

        put = await kinesis.put_record(StreamName=name, Data=b"hello kinesis", PartitionKey="pk-1")
        iterator = (
            await kinesis.get_shard_iterator(
                StreamName=name, ShardId=put["ShardId"], ShardIteratorType="TRIM_HORIZON"
            )
        )["ShardIterator"]
        got = await kinesis.get_records(ShardIterator=iterator, Limit=10)
        [record] = got["Records"]
        assert record["Data"] == b"hello kinesis"
        assert record["PartitionKey"] == "pk-1"
        assert record["SequenceNumber"] == put["SequenceNumber"]
        await kinesis.delete_stream(StreamName=name)


async def test_kafka_round_trip(backends: dict[str, str]) -> None:
    """Kafka (KRaft): a record produced to a fresh, auto-created topic is consumed back by a
    consumer group, and the group can commit its offset (the offsets topic works)."""
    topic = unique("smoke")
    bootstrap = backends["KAFKA_BOOTSTRAP_SERVERS"]
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        meta = await producer.send_and_wait(topic, b"hello kafka", key=b"k1")
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=unique("smoke-group"),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    try:
        record = await asyncio.wait_for(consumer.getone(), timeout=30)
        assert (record.key, record.value) == (b"k1", b"hello kafka")
        assert (record.partition, record.offset) == (meta.partition, meta.offset)
        await consumer.commit()
    finally:
        await consumer.stop()


async def test_kafka_secured_listeners(backends: dict[str, str]) -> None:
    """Kafka's SASL and TLS listeners: each takes its own credentials (PLAIN user on SASL_PLAINTEXT, the
    SCRAM-SHA-256 and -512 users over SASL_SSL, TLS with the exported CA, mutual TLS with the exported client
    certificate) and refuses a client certificate's absence; PROXIED advertises KAFKA_PROXIED_BOOTSTRAP."""
    import os
    import ssl

    from aiokafka.errors import KafkaConnectionError

    from tests.support.kafka import security

    env = security()
    trusted = ssl.create_default_context(cafile=env["KAFKA_CA_PEM"])
    client = ssl.create_default_context(cafile=env["KAFKA_CA_PEM"])
    client.load_cert_chain(env["KAFKA_CLIENT_CERT_PEM"], env["KAFKA_CLIENT_KEY_PEM"])

    def sasl(mechanism: str, user: str) -> dict[str, str]:
        return {"sasl_mechanism": mechanism, "sasl_plain_username": env[f"{user}_USERNAME"],
                "sasl_plain_password": env[f"{user}_PASSWORD"]}

    ways = [
        dict(bootstrap_servers=env["KAFKA_SASL_BOOTSTRAP"], security_protocol="SASL_PLAINTEXT",
             **sasl("PLAIN", "KAFKA_SASL")),
        dict(bootstrap_servers=env["KAFKA_SASL_SSL_BOOTSTRAP"], security_protocol="SASL_SSL", ssl_context=trusted,
             **sasl("SCRAM-SHA-256", "KAFKA_SCRAM256")),
        dict(bootstrap_servers=env["KAFKA_SASL_SSL_BOOTSTRAP"], security_protocol="SASL_SSL", ssl_context=trusted,
             **sasl("SCRAM-SHA-512", "KAFKA_SCRAM512")),
        dict(bootstrap_servers=env["KAFKA_SSL_BOOTSTRAP"], security_protocol="SSL", ssl_context=trusted),
        dict(bootstrap_servers=env["KAFKA_MTLS_BOOTSTRAP"], security_protocol="SSL", ssl_context=client),
    ]
    topic = unique("smoke-secure")
    for options in ways:
        producer = AIOKafkaProducer(request_timeout_ms=15000, **options)
        await producer.start()
        try:
            await producer.send_and_wait(topic, b"secured")
        finally:
            await producer.stop()
    refused = AIOKafkaProducer(bootstrap_servers=env["KAFKA_MTLS_BOOTSTRAP"], security_protocol="SSL",
                               ssl_context=trusted, request_timeout_ms=5000)
    with pytest.raises(KafkaConnectionError):
        await refused.start()
    await refused.stop()
    proxied = AIOKafkaProducer(bootstrap_servers=os.environ["KAFKA_PROXIED_UPSTREAM"])
    await proxied.start()
    try:
        advertised = {f"{b.host}:{b.port}" for b in proxied.client.cluster.brokers()}
    finally:
        await proxied.stop()
    assert advertised == {os.environ["KAFKA_PROXIED_BOOTSTRAP"]}


async def test_moto_s3_round_trip(backends: dict[str, str]) -> None:
    """moto server (S3): an object put into a new bucket is read back with the same bytes;
    SNS, DynamoDB, Glue and Secrets Manager clients also resolve to moto from the environment."""
    session = get_session()
    for service in ("sns", "dynamodb", "glue", "secretsmanager"):
        async with session.create_client(service) as client:
            assert client.meta.endpoint_url == backends["ESM_AWS_ENDPOINT"], service
    bucket = unique("smoke")
    async with get_session().create_client("s3") as s3:
        assert s3.meta.endpoint_url == backends["ESM_AWS_ENDPOINT"]
        await s3.create_bucket(Bucket=bucket)
        await s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello s3")
        got = await s3.get_object(Bucket=bucket, Key="a/b.txt")
        async with got["Body"] as body:
            assert await body.read() == b"hello s3"


async def test_lambda_rie_invoke(backends: dict[str, str]) -> None:
    """Lambda RIE + awslambdaric: POSTing an SQS-shaped event to ESM_FUNCTION_URL runs
    programmable.handler, which answers {"ok": true, "records": 2}."""
    event = {"Records": [{"messageId": unique("m")}, {"messageId": unique("m")}]}
    async with aiohttp.ClientSession() as http:
        async with http.post(backends["ESM_FUNCTION_URL"], json=event) as resp:
            assert resp.status == 200
            assert await resp.json(content_type=None) == {"ok": True, "records": 2}


async def test_lambda_invoke_api_reaches_rie(backends: dict[str, str]) -> None:
    """AWS_ENDPOINT_URL_LAMBDA: the real Lambda Invoke API (FunctionName "function") reaches the
    RIE; a function error comes back as a 200 error body with no FunctionError field (RIE)."""
    async with get_session().create_client("lambda") as lam:
        assert lam.meta.endpoint_url == backends["AWS_ENDPOINT_URL_LAMBDA"]
        resp = await lam.invoke(FunctionName="function", Payload=b'{"Records": [{}]}')
        assert resp["StatusCode"] == 200
        assert json.loads(await resp["Payload"].read()) == {"ok": True, "records": 1}

        resp = await lam.invoke(FunctionName="function", Payload=b'{"esm_test": {"raise": "x"}}')
        assert resp["StatusCode"] == 200 and "FunctionError" not in resp
        assert json.loads(await resp["Payload"].read())["errorType"] == "RuntimeError"


async def test_lambda_rie_programmable_controls(backends: dict[str, str]) -> None:
    """The programmable function's esm_test controls, through the RIE: `return` gives the value
    back exactly; `raise` is a function error (HTTP 200, errorType RuntimeError in the body);
    `exit` crashes the runtime (HTTP 502, Runtime.ExitError) and the next invoke works again."""
    url = backends["ESM_FUNCTION_URL"]
    value = {"batchItemFailures": [{"itemIdentifier": "id-1"}]}
    async with aiohttp.ClientSession() as http:

        async def invoke(event: object) -> tuple[int, object]:
            async with http.post(url, json=event) as resp:
                return resp.status, await resp.json(content_type=None)

        assert await invoke({"esm_test": {"sleep": 0.01, "return": value}}) == (200, value)

        status, body = await invoke({"esm_test": {"raise": "boom"}})
        assert status == 200
        assert isinstance(body, dict)
        assert (body["errorType"], body["errorMessage"]) == ("RuntimeError", "boom")

        status, body = await invoke({"esm_test": {"exit": 3}})
        assert status == 502
        assert isinstance(body, dict) and body["errorType"] == "Runtime.ExitError"

        assert await invoke({"Records": []}) == (200, {"ok": True, "records": 0})
