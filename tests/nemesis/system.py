"""The system under test: seven sources, three `esm run` replicas on one set of mappings, and a
toxiproxy proxy between each replica and each thing it talks to.

Mappings (one per source, all reporting batch item failures):
- `nemesis-sqs`: an SQS standard queue, redrive to a DLQ after 6 receives;
- `nemesis-fifo`: an SQS FIFO queue (one message group per key), same redrive;
- `nemesis-kinesis`: a Kinesis stream of 4 shards, ParallelizationFactor 2, bisect, 4 retries,
  failures to an SQS on-failure destination;
- `nemesis-dynamodb`: a DynamoDB table's stream (moto), same retry policy and destination;
- `nemesis-kafka`: a topic of 6 partitions, per-key lanes (`esm: {parallelization_factor: 3}`),
  the consumer group shared by the replicas, failures to an SQS destination;
- `nemesis-rabbitmq`: a quorum queue on the run's RabbitMQ broker, dead-lettered by the broker (its
  `x-delivery-limit`, to a dead-letter queue through the default exchange) after 6 deliveries;
- `nemesis-activemq`: a queue on the run's ActiveMQ broker, dead-lettered by the broker's redelivery
  policy (6 redeliveries) to `ActiveMQ.DLQ`.
The two Amazon MQ mappings have no partial batch responses (a batch succeeds or fails whole) and
read their BASIC_AUTH secret from Secrets Manager on moto.

Leases and checkpoints of the two streams live in one DynamoDB table on moto, shared by the
replicas. Each replica's config differs from the others only in the proxies' addresses (its own
network path) and its metrics port. Kafka clients reconnect to the broker's advertised address,
so the Kafka proxy (on the broker's PROXIED listener) is one for all replicas; if that address is
already taken by someone else's proxy, the replicas go to the broker directly (no Kafka network
faults; the report says so).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator

import aiohttp

from esm.config.loading import mapping_uuid
from tests.fault.harness import DaemonProcess, lease_checkpoints, released_offsets
from tests.nemesis.backends import OwnBackends
from tests.support import activemq as amq
from tests.support import rabbitmq as rmq
from tests.support.kafka import NO_AUTH
from tests.support.kinesis import create_stream, kinesis_client
from tests.support.ledger import Ledger
from tests.support.sqs import create_queue, queue_counts, sqs_client
from tests.support.toxiproxy import Proxy, Toxiproxy, ToxiproxyError

SOURCES = ("sqs", "fifo", "kinesis", "dynamodb", "kafka", "rabbitmq", "activemq")
MQ = ("rabbitmq", "activemq")  # the Amazon MQ sources (their brokers, reached through per-replica proxies)
# Amazon MQ promises no order per key: competing consumers (three replicas, several pollers each)
# and redelivery of a failed batch after later messages were handed out (behaviour §1, §9.11).
ORDERED = {"sqs": False, "fifo": True, "kinesis": True, "dynamodb": True, "kafka": True, "rabbitmq": False,
           "activemq": False}
KINESIS_SHARDS, KAFKA_PARTITIONS, KAFKA_LANES, KINESIS_PF = 4, 6, 3, 2
BATCH_SIZE = 10
MAX_RECEIVE = 6
VISIBILITY = 10
INVOKE_TIMEOUT = 5.0
MAX_CONCURRENCY = 6
# How many batches can be in flight at once per source over all replicas (the duplicate bound).
LANES = {"sqs": 3 * MAX_CONCURRENCY, "fifo": 3 * MAX_CONCURRENCY, "kinesis": KINESIS_SHARDS * KINESIS_PF,
         "dynamodb": 1, "kafka": KAFKA_PARTITIONS * KAFKA_LANES, "rabbitmq": 3 * MAX_CONCURRENCY,
         "activemq": 3 * MAX_CONCURRENCY}


def aws_client(service: str, endpoint: str) -> Any:
    from aiobotocore.session import get_session

    return get_session().create_client(service, region_name="us-east-1", endpoint_url=endpoint,
                                       aws_access_key_id="test", aws_secret_access_key="test")


@dataclass
class Resources:
    """What the run made in the shared backends (unique names; nothing else is touched)."""

    sqs_url: str = ""
    sqs_arn: str = ""
    fifo_url: str = ""
    fifo_arn: str = ""
    dlq: dict[str, str] = field(default_factory=dict)  # source -> its dead-letter queue URL
    dlq_arn: dict[str, str] = field(default_factory=dict)
    stream: str = ""
    stream_arn: str = ""
    table: str = ""
    table_stream_arn: str = ""
    dynamodb_shard: str = ""
    lease_table: str = ""
    topic: str = ""
    group: str = ""
    rabbit_queue: str = ""
    rabbit_dlq: str = ""
    rabbit_secret: str = ""
    activemq_queue: str = ""
    activemq_secret: str = ""


def rabbit_broker() -> rmq.Broker:
    """The run's RabbitMQ broker, from the exports of the backends it was given (never started here)."""
    env = os.environ
    return rmq.Broker(port=int(env["RABBITMQ_PORT"]), url=env["RABBITMQ_URL"], management=env["RABBITMQ_MANAGEMENT_URL"],
                      username=env["RABBITMQ_USERNAME"], password=env["RABBITMQ_PASSWORD"], vhost=env["RABBITMQ_VHOST"])


