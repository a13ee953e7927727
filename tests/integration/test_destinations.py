"""On-failure destinations against real services: SQS on ElasticMQ, SNS and S3 on moto (behaviour §4, §9.6).

Each test delivers a behaviour §4 document through `make_destination` and reads it back from the
service; the failure tests check that a delivery that did not land raises a retriable
DestinationError (so the caller keeps its checkpoint) and lands once the destination is back.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
import uuid
from typing import Any, AsyncIterator

import pytest
from aiobotocore.session import get_session

from esm.aws import AwsClients
from esm.config.settings import AwsSettings
from esm.destinations import make_destination
from esm.core.conditions import RETRY_ATTEMPTS_EXHAUSTED
from esm.destinations.records import (
    ResponseContext,
    stream_failure_record,
    with_payload,
)
from esm.destinations.sns import SNS_MAX_MESSAGE_BYTES
from esm.errors import DestinationError
from tests.support.sqs import create_queue, queue_arn, sqs_client

pytestmark = pytest.mark.usefixtures("backends")

MAPPING_UUID = "6f1b8f4e-3d0a-5c2e-9a51-2b7d4c1e0f11"
SHARD = "shardId-000000000003"
UUID_RE = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}"


def document(**overrides: Any) -> dict[str, Any]:
    fields = dict(
        kind="kinesis", condition=RETRY_ATTEMPTS_EXHAUSTED,
        function_arn="arn:aws:lambda:us-east-1:000000000000:function:orders", approximate_invoke_count=3,
        response=ResponseContext(), shard_id=SHARD, start_sequence_number="4960001",
        end_sequence_number="4960009", first_arrival=time.time() - 5, last_arrival=time.time() - 1, batch_size=9,
        stream_arn="arn:aws:kinesis:us-east-1:000000000000:stream/orders",
    )
    return stream_failure_record(**{**fields, **overrides})


def invocation_event() -> dict[str, Any]:
    return {"Records": [{"kinesis": {"sequenceNumber": str(4960001 + i), "data": "eyJuIjogMX0=",
                                     "partitionKey": f"p{i}"}, "eventSource": "aws:kinesis"} for i in range(9)]}


@contextlib.asynccontextmanager
async def moto(service: str) -> AsyncIterator[Any]:
    """A client on moto, whatever AWS_ENDPOINT_URL_<SERVICE> says (moto's SQS, for SNS deliveries)."""
    async with get_session().create_client(service, region_name="us-east-1",
                                           endpoint_url=os.environ["ESM_AWS_ENDPOINT"],
                                           aws_access_key_id="test", aws_secret_access_key="test") as client:
        yield client


@contextlib.asynccontextmanager
async def destination(target: str, clients: AwsClients | None = None) -> AsyncIterator[Any]:
    dest = make_destination(target, clients or AwsClients(AwsSettings()), mapping_uuid=MAPPING_UUID)
    try:
        yield dest
    finally:
        await dest.close()


async def receive(client: Any, url: str, count: int) -> list[dict[str, Any]]:
    """Receive `count` messages (long polls; gives up after a few empty ones)."""
    messages: list[dict[str, Any]] = []
    empty = 0
    while len(messages) < count and empty < 5:
        answer = await client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2)
        got = answer.get("Messages", [])
        empty = 0 if got else empty + 1
        messages.extend(got)
    return messages


# ---------------------------------------------------------------- SQS


async def test_sqs_destination_sends_the_document_as_the_body():
    """behaviour §4 Kinesis → SQS: one message per document, its body the document's JSON (metadata only)."""
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "dest")
        first, second = document(), document(batch_size=1)
        async with destination(arn) as dest:
            await dest.deliver(first, invocation_event=invocation_event(), shard_id=SHARD)
            client = dest._client
            await dest.deliver(second, invocation_event=invocation_event(), shard_id=SHARD)
            assert dest._client is client  # one client per destination, reused
        messages = await receive(sqs, url, 2)
        bodies = sorted((json.loads(m["Body"]) for m in messages), key=lambda b: b["KinesisBatchInfo"]["batchSize"])
        assert bodies == [second, first]
        assert list(bodies[1]) == list(first)
        assert all("payload" not in body for body in bodies)


