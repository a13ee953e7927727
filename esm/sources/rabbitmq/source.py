"""The RabbitMQ source: consumes one queue of an Amazon MQ for RabbitMQ broker (or any RabbitMQ) and
settles its deliveries (behaviour §1-3, §9.11).

A queue source (esm.core.contract.QueueSource): esm.engine.queue_mapping gathers, invokes and
decides. The source connects with aio-pika (`connect`: the BASIC_AUTH secret's user and password,
the VIRTUAL_HOST, the broker named by `esm.broker`), checks the queue exists (a passive declare)
and consumes it with manual acknowledgements and a prefetch of two batches per poller, so the
broker hands esm no more than it can gather. Deliveries wait in memory until a poller takes them
(`receive`). Settling (`settle`): processed and filtered-out messages are acknowledged; a failed
batch, and records gathered but never invoked, are negatively acknowledged with requeue, so the
broker delivers them again at once with `redelivered` set. Dead-lettering is the broker's own: a
quorum queue's `x-delivery-limit` with a dead-letter exchange (Lambda sets no redelivery policy of
its own for RabbitMQ). Nothing is acknowledged before its outcome is known; a connection that
drops returns every unacknowledged delivery to the queue (so a SIGKILL loses nothing), and the
source connects again, retrying with backoff.

Errors no retry can mend stop the mapping with Lambda's StateTransitionReason codes
(esm.core.contract.MappingStopped): refused credentials (EVENT_SOURCE_AUTHN_ERROR), a virtual host or queue the
user may not use (EVENT_SOURCE_AUTHZ_ERROR), a queue that does not exist (ESM_CONFIG_NOT_VALID).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections import deque
from dataclasses import dataclass
from typing import Any, Mapping, Sequence
from urllib.parse import urlsplit

import aio_pika
import aiormq.exceptions

from esm.aio import unless_stopped
from esm.arns import parse_arn
from esm.config.pipeline import PipelineSettings
from esm.config.settings import MappingSettings
from esm.core.backoff import SOURCE_BACKOFF
from esm.core.batching import MAX_PAYLOAD_BYTES
from esm.core.contract import (ESM_CONFIG_NOT_VALID, EVENT_SOURCE_AUTHN_ERROR, EVENT_SOURCE_AUTHZ_ERROR,
                               FixedScaling, IdentityLookup, MappingStopped)
from esm.core.decide import Mode
from esm.core.inflight import InFlightBytes
from esm.core.records import Disposition, Record
from esm.errors import SourceUnavailable
from esm.observability.events import Events
from esm.observability.metrics import MappingMetrics
from esm.security.secrets import SecretSource
from esm.sources.rabbitmq.descriptor import DESCRIPTOR
from esm.sources.rabbitmq.records import Delivery, RabbitFormat, queue_key, rmq_record
from esm.sources.rabbitmq.rules import BASIC_AUTH, DEFAULT_BATCH_SIZE, access
from esm.transform import transform_for

log = logging.getLogger("esm.rabbitmq")

ACKED = (Disposition.SUCCEEDED, Disposition.FILTERED, Disposition.DEAD_LETTERED)
LONG_POLL_SECONDS = 5.0  # a receive with no wait of its own returns empty after this long
# RabbitMQ closes a channel whose delivery stays unacknowledged for 30 minutes (consumer_timeout):
# until then a delivery is ours.
HOLD_SECONDS = 1800.0
MAX_PREFETCH = 65535
AMQP_PORT, AMQPS_PORT = 5672, 5671
CONNECT_TIMEOUT = 10.0

# Lambda's StateTransitionReason codes for an Amazon MQ mapping that stopped (behaviour §9.11).
AUTHN, AUTHZ, CONFIG = EVENT_SOURCE_AUTHN_ERROR, EVENT_SOURCE_AUTHZ_ERROR, ESM_CONFIG_NOT_VALID


@dataclass(frozen=True)
class Broker:
    host: str
    port: int
    tls: bool

    @classmethod
    def parse(cls, uri: str) -> Broker:
        parts = urlsplit(uri)
        tls = parts.scheme.lower() == "amqps"
        return cls(host=parts.hostname or "", port=parts.port or (AMQPS_PORT if tls else AMQP_PORT), tls=tls)


def concurrency_ceiling(request: Mapping[str, Any] | None) -> int:
    """One consumer per mapping, as Lambda gives RabbitMQ; ScalingConfig.MaximumConcurrency allows more
    (esm's addition: RabbitMQ hands a queue's messages to several consumers at once)."""
    wanted = ((request or {}).get("ScalingConfig") or {}).get("MaximumConcurrency")
    return wanted if isinstance(wanted, int) and not isinstance(wanted, bool) and wanted > 0 else 1


class RabbitSource:
    """One mapping's queue on a RabbitMQ broker (esm.core.contract.QueueSource)."""

    mode = Mode.QUEUE
    default_batch_size = DEFAULT_BATCH_SIZE  # behaviour §1
    concurrency_ceiling = staticmethod(concurrency_ceiling)

    def __init__(self, mapping: MappingSettings, settings: PipelineSettings, runtime: Any, metrics: MappingMetrics,
                 identity: IdentityLookup | None = None):
        self.mapping = mapping
        self.settings = settings
        self.clients = runtime.clients
        self.metrics = metrics
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        self.events = Events(metrics, self.log)
        arn = parse_arn(mapping.source_id)
        self.account = arn.account if arn is not None else None
        self.queue_name = str((mapping.get("Queues") or [""])[0])
        self.secret_uri, self.vhost = access(mapping.request)
        given = mapping.extension.raw.get("broker")
        self.broker: Broker | None = Broker.parse(str(given)) if given else None  # None: ask DescribeBroker
        transform = transform_for(settings.transform, DESCRIPTOR.data) if settings.transform else None
        self.format = RabbitFormat(source_arn=mapping.source_id, queue=queue_key(self.queue_name, self.vhost),
                                   transform=transform)
        self.pollers = 1
        self._connection: Any = None
        self._channel: Any = None
        self._generation = 0  # which connection delivered a token: tags of an earlier one mean nothing
        self._buffer: deque[Any] = deque()
        self._outstanding: set[int] = set()  # delivery tags of the current channel not yet settled
        self._arrived = asyncio.Event()
        self._lost = asyncio.Event()
        self._failures = 0
        self._closing = False

    @property
    def hold_seconds(self) -> float:
        return HOLD_SECONDS

    def scaling(self, invoker_cap: int) -> FixedScaling:
        policy = FixedScaling(min(concurrency_ceiling(self.mapping.request), invoker_cap))
        self.pollers = policy.target
        return policy

    # -- connecting ----------------------------------------------------------------------------
    async def connect(self) -> None:
        """Read the secret, open the connection and start consuming; SourceUnavailable while the broker
        or Secrets Manager cannot be reached, MappingStopped when the broker refuses for good."""
        secret = await SecretSource(self.clients, self.mapping.extension.secrets).read(self.secret_uri, BASIC_AUTH)
        broker = self.broker = self.broker or await self._described_broker()
        await self._close_connection()
        try:
            connection = await asyncio.wait_for(aio_pika.connect(
                host=broker.host, port=broker.port, login=secret["username"], password=secret["password"],
                virtualhost=self.vhost, ssl=broker.tls, ssl_context=ssl.create_default_context() if broker.tls
                else None, timeout=CONNECT_TIMEOUT, client_properties={"connection_name": f"esm {self.mapping.name}"},
            ), CONNECT_TIMEOUT + 1)
        except aiormq.exceptions.ProbableAuthenticationError as error:
            raise MappingStopped(AUTHN, f"the broker refused user {secret['username']!r}: {error}") from None
        except aiormq.exceptions.ConnectionNotAllowed as error:
            raise MappingStopped(AUTHZ, f"user {secret['username']!r} may not use virtual host {self.vhost!r}: "
                                        f"{error}") from None
        except aiormq.exceptions.InvalidFrameError as error:
            if "Connection.Close" not in str(error):
                raise SourceUnavailable(f"RabbitMQ broker {broker.host}:{broker.port}: {error!r}") from None
            # The broker answers connection.open with connection.close (530 NOT_ALLOWED) when the
            # virtual host does not exist or the user may not use it; the client keeps no reply code.
            raise MappingStopped(AUTHZ, f"the broker refused to open virtual host {self.vhost!r} for user "
                                        f"{secret['username']!r} (it does not exist, or the user may not use "
                                        "it)") from None
        except (aiormq.exceptions.AMQPError, OSError, asyncio.TimeoutError, ConnectionError) as error:
            raise SourceUnavailable(f"RabbitMQ broker {broker.host}:{broker.port} is not reachable: "
                                    f"{error!r}") from None
        try:
            await self._consume(connection)
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.close()
            raise

    async def _described_broker(self) -> Broker:
        """The broker's AMQP endpoint as mq:DescribeBroker lists it (no `esm.broker` given): amqps://
        before amqp://. SourceUnavailable while DescribeBroker does not answer or lists none."""
        from esm.sources.amazonmq import broker_endpoints

        try:
            endpoints = await broker_endpoints(self.clients, self.mapping.source_id)
        except Exception as error:  # noqa: BLE001 - unreachable, unauthorised, unknown: retried, said
            raise SourceUnavailable(f"mq:DescribeBroker for {self.mapping.source_id} failed: {error!r}") from None
        found = sorted((uri for uri in endpoints if urlsplit(uri).scheme.lower() in ("amqp", "amqps")),
                       key=lambda uri: not uri.lower().startswith("amqps"))
        if not found:
            raise SourceUnavailable(f"mq:DescribeBroker lists no AMQP endpoint for {self.mapping.source_id} "
                                    f"(endpoints: {', '.join(endpoints) or 'none'}); give esm.broker")
        return Broker.parse(found[0])

    async def _consume(self, connection: Any) -> None:
        channel = await connection.channel()
        prefetch = min(MAX_PREFETCH, 2 * self.settings.batch_size * self.pollers)
        await channel.set_qos(prefetch_count=prefetch)
        try:
            queue = await channel.get_queue(self.queue_name, ensure=True)  # a passive declare: it must exist
        except aiormq.exceptions.ChannelNotFoundEntity as error:
            raise MappingStopped(CONFIG, f"queue {self.queue_name!r} does not exist in virtual host "
                                         f"{self.vhost!r}: {error}") from None
        except aiormq.exceptions.ChannelAccessRefused as error:
            raise MappingStopped(AUTHZ, f"queue {self.queue_name!r} in virtual host {self.vhost!r} "
                                        f"may not be read: {error}") from None
        self._generation += 1
        generation = self._generation
        self._buffer.clear()  # deliveries of an earlier connection went back to the queue with it
        self._outstanding.clear()
        self._lost.clear()

        def lost(*_: Any) -> None:
            if self._generation == generation:
                self._lost.set()
                self._arrived.set()

        connection.close_callbacks.add(lost)
        channel.close_callbacks.add(lost)

        async def delivered(message: Any) -> None:
            if self._generation == generation:
                self._outstanding.add(message.delivery_tag)
                self._buffer.append(message)
                self._arrived.set()

        try:
            await queue.consume(delivered, no_ack=False)
        except aiormq.exceptions.ChannelAccessRefused as error:
            raise MappingStopped(AUTHZ, f"queue {self.queue_name!r} may not be consumed: {error}") from None
        self._connection, self._channel = connection, channel
        self._failures = 0
        broker = self.broker
        assert broker is not None
        self.log.info("consuming %s on %s:%d (prefetch %d)", self.format.queue, broker.host, broker.port, prefetch)

    async def _reconnect(self, stopping: asyncio.Event | None) -> None:
        """Connect again after the connection or channel closed, with backoff between tries."""
        while not self._closing:
            try:
                await self.connect()
                return
            except SourceUnavailable as error:
                self._failures += 1
                delay = SOURCE_BACKOFF.delay(self._failures)
                self.events.polling_failed("connect", error, delay)
                if stopping is None:
                    await asyncio.sleep(delay)
                else:
                    await unless_stopped(asyncio.sleep(delay), stopping)

    async def _close_connection(self) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        if connection is not None and not connection.is_closed:
            with contextlib.suppress(Exception):
                await connection.close()

    async def close(self) -> None:
        self._closing = True
        await self._close_connection()

    # -- receiving -----------------------------------------------------------------------------
    async def receive(self, count: int, wait: float | None, in_flight: InFlightBytes,
                      stopping: asyncio.Event | None = None) -> list[Record]:
        """Up to `count` deliveries the broker pushed, waiting at most `wait` seconds (5 s when None)
        for the first; connects again first when the connection was lost."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (LONG_POLL_SECONDS if wait is None else max(0.0, wait))
        while not self._buffer:
            if self._lost.is_set() or self._connection is None:
                await self._reconnect(stopping)
                continue
            left = deadline - loop.time()
            if left <= 0 or (stopping is not None and stopping.is_set()):
                return []
            self._arrived.clear()
            waiters = [asyncio.ensure_future(self._arrived.wait())]
            if stopping is not None:
                waiters.append(asyncio.ensure_future(stopping.wait()))
            try:
                await asyncio.wait(waiters, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in waiters:
                    waiter.cancel()
        if len(self._buffer) < count:
            await asyncio.sleep(0)  # deliveries read with this one are still being handed over: take them too
        taken = [self._buffer.popleft() for _ in range(min(count, len(self._buffer)))]
        records = [rmq_record(message, self._generation) for message in taken]
        return await self._without_oversized(records)

    async def _without_oversized(self, records: list[Record]) -> list[Record]:
        """Lambda drops a record over 6 MB (behaviour §9.11): acknowledged, counted and logged."""
        kept = [r for r in records if r.size <= MAX_PAYLOAD_BYTES]
        if len(kept) < len(records):
            oversized = [r for r in records if r.size > MAX_PAYLOAD_BYTES]
            self.events.records_dropped(len(oversized), "RecordTooLarge",
                                        f"{self.format.queue} " + ", ".join(r.item_id for r in oversized))
            await self._send([r.token for r in oversized], ack=True)
        return kept

    # -- settling ------------------------------------------------------------------------------
    async def settle(self, tokens: Sequence[tuple[Delivery, Disposition]]) -> None:
        """Processed or filtered out: acknowledged. FAILED and RELEASED: back to the queue at once
        (basic.nack with requeue), delivered again with `redelivered` set."""
        ack = [token for token, disposition in tokens if disposition in ACKED]
        back = [token for token, disposition in tokens if disposition not in ACKED]
        if ack:
            self.events.records_deleted(await self._send(ack, ack=True))
        if back:
            await self._send(back, ack=False)

    async def _send(self, tokens: Sequence[Delivery], *, ack: bool) -> int:
        """Acknowledge (or requeue) the tokens of the current connection; the number settled. Tokens
        of a closed connection are already back on the queue: the broker requeued them when it closed."""
        channel = self._channel
        current = [t for t in tokens if t.channel == self._generation]
        stale = len(tokens) - len(current)
        if stale:
            self.log.warning("%d delivery(ies) could not be %s: their connection closed, so the broker "
                             "redelivers them", stale, "acknowledged" if ack else "requeued")
            if ack:
                self.events.commit_failed(self.format.queue, "connection closed before the acknowledgement", stale)
        if not current or channel is None:
            return 0
        tags = sorted(t.tag for t in current)
        # One frame for the lot (`multiple`) when no other unsettled delivery of the channel lies at or
        # below the highest tag (the usual case: one batch in flight); else one frame per delivery.
        top = tags[-1]
        whole = sum(1 for tag in self._outstanding if tag <= top) == len(tags)
        self._outstanding.difference_update(tags)
        try:
            raw = await channel.get_underlay_channel()
            for tag in ([top] if whole else tags):
                if ack:
                    await raw.basic_ack(tag, multiple=whole)
                else:
                    await raw.basic_nack(tag, multiple=whole, requeue=True)
        except (aiormq.exceptions.AMQPError, aio_pika.exceptions.ChannelInvalidStateError, OSError,
                ConnectionError, RuntimeError) as error:
            self._lost.set()
            if ack:
                self.events.commit_failed(self.format.queue, f"basic.ack failed: {error!r}; the broker redelivers "
                                          "what it did not hear of", len(current))
            return 0
        return len(current)
