"""One adapter per queue source for the queue conformance table: what differs between queue sources,
and nothing else.

An adapter creates a queue (with the hold the row asks for: how long a received record stays the
consumer's before the queue hands it out again, SQS's visibility timeout; ordered groups where the
source keeps them), puts records, writes the mapping's config fragment, reads the function's event
back as (payload, itemIdentifier) pairs and reads what the queue still holds (records waiting to be
received, records held by a consumer). Only backend-visible effects are read: the esm engine is
never imported. A new queue source is one more `QueueAdapter` subclass appended to `QUEUES`.
"""

from __future__ import annotations

import base64
import contextlib
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import aiohttp

from tests.support import activemq
from tests.support import rabbitmq as rmq
from tests.support.sqs import create_queue, queue_counts, send, sqs_client


@dataclass(frozen=True)
class QueueCapabilities:
    """What the table may ask of a queue source.

    ordered_groups: the queue keeps records of one group in order and hands out none of a group
    while an earlier one is held (SQS FIFO's MessageGroupId);
    partial_responses: the mapping takes ReportBatchItemFailures (Amazon MQ's do not: a batch
    fails as a whole);
    hold_deadline: a record held past the hold the row asks for is handed out again while its
    consumer still runs (SQS's visibility timeout; a broker holds it while the consumer lives).
    """

    ordered_groups: bool
    partial_responses: bool = True
    hold_deadline: bool = True


@dataclass(frozen=True)
class Held:
    """What a queue holds: records waiting to be received, and records a consumer holds."""

    waiting: int
    held: int


class QueueAdapter(ABC):
    name: ClassVar[str]
    capabilities: ClassVar[QueueCapabilities]
    data_key: ClassVar[str]  # the record's data key in a filter pattern (behaviour §5 table)

    # -- lifecycle (clients) -----------------------------------------------------------------------
    async def open(self) -> None:
        """Open the clients the adapter reads the backend with."""

    async def close(self) -> None:
        """Close what `open` opened."""

    # -- the queue -------------------------------------------------------------------------------
    @abstractmethod
    async def create_queue(self, *, hold: int, ordered: bool = False) -> None:
        """A fresh queue whose records stay a consumer's for `hold` seconds once received; `ordered`:
        one that keeps groups in order (only when `capabilities.ordered_groups`)."""

    @abstractmethod
    async def put(self, payloads: list[str], *, group: str | None = None) -> None:
        """Put `payloads` in order (in `group`, on an ordered queue)."""

    @abstractmethod
    async def held(self) -> Held:
        """What the queue holds now."""

    # -- the mapping ------------------------------------------------------------------------------
    @abstractmethod
    def mapping(self, **fields: Any) -> dict[str, Any]:
        """The mapping of the queue to the function `fn`, plus `fields`."""

    def data_pattern(self, field: str, values: list[Any]) -> dict[str, Any]:
        """A filter pattern on one field of the records' data (behaviour §5 table: the data key)."""
        return {self.data_key: {field: values}}

    # -- what the function sees ------------------------------------------------------------------
    @abstractmethod
    def items(self, event: dict[str, Any]) -> list[tuple[str, Any]]:
        """(payload text, itemIdentifier for a partial batch response) of each record of `event`."""


# ---------------------------------------------------------------- SQS (ElasticMQ)


