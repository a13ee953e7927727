"""ElasticMQ helpers for tests: queues with unique names, sending, draining, counting."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
import uuid
from typing import Any, AsyncIterator

from aiobotocore.session import get_session

ACCOUNT = "000000000000"
REGION = "us-east-1"


@contextlib.asynccontextmanager
async def sqs_client() -> AsyncIterator[Any]:
    session = get_session()
    async with session.create_client("sqs", region_name=REGION, endpoint_url=os.environ["ESM_SQS_ENDPOINT"],
                                     aws_access_key_id="test", aws_secret_access_key="test") as client:
        yield client


def queue_arn(name: str) -> str:
    return f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


async def create_queue(client: Any, prefix: str = "q", *, fifo: bool = False, visibility: int = 30,
                       dlq_arn: str | None = None, max_receive: int = 2) -> tuple[str, str]:
    name = f"{prefix}-{uuid.uuid4().hex[:10]}" + (".fifo" if fifo else "")
    attributes = {"VisibilityTimeout": str(visibility)}
    if fifo:
        attributes |= {"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    if dlq_arn:
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)})
    url = (await client.create_queue(QueueName=name, Attributes=attributes))["QueueUrl"]
    return url, queue_arn(name)


async def send(client: Any, url: str, bodies: list[str], **extra: Any) -> list[str]:
    ids: list[str] = []
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": body, **extra}
                   for i, body in enumerate(bodies[start:start + 10])]
        response = await client.send_message_batch(QueueUrl=url, Entries=entries)
        assert not response.get("Failed"), response.get("Failed")
        ids.extend(e["MessageId"] for e in sorted(response["Successful"], key=lambda e: int(e["Id"])))
    return ids


async def queue_counts(client: Any, url: str) -> tuple[int, int]:
    """(visible, in flight)."""
    attributes = (await client.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]))
    a = attributes["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


async def wait_until_empty(client: Any, url: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while await queue_counts(client, url) != (0, 0):
        if time.monotonic() > deadline:
            raise AssertionError(f"queue not empty after {timeout}s: {await queue_counts(client, url)}")
        await asyncio.sleep(0.3)


async def receive_all(client: Any, url: str, wait: int = 1) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    while True:
        response = await client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
                                                MessageSystemAttributeNames=["All"])
        messages = response.get("Messages") or []
        if not messages:
            return out
        out.extend(messages)
