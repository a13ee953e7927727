"""Polling one shard with GetShardIterator and GetRecords: Kinesis and DynamoDB Streams alike.

`GetRecordsReader.read(shard)` returns the next raw records of a shard and whether the shard is
closed and fully read (no NextShardIterator). An idle shard is read every `idle_interval` seconds
(Lambda: about once a second for Kinesis, four times a second for DynamoDB Streams). An expired
iterator resumes after the last record read, never from the starting position; a position older
than the stream's retention (TrimmedDataAccessException) resumes at the oldest record left,
logged, since what was trimmed is gone. Other service errors are counted, logged and retried with
the one source backoff; the worker's stop cancels a wait. Where a shard starts is the source's
`start.iterator_args(shard)` (its own parameter names).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Mapping, Protocol

from botocore.exceptions import BotoCoreError, ClientError

from esm.core.backoff import SOURCE_BACKOFF
from esm.observability.events import Events
from esm.sources.shards import Shard

TRIMMED = "trimmed"  # `Shard.reader` when the next iterator must start at TRIM_HORIZON


class ShardStart(Protocol):
    def iterator_args(self, shard: Shard) -> dict[str, Any]: ...


class GetRecordsReader:
    def __init__(self, client: Any, stream: Mapping[str, str], start: ShardStart, events: Events,
                 log: logging.LoggerAdapter, *, limit: int, idle_interval: float):
        self.client = client
        self.stream = dict(stream)  # {"StreamName": ...} or {"StreamArn": ...}
        self.start = start
        self.events = events
        self.log = log
        self.limit = limit
        self.idle_interval = idle_interval

    async def _iterator(self, shard: Shard) -> str:
        args = {"ShardIteratorType": "TRIM_HORIZON"} if shard.reader == TRIMMED else self.start.iterator_args(shard)
        response = await self.client.get_shard_iterator(**self.stream, ShardId=shard.shard_id, **args)
        return response["ShardIterator"]

    async def read(self, shard: Shard) -> tuple[list[dict[str, Any]], bool]:
        attempt = 0
        while True:
            try:
                if shard.reader is None or shard.reader == TRIMMED:
                    self.log.info("reading %s with GetRecords", shard.shard_id)
                    shard.reader = await self._iterator(shard)
                response = await self.client.get_records(ShardIterator=shard.reader, Limit=self.limit)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code == "ExpiredIteratorException":  # resume after the last record read
                    self.log.info("iterator of %s expired; resuming after %s", shard.shard_id,
                                  shard.last_read or "the starting position")
                    shard.reader = None
                    continue
                if code == "TrimmedDataAccessException":
                    self.events.polling_failed(f"GetShardIterator on {shard.shard_id}",
                                               f"records after {shard.last_read} are past the stream's retention; "
                                               "resuming at the oldest record left")
                    shard.reader = TRIMMED
                    continue
                attempt += 1
                await self._failed(shard, code, attempt)
                continue
            except (BotoCoreError, OSError) as error:
                attempt += 1
                await self._failed(shard, error, attempt)
                continue
            records = response.get("Records") or []
            shard.reader = response.get("NextShardIterator")
            if shard.reader is None:
                return records, True
            if not records:
                await asyncio.sleep(self.idle_interval)
            return records, False

    async def _failed(self, shard: Shard, error: object, attempt: int) -> None:
        delay = SOURCE_BACKOFF.delay(attempt)
        self.events.polling_failed(f"GetRecords on {shard.shard_id}", error, delay)
        await asyncio.sleep(delay)

    async def close(self, shard: Shard) -> None:
        shard.reader = None
