"""Lanes: one batch in flight at a time, in order, for every stream source (and tumbling windows).

A unit's reader hands each lane chunks of records through its `Inbox`; the lane gathers a batch
(esm.engine.gather), then settles it through `StreamBatch`. Records a source could not make
invokable (`pre_failure`: a schema that cannot be decoded) and a record too large for any batch
(MaximumPayloadSizeExceeded) are dead-lettered in their place in the order, never invoked.

`WindowedLane` adds tumbling windows (behaviour §2, esm.engine.tumbling): a batch never crosses a window;
a window closes with a final invoke (no records, the state) when a record of a later window
arrives, when it has been idle past its end, or when the unit ends; its records settle only once
that final invoke succeeded. Every invoke, the final one included, goes through the mapping's one
invoke path (esm.engine.invoke).

Lanes know the unit worker that feeds them only as a `LaneOwner` (esm.engine.units depends on
this module, never the other way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any, Protocol

from esm.aio import unless_stopped
from esm.core.batching import BatchPolicy, FlushReason
from esm.core.conditions import MAXIMUM_PAYLOAD_SIZE_EXCEEDED
from esm.engine.dead_letter import Failure
from esm.engine.gather import gather
from esm.engine.mapping_context import MappingContext
from esm.engine.stream_batch import StreamBatch
from esm.engine.tumbling import WindowState, window_of
from esm.core.results import InvokeResult
from esm.core.records import Disposition, Record

END: Any = object()  # queued behind a unit's last record
# An idle tumbling window closes this long after its end (records carry the stream's arrival time).
WINDOW_IDLE_GRACE = 1.0


class Inbox:
    """A lane's queue of record chunks (one per fetch), in unit order, then END."""

    def __init__(self, stopping: asyncio.Event):
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._stopping = stopping
        self._ended = False

    def put(self, chunk: list[Record]) -> None:
        self._queue.put_nowait(chunk)

    def end(self) -> None:
        self._queue.put_nowait(END)

    async def pull(self, room: int, wait: float | None) -> list[Record] | None:
        if self._ended:
            return None
        if wait is None:
            try:  # what is already queued needs no waiting (and no tasks to wait with)
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                item = await unless_stopped(self._queue.get(), self._stopping)
        elif wait <= 0:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                return []
        else:
            try:
                item = await unless_stopped(asyncio.wait_for(self._queue.get(), wait), self._stopping)
            except asyncio.TimeoutError:
                return []
        if item is END:
            self._ended = True
            return None
        return item


class LaneOwner(Protocol):
    """What a lane needs of the unit worker that feeds it (esm.engine.units.UnitWorker is one)."""

    unit_key: str
    context: MappingContext
    stopping: asyncio.Event
    log: logging.LoggerAdapter

    async def settle(self, records: list[Record], disposition: Disposition) -> None:
        """Settle these records with the source and free their room in the in-flight cap."""

    def taken(self, count: int) -> None:
        """`count` records left the lane's backlog (batched or dead-lettered)."""


