"""The DynamoDB checkpoint store against moto's DynamoDB (the `backends` fixture): Kinesis shards
shared by replicas through leases in one table, the KCL model (docs/design.md "Who uses it", "Models to
imitate": checkpoints fenced by the lease), and behaviour §9.6: a checkpoint moves only under a lease
that is still held, so a replica that lost a shard can never move it past what the new owner
processes. Time is passed explicitly (`now`); nothing sleeps."""

from __future__ import annotations

import asyncio
import contextlib
import random
import uuid
from collections import Counter

import pytest

from esm.aws import AwsClients
from esm.checkpoints import Checkpoint, Lease, LeaseLost
from esm.checkpoints.dynamodb import DynamoDbCheckpointStore
from esm.config.settings import AwsSettings

pytestmark = pytest.mark.backends

MAPPING = "0b7e54d2-1111-5000-8000-00000000abcd"
T0 = 1_700_000_000.0
DURATION = 10.0


def shards(n: int) -> list[str]:
    return [f"shardId-{i:012d}" for i in range(n)]


@contextlib.asynccontextmanager
async def replicas(n: int, table: str | None = None, seed: int = 7):
    """n stores on one table, each with its own client, as n esm replicas would have."""
    table = table or f"esm-leases-{uuid.uuid4().hex[:10]}"
    stores = [
        DynamoDbCheckpointStore(table, AwsClients(AwsSettings()), lease_duration=DURATION, rng=random.Random(seed + i))
        for i in range(n)
    ]
    try:
        for store in stores:
            await store.open()
        yield stores
    finally:
        for store in stores:
            await store.close()


async def owners_in_table(table: str, mapping: str = MAPPING) -> dict[str, str | None]:
    """unit -> owner, read straight from the table (not through the store under test)."""
    async with AwsClients(AwsSettings()).client("dynamodb") as client:
        items = []
        async for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
            items += page["Items"]
    return {
        item["unit"]["S"]: item.get("owner", {}).get("S")
        for item in items
        if item["mapping"]["S"] == mapping
    }


class Replica:
    """One replica's lease loop: heartbeat what it holds, then acquire more (the caller's job in
    the daemon), recording what it holds."""

    def __init__(self, store: DynamoDbCheckpointStore, name: str):
        self.store, self.name = store, name
        self.held: dict[str, Lease] = {}

    async def heartbeat(self, now: float) -> list[Lease]:
        kept = await self.store.renew(list(self.held.values()), now=now)
        self.held = {lease.unit: lease for lease in kept}
        return kept

    async def acquire(self, units: list[str], now: float) -> list[Lease]:
        taken = await self.store.acquire(MAPPING, units, self.name, now=now)
        self.held.update({lease.unit: lease for lease in taken})
        return taken


async def settle(members: list[Replica], units: list[str], now: float, max_rounds: int = 20) -> int:
    """Rounds of heartbeat + acquire for every replica until a round changes nothing."""
    for rounds in range(1, max_rounds + 1):
        changed = False
        for member in members:
            before = set(member.held)
            await member.heartbeat(now)
            changed |= bool(await member.acquire(units, now)) or set(member.held) != before
        if not changed:
            return rounds
    raise AssertionError(f"leases did not settle in {max_rounds} rounds")