async def test_sqs_destination_deleted_queue_raises_and_nothing_is_lost():
    """behaviour §9.6: delivery to a deleted queue raises a retriable DestinationError; after the queue is back it lands."""
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, "gone")
        doc = document()
        async with destination(arn) as dest:
            await dest.deliver(document(), invocation_event=None, shard_id=SHARD)  # resolves and caches the URL
            await sqs.delete_queue(QueueUrl=url)
            with pytest.raises(DestinationError) as caught:
                await dest.deliver(doc, invocation_event=None, shard_id=SHARD)
            assert caught.value.retriable is True
            assert "NonExistentQueue" in str(caught.value) or "QueueDoesNotExist" in str(caught.value)
            url = (await sqs.create_queue(QueueName=arn.rsplit(":", 1)[1]))["QueueUrl"]
            await dest.deliver(doc, invocation_event=None, shard_id=SHARD)  # the caller's retry
        messages = await receive(sqs, url, 1)
        assert [json.loads(m["Body"]) for m in messages] == [doc]


async def test_sqs_destination_missing_queue_raises():
    """behaviour §9.6: a queue that does not exist is a DestinationError naming the destination and the AWS error."""
    arn = queue_arn(f"never-{uuid.uuid4().hex[:8]}")
    async with destination(arn) as dest:
        with pytest.raises(DestinationError) as caught:
            await dest.deliver(document(), invocation_event=None, shard_id=SHARD)
    assert arn in str(caught.value) and "GetQueueUrl" in str(caught.value)


async def test_unreachable_endpoint_raises_retriable_destination_error():
    """behaviour §9.6: an endpoint that refuses connections is a retriable DestinationError, never a silent drop."""
    clients = AwsClients(AwsSettings(endpoints={"sqs": "http://127.0.0.1:1", "s3": "http://127.0.0.1:1"}))
    for target in (queue_arn("anything"), "arn:aws:s3:::anything"):
        async with destination(target, clients) as dest:
            with pytest.raises(DestinationError) as caught:
                await dest.deliver(document(), invocation_event=invocation_event(), shard_id=SHARD)
        assert caught.value.retriable is True
        assert "127.0.0.1:1" in str(caught.value)


# ---------------------------------------------------------------- SNS


async def sns_topic_with_queue(sns: Any, sqs: Any) -> tuple[str, str]:
    """A moto topic with a moto SQS queue subscribed to it: (topic ARN, queue URL)."""
    name = f"dest-{uuid.uuid4().hex[:10]}"
    topic = (await sns.create_topic(Name=name))["TopicArn"]
    url = (await sqs.create_queue(QueueName=name))["QueueUrl"]
    arn = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"]))["Attributes"]["QueueArn"]
    await sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    return topic, url


async def test_sns_destination_publishes_the_document():
    """behaviour §4 Kinesis → SNS: one notification per document, its Message the document's JSON."""
    async with moto("sns") as sns, moto("sqs") as sqs:
        topic, url = await sns_topic_with_queue(sns, sqs)
        doc = document()
        async with destination(topic) as dest:
            await dest.deliver(doc, invocation_event=invocation_event(), shard_id=SHARD)
        messages = await receive(sqs, url, 1)
        assert len(messages) == 1
        notification = json.loads(messages[0]["Body"])
        assert notification["TopicArn"] == topic
        assert json.loads(notification["Message"]) == doc


async def test_sns_destination_drops_payload_over_256_kb():
    """behaviour §4: SNS's 256 KB limit — a document over it is published without its payload."""
    async with moto("sns") as sns, moto("sqs") as sqs:
        topic, url = await sns_topic_with_queue(sns, sqs)
        doc = document()
        big = with_payload(doc, {"blob": "x" * SNS_MAX_MESSAGE_BYTES})
        async with destination(topic) as dest:
            await dest.deliver(big, invocation_event=None, shard_id=SHARD)
        messages = await receive(sqs, url, 1)
        assert [json.loads(json.loads(m["Body"])["Message"]) for m in messages] == [doc]