class RabbitLink:
    """The run's own connection to the RabbitMQ broker (publishing with confirms, reading the queues'
    counts and the dead-letter queue), made again after the broker restarts."""

    def __init__(self) -> None:
        self._connection: Any = None
        self._channel: Any = None

    async def channel(self) -> Any:
        import aio_pika

        if self._channel is None or self._channel.is_closed:
            await self.close()
            self._connection = await aio_pika.connect(os.environ["RABBITMQ_URL"], timeout=10)
            self._channel = await self._connection.channel(publisher_confirms=True)
        return self._channel

    async def close(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await connection.close()


@dataclass
class ReplicaPath:
    """One replica's proxies: peer name -> proxy."""

    proxies: dict[str, Proxy]


@dataclass
class System:
    seed: int
    workdir: Path
    res: Resources
    toxi: Toxiproxy
    paths: list[ReplicaPath]
    kafka_proxy: Proxy | None
    function_url: str
    backends: OwnBackends | None = None  # the run's own backend servers (None: shared ones, never touched)
    broken: str | None = None  # a deliberately broken build the replicas run (tests/nemesis/broken.py)
    replicas: list[DaemonProcess] = field(default_factory=list)
    restarts: int = 0
    clients: dict[str, Any] = field(default_factory=dict)
    rabbit: RabbitLink = field(default_factory=RabbitLink)

    # ------------------------------------------------------------ config
    def config(self, r: int) -> dict[str, Any]:
        p = self.paths[r].proxies
        aws = p["aws"].url()
        kafka = self.kafka_proxy.listen if self.kafka_proxy else os.environ["KAFKA_BOOTSTRAP_SERVERS"]
        functions = {f"fn-{s}": {"url": p["function"].url(f"/fn/{r}/{s}"), "timeout": INVOKE_TIMEOUT,
                                 "max_concurrency": MAX_CONCURRENCY} for s in SOURCES}
        failures = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
        stream = {"StartingPosition": "TRIM_HORIZON", "BisectBatchOnFunctionError": True,
                  "MaximumRetryAttempts": 4, **failures}

        def on_failure(source: str) -> dict[str, Any]:
            return {"DestinationConfig": {"OnFailure": {"Destination": self.res.dlq_arn[source]}}}

        mappings = [
            {"FunctionName": "fn-sqs", "EventSourceArn": self.res.sqs_arn, "BatchSize": BATCH_SIZE,
             **failures, "esm": {"name": "nemesis-sqs"}},
            {"FunctionName": "fn-fifo", "EventSourceArn": self.res.fifo_arn, "BatchSize": BATCH_SIZE,
             **failures, "esm": {"name": "nemesis-fifo"}},
            {"FunctionName": "fn-kinesis", "EventSourceArn": self.res.stream_arn, "BatchSize": BATCH_SIZE,
             "ParallelizationFactor": KINESIS_PF, **stream, **on_failure("kinesis"),
             "esm": {"name": "nemesis-kinesis"}},
            {"FunctionName": "fn-dynamodb", "EventSourceArn": self.res.table_stream_arn, "BatchSize": BATCH_SIZE,
             **stream, **on_failure("dynamodb"), "esm": {"name": "nemesis-dynamodb"}},
            {"FunctionName": "fn-kafka", "Topics": [self.res.topic], "StartingPosition": "TRIM_HORIZON",
             "BatchSize": BATCH_SIZE, "MaximumRetryAttempts": 4, "BisectBatchOnFunctionError": True,
             **failures, **on_failure("kafka"),
             "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": [kafka]}},
             "SourceAccessConfigurations": NO_AUTH,
             "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": self.res.group},
             "esm": {"name": "nemesis-kafka", "parallelization_factor": KAFKA_LANES}},
            {"FunctionName": "fn-rabbitmq", "EventSourceArn": rmq.BROKER_ARN, "Queues": [self.res.rabbit_queue],
             "BatchSize": BATCH_SIZE,
             "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": self.res.rabbit_secret}],
             "esm": {"name": "nemesis-rabbitmq", "broker": f"amqp://{p['rabbitmq'].address}"}},
            {"FunctionName": "fn-activemq", "EventSourceArn": amq.BROKER_ARN, "Queues": [self.res.activemq_queue],
             "BatchSize": BATCH_SIZE,
             "SourceAccessConfigurations": [{"Type": "BASIC_AUTH", "URI": self.res.activemq_secret}],
             "esm": {"name": "nemesis-activemq", "broker": f"stomp://{p['activemq'].address}"}},
        ]
        return {
            "functions": functions,
            "event_source_mappings": mappings,
            "aws": {"region": "us-east-1", "endpoints": {"sqs": p["sqs"].url(), "kinesis": p["kinesis"].url(),
                                                         "dynamodb": aws, "dynamodbstreams": aws, "s3": aws,
                                                         "sns": aws, "secretsmanager": aws}},
            "checkpoints": {"dynamodb": {"table": self.res.lease_table}},
            "shutdown_timeout": 20,
            "startup_timeout": 120,
        }

    def mapping_of(self) -> dict[str, str]:
        """The lease table's `mapping` (a UUID) -> source."""
        return {mapping_uuid(f"nemesis-{s}"): s for s in SOURCES}

    # ------------------------------------------------------------ replicas
    def new_replica(self, r: int) -> DaemonProcess:
        incarnation = sum(1 for _ in self.workdir.glob(f"replica-{r}.*.yaml")) + 1
        # A broken build runs as `python -m tests.nemesis.broken <break> run ...` (the break applied first).
        program = ("-m", "esm") if self.broken is None else ("-m", "tests.nemesis.broken", self.broken)
        return DaemonProcess.write(self.config(r), self.workdir, name=f"replica-{r}.{incarnation}", program=program)

    async def start_replica(self, r: int, wait: bool = True) -> None:
        process = self.new_replica(r)
        process.start()
        if r < len(self.replicas):
            self.replicas[r] = process
            self.restarts += 1
        else:
            self.replicas.append(process)
        if wait:
            await process.ready(timeout=180)

    async def stop_all(self) -> None:
        for process in self.replicas:
            if process.process is not None and process.process.poll() is None:
                with contextlib.suppress(Exception):
                    process.process.send_signal(signal.SIGCONT)  # a paused replica cannot hear SIGTERM
                    await process.terminate(timeout=60)
                process.stop_now()

    # ------------------------------------------------------------ proxies
    def proxies_of(self, replica: int | None, peer: str) -> list[Proxy]:
        if peer == "kafka":
            return [self.kafka_proxy] if self.kafka_proxy else []
        replicas = range(len(self.paths)) if replica is None else [replica]
        return [self.paths[r].proxies[peer] for r in replicas]

    async def heal(self) -> None:
        """Every proxy enabled and clean (the end of the fault phase, whatever happened)."""
        every = [p for path in self.paths for p in path.proxies.values()] + \
                ([self.kafka_proxy] if self.kafka_proxy else [])
        for proxy in every:
            with contextlib.suppress(ToxiproxyError):
                await proxy.enable()
                await proxy.clear()

    # ------------------------------------------------------------ drained sources
    async def drained(self, source: str) -> bool:
        sqs = self.clients["sqs"]
        if source in ("sqs", "fifo"):
            url = self.res.sqs_url if source == "sqs" else self.res.fifo_url
            return await queue_counts(sqs, url) == (0, 0)
        if source == "kafka":
            from tests.fault.sides import _end_offsets
            from aiokafka import TopicPartition

            offsets = await self.clients["kafka_admin"].list_consumer_group_offsets(self.res.group)
            committed = {tp.partition: m.offset for tp, m in offsets.items() if tp.topic == self.res.topic}
            ends = await _end_offsets(self.res.topic, [TopicPartition(self.res.topic, p)
                                                       for p in range(KAFKA_PARTITIONS)])
            return all(committed.get(tp.partition, -1) >= end for tp, end in ends.items())
        if source == "rabbitmq":
            return await rmq.counts(rabbit_broker(), self.res.rabbit_queue) == (0, 0)
        if source == "activemq":
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
                async with http.get(f"{amq.admin_url()}/queue", params={"name": self.res.activemq_queue}) as answer:
                    counts = await answer.json()
            return (counts["waiting"], counts["held"]) == (0, 0)
        return True  # streams: the books say it (every record delivered or dead-lettered)


