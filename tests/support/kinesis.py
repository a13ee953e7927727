"""kinesis-mock helpers for tests: streams with unique names, putting records, waiting for ACTIVE."""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from typing import Any, AsyncIterator

from aiobotocore.session import get_session

REGION, ACCOUNT = "us-east-1", "000000000000"


@contextlib.asynccontextmanager
async def kinesis_client() -> AsyncIterator[Any]:
    async with get_session().create_client("kinesis", region_name=REGION,
                                           endpoint_url=os.environ["ESM_KINESIS_ENDPOINT"],
                                           aws_access_key_id="test", aws_secret_access_key="test") as client:
        yield client


async def wait_active(client: Any, name: str) -> None:
    for _ in range(200):
        summary = (await client.describe_stream_summary(StreamName=name))["StreamDescriptionSummary"]
        if summary["StreamStatus"] == "ACTIVE":
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"stream {name} never became ACTIVE")


async def create_stream(client: Any, shards: int = 1) -> tuple[str, str]:
    name = f"s-{uuid.uuid4().hex[:10]}"
    await client.create_stream(StreamName=name, ShardCount=shards)
    await wait_active(client, name)
    return name, f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{name}"


async def put(client: Any, name: str, items: list[tuple[str, bytes]]) -> list[str]:
    """Put (partition key, data) pairs one at a time, so their order in a shard is the list's order."""
    sequences = []
    for key, data in items:
        response = await client.put_record(StreamName=name, PartitionKey=key, Data=data)
        sequences.append(response["SequenceNumber"])
    return sequences
