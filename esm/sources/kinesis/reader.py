"""Reading one Kinesis shard: where it starts, and SubscribeToShard for enhanced fan-out (behaviour §7).

Polling with GetRecords is esm.sources.shard_reader's (shared with DynamoDB Streams), about once
a second while the shard is idle, as Lambda does. `SubscribedReader` returns the same thing
(the next raw records and whether the shard is closed and fully read) from SubscribeToShard: a
subscription ends (5 minutes on AWS) and is renewed after the last record seen. Service errors
are counted, logged and retried with the one backoff policy; the worker's stop cancels a wait.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from esm.core.backoff import SOURCE_BACKOFF
from esm.observability.events import Events
from esm.sources.shards import Shard

IDLE_POLL_INTERVAL = 1.0  # Lambda reads each shard about once a second when it is idle
GET_RECORDS_LIMIT = 10000


class ShardStart:
    """Where a shard's reading starts: after its checkpoint, else TRIM_HORIZON for a child, else
    the mapping's StartingPosition."""

    def __init__(self, starting_position: str, timestamp: Any):
        self.starting_position = starting_position
        self.timestamp = timestamp

    def iterator_args(self, shard: Shard) -> dict[str, Any]:
        if shard.last_read is not None:
            return {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": shard.last_read}
        if shard.child:
            return {"ShardIteratorType": "TRIM_HORIZON"}  # a child shard is read from its start
        args = {"ShardIteratorType": self.starting_position}
        if self.starting_position == "AT_TIMESTAMP":
            args["Timestamp"] = self.timestamp
        return args

    def subscription_position(self, shard: Shard) -> dict[str, Any]:
        args = self.iterator_args(shard)
        position = {"Type": args.pop("ShardIteratorType")}
        if "StartingSequenceNumber" in args:
            position["SequenceNumber"] = args["StartingSequenceNumber"]
        if "Timestamp" in args:
            position["Timestamp"] = args["Timestamp"]
        return position


class Subscription:
    def __init__(self, stream: Any):
        self.stream = stream
        self.events = stream.__aiter__()


class SubscribedReader:
    """Enhanced fan-out: SubscribeToShard pushes records to the consumer."""

    def __init__(self, client: Any, consumer_arn: str, start: ShardStart, events: Events, log: logging.LoggerAdapter):
        self.client = client
        self.consumer_arn = consumer_arn
        self.start = start
        self.events = events
        self.log = log

    async def read(self, shard: Shard) -> tuple[list[dict[str, Any]], bool]:
        attempt = 0
        while True:
            try:
                if shard.reader is None:
                    self.log.info("reading %s with SubscribeToShard (enhanced fan-out)", shard.shard_id)
                    response = await self.client.subscribe_to_shard(
                        ConsumerARN=self.consumer_arn, ShardId=shard.shard_id,
                        StartingPosition=self.start.subscription_position(shard))
                    shard.reader = Subscription(response["EventStream"])
                try:
                    event = await shard.reader.events.__anext__()
                except StopAsyncIteration:
                    await self.close(shard)  # the subscription ended: renew it after the last record seen
                    continue
            except (ClientError, BotoCoreError, OSError) as error:
                await self.close(shard)
                attempt += 1
                delay = SOURCE_BACKOFF.delay(attempt)
                self.events.polling_failed(f"SubscribeToShard on {shard.shard_id}", error, delay)
                await asyncio.sleep(delay)
                continue
            shard_event = event.get("SubscribeToShardEvent") or {}
            records = shard_event.get("Records") or []
            closed = "ContinuationSequenceNumber" in shard_event and shard_event["ContinuationSequenceNumber"] is None
            if shard_event.get("ChildShards") and not records:
                closed = True
            return records, closed

    async def close(self, shard: Shard) -> None:
        subscription, shard.reader = shard.reader, None
        if subscription is not None:
            subscription.stream.close()