@contextlib.asynccontextmanager
async def made(seed: int, workdir: Path, function_url: str, replicas: int = 3, *,
               backends: OwnBackends | None = None, broken: str | None = None) -> AsyncIterator[System]:
    """Make the sources, destinations, lease table name and proxies; yield the system (replicas
    not yet started); delete the proxies afterwards (queues, streams and topics are left, with
    unique names, as every test here leaves them)."""
    from tests.support.dynamodb import create_table
    from tests.support.kafka import create_topic, kafka_admin, unique

    aws = os.environ["ESM_AWS_ENDPOINT"]
    async with contextlib.AsyncExitStack() as stack:
        sqs = await stack.enter_async_context(sqs_client())
        kinesis = await stack.enter_async_context(kinesis_client())
        ddb = await stack.enter_async_context(aws_client("dynamodb", aws))
        streams = await stack.enter_async_context(aws_client("dynamodbstreams", aws))
        admin = await stack.enter_async_context(kafka_admin())
        res = Resources(lease_table=f"nemesis-leases-{uuid.uuid4().hex[:8]}")
        for source in SOURCES:
            fifo = source == "fifo"
            res.dlq[source], res.dlq_arn[source] = await create_queue(sqs, f"nemesis-{source}-dlq", fifo=fifo)
        res.sqs_url, res.sqs_arn = await create_queue(sqs, "nemesis-sqs", visibility=VISIBILITY,
                                                      dlq_arn=res.dlq_arn["sqs"], max_receive=MAX_RECEIVE)
        res.fifo_url, res.fifo_arn = await create_queue(sqs, "nemesis-fifo", fifo=True, visibility=VISIBILITY,
                                                        dlq_arn=res.dlq_arn["fifo"], max_receive=MAX_RECEIVE)
        res.stream, res.stream_arn = await create_stream(kinesis, KINESIS_SHARDS)
        res.table, res.table_stream_arn = await create_table(ddb)
        described = await streams.describe_stream(StreamArn=res.table_stream_arn)
        res.dynamodb_shard = described["StreamDescription"]["Shards"][0]["ShardId"]
        res.topic = await create_topic(admin, partitions=KAFKA_PARTITIONS, prefix="nemesis")
        res.group = unique("nemesis-g")
        rabbit = RabbitLink()
        stack.push_async_callback(rabbit.close)
        res.rabbit_queue, res.rabbit_dlq = rmq.queue_name("nemesis"), rmq.queue_name("nemesis-dlq")
        await rmq.declare(await rabbit.channel(), res.rabbit_queue, delivery_limit=MAX_RECEIVE,
                          dead_letter=res.rabbit_dlq)
        res.rabbit_secret = rmq.secret(rabbit_broker())
        res.activemq_queue = amq.queue_name("nemesis")
        res.activemq_secret = await amq.make_secret()

        toxi = await stack.enter_async_context(Toxiproxy.from_env())
        upstreams = {"sqs": os.environ["ESM_SQS_ENDPOINT"], "kinesis": os.environ["ESM_KINESIS_ENDPOINT"],
                     "aws": aws, "function": function_url,
                     "rabbitmq": f"127.0.0.1:{os.environ['RABBITMQ_PORT']}",
                     "activemq": os.environ["ACTIVEMQ_STOMP_URL"].removeprefix("stomp://")}
        paths = []
        for r in range(replicas):
            paths.append(ReplicaPath({peer: await stack.enter_async_context(toxi.proxy(f"nemesis-{r}-{peer}", up))
                                      for peer, up in upstreams.items()}))
        kafka_proxy = None
        if os.environ.get("KAFKA_PROXIED_BOOTSTRAP") and os.environ.get("KAFKA_PROXIED_UPSTREAM"):
            with contextlib.suppress(ToxiproxyError):
                kafka_proxy = await stack.enter_async_context(toxi.proxy(
                    "nemesis-kafka", os.environ["KAFKA_PROXIED_UPSTREAM"],
                    listen=os.environ["KAFKA_PROXIED_BOOTSTRAP"]))
        system = System(seed, workdir, res, toxi, paths, kafka_proxy, function_url, backends, broken,
                        clients={"sqs": sqs, "kinesis": kinesis, "dynamodb": ddb, "kafka_admin": admin},
                        rabbit=rabbit)
        try:
            yield system
        finally:
            await system.stop_all()


