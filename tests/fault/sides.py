"""One adapter per source for the fault scenarios: make the source (queue, stream, topic) and its
on-failure destination, produce records into it and into the ledger, say what the mapping is,
watch its checkpoints or commits, read back dead letters, and tell when the source is drained.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from typing import Any, AsyncIterator, Awaitable, Callable

from tests.fault.harness import (
    Proxies,
    dynamodb_checkpoints,
    kafka_commits,
    read_dead_letters,
    read_s3_dead_letters,
    sqlite_checkpoints,
)
from tests.support.kafka import NO_AUTH
from tests.support import rabbitmq as rmq
from tests.support.ledger import Ledger, payload
from tests.support.toxiproxy import Proxy, Toxiproxy
from tests.support.sqs import create_queue, queue_counts, send, sqs_client


def ids_and_keys(count: int, keys: int, prefix: str = "r") -> list[tuple[str, str]]:
    """`count` records spread round-robin over `keys` keys: r0000/k0, r0001/k1, ..."""
    return [(f"{prefix}{n:04d}", f"k{n % keys}") for n in range(count)]


class SqsSide:
    """A standard or FIFO queue; failures go to the queue's redrive DLQ (SQS has no on-failure
    destination: behaviour §1), when `max_receive` is set."""

    source = "sqs"

    def __init__(self, *, fifo: bool = False, visibility: int = 5, max_receive: int | None = None):
        self.fifo, self.visibility, self.max_receive = fifo, visibility, max_receive
        self.ordered = fifo
        self.sqs: Any = None
        self.url = self.arn = self.dlq_url = ""

    @contextlib.asynccontextmanager
    async def made(self) -> AsyncIterator["SqsSide"]:
        async with sqs_client() as sqs:
            self.sqs = sqs
            dlq_arn = None
            if self.max_receive:
                self.dlq_url, dlq_arn = await create_queue(sqs, "fault-dlq", fifo=self.fifo)
            self.url, self.arn = await create_queue(sqs, "fault", fifo=self.fifo, visibility=self.visibility,
                                                    dlq_arn=dlq_arn, max_receive=self.max_receive or 2)
            yield self

    def mapping(self, proxied: Proxies, **fields: Any) -> dict[str, Any]:
        return {"EventSourceArn": self.arn, "BatchSize": 10, **fields}

    async def produce(self, ledger: Ledger, records: list[tuple[str, str]]) -> None:
        for record_id, key in records:
            ledger.produce(record_id, key)
        if self.fifo:
            for start in range(0, len(records), 10):  # one group per key, sent in order
                chunk = records[start:start + 10]
                entries = [{"Id": str(i), "MessageBody": payload(r, k), "MessageGroupId": k}
                           for i, (r, k) in enumerate(chunk)]
                response = await self.sqs.send_message_batch(QueueUrl=self.url, Entries=entries)
                assert not response.get("Failed"), response
        else:
            await send(self.sqs, self.url, [payload(r, k) for r, k in records])

    def watcher(self, ledger: Ledger) -> Callable[[], Awaitable[None]] | None:
        return None  # SQS has no checkpoint: a message stays until deleted (checked by `drained`)

    async def read_dead(self, ledger: Ledger) -> None:
        if self.dlq_url:
            await read_dead_letters(self.sqs, self.dlq_url, ledger)

    async def drained(self) -> bool:
        return await queue_counts(self.sqs, self.url) == (0, 0)


class RabbitSide:
    """A quorum queue on the RabbitMQ broker, reached through a toxiproxy proxy of its own (`proxy`,
    which the faults take down). A failed batch goes back to the queue whole; nothing dead-letters."""

    source = "rabbitmq"
    ordered = False

    def __init__(self) -> None:
        self.queue = rmq.queue_name("fault")
        self.proxy: Proxy | None = None

    @contextlib.asynccontextmanager
    async def made(self) -> AsyncIterator["RabbitSide"]:
        import aio_pika

        self.broker = rmq.broker()
        self.secret = rmq.secret(self.broker)
        connection = await aio_pika.connect(self.broker.url)
        try:
            self.channel = await connection.channel()
            await rmq.declare(self.channel, self.queue)
            async with Toxiproxy.from_env() as toxi, toxi.proxy(f"rabbitmq-{self.queue}",
                                                               f"127.0.0.1:{self.broker.port}") as proxy:
                self.proxy = proxy
                yield self
        finally:
            await connection.close()

    def mapping(self, proxied: Proxies, **fields: Any) -> dict[str, Any]:
        assert self.proxy is not None
        document = rmq.mapping(self.broker, self.queue, self.secret, **fields)
        document["esm"] = {"broker": f"amqp://{self.proxy.address}"}
        document.pop("FunctionName")
        return {"BatchSize": 10, **document}

    async def produce(self, ledger: Ledger, records: list[tuple[str, str]]) -> None:
        for record_id, key in records:
            ledger.produce(record_id, key)
        await rmq.publish(self.channel, self.queue, [payload(r, k) for r, k in records])

    def watcher(self, ledger: Ledger) -> Callable[[], Awaitable[None]] | None:
        return None  # a message stays on the broker until acknowledged (checked by `drained`)

    async def read_dead(self, ledger: Ledger) -> None:
        return None

    async def drained(self) -> bool:
        return await rmq.counts(self.broker, self.queue) == (0, 0)


class KinesisSide:
    """One stream (one shard by default); failures go to an SQS on-failure destination, or with
    destination="s3" to a bucket on moto (objects carry the whole invocation event)."""

    source = "kinesis"
    ordered = True

    def __init__(self, *, shards: int = 1, destination: str | None = "sqs", leases: bool = False):
        self.shards, self.destination = shards, destination
        # leases: checkpoints and leases in a DynamoDB table on moto (for several replicas)
        self.table = f"fault-leases-{uuid.uuid4().hex[:8]}" if leases else ""
        self.dynamodb: Any = None
        self.kinesis: Any = None
        self.sqs: Any = None
        self.s3: Any = None
        self.name = self.arn = self.dlq_url = self.dlq_arn = self.bucket = ""
        self.checkpoint_db: Any = None

    @contextlib.asynccontextmanager
    async def made(self) -> AsyncIterator["KinesisSide"]:
        from aiobotocore.session import get_session

        from tests.support.kinesis import create_stream, kinesis_client

        async with kinesis_client() as kinesis, sqs_client() as sqs, get_session().create_client(
                "s3", region_name="us-east-1", endpoint_url=os.environ["ESM_AWS_ENDPOINT"],
                aws_access_key_id="test", aws_secret_access_key="test") as s3, get_session().create_client(
                "dynamodb", region_name="us-east-1", endpoint_url=os.environ["ESM_AWS_ENDPOINT"],
                aws_access_key_id="test", aws_secret_access_key="test") as dynamodb:
            self.kinesis, self.sqs, self.s3, self.dynamodb = kinesis, sqs, s3, dynamodb
            self.name, self.arn = await create_stream(kinesis, self.shards)
            if self.destination == "sqs":
                self.dlq_url, self.dlq_arn = await create_queue(sqs, "fault-dest")
            elif self.destination == "s3":
                self.bucket = f"fault-{uuid.uuid4().hex[:10]}"
                await s3.create_bucket(Bucket=self.bucket)
                self.dlq_arn = f"arn:aws:s3:::{self.bucket}"
            yield self

    def mapping(self, proxied: Proxies, **fields: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {"EventSourceArn": self.arn, "StartingPosition": "TRIM_HORIZON", "BatchSize": 10}
        if self.dlq_arn:
            doc["DestinationConfig"] = {"OnFailure": {"Destination": self.dlq_arn}}
        return {**doc, **fields}

    async def produce(self, ledger: Ledger, records: list[tuple[str, str]]) -> None:
        for start in range(0, len(records), 100):
            chunk = records[start:start + 100]
            # PutRecords keeps the order of a request's records per shard.
            response = await self.kinesis.put_records(StreamName=self.name, Records=[
                {"PartitionKey": k, "Data": payload(r, k).encode()} for r, k in chunk])
            assert not response.get("FailedRecordCount"), response
            for (record_id, key), result in zip(chunk, response["Records"]):
                ledger.produce(record_id, key, unit=result["ShardId"], position=int(result["SequenceNumber"]))

    def checkpoints(self, tmp_path: Any) -> dict[str, Any]:
        """The daemon's `checkpoints:` section (and where the watcher reads them)."""
        if self.table:
            return {"dynamodb": {"table": self.table}}
        self.checkpoint_db = tmp_path / "checkpoints.db"
        return {"sqlite": str(self.checkpoint_db)}

    def watcher(self, ledger: Ledger) -> Callable[[], Awaitable[None]] | None:
        if self.table:
            return dynamodb_checkpoints(self.dynamodb, self.table, ledger)
        assert self.checkpoint_db is not None, "checkpoints() first"
        return sqlite_checkpoints(self.checkpoint_db, ledger)

    async def read_dead(self, ledger: Ledger) -> None:
        if self.dlq_url:
            await read_dead_letters(self.sqs, self.dlq_url, ledger)
        if self.bucket:
            await read_s3_dead_letters(self.s3, self.bucket, ledger)

    async def drained(self) -> bool:
        return True  # the checkpoint watcher and the ledger say it all


