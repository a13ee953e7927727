"""The one dead-letter path: records given up on go to the on-failure destination (behaviour §4, §9.6).

`DeadLetters.send(unit, failure, stopping)` asks the stream's StreamRecordFormat for the documents
(one per batch, or one per record for a `kafka://` topic), then delivers each until it lands: the
checkpoint or commit waits for it, every failed attempt counts in the destination error metrics
and logs, and a stopping lane abandons the batch (`Abandoned`), leaving its records
unacknowledged. Without a destination the records are dropped, counted and logged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from esm.aio import sleep_unless
from esm.core.backoff import DESTINATION_BACKOFF
from esm.destinations.records import failure_context
from esm.engine.invoke import Abandoned
from esm.errors import DestinationError
from esm.core.results import LATEST
from esm.observability.events import Events
from esm.core.records import Record
from esm.core.contract import Delivery, StreamRecordFormat


@dataclass(frozen=True)
class Failure:
    """Records that could not be processed, with what the last invoke said (None: never invoked)."""

    records: list[Record]
    condition: str
    invoke_count: int
    last_error: str | None
    last_kind: str | None  # what the last invoke that held them answered (Outcome.answer); None: never invoked
    executed_version: str = LATEST  # the function version that answered that invoke


class DeadLetters:
    def __init__(self, *, destination: Any, format: StreamRecordFormat, events: Events, function_name: str):
        self.destination = destination
        self.format = format
        self.events = events
        self.function_name = function_name

    async def send(self, unit: str, failure: Failure, stopping: asyncio.Event) -> None:
        records = failure.records
        where = self.format.where(unit, records)
        if self.destination is None:
            self.events.records_dropped(len(records), failure.condition,
                                        f"{where}: {failure.last_error or 'never invoked'}")
            return
        count, response = failure_context(failure.condition, failure.invoke_count, failure.last_kind,
                                          executed_version=failure.executed_version)
        deliveries = self.format.failure_deliveries(
            unit, records, condition=failure.condition, invoke_count=count, response=response,
            per_record=bool(getattr(self.destination, "per_record", False)))
        for delivery in deliveries:
            await self._deliver(unit, delivery, where, stopping)
        self.events.destination_delivered(len(records), failure.condition, where, self.destination.arn)

    async def _deliver(self, unit: str, delivery: Delivery, where: str, stopping: asyncio.Event) -> None:
        attempt = 0
        while True:
            try:
                await self.destination.deliver(delivery.document, invocation_event=delivery.invocation_event,
                                               shard_id=unit, **delivery.extra)
                return
            except DestinationError as error:
                attempt += 1
                delay = DESTINATION_BACKOFF.delay(attempt)
                self.events.destination_delivery_failed(self.destination.arn, self.function_name,
                                                        f"{error} (records at {where}; retrying in {delay:.1f}s)")
                if stopping.is_set():
                    raise Abandoned() from error
                await sleep_unless(stopping, delay)

    async def close(self) -> None:
        if self.destination is not None:
            await self.destination.close()