# ------------------------------------------------------------ watchers and dead letters


async def watch_checkpoints(system: System, ledgers: dict[str, Ledger], stop: asyncio.Event,
                            interval: float = 0.5) -> int:
    """Poll the lease table and the group's commits until `stop`, into the ledgers; returns the
    number of polls that answered. Every checkpoint value seen is kept, with the time it was seen."""
    by_mapping = system.mapping_of()
    answered = 0
    while True:
        with contextlib.suppress(Exception):
            await _poll_once(system, ledgers, by_mapping)
            answered += 1
        if stop.is_set():
            return answered
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


async def _poll_once(system: System, ledgers: dict[str, Ledger], by_mapping: dict[str, str]) -> None:
    found: list[tuple[str, str, int]] = []
    with contextlib.suppress(Exception):  # the table appears when the first replica starts
        found = await lease_checkpoints(system.clients["dynamodb"], system.res.lease_table)
    when = time.time()
    for mapping, unit, position in found:
        source = by_mapping.get(mapping)
        if source in ledgers:
            ledgers[source].checkpoint(unit, position, when)
    released = await released_offsets(system.clients["kafka_admin"], system.res.group, system.res.topic)
    when = time.time()
    for unit, position in released:
        ledgers["kafka"].checkpoint(unit, position, when)


