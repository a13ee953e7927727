"""Steady keyed traffic into every source: each record is written to its source's ledger before
it is produced (a produce that fails leaves it in the ledger, so the checker counts it), carries
its key and its per-key sequence number, and a seeded few are poison (the function always fails
them, so the dead-letter path runs too).

Rate: `rate` records a second per source (default 4: 28 a second over seven sources, which the
shared two-core machine sustains alongside three replicas and the backends). A source whose
produce fails (a backend slow under load) retries the same record; the producer never gets
ahead of what it could write.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from tests.nemesis.system import KAFKA_PARTITIONS, SOURCES, System
from tests.support import activemq as amq
from tests.support import rabbitmq as rmq
from tests.support.ledger import Ledger

KEYS = 12
POISON_RATE = 0.003


def body(record_id: str, key: str, seq: int, poison: bool) -> str:
    doc: dict[str, Any] = {"id": record_id, "key": key, "seq": seq}
    if poison:
        doc["poison"] = True
    return json.dumps(doc, separators=(",", ":"))


@dataclass
class Traffic:
    system: System
    ledgers: dict[str, Ledger]
    seed: int
    rate: float = 4.0
    prefix: str = "r"
    poison_rate: float = POISON_RATE
    sequence: Counter[str] = field(default_factory=Counter)  # "source/key" -> last seq
    produce_errors: Counter[str] = field(default_factory=Counter)
    poison: set[str] = field(default_factory=set)
    _producer: Any = None

    async def run(self, seconds: float) -> None:
        from aiokafka import AIOKafkaProducer

        # Straight to the broker: the faults are esm's, not the producer's.
        self._producer = AIOKafkaProducer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], acks="all")
        await self._producer.start()
        try:
            await asyncio.gather(*(self._source(s, seconds, n) for n, s in enumerate(SOURCES)))
        finally:
            await self._producer.stop()

    async def _source(self, source: str, seconds: float, n: int) -> None:
        rng = random.Random(self.seed * 1000 + n)
        loop = asyncio.get_running_loop()
        start = loop.time()
        count = 0
        tick = 0.5  # records go out in small bursts, twice a second
        while loop.time() - start < seconds:
            due = int((loop.time() - start) * self.rate) + 1 - count
            for _ in range(max(0, due)):
                key = f"k{rng.randrange(KEYS)}"
                poison = rng.random() < self.poison_rate
                await self.one(source, key, poison)
                count += 1
            await asyncio.sleep(tick)

    async def one(self, source: str, key: str, poison: bool = False) -> None:
        ledger = self.ledgers[source]
        self.sequence[f"{source}/{key}"] += 1
        seq = self.sequence[f"{source}/{key}"]
        record_id = f"{self.prefix}-{source}-{len(ledger.order):06d}"
        ledger.produce(record_id, key)  # before it is produced
        if poison:
            self.poison.add(record_id)
        text = body(record_id, key, seq, poison)
        for attempt in range(60):
            try:
                await asyncio.wait_for(self._put(source, record_id, key, text), 60)  # a frozen backend hangs
                return
            except Exception:  # a backend busy or briefly away: try the same record again
                self.produce_errors[source] += 1
                await asyncio.sleep(min(5.0, 0.2 * (attempt + 1)))
        ledger.note(f"{record_id} could not be produced")

    async def _put(self, source: str, record_id: str, key: str, text: str) -> None:
        res, clients = self.system.res, self.system.clients
        produced = self.ledgers[source].produced[record_id]
        if source == "sqs":
            await clients["sqs"].send_message(QueueUrl=res.sqs_url, MessageBody=text)
        elif source == "fifo":
            await clients["sqs"].send_message(QueueUrl=res.fifo_url, MessageBody=text, MessageGroupId=key,
                                              MessageDeduplicationId=record_id)
        elif source == "kinesis":
            out = await clients["kinesis"].put_record(StreamName=res.stream, PartitionKey=key, Data=text.encode())
            produced.unit, produced.position = out["ShardId"], int(out["SequenceNumber"])
        elif source == "dynamodb":
            # The item is the key's latest state; `doc` carries the record's identity to the stream.
            await clients["dynamodb"].put_item(TableName=res.table, Item={"pk": {"S": key}, "doc": {"S": text}})
        elif source == "rabbitmq":
            # Published with a confirm (the broker has it, in a quorum queue: replicated and on disk);
            # a publish that fails drops the connection, so the retry starts on a fresh one.
            try:
                channel = await self.system.rabbit.channel()
                await rmq.publish(channel, res.rabbit_queue, [text])
            except Exception:
                await self.system.rabbit.close()
                raise
        elif source == "activemq":
            # One connection per record: a STOMP client whose broker went away is not reused, and the
            # send waits for the broker's receipt (a persistent message, kept across a restart).
            async with amq.stomp_client() as client:
                await amq.send(client, res.activemq_queue, [text])
        else:
            partition = int(key[1:]) % KAFKA_PARTITIONS
            meta = await self._producer.send_and_wait(res.topic, text.encode(), key=key.encode(), partition=partition)
            produced.unit, produced.position = f"{res.topic}-{meta.partition}", meta.offset
