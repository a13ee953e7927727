"""One adapter per stream source for the conformance table: what differs between sources, and nothing else.

An adapter creates the source's unit of order (a one-shard Kinesis stream, a one-partition Kafka
topic), puts records, writes the mapping's config fragment, reads the function's event back as
(payload, itemIdentifier) pairs, reads the position the source has released (the Kinesis
checkpoint in the SQLite store's file, the Kafka group's committed offset on the broker) and
reads the span of positions an on-failure document names. Positions are integers in the unit's
order (sequence numbers, offsets), so the table compares them without knowing the source.

Only backend-visible effects are read: the esm engine is never imported. A new source is one more
`StreamSource` subclass appended to `SOURCES` (DynamoDB Streams, on moto, was the third).
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import json
import sqlite3
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from tests.support.dynamodb import create_table, dynamodb_client, streams_client
from tests.support.kafka import NO_AUTH, Message, bootstrap, create_topic, group_offsets, kafka_admin, produce
from tests.support.kinesis import create_stream, kinesis_client, put
from tests.support.ledger import payload

ORDER_KEY = "k"  # every record shares one key: one lane, so the unit's order is the put order


@dataclass(frozen=True)
class Capabilities:
    """What the table may ask of a source.

    record_age: MaximumRecordAgeInSeconds is offered (behaviour §1 "Bisect/retries/age": Kinesis,
    DynamoDB, Kafka; Kafka's provisioned-only restriction is lifted by behaviour §9.7).
    backdated_records: a record can be written already old (Kafka's CREATE_TIME timestamp is the
    producer's). Where it cannot (a stream's arrival time is the server's), old records are put at
    the start of the session and the row waits out the rest of their age.
    """

    record_age: bool
    backdated_records: bool


@dataclass(frozen=True)
class Unit:
    """The unit of order a row works on: its name, and the source's handle on it (stream ARN,
    consumer group)."""

    name: str
    handle: str


@dataclass(frozen=True)
class EarlyRecords:
    """Records put into their own unit at the start of the session, to be old by the time a row reads them."""

    unit: Unit
    positions: tuple[int, ...]
    put_at: float


# Row 5's records, which must be older than MaximumRecordAgeInSeconds when first read (see conftest).
AGED_IDS = ("old0", "old1")
AGED_PAYLOADS = tuple(payload(record_id, ORDER_KEY) for record_id in AGED_IDS)
EARLY: dict[str, EarlyRecords] = {}


class StreamSource(ABC):
    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    data_key: ClassVar[str]  # the record's data key in a filter pattern (behaviour §5 table)

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.unit: Unit | None = None

    # -- lifecycle (clients) -----------------------------------------------------------------------
    async def open(self) -> None:
        """Open the clients the adapter reads the backend with."""

    async def close(self) -> None:
        """Close what `open` opened."""

    # -- the unit --------------------------------------------------------------------------------
    @abstractmethod
    async def create_unit(self) -> Unit:
        """A fresh unit with one ordering unit (one shard, one partition); becomes `self.unit`."""

    @abstractmethod
    async def put(self, payloads: list[str], *, age: float = 0.0) -> list[int]:
        """Put `payloads` in order (ORDER_KEY), `age` seconds old where the source can backdate;
        returns their positions."""

    async def put_old(self, payloads: list[str], older_than: float) -> list[int]:
        """A new unit holding `payloads`, each already older than `older_than` seconds."""
        if self.capabilities.backdated_records:
            await self.create_unit()
            return await self.put(payloads, age=older_than + 3600)
        early = EARLY.get(self.name)
        if early is None or tuple(payloads) != AGED_PAYLOADS:  # not prepared: age them now
            early = await asyncio.to_thread(type(self).put_early, self.workdir, payloads)
        self.unit = early.unit
        # A second of margin over the age, for the server's arrival clock.
        await asyncio.sleep(max(0.0, early.put_at + older_than + 1.5 - time.time()))
        return list(early.positions)

    @classmethod
    def put_early(cls, workdir: Path, payloads: tuple[str, ...] | list[str]) -> EarlyRecords:
        """Create a unit and put `payloads` now, on a loop of its own (callable from anywhere)."""
        async def run() -> EarlyRecords:
            source = cls(workdir)
            await source.open()
            try:
                unit = await source.create_unit()
                positions = await source.put(list(payloads))
                return EarlyRecords(unit, tuple(positions), time.time())
            finally:
                await source.close()

        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            return pool.submit(asyncio.run, run()).result()

    # -- the mapping ------------------------------------------------------------------------------
    @abstractmethod
    def mapping(self, **fields: Any) -> dict[str, Any]:
        """The mapping of `self.unit` to the function `fn`, TRIM_HORIZON, plus `fields`."""

    def daemon_settings(self) -> dict[str, Any]:
        """Top-level config keys the source needs (a checkpoint store)."""
        return {}

    def data_pattern(self, field: str, values: list[Any]) -> dict[str, Any]:
        """A filter pattern on one field of the records' data (behaviour §5 table: the data key)."""
        return {self.data_key: {field: values}}

    # -- what the function sees ------------------------------------------------------------------
    @abstractmethod
    def items(self, event: dict[str, Any]) -> list[tuple[str, Any]]:
        """(payload text, itemIdentifier for a partial batch response) of each record of `event`."""

    # -- what the source released ------------------------------------------------------------------
    @abstractmethod
    async def committed(self) -> int | None:
        """The last position the checkpoint/commit releases (every record at or before it is done
        with); None while nothing is released."""

    @abstractmethod
    def dead_span(self, document: dict[str, Any]) -> tuple[int, int, int]:
        """(first position, last position, batchSize) an on-failure document names."""


# ---------------------------------------------------------------- Kinesis (kinesis-mock)


class KinesisSource(StreamSource):
    name = "kinesis"
    capabilities = Capabilities(record_age=True, backdated_records=False)
    data_key = "data"

    async def open(self) -> None:
        self._client_context = kinesis_client()
        self._client = await self._client_context.__aenter__()

    async def close(self) -> None:
        await self._client_context.__aexit__(None, None, None)

    async def create_unit(self) -> Unit:
        name, arn = await create_stream(self._client)
        self.unit = Unit(name, arn)
        return self.unit

    async def put(self, payloads: list[str], *, age: float = 0.0) -> list[int]:
        assert self.unit is not None and not age, "kinesis-mock stamps arrival itself"
        sequences = await put(self._client, self.unit.name, [(ORDER_KEY, p.encode()) for p in payloads])
        return [int(s) for s in sequences]

    def mapping(self, **fields: Any) -> dict[str, Any]:
        assert self.unit is not None
        return {"FunctionName": "fn", "EventSourceArn": self.unit.handle, "StartingPosition": "TRIM_HORIZON", **fields}

    @property
    def checkpoint_file(self) -> Path:
        return self.workdir / "checkpoints.db"

    def daemon_settings(self) -> dict[str, Any]:
        return {"checkpoints": {"sqlite": str(self.checkpoint_file)}}

    def items(self, event: dict[str, Any]) -> list[tuple[str, Any]]:
        return [(base64.b64decode(r["kinesis"]["data"]).decode(), r["kinesis"]["sequenceNumber"])
                for r in event["Records"]]

    async def committed(self) -> int | None:
        """The shard's row in the checkpoint store's file (the store users keep across upgrades)."""
        if not self.checkpoint_file.exists():
            return None

        def read() -> list[tuple[str]]:
            with sqlite3.connect(self.checkpoint_file, timeout=5) as db:
                try:
                    return db.execute("SELECT position FROM checkpoints").fetchall()
                except sqlite3.OperationalError:  # the daemon has not created the table yet
                    return []

        rows = await asyncio.to_thread(read)
        assert len(rows) <= 1, f"one shard, one mapping: {rows}"
        return int(rows[0][0]) if rows and rows[0][0].isdigit() else None

    def dead_span(self, document: dict[str, Any]) -> tuple[int, int, int]:
        info = document["KinesisBatchInfo"]
        assert self.unit is not None and info["streamArn"] == self.unit.handle, info
        return int(info["startSequenceNumber"]), int(info["endSequenceNumber"]), info["batchSize"]


# ---------------------------------------------------------------- Kafka (Apache Kafka broker)


class KafkaSource(StreamSource):
    name = "kafka"
    # behaviour §1 lists age for Kafka in provisioned mode; behaviour §9.7: esm has that one mode.
    capabilities = Capabilities(record_age=True, backdated_records=True)
    data_key = "value"

    async def open(self) -> None:
        self._admin_context = kafka_admin()
        self._admin = await self._admin_context.__aenter__()

    async def close(self) -> None:
        await self._admin_context.__aexit__(None, None, None)

    async def create_unit(self) -> Unit:
        topic = await create_topic(self._admin, 1, prefix="conf")
        self.unit = Unit(topic, f"conf-{uuid.uuid4().hex[:10]}")  # the consumer group: kept across restarts
        return self.unit

    async def put(self, payloads: list[str], *, age: float = 0.0) -> list[int]:
        assert self.unit is not None
        stamp = int((time.time() - age) * 1000) if age else None
        sent = await produce(self.unit.name, [Message(p.encode(), key=ORDER_KEY.encode(), partition=0,
                                                      timestamp_ms=stamp) for p in payloads])
        return [m.offset for m in sent]

    def mapping(self, **fields: Any) -> dict[str, Any]:
        assert self.unit is not None
        return {"FunctionName": "fn", "Topics": [self.unit.name],
                "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": bootstrap().split(",")}},
                "SourceAccessConfigurations": NO_AUTH, "StartingPosition": "TRIM_HORIZON",
                "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": self.unit.handle}, **fields}

    def items(self, event: dict[str, Any]) -> list[tuple[str, Any]]:
        return [(base64.b64decode(r["value"]).decode(), {"partition": f"{r['topic']}-{r['partition']}",
                                                         "offset": r["offset"]})
                for records in event["records"].values() for r in records]

    async def committed(self) -> int | None:
        """The group's committed offset on the broker is the next offset to read."""
        assert self.unit is not None
        offset = (await group_offsets(self._admin, self.unit.handle)).get(0)
        return None if offset is None or offset <= 0 else offset - 1

    def dead_span(self, document: dict[str, Any]) -> tuple[int, int, int]:
        info = document["KafkaBatchInfo"]
        assert self.unit is not None and list(info["recordsInfo"]) == [f"{self.unit.name}-0"], info
        span = info["recordsInfo"][f"{self.unit.name}-0"]
        return int(span["firstRecordOffset"]), int(span["lastRecordOffset"]), info["batchSize"]