async def read_dead_letters(system: System, source: str, ledger: Ledger) -> list[str]:
    """Consume a source's dead-letter queue into its ledger and into `dead-letters-<source>.jsonl`
    in the work directory (the documents stay on record there). Consumed, not peeked: a FIFO queue
    shows a message group's later messages only once its earlier ones are deleted. Returns the
    documents so far that named no produced record (the checker reports them)."""
    kept = system.workdir / f"dead-letters-{source}.jsonl"
    if source in MQ:
        read = _read_rabbit_dead_letters if source == "rabbitmq" else _read_activemq_dead_letters
        with kept.open("a") as out:
            for message, when, text in await read(system):
                named = _dead_letter(ledger, text, when, message)
                out.write(json.dumps({"message": message, "sent": when, "named": named, "body": text}) + "\n")
        return _unnamed(kept)
    sqs = system.clients["sqs"]
    url = system.res.dlq[source]
    idle = 0
    while idle < 2:
        response = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                             VisibilityTimeout=30, MessageSystemAttributeNames=["All"])
        messages = response.get("Messages") or []
        if not messages:
            idle += 1
            continue
        idle = 0
        with kept.open("a") as out:
            for m in messages:
                when = int(m["Attributes"]["SentTimestamp"]) / 1000
                named = _dead_letter(ledger, m["Body"], when, m["MessageId"])
                out.write(json.dumps({"message": m["MessageId"], "sent": when, "named": named,
                                      "body": m["Body"]}) + "\n")
        await sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
    return _unnamed(kept)


