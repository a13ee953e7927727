"""The SQS source: receives messages from one queue and settles them (behaviour §1-7).

A queue source (esm.core.contract.QueueSource, `mode = Mode.QUEUE`): esm.engine.queue_mapping
gathers, invokes, decides and runs as many pollers as the source's scaling policy says (`scaling`:
Lambda's on-demand and provisioned rules, esm.sources.sqs.scaling). The source finds the queue
(`connect`: its URL, FIFO or not, visibility timeout, maximum message size), receives (`receive`: one ReceiveMessage of up to 10 messages with
a long poll of at most 5 s, so a receive in flight, which is never abandoned, bounds shutdown;
while it is under way the most it may bring is held against the mapping's in-flight cap, so
pollers receiving at once pass the cap by at most one receive each; errors are retried with the
source backoff) and settles (`settle`: processed and filtered-out messages are deleted, failed
ones are left to return after the visibility timeout, released ones are made visible again at
once). A received message stays ours for the queue's visibility timeout (`hold_seconds`).
Nothing is acknowledged before its outcome is known, so a SIGKILL loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from dataclasses import dataclass
from typing import Any, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from esm.aio import unless_stopped
from esm.arns import is_fifo_queue, parse_arn
from esm.config.pipeline import PipelineSettings
from esm.config.settings import MappingSettings
from esm.core.backoff import SOURCE_BACKOFF
from esm.core.decide import Mode
from esm.core.inflight import InFlightBytes
from esm.core.records import Disposition, Record
from esm.errors import SourceUnavailable
from esm.observability.events import Events
from esm.observability.metrics import MappingMetrics
from esm.core.contract import IdentityLookup
from esm.sources.sqs.acks import MAX_ENTRIES, settle_batch
from esm.sources.sqs.records import Receipt, SqsFormat, sqs_record
from esm.sources.sqs.descriptor import DESCRIPTOR
from esm.sources.sqs.scaling import ConcurrencyTarget, concurrency_ceiling, scaling_for
from esm.transform import transform_for

log = logging.getLogger("esm.sqs")

MAX_RECEIVE = MAX_ENTRIES  # messages per ReceiveMessage call
# A receive is never abandoned (SQS would still hand its messages to the dropped request, stranding
# them until their visibility timeout), so shutdown waits for the ones in flight: 5 s bounds that.
LONG_POLL_SECONDS = 5
RECORD_ENVELOPE_BYTES = 2048  # a record's event around its body: ids, attributes, ARN (at most, roughly)
DELETED = (Disposition.SUCCEEDED, Disposition.FILTERED, Disposition.DEAD_LETTERED)


@dataclass(frozen=True)
class QueueInfo:
    url: str
    arn: str
    region: str
    fifo: bool
    visibility_timeout: float
    max_message_size: int = 262144  # the queue's MaximumMessageSize: what one message may add in memory


class SqsSource:
    """One mapping's queue (esm.core.contract.QueueSource: no units, no checkpoints)."""

    mode = Mode.QUEUE
    default_batch_size = 10  # behaviour §1
    concurrency_ceiling = staticmethod(concurrency_ceiling)

    def __init__(self, mapping: MappingSettings, settings: PipelineSettings, runtime: Any, metrics: MappingMetrics,
                 identity: IdentityLookup | None = None):
        self.mapping = mapping
        self.clients = runtime.clients
        self.metrics = metrics
        self.log = logging.LoggerAdapter(log, {"mapping": mapping.name})
        self.events = Events(metrics, self.log)
        arn = parse_arn(mapping.source_id)
        assert arn is not None
        self.arn = arn
        self.account = arn.account
        self.transform = transform_for(settings.transform, DESCRIPTOR.data) if settings.transform else None
        # FIFO from the name until the queue's own attributes say (connect).
        self.format = SqsFormat(source_arn=str(arn), fifo=is_fifo_queue(arn), transform=self.transform)
        self.queue: QueueInfo | None = None
        self._client: Any = None
        self._stack = contextlib.AsyncExitStack()
        self._receive_failures = 0  # consecutive failed receives, across pollers: the backoff step

    @property
    def visibility_timeout(self) -> float:
        assert self.queue is not None, "connect() first"
        return self.queue.visibility_timeout

    @property
    def hold_seconds(self) -> float:
        """A received message is ours until its visibility timeout runs out."""
        return self.visibility_timeout

    def scaling(self, invoker_cap: int) -> ConcurrencyTarget:
        """Provisioned when the mapping has ProvisionedPollerConfig, else on-demand (behaviour §7)."""
        return scaling_for(self.mapping.request, invoker_cap)

    # -- lifecycle ---------------------------------------------------------------------------
    async def connect(self) -> None:
        """Find the queue and its settings; raises SourceUnavailable while it cannot be reached."""
        if self._client is None:
            self._client = await self._stack.enter_async_context(self.clients.client("sqs", self.arn.region))
        try:
            url = (await self._client.get_queue_url(QueueName=self.arn.resource,
                                                    QueueOwnerAWSAccountId=self.arn.account))["QueueUrl"]
            attributes = (await self._client.get_queue_attributes(
                QueueUrl=url, AttributeNames=["VisibilityTimeout", "FifoQueue", "MaximumMessageSize"]))["Attributes"]
        except (ClientError, BotoCoreError, OSError) as error:
            raise SourceUnavailable(f"queue {self.arn} is not reachable: {error}") from error
        self.queue = QueueInfo(
            url=url,
            arn=str(self.arn),
            region=self.arn.region or self.clients.region_for() or "us-east-1",
            fifo=attributes.get("FifoQueue") == "true" or is_fifo_queue(self.arn),
            visibility_timeout=float(attributes.get("VisibilityTimeout", 30)),
            max_message_size=int(attributes.get("MaximumMessageSize", 262144)),
        )
        self.format = SqsFormat(source_arn=self.queue.arn, fifo=self.queue.fifo, transform=self.transform)
        if self.mapping.function.timeout > self.queue.visibility_timeout:
            self.log.warning(
                "function timeout %.0fs is above the queue's visibility timeout %.0fs: a batch may be "
                "redelivered while it is still being processed (AWS recommends a visibility timeout of "
                "6 x the function timeout + the batching window)",
                self.mapping.function.timeout, self.queue.visibility_timeout)

    async def close(self) -> None:
        await self._stack.aclose()
        self._client = None

    # -- receiving -----------------------------------------------------------------------------
    async def receive(self, count: int, wait: float | None, in_flight: InFlightBytes,
                      stopping: asyncio.Event | None = None) -> list[Record]:
        """One ReceiveMessage of up to min(10, count) messages, long-polling 5 s (at most `wait`,
        rounded up, when given); failed calls are retried with backoff until one answers. A call
        under way is never abandoned, but the wait between tries ends with Stopped once `stopping` is set."""
        queue = self.queue
        assert queue is not None, "connect() first"
        count = min(MAX_RECEIVE, count)
        seconds = LONG_POLL_SECONDS if wait is None else min(LONG_POLL_SECONDS, math.ceil(wait))
        # What the receive may bring is counted while it is under way, so that pollers receiving at
        # once cannot together pass the cap by more than one receive.
        reserved = count * (queue.max_message_size + RECORD_ENVELOPE_BYTES)
        in_flight.hold(reserved)
        try:
            messages = await self._receive(queue.url, count, seconds, stopping)
        finally:
            in_flight.release(reserved)
        self._report_age(messages)
        return [sqs_record(m, queue.arn, queue.region) for m in messages]

    def _report_age(self, messages: list[dict[str, Any]]) -> None:
        """esm_oldest_record_age_seconds: the age (SentTimestamp) of the oldest message of the last
        receive that brought any, as IteratorAge holds the last batch's (a message redelivered after
        failures keeps its first SentTimestamp, so a looping poison message shows)."""
        sent = [int(m["Attributes"]["SentTimestamp"]) for m in messages
                if str(m.get("Attributes", {}).get("SentTimestamp", "")).isdigit()]
        if sent:
            self.events.oldest_record_age("queue", time.time() - min(sent) / 1000)

    async def _receive(self, url: str, count: int, seconds: int,
                       stopping: asyncio.Event | None) -> list[dict[str, Any]]:
        while True:
            try:
                response = await self._client.receive_message(
                    QueueUrl=url,
                    MaxNumberOfMessages=count,
                    WaitTimeSeconds=seconds,
                    MessageSystemAttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
            except (ClientError, BotoCoreError, OSError) as error:
                self._receive_failures += 1
                delay = SOURCE_BACKOFF.delay(self._receive_failures)
                self.events.polling_failed("ReceiveMessage", error, delay)
                if stopping is None:
                    await asyncio.sleep(delay)
                else:
                    await unless_stopped(asyncio.sleep(delay), stopping)
                continue
            self._receive_failures = 0
            return response.get("Messages") or []

    # -- settling ------------------------------------------------------------------------------
    async def settle(self, tokens: Sequence[tuple[Receipt, Disposition]]) -> None:
        """Processed or filtered out: deleted. FAILED: left alone, back after the visibility timeout.
        RELEASED (gathered, never invoked): visible again at once, for another consumer."""
        queue = self.queue
        assert queue is not None, "connect() first"
        delete = [token for token, disposition in tokens if disposition in DELETED]
        release = [token for token, disposition in tokens if disposition is Disposition.RELEASED]
        if delete:
            await settle_batch(self._client, queue.url, delete, "delete_message_batch", {}, self.events,
                               self.events.records_deleted)
        if release:
            await settle_batch(self._client, queue.url, release, "change_message_visibility_batch",
                               {"VisibilityTimeout": 0}, self.events)
            self.log.info("released %d gathered message(s) back to the queue", len(release))