# ---------------------------------------------------------------- DynamoDB Streams (moto)


class DynamoDbSource(StreamSource):
    """Every record is a put of the one item ORDER_KEY (one lane: lanes follow the item's Keys), its
    image holding the payload text and, as string attributes, the payload's fields (filters address
    them as `dynamodb.NewImage.<field>.S`). PutItem names no sequence number, so `put` reads the
    stream to learn the positions of what it wrote."""

    name = "dynamodb"
    capabilities = Capabilities(record_age=True, backdated_records=False)  # the creation time is the server's
    data_key = "dynamodb"

    async def open(self) -> None:
        self._contexts = [dynamodb_client(), streams_client()]
        self._ddb, self._streams = [await c.__aenter__() for c in self._contexts]
        self._iterators: dict[str, str] = {}  # per stream: where the records `put` has not seen yet begin

    async def close(self) -> None:
        for context in reversed(self._contexts):
            await context.__aexit__(None, None, None)

    async def create_unit(self) -> Unit:
        table, arn = await create_table(self._ddb, "NEW_IMAGE")
        self.unit = Unit(table, arn)
        return self.unit

    async def put(self, payloads: list[str], *, age: float = 0.0) -> list[int]:
        assert self.unit is not None and not age, "moto stamps the creation time itself"
        if self.unit.handle not in self._iterators:  # a unit another adapter filled (put_early): skip its records
            await self._read(None)
        for text in payloads:
            fields = {k: {"S": str(v)} for k, v in json.loads(text).items() if k not in ("pk", "payload")}
            await self._ddb.put_item(TableName=self.unit.name,
                                     Item={"pk": {"S": ORDER_KEY}, "payload": {"S": text}, **fields})
        return await self._read(len(payloads))

    async def _read(self, count: int | None) -> list[int]:
        """The sequence numbers of the next `count` records of the stream's one shard (None: all there are)."""
        assert self.unit is not None
        arn = self.unit.handle
        if arn not in self._iterators:
            shards = (await self._streams.describe_stream(StreamArn=arn))["StreamDescription"]["Shards"]
            self._iterators[arn] = (await self._streams.get_shard_iterator(
                StreamArn=arn, ShardId=shards[0]["ShardId"], ShardIteratorType="TRIM_HORIZON"))["ShardIterator"]
        positions: list[int] = []
        while count is None or len(positions) < count:
            limit = 1000 if count is None else count - len(positions)
            response = await self._streams.get_records(ShardIterator=self._iterators[arn], Limit=limit)
            positions += [int(r["dynamodb"]["SequenceNumber"]) for r in response["Records"]]
            self._iterators[arn] = response["NextShardIterator"]
            if count is None and not response["Records"]:
                break
        return positions

    def mapping(self, **fields: Any) -> dict[str, Any]:
        assert self.unit is not None
        return {"FunctionName": "fn", "EventSourceArn": self.unit.handle, "StartingPosition": "TRIM_HORIZON", **fields}

    def data_pattern(self, field: str, values: list[Any]) -> dict[str, Any]:
        return {"dynamodb": {"NewImage": {field: {"S": values}}}}

    @property
    def checkpoint_file(self) -> Path:
        return self.workdir / "checkpoints.db"

    def daemon_settings(self) -> dict[str, Any]:
        return {"checkpoints": {"sqlite": str(self.checkpoint_file)}}

    def items(self, event: dict[str, Any]) -> list[tuple[str, Any]]:
        return [(r["dynamodb"]["NewImage"]["payload"]["S"], r["dynamodb"]["SequenceNumber"]) for r in event["Records"]]

    async def committed(self) -> int | None:
        return await KinesisSource.committed(self)  # type: ignore[arg-type]  # the same checkpoint store file

    def dead_span(self, document: dict[str, Any]) -> tuple[int, int, int]:
        info = document["DDBStreamBatchInfo"]
        assert self.unit is not None and info["streamArn"] == self.unit.handle, info
        return int(info["startSequenceNumber"]), int(info["endSequenceNumber"]), info["batchSize"]


# The table's parameters: a new source is one adapter above and one entry here.
SOURCES: tuple[type[StreamSource], ...] = (KinesisSource, KafkaSource, DynamoDbSource)