async def test_open_creates_the_table_once(backends):
    """open() creates a missing table (PAY_PER_REQUEST, hash key lease_key); a second replica
    opening the same table finds it and uses it."""
    table = f"esm-leases-{uuid.uuid4().hex[:10]}"
    async with replicas(2, table):
        async with AwsClients(AwsSettings()).client("dynamodb") as client:
            described = (await client.describe_table(TableName=table))["Table"]
    assert described["KeySchema"] == [{"AttributeName": "lease_key", "KeyType": "HASH"}]
    assert described["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"


async def test_checkpoint_put_get_and_shard_end(backends):
    """get is None before any put; put records the position and the shard_end flag; the item is
    keyed by mapping and unit."""
    async with replicas(1) as [store]:
        assert await store.get(MAPPING, "shardId-000000000000") is None
        await store.put(MAPPING, "shardId-000000000000", "4959033827149025660855969253836157")
        await store.put(MAPPING, "shardId-000000000001", "4959033827149025660855969253836999", shard_end=True)
        await store.put("another-mapping", "shardId-000000000000", "1")
        assert await store.get(MAPPING, "shardId-000000000000") == Checkpoint("4959033827149025660855969253836157")
        assert await store.get(MAPPING, "shardId-000000000001") == Checkpoint(
            "4959033827149025660855969253836999", shard_end=True
        )


async def test_two_owners_split_four_shards_two_each(backends):
    """Two replicas acquiring in turns end with 2 of 4 shards each, and the table agrees with
    what each believes it holds."""
    units = shards(4)
    async with replicas(2) as stores:
        table = stores[0].table
        a, b = Replica(stores[0], "a"), Replica(stores[1], "b")
        await settle([a, b], units, T0)
        assert (len(a.held), len(b.held)) == (2, 2)
        assert await owners_in_table(table) == {**{u: "a" for u in a.held}, **{u: "b" for u in b.held}}


async def test_expired_leases_pass_to_the_live_owner(backends):
    """A stops heartbeating; once its leases pass their deadline (a later `now`), B's acquire takes
    every one of them. Before the deadline, B takes nothing."""
    units = shards(4)
    async with replicas(2) as stores:
        a, b = Replica(stores[0], "a"), Replica(stores[1], "b")
        await settle([a, b], units, T0)
        a_units = set(a.held)

        await b.heartbeat(T0 + 6)  # B keeps its own leases alive until T0 + 16
        assert await b.acquire(units, T0 + 9) == []  # A's run to T0 + 10
        taken = await b.acquire(units, T0 + 11)
        assert {lease.unit for lease in taken} == a_units
        assert all(lease.owner == "b" and lease.counter > a.held[lease.unit].counter for lease in taken)
        assert set((await owners_in_table(stores[0].table)).values()) == {"b"}


async def test_heartbeat_keeps_leases_from_expiring(backends):
    """A's renew moves its deadline: at a time past the first deadline but before the renewed one,
    B (alone with nothing) may only steal one lease, not take A's expired set."""
    units = shards(4)
    async with replicas(2) as stores:
        a, b = Replica(stores[0], "a"), Replica(stores[1], "b")
        await a.acquire(units, T0)
        assert len(await a.heartbeat(T0 + 6)) == 4
        taken = await b.acquire(units, T0 + 11)
        assert len(taken) == 1  # a steal from a live owner, not a takeover of expired leases


async def test_stale_lease_cannot_checkpoint_and_the_checkpoint_survives_handover(backends):
    """behaviour §9.6 with leases: A checkpoints under its lease; after B takes the expired lease, A's put
    with its stale lease raises LeaseLost and does not move the checkpoint; B resumes from A's last
    checkpoint and moves it under its own lease; A's heartbeat drops the lost lease."""
    unit = "shardId-000000000000"
    async with replicas(2) as stores:
        a, b = Replica(stores[0], "a"), Replica(stores[1], "b")
        [a_lease] = await a.acquire([unit], T0)
        await a.store.put(MAPPING, unit, "1000", lease=a_lease)

        [b_lease] = await b.acquire([unit], T0 + DURATION + 1)
        with pytest.raises(LeaseLost):
            await a.store.put(MAPPING, unit, "2000", lease=a_lease)
        assert await b.store.get(MAPPING, unit) == Checkpoint("1000")

        await b.store.put(MAPPING, unit, "1500", lease=b_lease)
        assert await a.store.get(MAPPING, unit) == Checkpoint("1500")
        assert await a.heartbeat(T0 + DURATION + 2) == []
        assert [lease.unit for lease in await b.heartbeat(T0 + DURATION + 2)] == [unit]


class PausesAfterReading(DynamoDbCheckpointStore):
    """A store whose acquire runs `after_read` between reading the table and writing: a way to
    place another replica's call exactly inside the read-decide-write window."""

    after_read = None

    async def _read_leases(self, mapping_uuid, units):
        found = await super()._read_leases(mapping_uuid, units)
        if self.after_read is not None:
            await self.after_read()
        return found


async def test_a_heartbeat_between_read_and_take_wins(backends):
    """B reads A's lease as expired, then A heartbeats before B writes: B's take must fail (the
    take is conditional on the deadline still being past), so A keeps a lease it renewed."""
    unit = "shardId-000000000000"
    async with replicas(1) as [a_store]:
        b_store = PausesAfterReading(a_store.table, AwsClients(AwsSettings()), lease_duration=DURATION)
        await b_store.open()
        try:
            [a_lease] = await a_store.acquire(MAPPING, [unit], "a", now=T0)

            async def a_heartbeats():
                assert await a_store.renew([a_lease], now=T0 + 10.5) != []

            b_store.after_read = a_heartbeats
            assert await b_store.acquire(MAPPING, [unit], "b", now=T0 + 11) == []
            await a_store.put(MAPPING, unit, "3", lease=a_lease)
            assert await owners_in_table(a_store.table) == {unit: "a"}
        finally:
            await b_store.close()


async def test_the_counter_fences_the_same_owner_after_it_lost_the_unit(backends):
    """Fencing is on owner AND counter: when A's lease expires and A itself takes the unit again,
    a worker still holding A's old lease cannot checkpoint (an owner-only check would let it)."""
    unit = "shardId-000000000000"
    async with replicas(1) as [store]:
        [old] = await store.acquire(MAPPING, [unit], "a", now=T0)
        [new] = await store.acquire(MAPPING, [unit], "a", now=T0 + DURATION + 1)
        assert new.counter > old.counter
        with pytest.raises(LeaseLost):
            await store.put(MAPPING, unit, "9", lease=old)
        assert await store.renew([old], now=T0 + DURATION + 2) == []
        await store.put(MAPPING, unit, "9", lease=new)
        assert (await store.get(MAPPING, unit)).position == "9"


async def test_heartbeats_do_not_invalidate_the_lease_a_worker_holds(backends):
    """The counter changes only with ownership: a worker's lease object keeps checkpointing after
    any number of heartbeats by the lease loop."""
    unit = "shardId-000000000000"
    async with replicas(1) as [store]:
        [lease] = await store.acquire(MAPPING, [unit], "a", now=T0)
        for beat in range(1, 4):
            [renewed] = await store.renew([lease], now=T0 + 3 * beat)
            assert renewed.expires_at == T0 + 3 * beat + DURATION
        await store.put(MAPPING, unit, "42", lease=lease)
        assert (await store.get(MAPPING, unit)).position == "42"


async def test_released_lease_is_free_at_once_and_fenced(backends):
    """release gives the unit up before its deadline: another owner takes it immediately, and the
    released lease can no longer checkpoint."""
    unit = "shardId-000000000000"
    async with replicas(2) as stores:
        a, b = Replica(stores[0], "a"), Replica(stores[1], "b")
        [a_lease] = await a.acquire([unit], T0)
        assert await b.acquire([unit], T0 + 1) == []
        await a.store.release(a_lease)
        [b_lease] = await b.acquire([unit], T0 + 1)
        assert b_lease.owner == "b"
        with pytest.raises(LeaseLost):
            await a.store.put(MAPPING, unit, "5", lease=a_lease)
        await a.store.release(a_lease)  # releasing a lost lease does nothing
        assert await owners_in_table(stores[0].table) == {unit: "b"}


async def test_a_third_owner_joining_rebalances_by_stealing(backends):
    """6 shards held 3 and 3; a third replica joins and, one steal per acquire call, the shards
    spread 2/2/2; the victims' heartbeats drop the stolen leases and their stale puts fail."""
    units = shards(6)
    async with replicas(3) as stores:
        a, b, c = (Replica(store, name) for store, name in zip(stores, "abc"))
        await settle([a, b], units, T0)
        assert (len(a.held), len(b.held)) == (3, 3)
        before = {**a.held, **b.held}

        first = await c.acquire(units, T0 + 1)
        assert len(first) == 1  # at most one steal per call
        await settle([a, b, c], units, T0 + 2)
        assert sorted(len(r.held) for r in (a, b, c)) == [2, 2, 2]
        assert await owners_in_table(stores[0].table) == {
            unit: r.name for r in (a, b, c) for unit in r.held
        }
        for unit in c.held:
            with pytest.raises(LeaseLost):
                await stores[0].put(MAPPING, unit, "7", lease=before[unit])


async def test_concurrent_acquires_never_assign_a_unit_twice(backends):
    """Three replicas call acquire at the same moment on the same free shards: every conditional
    write is a compare-and-set on what was read, so each shard is won by exactly one replica, the
    returned leases are disjoint and cover every shard, and the table names the same owners."""
    units = shards(12)
    async with replicas(3) as stores:
        results = await asyncio.gather(
            *(store.acquire(MAPPING, units, f"r{i}", now=T0) for i, store in enumerate(stores))
        )
        won = Counter(lease.unit for leases in results for lease in leases)
        assert won == Counter(units)  # every unit exactly once
        expected = {lease.unit: lease.owner for leases in results for lease in leases}
        assert await owners_in_table(stores[0].table) == expected
