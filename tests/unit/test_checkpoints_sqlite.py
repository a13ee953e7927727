"""The embedded SQLite checkpoint store (esm/checkpoints/sqlite.py): durable positions that survive
a restart (behaviour §9.6: a checkpoint is where processing resumes, so losing one replays or skips), and
single-owner leases that still fence a released or re-granted lease like the shared store does."""

from __future__ import annotations

import sqlite3

import pytest

from esm.aws import AwsClients
from esm.checkpoints import Checkpoint, CheckpointStore, LeaseLost, make_checkpoint_store
from esm.checkpoints.dynamodb import DynamoDbCheckpointStore
from esm.checkpoints.sqlite import SqliteCheckpointStore
from esm.config.settings import AwsSettings, CheckpointSettings

MAPPING = "6f1c8a52-0000-5000-8000-000000000001"
SHARD = "shardId-000000000000"


@pytest.fixture
def db_path(tmp_path):
    # Nested folders that do not exist yet: open() must create them.
    return str(tmp_path / "state" / "nested" / "checkpoints.db")


async def opened(path: str) -> SqliteCheckpointStore:
    store = SqliteCheckpointStore(path)
    await store.open()
    return store


async def test_get_of_an_unknown_unit_is_none(db_path):
    """A unit never checkpointed has no checkpoint (the source then uses StartingPosition)."""
    store = await opened(db_path)
    try:
        assert await store.get(MAPPING, SHARD) is None
    finally:
        await store.close()


async def test_put_then_get_returns_the_last_position(db_path):
    """A checkpoint is the last position put for (mapping, unit); later puts replace it."""
    store = await opened(db_path)
    try:
        await store.put(MAPPING, SHARD, "49590338271490256608559692538361571095921575989136588898")
        await store.put(MAPPING, SHARD, "49590338271490256608559692538361571095921575989136588999")
        assert await store.get(MAPPING, SHARD) == Checkpoint(
            "49590338271490256608559692538361571095921575989136588999", shard_end=False
        )
    finally:
        await store.close()


async def test_checkpoints_are_kept_per_mapping_and_unit(db_path):
    """The key is (mapping, unit): the same shard id under two mappings, or two shards under one
    mapping, never share a position."""
    store = await opened(db_path)
    try:
        await store.put(MAPPING, SHARD, "100")
        await store.put("other-mapping", SHARD, "200")
        await store.put(MAPPING, "shardId-000000000001", "300")
        assert (await store.get(MAPPING, SHARD)).position == "100"
        assert (await store.get("other-mapping", SHARD)).position == "200"
        assert (await store.get(MAPPING, "shardId-000000000001")).position == "300"
    finally:
        await store.close()


async def test_checkpoint_survives_close_and_reopen(db_path):
    """Durability: what put returned for is read back by a new store on the same file (a process
    restart), including the shard_end flag that lets child shards start."""
    store = await opened(db_path)
    await store.put(MAPPING, SHARD, "12345")
    await store.put(MAPPING, "shardId-000000000001", "777", shard_end=True)
    await store.close()

    reopened = await opened(db_path)
    try:
        assert await reopened.get(MAPPING, SHARD) == Checkpoint("12345", shard_end=False)
        assert await reopened.get(MAPPING, "shardId-000000000001") == Checkpoint("777", shard_end=True)
    finally:
        await reopened.close()


async def test_shard_end_flag_is_set_and_cleared_by_put(db_path):
    """shard_end is part of each put, not sticky: the last put decides it."""
    store = await opened(db_path)
    try:
        await store.put(MAPPING, SHARD, "1", shard_end=True)
        assert (await store.get(MAPPING, SHARD)).shard_end is True
        await store.put(MAPPING, SHARD, "2")
        assert await store.get(MAPPING, SHARD) == Checkpoint("2", shard_end=False)
    finally:
        await store.close()


async def test_database_is_in_wal_mode(db_path):
    """WAL mode (readers never block the one writer; each commit is an append), set on the file
    itself so any tool opening it sees it."""
    store = await opened(db_path)
    try:
        await store.put(MAPPING, SHARD, "1")
        with sqlite3.connect(db_path) as conn:
            assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            # The row is committed: a second connection sees it while the store is still open.
            assert conn.execute("SELECT position FROM checkpoints").fetchall() == [("1",)]
    finally:
        await store.close()


async def test_single_owner_acquires_every_unit_once(db_path):
    """One process owns everything: acquire grants each unit not yet granted, leases do not expire,
    and a second acquire returns only units that were not granted before."""
    store = await opened(db_path)
    try:
        first = await store.acquire(MAPPING, ["a", "b"], "me", now=0.0)
        assert sorted(lease.unit for lease in first) == ["a", "b"]
        assert all(lease.owner == "me" and not lease.expired(1e12) for lease in first)
        second = await store.acquire(MAPPING, ["a", "b", "c"], "me", now=0.0)
        assert [lease.unit for lease in second] == ["c"]
        assert await store.renew(first + second, now=1e12) == first + second
    finally:
        await store.close()


async def test_put_with_a_held_lease_writes(db_path):
    """A leased put while the lease is held moves the checkpoint."""
    store = await opened(db_path)
    try:
        [lease] = await store.acquire(MAPPING, [SHARD], "me")
        await store.put(MAPPING, SHARD, "10", lease=lease)
        assert (await store.get(MAPPING, SHARD)).position == "10"
    finally:
        await store.close()


async def test_released_or_regranted_lease_cannot_checkpoint(db_path):
    """Fencing: after release the old lease raises LeaseLost; a later acquire of the same unit
    gets a new counter, and the old lease still raises. The checkpoint does not move."""
    store = await opened(db_path)
    try:
        [old] = await store.acquire(MAPPING, [SHARD], "me")
        await store.put(MAPPING, SHARD, "10", lease=old)
        await store.release(old)
        with pytest.raises(LeaseLost):
            await store.put(MAPPING, SHARD, "11", lease=old)
        [new] = await store.acquire(MAPPING, [SHARD], "me")
        assert new.counter > old.counter
        with pytest.raises(LeaseLost):
            await store.put(MAPPING, SHARD, "12", lease=old)
        assert await store.renew([old, new]) == [new]
        assert (await store.get(MAPPING, SHARD)).position == "10"
    finally:
        await store.close()


async def test_lease_for_another_unit_cannot_checkpoint(db_path):
    """A lease covers one (mapping, unit): using it for another unit raises LeaseLost."""
    store = await opened(db_path)
    try:
        [lease] = await store.acquire(MAPPING, ["a"], "me")
        with pytest.raises(LeaseLost):
            await store.put(MAPPING, "b", "1", lease=lease)
        assert await store.get(MAPPING, "b") is None
    finally:
        await store.close()


def test_factory_picks_the_configured_store(tmp_path):
    """`checkpoints: {sqlite: path}` builds the SQLite store, `{dynamodb: {table}}` the DynamoDB
    one; both satisfy the CheckpointStore protocol."""
    clients = AwsClients(AwsSettings())
    sqlite_store = make_checkpoint_store(CheckpointSettings(sqlite=str(tmp_path / "c.db")), clients)
    assert isinstance(sqlite_store, SqliteCheckpointStore) and sqlite_store.path == str(tmp_path / "c.db")
    dynamo_store = make_checkpoint_store(CheckpointSettings(sqlite=None, dynamodb_table="esm-leases"), clients)
    assert isinstance(dynamo_store, DynamoDbCheckpointStore) and dynamo_store.table == "esm-leases"
    assert isinstance(sqlite_store, CheckpointStore) and isinstance(dynamo_store, CheckpointStore)
