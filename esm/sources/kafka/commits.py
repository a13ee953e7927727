"""Commits of a Kafka mapping: each owned partition's finished offsets and the group's committed offset.

A record is finished once the engine settled it (processed, filtered out, dead-lettered or dropped);
a partition's committed offset is its contiguous finished position + 1 (`esm.core.offsets`), so
on a partial failure it is the lowest unfinished offset (behaviour §9.4). Settling only marks offsets
finished and wakes the **committer**, which commits every partition that moved in one request
(lanes never wait for the broker's round trip). Every commit runs under one lock with the
revocation's final commit (`final`) and only for partitions still tracked here, so a partition is
never committed once it has been forgotten; commits never move backwards. The **lag loop** every
LAG_INTERVAL retries commits that did not go through and sets OffsetLag per partition, MaxOffsetLag
and SumOffsetLag from the partitions' end offsets.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from esm.aio import sleep_unless
from esm.core.offsets import OffsetTracker
from esm.observability.events import Events
from esm.sources.kafka import tuning


@dataclass(eq=False)
class Position:
    """One tracked partition: the offsets read and not yet contiguous, and what the group has committed."""

    tp: TopicPartition
    key: str
    committed: int | None = None  # the group's committed offset (the next record to read)
    tracker: OffsetTracker = field(default_factory=OffsetTracker)

    def target(self) -> int | None:
        """The offset to commit, if it moved past the committed one."""
        self.tracker.advance()
        if self.tracker.position is None:
            return None
        target = int(self.tracker.position) + 1  # type: ignore[call-overload]
        return target if self.committed is None or target > self.committed else None


class Commits:
    def __init__(self, events: Events, log: logging.LoggerAdapter):
        self.events = events
        self.log = log
        self.consumer: Any = None  # the AIOKafkaConsumer, once connected
        self.lock = asyncio.Lock()  # commits and revocation: a forgotten partition is never committed
        self.positions: dict[TopicPartition, Position] = {}
        self._dirty = asyncio.Event()  # a finished position may have moved

    # -- what the source calls -----------------------------------------------------------------
    async def start(self, tp: TopicPartition, key: str, committed: int | None, position: int) -> bool:
        """Track `tp` from its settled start; without a committed offset the start is committed at
        once (StartingPosition applies once, to a group without offsets). The caller holds `lock`."""
        tracked = Position(tp, key, committed=committed)
        if committed is None and not await self._commit({tracked: position}):
            return False
        self.positions[tp] = tracked
        return True

    def register(self, tp: TopicPartition, offsets: Iterable[int]) -> None:
        tracked = self.positions.get(tp)
        if tracked is not None:
            tracked.tracker.register_many(offsets)

    def finish(self, tp: TopicPartition, offsets: Iterable[int]) -> None:
        tracked = self.positions.get(tp)
        if tracked is not None:
            tracked.tracker.finish_many(offsets)
            self._dirty.set()

    async def final(self, tp: TopicPartition, *, forget: bool) -> int | None:
        """Commit `tp`'s contiguous position while it is still ours, then forget it (`forget`) or
        start it over from that commit (a failed worker: what it had read is read again). Returns
        the committed offset."""
        async with self.lock:
            tracked = self.positions.get(tp)
            if tracked is None:
                return None
            await self._commit_moved([tracked])
            if forget:
                del self.positions[tp]
                self.events.partition_gone(tp.topic, tp.partition)
            else:
                tracked.tracker = OffsetTracker()
            return tracked.committed

    # -- the committer and the lag loop ----------------------------------------------------------
    async def committer(self) -> None:
        """Commits every tracked partition whose finished position moved, in one request."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            async with self.lock:
                await self._commit_moved(list(self.positions.values()))

    async def lag_loop(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await sleep_unless(stopping, tuning.LAG_INTERVAL)
            if stopping.is_set():
                return
            await self.refresh_lag()

    async def refresh_lag(self) -> None:
        """Retry commits that did not go through, then set OffsetLag, MaxOffsetLag and SumOffsetLag."""
        async with self.lock:
            await self._commit_moved(list(self.positions.values()))
        known = [p for p in self.positions.values() if p.committed is not None]
        if not known or self.consumer is None:
            return
        try:
            ends = await self.consumer.end_offsets([p.tp for p in known])
        except (KafkaError, OSError, asyncio.TimeoutError) as error:
            self.events.polling_failed("end offsets", repr(error))
            return
        lags = []
        for tracked in known:
            end = ends.get(tracked.tp)
            if end is None or self.positions.get(tracked.tp) is not tracked or tracked.committed is None:
                continue
            lag = max(0, end - tracked.committed)
            lags.append(lag)
            self.events.partition_lag(tracked.tp.topic, tracked.tp.partition, lag)
        self.events.total_lag(lags)

    # -- commits ---------------------------------------------------------------------------------
    async def _commit_moved(self, positions: list[Position]) -> None:
        """Commit each position's contiguous finished offset + 1 where it moved; the caller holds `lock`."""
        targets = {p: target for p in positions if (target := p.target()) is not None}
        if targets:
            await self._commit(targets)

    async def _commit(self, targets: dict[Position, int]) -> bool:
        if self.consumer is None:
            return False
        where = ", ".join(f"{p.key}@{offset}" for p, offset in targets.items())
        try:
            # aiokafka retries retriable commit errors (coordinator away) without end: bound it, so the
            # lock is not held through an outage; the lag loop and the next settle try again.
            await asyncio.wait_for(self.consumer.commit({p.tp: offset for p, offset in targets.items()}),
                                   tuning.COMMIT_TIMEOUT)
        except (CommitFailedError, IllegalStateError) as error:
            # The group moved on without us: the partitions may belong to another member now.
            self.events.commit_failed(where, f"refused, the partitions may have a new owner: {error}")
            return False
        except (KafkaError, OSError, asyncio.TimeoutError) as error:
            self.events.commit_failed(where, f"{error!r} (retried with the next one)")
            return False
        moved = 0
        for tracked, offset in targets.items():
            moved += offset - (offset if tracked.committed is None else tracked.committed)
            tracked.committed = offset
        self.events.offsets_committed(where, moved)
        return True