def _unnamed(kept: Path) -> list[str]:
    strange = []
    if kept.exists():
        for line in kept.read_text().splitlines():
            doc = json.loads(line)
            if not doc["named"]:
                strange.append(doc["body"][:300])
    return strange


async def _read_rabbit_dead_letters(system: System) -> list[tuple[str, float, str]]:
    """Consume the quorum queue's dead-letter queue: (message id, when, body) of each message (the
    dead-lettered message itself; its `x-death` header says why: `delivery_limit`)."""
    channel = await system.rabbit.channel()
    queue = await channel.get_queue(system.res.rabbit_dlq, ensure=False)
    out = []
    while True:
        message = await queue.get(no_ack=False, fail=False, timeout=10)
        if message is None:
            return out
        out.append((message.message_id or f"rmq-{uuid.uuid4().hex}", time.time(), message.body.decode(errors="replace")))
        await message.ack()


async def _read_activemq_dead_letters(system: System) -> list[tuple[str, float, str]]:
    """Consume ActiveMQ.DLQ's messages from the run's queue (its `original-destination`): (message id,
    when, body)."""
    frames = await amq.drain(amq.DLQ, idle=1.0, match=lambda f: f.headers.get("original-destination")
                             == f"/queue/{system.res.activemq_queue}")
    return [(str(f.headers.get("message-id", uuid.uuid4().hex)), time.time(), f.body.decode(errors="replace"))
            for f in frames]


def _dead_letter(ledger: Ledger, body: str, when: float, message: str) -> int:
    """Record what one dead-letter document names; returns how many produced records it named."""
    try:
        doc = json.loads(body)
    except ValueError:
        return 0
    if isinstance(doc, dict) and isinstance(doc.get("id"), str):  # a redriven SQS message: the record
        if doc["id"] in ledger.produced:
            ledger.dead_letter(doc["id"], when, message)
            return 1
        return 0
    for info_key in ("KinesisBatchInfo", "DDBStreamBatchInfo"):
        if info_key in doc:
            info = doc[info_key]
            return ledger.dead_letter_range(info["shardId"], int(info["startSequenceNumber"]),
                                            int(info["endSequenceNumber"]), when, message)
    if "KafkaBatchInfo" in doc:
        return sum(ledger.dead_letter_range(unit, int(b["firstRecordOffset"]), int(b["lastRecordOffset"]),
                                            when, message)
                   for unit, b in doc["KafkaBatchInfo"]["recordsInfo"].items())
    return 0
