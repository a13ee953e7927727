"""The Kinesis source: a stream's shards as units, read and checkpointed (behaviour §1-7).

Units are shards, discovered and leased by `esm.sources.shards.ShardLeases` (lineage: children
start after their parents ended; leases in the checkpoint store let replicas share a stream).
`open` starts a shard after its checkpoint (or StartingPosition; TRIM_HORIZON for a child),
`fetch` reads it (`esm.sources.kinesis.reader`: GetRecords, or SubscribeToShard when
EventSourceArn names a stream consumer) and registers each record's sequence number in the
shard's offset tracker, `settle` finishes them and writes the contiguous position through the
lease, and `close_unit` writes the last checkpoint by stop reason (SHARD_END marks the shard
ended and releases it so its children can start; a lost lease writes nothing).
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from esm.arns import parse_arn
from esm.config.pipeline import PipelineSettings
from esm.config.settings import MappingSettings
from esm.core.records import Record
from esm.errors import SourceUnavailable
from esm.identity import function_arn
from esm.observability.events import Events
from esm.observability.metrics import MappingMetrics
from esm.core.contract import IdentityLookup
from esm.sources.kinesis.efo import tolerate_missing_initial_response
from esm.sources.kinesis.reader import GET_RECORDS_LIMIT, IDLE_POLL_INTERVAL, ShardStart, SubscribedReader
from esm.sources.kinesis.records import KinesisFormat, kinesis_record
from esm.sources.shard_reader import GetRecordsReader
from esm.sources.shards import ShardLeases, ShardSource
from esm.sources.kinesis.descriptor import DESCRIPTOR
from esm.transform import transform_for

log = logging.getLogger("esm.kinesis")


class KinesisSource(ShardSource):

    def __init__(self, mapping: MappingSettings, settings: PipelineSettings, runtime: Any, metrics: MappingMetrics,
                 identity: IdentityLookup | None):
        self.mapping = mapping
        self.runtime = runtime
        self.identity = identity
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        arn = parse_arn(mapping.source_id)
        assert arn is not None
        self.arn = arn
        self.account = arn.account
        self.stream_arn = mapping.source_id.split("/consumer/")[0]
        # Enhanced fan-out when EventSourceArn names a stream consumer (behaviour §7).
        self.consumer_arn = mapping.source_id if "/consumer/" in mapping.source_id else None
        self.stream_name = self.stream_arn.split(":stream/")[1]
        self.region = arn.region or runtime.clients.region_for() or "us-east-1"
        self.format = KinesisFormat(
            stream_arn=self.stream_arn, region=self.region,
            function_arn=function_arn(mapping.function, arn.region or "us-east-1", arn.account),
            transform=transform_for(settings.transform, DESCRIPTOR.data) if settings.transform else None)
        self.start = ShardStart(mapping.get("StartingPosition"), mapping.get("StartingPositionTimestamp"))
        self.events = Events(metrics, self.log)
        self.leases = ShardLeases(mapping_uuid=mapping.uuid, store=runtime.checkpoints, owner=runtime.owner,
                                  list_shards=self._list_shards, events=self.events, log=self.log)
        self._client: Any = None
        self._reader: Any = None
        self._stack = contextlib.AsyncExitStack()

    # -- lifecycle ---------------------------------------------------------------------------
    async def connect(self) -> None:
        if self.identity is not None and not self.format.identity_arn:
            self.format.identity_arn = await self.identity()
        if self._client is None:
            self._client = await self._stack.enter_async_context(self.runtime.clients.client("kinesis", self.arn.region))
            tolerate_missing_initial_response(self._client)
            if self.consumer_arn:
                self._reader = SubscribedReader(self._client, self.consumer_arn, self.start, self.events, self.log)
            else:
                self._reader = GetRecordsReader(self._client, {"StreamName": self.stream_name}, self.start,
                                                self.events, self.log, limit=GET_RECORDS_LIMIT,
                                                idle_interval=IDLE_POLL_INTERVAL)
        try:
            await self._client.describe_stream_summary(StreamName=self.stream_name)
        except (ClientError, BotoCoreError, OSError) as error:
            raise SourceUnavailable(f"stream {self.stream_arn} is not reachable: {error}") from error

    # -- units ---------------------------------------------------------------------------------
    async def _list_shards(self) -> list[dict[str, Any]]:
        shards: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"StreamName": self.stream_name}
        while True:
            response = await self._client.list_shards(**kwargs)
            shards.extend(response.get("Shards") or [])
            token = response.get("NextToken")
            if not token:
                return shards
            kwargs = {"NextToken": token}

    def build(self, unit: str, raw: list[dict[str, Any]]) -> list[Record]:
        identity = self.format.identity_arn
        return [kinesis_record(r, unit, self.stream_arn, self.region, identity) for r in raw]
