"""Reading one DynamoDB stream shard: GetShardIterator and GetRecords (SPEC 1, 7).

`StreamStart` says where a shard's reading starts: after its checkpoint, else TRIM_HORIZON for a
child shard (its parents were read), else the mapping's StartingPosition (TRIM_HORIZON or LATEST;
DynamoDB offers no AT_TIMESTAMP). `ShardReader.read` returns the next raw records of a shard and
whether the shard is closed and fully read (no NextShardIterator). An idle shard is read four
times a second, as Lambda reads DynamoDB streams. An expired iterator (15 minutes on AWS) resumes
after the last record read; a checkpoint older than the stream's 24-hour retention
(TrimmedDataAccessException) resumes at the oldest record left, logged, since what was trimmed is
gone. Other service errors are counted, logged and retried with the one source backoff; the
worker's stop cancels a wait.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from esm.core.backoff import SOURCE_BACKOFF
from esm.observability.events import Events
from esm.sources.shards import Shard

IDLE_POLL_INTERVAL = 0.25  # Lambda polls each DynamoDB stream shard 4 times a second
GET_RECORDS_LIMIT = 1000  # DynamoDB Streams' GetRecords maximum


class StreamStart:
    def __init__(self, starting_position: str):
        self.starting_position = starting_position

    def iterator_args(self, shard: Shard) -> dict[str, Any]:
        if shard.last_read is not None:
            return {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": shard.last_read}
        if shard.child:
            return {"ShardIteratorType": "TRIM_HORIZON"}
        return {"ShardIteratorType": self.starting_position}


class ShardReader:
    def __init__(self, client: Any, stream_arn: str, start: StreamStart, events: Events, log: logging.LoggerAdapter):
        self.client = client
        self.stream_arn = stream_arn
        self.start = start
        self.events = events
        self.log = log

    async def _iterator(self, shard: Shard) -> str:
        args = self.start.iterator_args(shard)
        if shard.reader == TRIMMED:
            args = {"ShardIteratorType": "TRIM_HORIZON"}
        response = await self.client.get_shard_iterator(StreamArn=self.stream_arn, ShardId=shard.shard_id, **args)
        return response["ShardIterator"]

    async def read(self, shard: Shard) -> tuple[list[dict[str, Any]], bool]:
        attempt = 0
        while True:
            try:
                if shard.reader is None or shard.reader == TRIMMED:
                    self.log.info("reading %s with GetRecords", shard.shard_id)
                    shard.reader = await self._iterator(shard)
                response = await self.client.get_records(ShardIterator=shard.reader, Limit=GET_RECORDS_LIMIT)
            except ClientError as error:
                code = error.response.get("Error", {}).get("Code", "")
                if code == "ExpiredIteratorException":
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
                await asyncio.sleep(IDLE_POLL_INTERVAL)
            return records, False

    async def _failed(self, shard: Shard, error: object, attempt: int) -> None:
        delay = SOURCE_BACKOFF.delay(attempt)
        self.events.polling_failed(f"GetRecords on {shard.shard_id}", error, delay)
        await asyncio.sleep(delay)

    async def close(self, shard: Shard) -> None:
        shard.reader = None


TRIMMED = "trimmed"  # `Shard.reader` when the next iterator must start at TRIM_HORIZON