class KafkaSide:
    """A topic read through the broker's proxied listener; failures go to an SQS destination."""

    source = "kafka"
    ordered = True

    def __init__(self, *, partitions: int = 2, destination: bool = True):
        self.partitions, self.destination = partitions, destination
        self.admin: Any = None
        self.sqs: Any = None
        self.topic = self.group = self.dlq_url = self.dlq_arn = ""

    @staticmethod
    def bootstrap() -> str:
        return os.environ["KAFKA_PROXIED_BOOTSTRAP"]

    @contextlib.asynccontextmanager
    async def made(self) -> AsyncIterator["KafkaSide"]:
        from tests.support.kafka import create_topic, kafka_admin, unique

        async with kafka_admin() as admin, sqs_client() as sqs:
            self.admin, self.sqs = admin, sqs
            self.topic = await create_topic(admin, partitions=self.partitions, prefix="fault")
            self.group = unique("fault-g")
            if self.destination:
                self.dlq_url, self.dlq_arn = await create_queue(sqs, "fault-dest")
            yield self

    def mapping(self, proxied: Proxies, **fields: Any) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "Topics": [self.topic], "StartingPosition": "TRIM_HORIZON", "BatchSize": 10,
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [self.bootstrap()]}},
            "SourceAccessConfigurations": NO_AUTH,
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": self.group},
        }
        if self.destination:
            doc["DestinationConfig"] = {"OnFailure": {"Destination": self.dlq_arn}}
        return {**doc, **fields}

    async def produce(self, ledger: Ledger, records: list[tuple[str, str]]) -> None:
        from aiokafka import AIOKafkaProducer

        # Straight to the broker (not through the proxy): the faults are esm's, not the producer's.
        producer = AIOKafkaProducer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
        await producer.start()
        try:
            for record_id, key in records:
                partition = int(key[1:]) % self.partitions  # the key names the partition: order per key
                meta = await producer.send_and_wait(self.topic, payload(record_id, key).encode(),
                                                    key=key.encode(), partition=partition)
                ledger.produce(record_id, key, unit=f"{self.topic}-{meta.partition}", position=meta.offset)
        finally:
            await producer.stop()

    def watcher(self, ledger: Ledger) -> Callable[[], Awaitable[None]] | None:
        return kafka_commits(self.admin, self.group, self.topic, ledger)

    async def read_dead(self, ledger: Ledger) -> None:
        if self.dlq_url:
            await read_dead_letters(self.sqs, self.dlq_url, ledger)

    async def drained(self) -> bool:
        """Every partition's committed offset reached its end."""
        from aiokafka import TopicPartition

        offsets = await self.admin.list_consumer_group_offsets(self.group)
        committed = {tp.partition: m.offset for tp, m in offsets.items() if tp.topic == self.topic}
        ends = await _end_offsets(self.topic, [TopicPartition(self.topic, p) for p in range(self.partitions)])
        return all(committed.get(tp.partition, -1) >= end for tp, end in ends.items())


async def _end_offsets(topic: str, partitions: list[Any]) -> dict[Any, int]:
    from aiokafka import AIOKafkaConsumer

    consumer = AIOKafkaConsumer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], enable_auto_commit=False)
    await consumer.start()
    try:
        return await consumer.end_offsets(partitions)
    finally:
        await consumer.stop()
