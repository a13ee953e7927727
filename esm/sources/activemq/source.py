"""The ActiveMQ source: one queue of an ActiveMQ Classic broker, read over STOMP (behaviour §9.11).

A queue source (esm.core.contract.QueueSource): esm.engine.queue_mapping gathers, invokes and
decides with up to five pollers (Lambda's five consumers, esm.sources.activemq.scaling). The
source holds one STOMP connection per mapping (stompman; it reconnects and subscribes again by
itself) with one `client-individual` subscription whose prefetch is BatchSize x consumers, so the
broker hands the mapping as many unacknowledged messages as its batches can hold and shares the
rest with other consumers (another esm replica). Frames wait in a local buffer until a poller
receives them.

Settling: processed and filtered-out messages are acknowledged (gone); a failed batch is NACKed,
which ActiveMQ takes as a poison acknowledgement: the broker's redelivery policy (Lambda uses
ActiveMQ's default, 6 redeliveries) sends it again with redelivered=true, then to its dead-letter
queue. A message gathered but never invoked goes back to the buffer for another poller. Nothing
is acknowledged before its outcome is known, so a crash or a lost connection loses nothing: the
broker redelivers what was not acknowledged.

The broker is esm.broker, or else the STOMP endpoint mq:DescribeBroker lists for the broker ARN
(esm.sources.amazonmq), asked at each connect. Credentials come from the mapping's BASIC_AUTH
secret (esm.security.secrets); a broker that refuses them stops the mapping with Lambda's
EVENT_SOURCE_AUTHN_ERROR (esm.core.contract.MappingStopped): no retry mends a wrong password. A
queue that does not exist is no error: ActiveMQ creates it on first use.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any, Sequence
from urllib.parse import quote

import stompman

from esm.aio import unless_stopped
from esm.arns import parse_arn
from esm.config.pipeline import PipelineSettings
from esm.config.settings import MappingSettings
from esm.core.batching import MAX_PAYLOAD_BYTES
from esm.core.conditions import MAXIMUM_PAYLOAD_SIZE_EXCEEDED
from esm.core.contract import EVENT_SOURCE_AUTHN_ERROR, FixedScaling, IdentityLookup, MappingStopped
from esm.core.decide import Mode
from esm.core.inflight import InFlightBytes
from esm.core.records import Disposition, Record
from esm.errors import SourceUnavailable
from esm.observability.events import Events
from esm.observability.metrics import MappingMetrics
from esm.security.secrets import SecretSource
from esm.sources.activemq.descriptor import DESCRIPTOR
from esm.sources.activemq.records import ActiveMqFormat, Delivery, activemq_record
from esm.sources import amazonmq
from esm.sources.activemq.rules import BASIC_AUTH, BrokerAddress, broker_address, secret_uri, stomp_endpoint
from esm.sources.activemq.scaling import concurrency_ceiling
from esm.sources.activemq.stomp import refusal
from esm.transform import transform_for

log = logging.getLogger("esm.sources.activemq")

LONG_POLL_SECONDS = 5.0  # a receive with no window waits at most this long for a message
HOLD_SECONDS = 840.0  # a message is ours while the connection lives; Lambda's 14-minute run limit
MAX_PREFETCH = 50_000
CLOSE_SECONDS = 5.0
HEARTBEAT_MS = 5000
ACKED = (Disposition.SUCCEEDED, Disposition.FILTERED, Disposition.DEAD_LETTERED)


class ActiveMqSource:
    """One mapping's ActiveMQ queue (esm.core.contract.QueueSource)."""

    mode = Mode.QUEUE
    default_batch_size = 100  # behaviour §1
    concurrency_ceiling = staticmethod(concurrency_ceiling)

    def __init__(self, mapping: MappingSettings, settings: PipelineSettings, runtime: Any, metrics: MappingMetrics,
                 identity: IdentityLookup | None = None):
        self.mapping = mapping
        self.clients = runtime.clients
        self.metrics = metrics
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        self.events = Events(metrics, self.log)
        arn = parse_arn(mapping.source_id)
        self.account = arn.account if arn is not None else None
        self.queue: str = mapping.request["Queues"][0]
        given = mapping.extension.raw.get("broker")
        address = broker_address(given) if given is not None else None
        assert not isinstance(address, str), "the config rules check esm.broker"
        self.address: BrokerAddress | None = address  # None: DescribeBroker's, found at connect
        self.batch_size = settings.batch_size
        transform = transform_for(settings.transform, DESCRIPTOR.data) if settings.transform else None
        self.format = ActiveMqFormat(source_arn=mapping.source_id, transform=transform)
        self.consumers = concurrency_ceiling(mapping.request)
        self._buffer: deque[Any] = deque()
        self._arrived = asyncio.Event()
        self._client: stompman.Client | None = None
        self._subscription: Any = None
        self._stack = contextlib.AsyncExitStack()

    @property
    def hold_seconds(self) -> float:
        return HOLD_SECONDS

    def scaling(self, invoker_cap: int) -> FixedScaling:
        return FixedScaling(min(self.consumers, invoker_cap))

    # -- lifecycle ---------------------------------------------------------------------------
    async def connect(self) -> None:
        """Read the BASIC_AUTH secret, connect and subscribe; SourceUnavailable while the broker
        cannot be reached, MappingStopped (EVENT_SOURCE_AUTHN_ERROR) when it refuses the user."""
        if self._client is not None:
            return
        secrets = SecretSource(self.clients, self.mapping.extension.secrets)
        credentials = await secrets.read(secret_uri(self.mapping.request), BASIC_AUTH)
        user, password = credentials["username"], credentials["password"]
        address = self.address or await self._described()
        client = stompman.Client(
            # stompman unquotes the passcode it is given
            [stompman.ConnectionParameters(address.host, address.port, user, quote(password, safe=""))],
            ssl=True if address.tls else None,
            # Heart-beats every 5 s each way: a busy event loop (a long batch of filtering) must not look
            # like a dead client to the broker, which would hand our messages to another consumer.
            heartbeat=stompman.Heartbeat(HEARTBEAT_MS, HEARTBEAT_MS),
            connect_retry_attempts=2,
            keep_alive_on_connection_failure=True,  # after the first connect, reconnect forever
            no_message_restart_interval=None,  # an idle queue is no reason to reconnect
            on_error_frame=lambda frame: self.log.error("ActiveMQ broker %s: %s", address,
                                                        frame.headers.get("message", "error")),
        )
        stack = contextlib.AsyncExitStack()
        try:
            await stack.enter_async_context(client)
        except stompman.FailedAllConnectAttemptsError as error:
            await stack.aclose()
            refused = await refusal(address.host, address.port, user, password, tls=address.tls)
            if refused is not None:  # the broker's ERROR frame to CONNECT: these credentials never pass
                raise MappingStopped(EVENT_SOURCE_AUTHN_ERROR, f"ActiveMQ broker {address} refused user {user!r}: "
                                                               f"{refused}") from None
            raise SourceUnavailable(f"ActiveMQ broker {address} is not reachable: {error}") from None
        prefetch = min(self.batch_size * self.consumers, MAX_PREFETCH)
        try:
            self._subscription = await client.subscribe_with_manual_ack(
                self.queue, self._arrive, ack="client-individual",
                headers={"activemq.prefetchSize": str(prefetch)})
        except Exception as error:
            await stack.aclose()
            raise SourceUnavailable(f"ActiveMQ broker {address}: cannot subscribe to {self.queue}: {error}") from None
        self._stack = stack
        self._client = client
        self.log.info("consuming queue %s on %s as %s (prefetch %d)", self.queue, address, user, prefetch)

    async def _described(self) -> BrokerAddress:
        """The broker's STOMP endpoint as mq:DescribeBroker lists it."""
        try:
            endpoints = await amazonmq.broker_endpoints(self.clients, self.mapping.source_id)
        except Exception as error:  # noqa: BLE001 - unreachable or refused: retried like any connect
            raise SourceUnavailable(f"Amazon MQ broker {self.mapping.source_id}: DescribeBroker failed: "
                                    f"{error}") from None
        found = stomp_endpoint(endpoints)
        if found is None:
            raise SourceUnavailable(f"Amazon MQ broker {self.mapping.source_id} lists no STOMP endpoint "
                                    f"(endpoints: {', '.join(endpoints) or 'none'})")
        return found

    async def _arrive(self, frame: Any) -> None:
        self._buffer.append(frame)
        self._arrived.set()

    async def close(self) -> None:
        # Bounded: with the broker away, the client would try to reconnect for as long as it may.
        if self._subscription is not None:
            # What was not acknowledged goes back to the broker with the subscription.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._subscription.unsubscribe(), CLOSE_SECONDS)
            self._subscription = None
        self._buffer.clear()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._stack.aclose(), CLOSE_SECONDS)
        self._client = None

    # -- receiving -----------------------------------------------------------------------------
    async def receive(self, count: int, wait: float | None, in_flight: InFlightBytes,
                      stopping: asyncio.Event | None = None) -> list[Record]:
        """Up to `count` buffered messages, waiting at most `wait` seconds (None: 5 s) for one."""
        if not self._buffer:
            self._arrived.clear()
            waiting = asyncio.wait_for(self._arrived.wait(), LONG_POLL_SECONDS if wait is None else max(wait, 0))
            try:
                if stopping is None:
                    await waiting
                else:
                    await unless_stopped(waiting, stopping)
            except asyncio.TimeoutError:
                return []
        records: list[Record] = []
        while self._buffer and len(records) < count:
            record = activemq_record(self._buffer.popleft())
            if record.size > MAX_PAYLOAD_BYTES:
                # Lambda drops a record over its 6 MB payload limit (behaviour §9.11).
                await self._ack([record.token])
                self.events.records_dropped(1, MAXIMUM_PAYLOAD_SIZE_EXCEEDED, f"{self.queue} {record.item_id}")
                continue
            records.append(record)
        return records

    # -- settling ------------------------------------------------------------------------------
    async def settle(self, tokens: Sequence[tuple[Delivery, Disposition]]) -> None:
        """Processed, filtered out or dropped: acknowledged. FAILED: NACKed, for the broker to
        redeliver. RELEASED (gathered, never invoked): back in the buffer, for another poller."""
        acked = [token for token, disposition in tokens if disposition in ACKED]
        failed = [token for token, disposition in tokens if disposition is Disposition.FAILED]
        released = [token for token, disposition in tokens if disposition is Disposition.RELEASED]
        if acked:
            await self._ack(acked)
            self.events.records_deleted(len(acked))
        for token in failed:
            try:
                await token.frame.nack()
            except Exception as error:  # noqa: BLE001 - the broker redelivers it when the connection goes
                self.events.commit_failed("NACK", f"{token.message_id}: {error}")
        if released and self._client is not None:
            self._buffer.extendleft(token.frame for token in reversed(released))
            self._arrived.set()

    async def _ack(self, tokens: Sequence[Delivery]) -> None:
        for token in tokens:
            try:
                await token.frame.ack()
            except Exception as error:  # noqa: BLE001 - unacknowledged: the broker redelivers it
                self.events.commit_failed("ACK", f"{token.message_id}: {error}")