class StreamLane:
    def __init__(self, worker: LaneOwner, index: int):
        self.worker = worker
        self.context = worker.context
        self.index = index
        self.inbox = Inbox(worker.stopping)
        settings = self.context.settings
        self.policy = BatchPolicy(settings.batch_size, settings.window,
                                  max_bytes=self.context.format.payload_cap(worker.unit_key))
        self.pending: deque[Record] = deque()
        self.invoke_path = self.context.invoke_path.for_log(worker.log)
        self.batch = StreamBatch(unit=worker.unit_key, rules=self.context.rules, invoke=self.invoke_path,
                                 send=self.send, settle=self.settle, dead_letters=self.context.dead_letters,
                                 format=self.context.format, events=self.context.events.for_log(worker.log),
                                 stopping=worker.stopping, log=worker.log)

    # -- hooks the batch calls ---------------------------------------------------------------
    async def send(self, records: Any) -> InvokeResult:
        return await self.context.invoker.invoke(self.context.format.payload(records))

    async def settle(self, records: list[Record], disposition: Disposition) -> None:
        await self.worker.settle(records, disposition)

    # -- the loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Until the unit ends (every record settled) or the worker stops (raises Stopped/Abandoned)."""
        while True:
            if not self.pending:
                chunk = await self.inbox.pull(self.policy.room, None)
                if chunk is None:
                    return  # the unit ended and everything before END is settled
                self.pending.extend(chunk)
            if await self._dead_letter_unfit():
                continue
            if await self.next_batch():
                return

    async def next_batch(self) -> bool:
        cut = self.cut if self.context.format.may_pre_fail or self.context.settings.tumbling_seconds else None
        records, reason = await gather(self.policy, self.pending, self.inbox.pull, cut)
        self.worker.taken(len(records))
        if records:
            await self.process(records)
        return reason is FlushReason.END

    def cut(self, record: Record) -> bool:
        return self.context.format.pre_failure(record) is not None

    async def process(self, records: list[Record]) -> None:
        slots = self.context.slots
        if slots is None:
            await self.batch.run(records)
        else:
            async with slots:
                await self.batch.run(records)

    async def _dead_letter_unfit(self) -> bool:
        """Dead-letter what heads `pending` if it cannot be invoked; True if it did."""
        head = self.pending[0]
        fmt = self.context.format
        pre = fmt.pre_failure(head)
        if pre is not None:
            records = [self.pending.popleft()]
            while self.pending and len(records) < self.policy.batch_size:
                other = fmt.pre_failure(self.pending[0])
                if other is None or other.condition != pre.condition:
                    break
                records.append(self.pending.popleft())
            reasons = "; ".join(dict.fromkeys(p.reason for p in map(fmt.pre_failure, records) if p is not None))
            failure = Failure(records=records, condition=pre.condition, invoke_count=0, last_error=reasons,
                              last_kind=None)
        elif not self.policy.fits(head):
            # behaviour §4: a record whose event alone passes the payload cap is never invoked.
            records = [self.pending.popleft()]
            failure = Failure(records=records, condition=MAXIMUM_PAYLOAD_SIZE_EXCEEDED, invoke_count=0,
                              last_error=None, last_kind=None)
        else:
            return False
        self.worker.taken(len(records))
        assert self.context.dead_letters is not None  # a stream mapping's context always has them
        await self.context.dead_letters.send(self.worker.unit_key, failure, self.worker.stopping)
        await self.settle(records, Disposition.DEAD_LETTERED)
        return True


class WindowedLane(StreamLane):
    """Tumbling windows: batches never cross a window; records settle when their window closes."""

    def __init__(self, worker: LaneOwner, index: int):
        super().__init__(worker, index)
        self.seconds = self.context.settings.tumbling_seconds
        self.windows = WindowState()
        self.held: list[tuple[list[Record], Disposition]] = []

    async def send(self, records: Any) -> InvokeResult:
        return await self._send(self.context.format.events(records), final=False)

    async def send_final(self, records: Any) -> InvokeResult:
        return await self._send([], final=True)  # a final invoke carries no records, only the state

    async def _send(self, events: list[dict[str, Any]], *, final: bool) -> InvokeResult:
        payload = self.windows.payload(events, shard_id=self.worker.unit_key,
                                       stream_arn=self.context.format.source_arn, final=final)
        return self.windows.take_state(await self.context.invoker.invoke(payload))

    async def settle(self, records: list[Record], disposition: Disposition) -> None:
        self.held.append((records, disposition))  # settled when the window's final invoke succeeded

    def _window(self, record: Record) -> Any:
        return window_of(self.context.format.arrival(record), self.seconds)

    def cut(self, record: Record) -> bool:
        return super().cut(record) or self._window(record) != self.windows.window

    async def run(self) -> None:
        while True:
            if not self.pending:
                idle = None
                if self.windows.window is not None:
                    idle = max(0.0, self.windows.window.end + WINDOW_IDLE_GRACE - time.time())
                chunk = await self.inbox.pull(self.policy.room, idle)
                if chunk is None:
                    await self.close_window()
                    return
                if not chunk:
                    await self.close_window()  # idle past its end
                    continue
                self.pending.extend(chunk)
            if await self._dead_letter_unfit():
                continue
            window = self._window(self.pending[0])
            if self.windows.window is not None and window != self.windows.window:
                await self.close_window()
            if self.windows.window is None:
                self.windows.reset(window)
            if await self.next_batch():
                await self.close_window()
                return
            if self.windows.terminated_early:
                await self.close_window()

    async def close_window(self) -> None:
        """The final invoke of a window (no records, its state), through the one invoke path and
        retried until it succeeds (behaviour §2); only then do the window's records settle."""
        window = self.windows.window
        if window is None:
            return
        await self.invoke_path.invoke_until_success(
            self.send_final, self.worker.stopping,
            what=f"final invoke of window {window.iso()['start']} on {self.worker.unit_key}")
        held, self.held = self.held, []
        for records, disposition in held:
            await self.worker.settle(records, disposition)
        self.windows.reset(None)


def lane_class(tumbling_seconds: int) -> type[StreamLane]:
    return WindowedLane if tumbling_seconds else StreamLane


async def stop_lanes(tasks: list[asyncio.Task[None]]) -> None:
    for task in tasks:
        if not task.done():
            task.cancel()
    with contextlib.suppress(BaseException):
        await asyncio.gather(*tasks, return_exceptions=True)