async def test_sns_destination_missing_topic_raises():
    """behaviour §9.6: publishing to a topic that does not exist raises a retriable DestinationError."""
    topic = f"arn:aws:sns:us-east-1:123456789012:missing-{uuid.uuid4().hex[:8]}"
    async with destination(topic) as dest:
        with pytest.raises(DestinationError) as caught:
            await dest.deliver(document(), invocation_event=None, shard_id=SHARD)
    assert caught.value.retriable is True and "Publish" in str(caught.value) and "NotFound" in str(caught.value)


# ---------------------------------------------------------------- S3


async def stored_objects(s3: Any, bucket: str) -> list[tuple[str, dict[str, Any], str]]:
    """(key, parsed body, content type) of every object in `bucket`."""
    listing = await s3.list_objects_v2(Bucket=bucket)
    objects = []
    for item in listing.get("Contents", []):
        got = await s3.get_object(Bucket=bucket, Key=item["Key"])
        async with got["Body"] as stream:
            body = json.loads(await stream.read())
        objects.append((item["Key"], body, got["ContentType"]))
    return objects


def expected_key_re(shard: str) -> re.Pattern[str]:
    return re.compile(
        rf"aws/lambda/{MAPPING_UUID}/{shard}/(\d{{4}})/(\d{{2}})/(\d{{2}})/"
        rf"(\d{{4}})-(\d{{2}})-(\d{{2}})T\d{{2}}\.\d{{2}}\.\d{{2}}-{UUID_RE}")


async def test_s3_destination_stores_document_with_payload_under_the_documented_key():
    """behaviour §4 S3: the document plus `payload` (the event as a JSON string) at aws/lambda/<UUID>/<shard>/…,
    keys in alphabetical order at every level and the key's time the document's own timestamp
    (behaviour §4 "Recorded against real AWS")."""
    bucket = f"dest-{uuid.uuid4().hex[:10]}"
    async with moto("s3") as s3:
        await s3.create_bucket(Bucket=bucket)
        # A document written at 2019-11-14T00:38:06.021Z: the key must say that instant, not now.
        doc, event = document(now=1573691886.021), invocation_event()
        async with destination(f"arn:aws:s3:::{bucket}") as dest:
            await dest.deliver(doc, invocation_event=event, shard_id=SHARD)
        [(key, body, content_type)] = await stored_objects(s3, bucket)
    match = expected_key_re(SHARD).fullmatch(key)
    assert match, key
    assert match.group(1, 2, 3) == match.group(4, 5, 6)  # the folder date is the file's date
    assert content_type == "application/json"
    assert list(body) == sorted([*doc, "payload"])
    for value in body.values():
        if isinstance(value, dict):
            assert list(value) == sorted(value)
    assert "/2019/11/14/2019-11-14T00.38.06-" in key
    assert isinstance(body["payload"], str) and json.loads(body["payload"]) == event
    assert {k: v for k, v in body.items() if k != "payload"} == doc


async def test_s3_destination_missing_bucket_raises_and_nothing_is_lost():
    """behaviour §9.6: a missing bucket raises a retriable DestinationError; once the bucket exists the retry lands."""
    bucket = f"late-{uuid.uuid4().hex[:10]}"
    doc, event = document(), invocation_event()
    async with moto("s3") as s3, destination(f"arn:aws:s3:::{bucket}") as dest:
        with pytest.raises(DestinationError) as caught:
            await dest.deliver(doc, invocation_event=event, shard_id=SHARD)
        assert caught.value.retriable is True and "NoSuchBucket" in str(caught.value)
        await s3.create_bucket(Bucket=bucket)
        await dest.deliver(doc, invocation_event=event, shard_id=SHARD)
        [(key, body, _)] = await stored_objects(s3, bucket)
    assert expected_key_re(SHARD).fullmatch(key)
    assert json.loads(body.pop("payload")) == event and body == doc
