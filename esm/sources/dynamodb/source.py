"""The DynamoDB Streams source: a table's stream shards as units, read and checkpointed (behaviour §1-7).

Units are shards, discovered by DescribeStream (paged) and leased by the shared
`esm.sources.shards.ShardLeases` (lineage: a child starts after its parent ended; leases in the
checkpoint store let replicas share a stream), exactly as for Kinesis. `open` starts a shard after
its checkpoint (or StartingPosition; TRIM_HORIZON for a child), `fetch` reads it
(`esm.sources.dynamodb.reader`) and registers each record's sequence number in the shard's
offset tracker, `settle` finishes them and writes the contiguous position through the lease, and
`close_unit` writes the last checkpoint by stop reason (SHARD_END marks a drained closed shard
ended so its children can start; a lost lease writes nothing).

DynamoDB Streams has its own endpoint; when only DynamoDB's is configured (`aws.endpoints.dynamodb`
or AWS_ENDPOINT_URL_DYNAMODB: DynamoDB Local, moto and LocalStack serve streams there too), the
stream is read there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
from types import MappingProxyType
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from esm.arns import parse_arn
from esm.aws import AwsClients
from esm.config.pipeline import PipelineSettings
from esm.config.settings import MappingSettings
from esm.core.records import Record
from esm.errors import SourceUnavailable
from esm.identity import function_arn
from esm.observability.events import Events
from esm.observability.metrics import MappingMetrics
from esm.core.contract import IdentityLookup
from esm.sources.dynamodb.reader import GET_RECORDS_LIMIT, IDLE_POLL_INTERVAL, StreamStart
from esm.sources.dynamodb.descriptor import DESCRIPTOR
from esm.sources.dynamodb.records import DynamoDbFormat, dynamodb_record
from esm.sources.shard_reader import GetRecordsReader
from esm.sources.shards import ShardLeases, ShardSource
from esm.transform import transform_for

log = logging.getLogger("esm.dynamodb")

STREAMS_SERVICE = "dynamodbstreams"
DESCRIBE_LIMIT = 100  # DescribeStream's page size maximum


def streams_clients(clients: AwsClients) -> AwsClients:
    """`clients`, reading DynamoDB Streams at DynamoDB's endpoint when only that one is set."""
    settings = clients.settings
    if settings.endpoint_for(STREAMS_SERVICE) or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB_STREAMS"):
        return clients
    dynamodb = settings.endpoint_for("dynamodb") or os.environ.get("AWS_ENDPOINT_URL_DYNAMODB")
    if not dynamodb:
        return clients
    endpoints = MappingProxyType({**settings.endpoints, STREAMS_SERVICE: dynamodb})
    return AwsClients(dataclasses.replace(settings, endpoints=endpoints), clients.session)


class DynamoDbSource(ShardSource):

    def __init__(self, mapping: MappingSettings, settings: PipelineSettings, runtime: Any, metrics: MappingMetrics,
                 identity: IdentityLookup | None):
        self.mapping = mapping
        self.runtime = runtime
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        arn = parse_arn(mapping.source_id)
        assert arn is not None
        self.arn = arn
        self.account = arn.account
        self.stream_arn = mapping.source_id
        # The region records name (awsRegion) is the stream's; the client's comes from the config chain.
        self.region = arn.region or runtime.clients.region_for() or "us-east-1"
        self.format = DynamoDbFormat(
            stream_arn=self.stream_arn,
            function_arn=function_arn(mapping.function, arn.region or "us-east-1", arn.account),
            transform=transform_for(settings.transform, DESCRIPTOR.data) if settings.transform else None)
        self.start = StreamStart(mapping.get("StartingPosition"))
        self.events = Events(metrics, self.log)
        self.leases = ShardLeases(mapping_uuid=mapping.uuid, store=runtime.checkpoints, owner=runtime.owner,
                                  list_shards=self._list_shards, events=self.events, log=self.log)
        self._client: Any = None
        self._reader: GetRecordsReader | None = None
        self._stack = contextlib.AsyncExitStack()

    # -- lifecycle ---------------------------------------------------------------------------
    async def connect(self) -> None:
        if self._client is None:
            clients = streams_clients(self.runtime.clients)
            self._client = await self._stack.enter_async_context(clients.client(STREAMS_SERVICE, self.arn.region))
            self._reader = GetRecordsReader(self._client, {"StreamArn": self.stream_arn}, self.start, self.events,
                                            self.log, limit=GET_RECORDS_LIMIT, idle_interval=IDLE_POLL_INTERVAL)
        try:
            await self._client.describe_stream(StreamArn=self.stream_arn, Limit=1)
        except (ClientError, BotoCoreError, OSError) as error:
            raise SourceUnavailable(f"stream {self.stream_arn} is not reachable: {error}") from error

    # -- units ---------------------------------------------------------------------------------
    async def _list_shards(self) -> list[dict[str, Any]]:
        """Every shard of the stream with its parent, DescribeStream page by page."""
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamArn": self.stream_arn, "Limit": DESCRIBE_LIMIT}
        while True:
            description = (await self._client.describe_stream(**kwargs))["StreamDescription"]
            shards.extend(description.get("Shards") or [])
            last = description.get("LastEvaluatedShardId")
            if not last:
                return shards
            kwargs["ExclusiveStartShardId"] = last

    def build(self, unit: str, raw: list[dict[str, Any]]) -> list[Record]:
        return [dynamodb_record(r, self.stream_arn, self.region) for r in raw]
