"""The embedded checkpoint store: one SQLite file, one process owning every unit.

Checkpoints live in a WAL-mode database (`synchronous=FULL`: each `put` is its own committed,
fsynced transaction, so a position that `put` returned for survives a crash). All SQLite work
runs on one dedicated thread holding the one connection, so the event loop never blocks on disk.
Leases are kept in memory only: this store serves a single esm process, so `acquire` grants every
unit not already granted and leases never expire; `release` and a second `acquire` still change
the fencing counter, so a worker that released its unit cannot write with its old lease. Two
processes must not share one file; use the DynamoDB store for replicas.
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, TypeVar

from esm.checkpoints.base import Checkpoint, Lease
from esm.errors import LeaseLost

T = TypeVar("T")

SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (
    mapping    TEXT NOT NULL,
    unit       TEXT NOT NULL,
    position   TEXT NOT NULL,
    shard_end  INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL,
    PRIMARY KEY (mapping, unit)
) WITHOUT ROWID
"""

UPSERT = """
INSERT INTO checkpoints (mapping, unit, position, shard_end, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (mapping, unit) DO UPDATE SET
    position = excluded.position, shard_end = excluded.shard_end, updated_at = excluded.updated_at
"""


class SqliteCheckpointStore:
    def __init__(self, path: str, *, clock: Callable[[], float] = time.time):
        self.path = path
        self.clock = clock
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        # (mapping, unit) -> the one lease granted for it; counters persist across releases.
        self._leases: dict[tuple[str, str], Lease] = {}
        self._counters: dict[tuple[str, str], int] = {}

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="esm-sqlite")
        try:
            self._conn = await self._run(self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:" and not self.path.startswith("file:"):
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, uri=self.path.startswith("file:"))
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(SCHEMA)
        return conn

    async def close(self) -> None:
        if self._executor is None:
            return
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                await self._run(conn.close)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None
            self._leases.clear()

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("checkpoint store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("checkpoint store is not open")
        return self._conn

    async def execute(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run `fn(connection)` on the store's one thread: the control API's mapping table
        (esm.checkpoints.mappings) lives in this file on this connection, not a second one."""
        return await self._run(lambda: fn(self._db()))

    # ------------------------------------------------------------------ checkpoints

    async def get(self, mapping_uuid: str, unit: str) -> Checkpoint | None:
        def read() -> Checkpoint | None:
            row = self._db().execute(
                "SELECT position, shard_end FROM checkpoints WHERE mapping = ? AND unit = ?",
                (mapping_uuid, unit),
            ).fetchone()
            return None if row is None else Checkpoint(row[0], bool(row[1]))

        return await self._run(read)

    async def put(
        self,
        mapping_uuid: str,
        unit: str,
        position: str,
        *,
        shard_end: bool = False,
        lease: Lease | None = None,
    ) -> None:
        if lease is not None:
            self._check(mapping_uuid, unit, lease)
        now = self.clock()

        def write() -> None:
            # Autocommit mode: the statement is its own durable transaction.
            self._db().execute(UPSERT, (mapping_uuid, unit, position, int(shard_end), now))

        await self._run(write)

    def _check(self, mapping_uuid: str, unit: str, lease: Lease) -> None:
        current = self._leases.get((mapping_uuid, unit))
        if (
            current is None
            or lease.mapping_uuid != mapping_uuid
            or lease.unit != unit
            or (current.owner, current.counter) != (lease.owner, lease.counter)
        ):
            raise LeaseLost(f"lease on {mapping_uuid}/{unit} is no longer held by {lease.owner}")

    # ------------------------------------------------------------------ leases (single owner)

    async def acquire(
        self, mapping_uuid: str, units: list[str], owner: str, now: float | None = None
    ) -> list[Lease]:
        taken = []
        for unit in dict.fromkeys(units):
            key = (mapping_uuid, unit)
            if key in self._leases:
                continue
            counter = self._counters.get(key, 0) + 1
            self._counters[key] = counter
            lease = Lease(unit, owner, counter, math.inf, mapping_uuid)
            self._leases[key] = lease
            taken.append(lease)
        return taken

    async def renew(self, leases: list[Lease], now: float | None = None) -> list[Lease]:
        return [lease for lease in leases if self._leases.get((lease.mapping_uuid, lease.unit)) == lease]

    async def release(self, lease: Lease) -> None:
        key = (lease.mapping_uuid, lease.unit)
        if self._leases.get(key) == lease:
            del self._leases[key]
