"""moto helpers for DynamoDB Streams tests: tables with a stream of a chosen view type, writes in order.

moto serves DynamoDB and DynamoDB Streams at one endpoint (AWS_ENDPOINT_URL_DYNAMODB). Its stream
has one shard that never closes; clients here make one attempt per call, since moto answers some
faults with a bare 500 that botocore's retries would only repeat.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any, AsyncIterator

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

REGION = "us-east-1"
ONE_ATTEMPT = AioConfig(retries={"max_attempts": 1})


@contextlib.asynccontextmanager
async def client(service: str) -> AsyncIterator[Any]:
    async with get_session().create_client(service, region_name=REGION, config=ONE_ATTEMPT,
                                           endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"],
                                           aws_access_key_id="test", aws_secret_access_key="test") as made:
        yield made


def dynamodb_client() -> Any:
    return client("dynamodb")


def streams_client() -> Any:
    return client("dynamodbstreams")


async def create_table(ddb: Any, view: str = "NEW_AND_OLD_IMAGES", *, sort_key: bool = False) -> tuple[str, str]:
    """A table keyed by `pk` (S) (and `sk` (N)) with a stream of `view`: (table name, stream ARN)."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    keys = [{"AttributeName": "pk", "KeyType": "HASH"}]
    attributes = [{"AttributeName": "pk", "AttributeType": "S"}]
    if sort_key:
        keys.append({"AttributeName": "sk", "KeyType": "RANGE"})
        attributes.append({"AttributeName": "sk", "AttributeType": "N"})
    table = await ddb.create_table(TableName=name, KeySchema=keys, AttributeDefinitions=attributes,
                                   BillingMode="PAY_PER_REQUEST",
                                   StreamSpecification={"StreamEnabled": True, "StreamViewType": view})
    return name, table["TableDescription"]["LatestStreamArn"]


async def put_items(ddb: Any, table: str, items: list[dict[str, Any]]) -> None:
    """PutItem each item (typed JSON) in turn, so the stream holds them in the list's order."""
    for item in items:
        await ddb.put_item(TableName=table, Item=item)


def item(pk: str, **attributes: str) -> dict[str, Any]:
    """An item keyed `pk` with string attributes."""
    return {"pk": {"S": pk}, **{name: {"S": value} for name, value in attributes.items()}}