class SqsQueue(QueueAdapter):
    name = "sqs"
    capabilities = QueueCapabilities(ordered_groups=True)
    data_key = "body"

    async def open(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        self._client = await self._stack.enter_async_context(sqs_client())
        self._url: str | None = None
        self._arn: str | None = None
        self._fifo = False

    async def close(self) -> None:
        await self._stack.aclose()

    async def create_queue(self, *, hold: int, ordered: bool = False) -> None:
        self._url, self._arn = await create_queue(self._client, "conf", fifo=ordered, visibility=hold)
        self._fifo = ordered

    async def put(self, payloads: list[str], *, group: str | None = None) -> None:
        assert self._url is not None
        extra = {"MessageGroupId": group} if self._fifo else {}
        await send(self._client, self._url, payloads, **extra)

    async def held(self) -> Held:
        assert self._url is not None
        waiting, held = await queue_counts(self._client, self._url)
        return Held(waiting, held)

    def mapping(self, **fields: Any) -> dict[str, Any]:
        assert self._arn is not None
        return {"FunctionName": "fn", "EventSourceArn": self._arn, **fields}

    def items(self, event: dict[str, Any]) -> list[tuple[str, Any]]:
        return [(r["body"], r["messageId"]) for r in event["Records"]]


# ---------------------------------------------------------------- Amazon MQ for RabbitMQ


class RabbitQueue(QueueAdapter):
    """A quorum queue on the RabbitMQ broker of scripts/backends. RabbitMQ has no hold that runs out:
    a delivery is the consumer's until it is acknowledged or requeued, or its connection closes."""

    name = "rabbitmq"
    capabilities = QueueCapabilities(ordered_groups=False, partial_responses=False, hold_deadline=False)
    data_key = "data"

    async def open(self) -> None:
        import aio_pika

        self._broker = rmq.broker()
        self._connection = await aio_pika.connect(self._broker.url)
        self._channel = await self._connection.channel()
        self._secret = rmq.secret(self._broker)
        self._queue: str | None = None

    async def close(self) -> None:
        await self._connection.close()

    async def create_queue(self, *, hold: int, ordered: bool = False) -> None:
        assert not ordered, "RabbitMQ keeps no ordered groups for Lambda"
        self._queue = rmq.queue_name("conf")
        await rmq.declare(self._channel, self._queue)

    async def put(self, payloads: list[str], *, group: str | None = None) -> None:
        assert self._queue is not None
        await rmq.publish(self._channel, self._queue, list(payloads))

    async def held(self) -> Held:
        assert self._queue is not None
        ready, unacknowledged = await rmq.counts(self._broker, self._queue)
        return Held(ready, unacknowledged)

    def mapping(self, **fields: Any) -> dict[str, Any]:
        assert self._queue is not None
        return rmq.mapping(self._broker, self._queue, self._secret, **fields)

    def items(self, event: dict[str, Any]) -> list[tuple[str, Any]]:
        return [(rmq.data(m), None) for m in rmq.messages(event)]



# ---------------------------------------------------------------- Amazon MQ for ActiveMQ (ActiveMQ Classic)


class ActiveMqQueue(QueueAdapter):
    """A queue of the test broker; what it holds comes from the broker's own statistics (the
    launcher's admin endpoint, ACTIVEMQ_ADMIN_URL). A record is held while its consumer lives,
    whatever hold the row asks for."""

    name = "activemq"
    capabilities = QueueCapabilities(ordered_groups=False, partial_responses=False, hold_deadline=False)
    data_key = "data"

    async def open(self) -> None:
        self._stack = contextlib.AsyncExitStack()
        self._client = await self._stack.enter_async_context(activemq.stomp_client())
        self._http = await self._stack.enter_async_context(aiohttp.ClientSession())
        self._queue: str | None = None
        self._secret = await activemq.make_secret()

    async def close(self) -> None:
        await self._stack.aclose()

    async def create_queue(self, *, hold: int, ordered: bool = False) -> None:
        self._queue = activemq.queue_name("conf")

    async def put(self, payloads: list[str], *, group: str | None = None) -> None:
        assert self._queue is not None
        await activemq.send(self._client, self._queue, payloads)

    async def held(self) -> Held:
        assert self._queue is not None
        url = f"{activemq.admin_url()}/queue"
        async with self._http.get(url, params={"name": self._queue}) as answer:
            counts = await answer.json()
        return Held(counts["waiting"], counts["held"])

    def mapping(self, **fields: Any) -> dict[str, Any]:
        assert self._queue is not None
        return activemq.mapping(self._queue, self._secret, "fn", **fields)

    def items(self, event: dict[str, Any]) -> list[tuple[str, Any]]:
        return [(base64.b64decode(m["data"]).decode(), m["messageID"]) for m in event["messages"]]


# The table's parameters: a new queue source is one adapter above and one entry here.
QUEUES: tuple[type[QueueAdapter], ...] = (SqsQueue, RabbitQueue, ActiveMqQueue)
