"""The three sources bench/scale runs replicas on: what each makes, the mapping the replicas share,
when its units are spread over the replicas, the positions that show a unit delivered, and a
steady feed.

- SQS (ElasticMQ): competing consumers, nothing to balance; a backlog per point (a queue is read
  once).
- Kafka: one 4-partition topic filled once; each point is a new consumer group from the start.
- Kinesis (kinesis-mock): one 4-shard stream filled once; each point a new lease table on moto
  (leases and checkpoints shared by the replicas, as several replicas must run them).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from typing import Any

from aiobotocore.session import get_session
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from bench.kafka.run import delete_topic, fill as kafka_fill, new_topic, servers

UNITS = 4
# timeout 1 s: a no-op, and the SQS queue's visibility (10 s) stays above 6 x the function timeout.
HANDLER = {"handler": "bench.scale.handlers:noop", "max_concurrency": 100, "timeout": 1}
PAYLOAD = json.dumps({"payload": "x" * 200})
SQS_VISIBILITY = 10  # seconds: how long a killed replica's in-flight messages stay hidden


def aws(service: str) -> Any:
    endpoint = {"sqs": os.environ["ESM_SQS_ENDPOINT"], "kinesis": os.environ["ESM_KINESIS_ENDPOINT"]}.get(
        service, os.environ["ESM_AWS_ENDPOINT"])
    return get_session().create_client(service, region_name="us-east-1", endpoint_url=endpoint,
                                       aws_access_key_id="test", aws_secret_access_key="test")


def config(mapping: dict[str, Any], table: str) -> dict[str, Any]:
    """The one config every replica runs (each gets its own metrics port)."""
    return {"functions": {"f": HANDLER}, "event_source_mappings": [{"FunctionName": "f", **mapping}],
            "checkpoints": {"dynamodb": {"table": table}}, "shutdown_timeout": 10, "startup_timeout": 60}


class Sqs:
    kind = "sqs"
    batch_size = 10
    concurrency = 10

    async def __aenter__(self) -> "Sqs":
        self.client = await aws("sqs").__aenter__()
        self.table = f"scale-{uuid.uuid4().hex[:8]}"
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.client.__aexit__(*exc)

    async def prepare(self, records: int) -> None:
        pass

    async def point(self, records: int, latest: bool = False) -> dict[str, Any]:
        name = f"scale-{uuid.uuid4().hex[:10]}"
        self.url = (await self.client.create_queue(
            QueueName=name, Attributes={"VisibilityTimeout": str(SQS_VISIBILITY)}))["QueueUrl"]
        senders = 8
        per = -(-records // senders)

        async def send(count: int) -> None:
            for start in range(0, count, 10):
                entries = [{"Id": str(i), "MessageBody": PAYLOAD} for i in range(min(10, count - start))]
                await self.client.send_message_batch(QueueUrl=self.url, Entries=entries)

        await asyncio.gather(*(send(min(per, records - s * per)) for s in range(senders) if records > s * per))
        return config({"EventSourceArn": f"arn:aws:sqs:us-east-1:000000000000:{name}", "BatchSize": self.batch_size,
                       "ScalingConfig": {"MaximumConcurrency": self.concurrency}}, self.table)

    async def balanced(self, replicas: int) -> bool:
        return True  # competing consumers: nothing is handed out

    async def counts(self) -> tuple[int, int]:
        a = (await self.client.get_queue_attributes(QueueUrl=self.url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]))["Attributes"]
        return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])

    async def feed(self, rate: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            count = max(1, int(rate / 10))
            for start in range(0, count, 10):
                await self.client.send_message_batch(QueueUrl=self.url, Entries=[
                    {"Id": str(i), "MessageBody": PAYLOAD} for i in range(min(10, count - start))])
            await asyncio.sleep(0.1)


class Kafka:
    kind = "kafka"
    batch_size = 100

    async def __aenter__(self) -> "Kafka":
        self.admin = AIOKafkaAdminClient(bootstrap_servers=servers())
        await self.admin.start()
        self.table = f"scale-{uuid.uuid4().hex[:8]}"
        self.topic = ""
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.admin.close()
        if self.topic:
            await delete_topic(self.topic)

    async def prepare(self, records: int) -> None:
        self.topic = await new_topic(UNITS)
        await kafka_fill(self.topic, records, UNITS)

    async def point(self, records: int, latest: bool = False) -> dict[str, Any]:
        self.group = f"scale-{uuid.uuid4().hex[:8]}"
        return config({
            "Topics": [self.topic], "StartingPosition": "LATEST" if latest else "TRIM_HORIZON",
            "BatchSize": self.batch_size, "MaximumBatchingWindowInSeconds": 0,
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": servers().split(",")}},
            "SourceAccessConfigurations": [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"},
                                           {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-1"}],
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": self.group}}, self.table)

    async def balanced(self, replicas: int) -> bool:
        """The group is Stable with one member per replica (4 partitions: each member holds one or more)."""
        try:
            response = (await self.admin.describe_consumer_groups([self.group]))[0]
        except Exception:  # noqa: BLE001 - the coordinator not known yet: not balanced
            return False
        group = response.to_object()["groups"][0]
        return group["state"] == "Stable" and len(group["members"]) == replicas

    async def positions(self) -> dict[str, int]:
        offsets = await self.admin.list_consumer_group_offsets(self.group)
        return {str(tp.partition): meta.offset for tp, meta in offsets.items() if tp.topic == self.topic}

    async def feed(self, rate: float, stop: asyncio.Event) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=servers(), linger_ms=5)
        await producer.start()
        try:
            n = 0
            while not stop.is_set():
                for _ in range(max(UNITS, int(rate / 10))):
                    await producer.send(self.topic, PAYLOAD.encode(), partition=n % UNITS)
                    n += 1
                await asyncio.sleep(0.1)
        finally:
            await producer.stop()


class Kinesis:
    kind = "kinesis"
    batch_size = 100

    async def __aenter__(self) -> "Kinesis":
        self.kinesis = await aws("kinesis").__aenter__()
        self.dynamodb = await aws("dynamodb").__aenter__()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.kinesis.__aexit__(*exc)
        await self.dynamodb.__aexit__(*exc)

    async def prepare(self, records: int) -> None:
        self.stream = f"scale-{uuid.uuid4().hex[:8]}"
        await self.kinesis.create_stream(StreamName=self.stream, ShardCount=UNITS)
        while (await self.kinesis.describe_stream_summary(StreamName=self.stream))[
                "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
            await asyncio.sleep(0.1)
        self.arn = f"arn:aws:kinesis:us-east-1:000000000000:stream/{self.stream}"
        shards = (await self.kinesis.list_shards(StreamName=self.stream))["Shards"]
        self.hash_keys = [s["HashKeyRange"]["StartingHashKey"] for s in shards]
        data = PAYLOAD.encode()

        async def put(start: int, end: int) -> None:
            for first in range(start, end, 500):
                await self.kinesis.put_records(StreamName=self.stream, Records=[
                    {"PartitionKey": "k", "ExplicitHashKey": self.hash_keys[i % UNITS], "Data": data}
                    for i in range(first, min(end, first + 500))])

        await put(0, records)  # one writer: kinesis-mock is shared, and several at once have felled it

    async def point(self, records: int, latest: bool = False) -> dict[str, Any]:
        self.table = f"scale-{uuid.uuid4().hex[:8]}"
        return config({"EventSourceArn": self.arn, "StartingPosition": "LATEST" if latest else "TRIM_HORIZON",
                       "BatchSize": self.batch_size, "MaximumBatchingWindowInSeconds": 0}, self.table)

    async def _items(self) -> list[dict[str, Any]]:
        try:
            return (await self.dynamodb.scan(TableName=self.table, ConsistentRead=True)).get("Items") or []
        except Exception:  # noqa: BLE001 - the table appears with the first replica
            return []

    async def balanced(self, replicas: int) -> bool:
        """Every shard leased, unexpired, by min(replicas, 4) owners holding 1 or 2 each."""
        now = time.time()
        held: dict[str, int] = {}
        for item in await self._items():
            owner = item.get("owner", {}).get("S", "")
            if "unit" in item and owner and float(item.get("expires_at", {}).get("N", "0")) > now:
                held[owner] = held.get(owner, 0) + 1
        return (sum(held.values()) == UNITS and len(held) == min(replicas, UNITS)
                and max(held.values()) - min(held.values()) <= 1)

    async def positions(self) -> dict[str, int]:
        found = {}
        for item in await self._items():
            position = item.get("checkpoint", {}).get("S", "")
            if "unit" in item and position.isdigit():
                found[item["unit"]["S"]] = int(position)
        return found

    async def feed(self, rate: float, stop: asyncio.Event) -> None:
        data = PAYLOAD.encode()
        n = 0
        while not stop.is_set():
            count = max(UNITS, int(rate / 10))
            await self.kinesis.put_records(StreamName=self.stream, Records=[
                {"PartitionKey": "k", "ExplicitHashKey": self.hash_keys[(n + i) % UNITS], "Data": data}
                for i in range(count)])
            n += count
            await asyncio.sleep(0.1)


SOURCES = {"sqs": Sqs, "kafka": Kafka, "kinesis": Kinesis}
