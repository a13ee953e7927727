"""One worker per unit of order: a small state machine with a stop reason (after the KCL's consumer states).

INITIALIZING: the source opens the unit where its checkpoint says (False: it is no longer ours).
PROCESSING: fetch, filter (filtered records settle at once), spread the rest over the lanes by
  `lane_key` (ParallelizationFactor for shards, `esm.parallelization_factor` for Kafka; records
  without a key stay on the first lane, in unit order), within the mapping's in-flight byte cap
  and a bounded backlog per unit.
DRAINING: the unit ended; the lanes settle what they hold.
SHUTTING_DOWN: lanes are stopped (a batch in flight is abandoned, unacknowledged), then the source
  closes the unit with the stop reason, which decides its last checkpoint: UNIT_END only when every
  record was settled; LEASE_LOST writes none; SHUTDOWN and REVOKED the contiguous position.
STOPPED.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import zlib
from typing import Hashable

from esm.aio import Stopped, unless_stopped
from esm.engine.invoke import Abandoned
from esm.engine.lanes import StreamLane, lane_class, stop_lanes
from esm.engine.mapping_context import MappingContext
from esm.errors import LeaseLost
from esm.core.records import Disposition, Record
from esm.core.contract import Source, StopReason


class UnitState(enum.Enum):
    INITIALIZING = "initializing"
    PROCESSING = "processing"
    DRAINING = "draining"
    SHUTTING_DOWN = "shutting_down"
    STOPPED = "stopped"


class UnitWorker:
    def __init__(self, unit: Hashable, unit_key: str, source: Source, context: MappingContext):
        self.unit = unit
        self.unit_key = unit_key
        self.source = source
        self.context = context
        self.state = UnitState.INITIALIZING
        self.reason: StopReason | None = None
        self.stopping = asyncio.Event()
        self.log = logging.LoggerAdapter(context.log.logger, {**(context.log.extra or {}), "unit": unit_key})
        self.held = 0  # bytes of this unit's records counted in the in-flight cap and not yet settled
        self.backlog = 0  # records handed to lanes and not yet in a batch
        settings = context.settings
        # Reading stops while the lanes hold this many records not yet in a batch: two batches per lane
        # (at least 100), so a stalled function holds the reader back rather than memory growing.
        self.high_water = max(2 * settings.batch_size, 100) * settings.lanes
        # ... plus the last fetch, so that the next fetch is under way while the lanes work through
        # this one (a GetRecords of thousands of records takes as long as invoking them).
        self.read_ahead = 0
        self._room = asyncio.Event()
        self._room.set()
        self.lanes: list[StreamLane] = []
        self.task: asyncio.Task[None] | None = None

    def stop(self, reason: StopReason) -> None:
        if self.reason is None:
            self.reason = reason
        self.stopping.set()

    # -- what lanes call (UnitWorker is their LaneOwner) --------------------------------------
    async def settle(self, records: list[Record], disposition: Disposition) -> None:
        if not records:
            return
        await self.source.settle(self.unit, [r.token for r in records], disposition)
        size = sum([r.size for r in records])
        self.held -= size
        self.context.in_flight.release(size)

    def taken(self, count: int) -> None:
        self.backlog -= count
        if self.backlog < self.high_water + self.read_ahead:
            self._room.set()

    # -- the worker -------------------------------------------------------------------------------
    async def run(self) -> None:
        lane_tasks: list[asyncio.Task[None]] = []
        try:
            if not await self.source.open(self.unit):
                self.stop(StopReason.REVOKED)
                return
            count = self.context.settings.lanes
            cls = lane_class(self.context.settings.tumbling_seconds)
            self.lanes = [cls(self, i) for i in range(count)]
            lane_tasks = [asyncio.create_task(self._lane(lane), name=f"{self.unit_key}/lane-{lane.index}")
                          for lane in self.lanes]
            self.state = UnitState.PROCESSING
            # One task for the whole read loop, cancelled when the worker stops: not a task and a
            # wait per fetch (a fetch is a busy partition's hundred-odd records).
            if await unless_stopped(self._read(), self.stopping):
                self.state = UnitState.DRAINING
                for lane in self.lanes:
                    lane.inbox.end()
                # asyncio.wait, unlike gather, leaves the lanes running when a stop interrupts it.
                await unless_stopped(asyncio.wait(lane_tasks), self.stopping)
                if not self.stopping.is_set() and all(t.done() and not t.cancelled() and t.exception() is None
                                                      for t in lane_tasks):
                    self.stop(StopReason.UNIT_END)
        except Stopped:
            pass
        except LeaseLost:
            self.stop(StopReason.LEASE_LOST)
        finally:
            self.state = UnitState.SHUTTING_DOWN
            if self.reason is None:
                self.reason = StopReason.FAILED
            self.stopping.set()
            try:
                # A batch being invoked finishes and settles; lanes stop at their next step.
                await asyncio.gather(*lane_tasks, return_exceptions=True)
            finally:
                await stop_lanes(lane_tasks)  # cancelled itself (shutdown deadline): abandon what is in flight
                self.context.in_flight.release(self.held)  # read but never settled: read again later
                self.held = 0
                try:
                    await self.source.close_unit(self.unit, self.reason)
                finally:
                    self.state = UnitState.STOPPED

    async def _lane(self, lane: StreamLane) -> None:
        try:
            await lane.run()
        except (Stopped, Abandoned):
            self.stopping.set()
        except LeaseLost:
            self.stop(StopReason.LEASE_LOST)
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            self.log.error("lane %d of %s failed: %r", lane.index, self.unit_key, error, exc_info=error)
            self.stopping.set()  # the worker ends (FAILED) and the engine starts a new one
            raise

    async def _read(self) -> bool:
        """Fetch until the unit ends (True) or the worker stops (False; or cancelled by `run`)."""
        in_flight = self.context.in_flight
        while not self.stopping.is_set():
            while not in_flight.has_room():  # the in-flight cap: lanes settle before more is read
                await in_flight.room()
            if self.backlog >= self.high_water + self.read_ahead:
                self._room.clear()
                await self._room.wait()
                continue
            fetched = await self.source.fetch(self.unit)
            self.read_ahead = len(fetched.records)
            if fetched.records:
                await self._admit(fetched.records)
            if fetched.ended:
                return True
        return False

    async def _admit(self, records: list[Record]) -> None:
        kept, dropped = self.context.keep(records)
        if dropped:
            await self.source.settle(self.unit, [r.token for r in dropped], Disposition.FILTERED)
        if not kept:
            return
        size = sum([r.size for r in kept])
        self.held += size
        self.context.in_flight.hold(size)
        self.backlog += len(kept)
        lanes = self.lanes
        if len(lanes) == 1:
            lanes[0].inbox.put(kept)
            return
        chunks: list[list[Record]] = [[] for _ in lanes]
        key_of = self.context.format.lane_key
        for record in kept:
            key = key_of(record)
            chunks[0 if key is None else zlib.crc32(key) % len(lanes)].append(record)
        for lane, chunk in zip(lanes, chunks):
            if chunk:
                lane.inbox.put(chunk)

