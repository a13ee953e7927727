"""Shards of a stream (Kinesis, DynamoDB Streams): lineage, leases and checkpoints, shared by both.

`ShardLeases.discover(units, stopping)` lists the stream's shards every couple of seconds (the
source's `list_shards`), renews the leases this process holds (a lease another replica took
stops that shard's worker without a checkpoint: LEASE_LOST), and leases shards whose parents
have ended (a child never starts before its parents reached SHARD_END; a parent that left the
stream's retention counts as ended), reporting each new one to the engine. `Shard` holds one
leased shard's read position and offset tracker; `checkpoint` writes its contiguous position
through the lease (never backwards), and `finish` marks a drained shard as ended and gives its
lease up so its children may start. `ShardSource` is what a shard stream source is on top of its
service client: the Source methods both Kinesis and DynamoDB Streams share; each adds how it
connects, lists its shards, reads one (its reader) and builds records.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Mapping, Sequence

from botocore.exceptions import BotoCoreError, ClientError

from esm.aio import sleep_unless
from esm.checkpoints.base import StoreUnavailable
from esm.core.records import Disposition, Record
from esm.destinations import make_destination
from esm.errors import LeaseLost
from esm.core.offsets import OffsetTracker
from esm.observability.events import Events
from esm.core.contract import DEFAULT_CONCURRENCY, Fetched, StopReason, Units
from esm.core.decide import Mode

DISCOVERY_INTERVAL = 2.0

ListShards = Callable[[], Awaitable[list[dict[str, Any]]]]


@dataclass(eq=False)
class Shard:
    shard_id: str
    lease: Any
    child: bool  # read from TRIM_HORIZON when it has no checkpoint (its parents were read)
    tracker: OffsetTracker = field(default_factory=OffsetTracker)
    last_read: str | None = None  # the last sequence number read; reading resumes after it
    persisted: Any = None  # the last position written to the store
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # checkpoints in order, never back
    reader: Any = None  # the source's reading state (an iterator, a subscription)


def parents_of(shard: dict[str, Any]) -> list[str]:
    return [p for p in (shard.get("ParentShardId"), shard.get("AdjacentParentShardId")) if p]


class ShardLeases:
    def __init__(self, *, mapping_uuid: str, store: Any, owner: str, list_shards: ListShards, events: Events,
                 log: logging.LoggerAdapter):
        self.mapping_uuid = mapping_uuid
        self.store = store
        self.owner = owner
        self.list_shards = list_shards
        self.events = events
        self.log = log
        self.shards: dict[str, Shard] = {}
        self._finished: set[str] = set()

    # -- discovery -------------------------------------------------------------------------------
    async def discover(self, units: Units, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            await self._round(units)
            await sleep_unless(stopping, DISCOVERY_INTERVAL)

    async def _round(self, units: Units) -> None:
        try:
            listed = await self.list_shards()
        except (ClientError, BotoCoreError, OSError) as error:
            self.events.polling_failed("the stream's shards", error)
            return
        by_id = {s["ShardId"]: s for s in listed}
        try:
            await self._balance(by_id, units)
        except StoreUnavailable as error:
            self.log.warning("checkpoint store unavailable; leases unchanged this round: %s", error)

    async def _balance(self, by_id: dict[str, Any], units: Units) -> None:
        held = {lease.unit: lease for lease in await self.store.renew([s.lease for s in self.shards.values()])}
        for shard_id, shard in list(self.shards.items()):
            if shard_id in held:
                shard.lease = held[shard_id]
            elif units.running(shard_id):
                self.log.warning("lease on %s lost; stopping its worker without a checkpoint", shard_id)
                units.stop_unit(shard_id, StopReason.LEASE_LOST)
        eligible = []
        for shard_id, listed in by_id.items():
            if shard_id in self.shards or await self._ended(shard_id):
                continue
            if await self._parents_ended(parents_of(listed), by_id):
                eligible.append(shard_id)
        if not eligible:
            return
        for lease in await self.store.acquire(self.mapping_uuid, eligible, self.owner):
            child = any(p in by_id for p in parents_of(by_id[lease.unit]))
            self.shards[lease.unit] = Shard(lease.unit, lease, child)
            self.log.info("processing shard %s", lease.unit)
            units.assigned(lease.unit, lease.unit)

    async def _ended(self, shard_id: str) -> bool:
        if shard_id in self._finished:
            return True
        checkpoint = await self.store.get(self.mapping_uuid, shard_id)
        if checkpoint is not None and checkpoint.shard_end:
            self._finished.add(shard_id)
            return True
        return False

    async def _parents_ended(self, parents: list[str], by_id: dict[str, Any]) -> bool:
        """Each parent still in the stream must have reached SHARD_END (expired parents are gone)."""
        for parent in parents:
            if parent in by_id and not await self._ended(parent):
                return False
        return True

    # -- one shard ---------------------------------------------------------------------------------
    async def opened(self, shard: Shard) -> None:
        checkpoint = await self.store.get(self.mapping_uuid, shard.shard_id)
        shard.last_read = checkpoint.position if checkpoint and checkpoint.position != "SHARD_END" else None
        shard.tracker = OffsetTracker()
        shard.persisted = None

    async def checkpoint(self, shard: Shard) -> None:
        """Write the contiguous position if it moved; a failed write is retried with the next one.
        Lanes checkpoint concurrently: the lock keeps writes in order, so a checkpoint never goes back.
        Raises LeaseLost when another owner holds the shard now."""
        shard.tracker.advance()
        async with shard.lock:
            position = shard.tracker.position
            if position is None or position == shard.persisted:
                return
            try:
                await self.store.put(self.mapping_uuid, shard.shard_id, str(position), lease=shard.lease)
                shard.persisted = position
            except StoreUnavailable as error:
                self.events.commit_failed(f"the checkpoint of {shard.shard_id} (retried with the next one)", error)

    async def close(self, shard_id: str, reason: StopReason) -> None:
        """The last checkpoint by stop reason (the KCL's shutdown reasons)."""
        shard = self.shards.get(shard_id)
        if shard is None:
            return
        if reason is StopReason.FAILED:
            return  # the engine starts a new worker on the same lease, from the checkpoint
        del self.shards[shard_id]
        if reason is StopReason.LEASE_LOST:
            return
        try:
            await self.checkpoint(shard)
            if reason is StopReason.UNIT_END and shard.tracker.pending == 0:
                position = str(shard.tracker.position) if shard.tracker.position is not None else "SHARD_END"
                await self.store.put(self.mapping_uuid, shard_id, position, shard_end=True, lease=shard.lease)
                self._finished.add(shard_id)
                self.log.info("shard %s finished (SHARD_END)", shard_id)
        except LeaseLost:
            self.log.warning("lease on %s lost; its last checkpoint was not written", shard_id)
            return
        with contextlib.suppress(Exception):
            await self.store.release(shard.lease)

    async def release_all(self) -> None:
        for shard in list(self.shards.values()):
            with contextlib.suppress(Exception):
                await self.store.release(shard.lease)
        self.shards.clear()


class ShardSource:
    """The Source methods of a shard stream (Kinesis, DynamoDB Streams). A subclass sets `mapping`,
    `runtime`, `leases` (its ShardLeases), `_reader` (with `read(shard)` and `close(shard)`) and
    `_stack` (what closes its client), and builds records from raw ones (`build`)."""

    mode = Mode.STREAM
    default_batch_size = 100
    retry_cap_with_destination = None

    @staticmethod
    def concurrency_ceiling(request: Mapping[str, Any] | None) -> int:
        """No scaling rules of its own: its units and their lanes set how many invokes run at once."""
        return DEFAULT_CONCURRENCY

    mapping: Any
    runtime: Any
    leases: ShardLeases
    _reader: Any
    _stack: contextlib.AsyncExitStack
    _client: Any

    def build(self, unit: str, raw: list[dict[str, Any]]) -> list[Record]:
        raise NotImplementedError

    async def destination(self, target: str) -> Any:
        return make_destination(target, self.runtime.clients, mapping_uuid=self.mapping.uuid)

    async def close(self) -> None:
        await self.leases.release_all()
        await self._stack.aclose()
        self._client = None

    async def discover(self, units: Units, stopping: asyncio.Event) -> None:
        await self.leases.discover(units, stopping)

    def still_assigned(self, unit: str) -> bool:
        return unit in self.leases.shards

    async def open(self, unit: str) -> bool:
        shard = self.leases.shards.get(unit)
        if shard is None:
            return False
        await self._reader.close(shard)
        await self.leases.opened(shard)
        return True

    async def fetch(self, unit: str) -> Fetched:
        shard = self.leases.shards[unit]
        raw, ended = await self._reader.read(shard)
        if not raw:
            return Fetched([], ended)
        records = self.build(unit, raw)
        shard.tracker.register_many([record.token for record in records])
        shard.last_read = records[-1].item_id
        return Fetched(records, ended)

    async def settle(self, unit: str, tokens: Sequence[Any], disposition: Disposition) -> None:
        shard = self.leases.shards.get(unit)
        if shard is None:
            return
        shard.tracker.finish_many(tokens)
        await self.leases.checkpoint(shard)

    async def close_unit(self, unit: str, reason: StopReason) -> None:
        shard = self.leases.shards.get(unit)
        if shard is not None and self._reader is not None:
            await self._reader.close(shard)
        await self.leases.close(unit, reason)
