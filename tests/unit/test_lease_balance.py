"""Lease balancing (esm/checkpoints/balance.py): which units one owner takes in one acquire call.
The KCL model (docs/design.md "Who uses it": Kinesis shards shared through leases): take free or expired
leases up to the fair share ceil(units / live owners), steal at most one lease per call, and
converge to every owner within one lease of every other."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from esm.checkpoints.balance import Holding, plan_acquire

NOW = 1_000.0
LIVE = NOW + 10
EXPIRED = NOW - 1


def units(n: int) -> list[str]:
    return [f"shard-{i}" for i in range(n)]


def held(assignment: dict[str, str], expires_at: float = LIVE) -> dict[str, Holding]:
    return {unit: Holding(owner, expires_at) for unit, owner in assignment.items()}


def test_alone_with_an_empty_table_takes_every_unit():
    """The only live owner's fair share is every unit."""
    plan = plan_acquire(units(4), {}, "a", NOW, random.Random(1))
    assert sorted(plan.take) == units(4)
    assert (plan.steal, plan.target, plan.owners) == (None, 4, 1)


def test_free_units_are_taken_only_up_to_the_fair_share():
    """Another live owner holds 3 of 10: two live owners, share ceil(10/2) = 5, so 5 of the 7 free."""
    table = held({u: "a" for u in units(10)[:3]})
    plan = plan_acquire(units(10), table, "b", NOW, random.Random(1))
    assert len(plan.take) == 5 and set(plan.take) <= set(units(10)[3:])
    assert plan.steal is None and plan.target == 5


def test_expired_leases_are_free_and_their_owner_is_not_counted():
    """An owner whose leases all expired is not live: the caller's share is every unit, taken over."""
    table = held({u: "a" for u in units(4)}, expires_at=EXPIRED)
    plan = plan_acquire(units(4), table, "b", NOW, random.Random(1))
    assert sorted(plan.take) == units(4)
    assert plan.owners == 1


def test_a_lease_is_expired_at_its_deadline():
    """expires_at is the deadline: at now == expires_at the lease is no longer live."""
    table = held({"shard-0": "a"}, expires_at=NOW)
    assert plan_acquire(["shard-0"], table, "b", NOW, random.Random(1)).take == ("shard-0",)
    table = held({"shard-0": "a"}, expires_at=NOW + 0.001)
    assert plan_acquire(["shard-0"], table, "b", NOW, random.Random(1)).take == ()


def test_free_units_come_before_stealing():
    """While any unit is free the caller takes free ones and steals nothing, even below its share."""
    table = held({u: "a" for u in units(4)[:3]})  # a holds 3, one free; b's share is 2
    plan = plan_acquire(units(4), table, "b", NOW, random.Random(1))
    assert plan.take == ("shard-3",) and plan.steal is None


def test_at_most_one_steal_per_call():
    """A newcomer facing one owner of all 4 units steals exactly one lease, from that owner."""
    table = held({u: "a" for u in units(4)})
    plan = plan_acquire(units(4), table, "b", NOW, random.Random(1))
    assert plan.take == () and plan.victim == "a" and plan.steal in units(4)
    assert plan.target == 2


def test_steals_from_the_most_loaded_owner():
    """The victim is the owner holding the most leases."""
    table = held({**{u: "a" for u in units(6)[:2]}, **{u: "c" for u in units(6)[2:]}})
    plan = plan_acquire(units(6), table, "b", NOW, random.Random(1))
    assert plan.victim == "c" and table[plan.steal].owner == "c"


def test_no_steal_when_the_gap_is_one():
    """5 units, a holds 3 and b 2: already within one lease of each other, so b does not steal
    (stealing would only move the imbalance to a)."""
    table = held({**{u: "a" for u in units(5)[:3]}, **{u: "b" for u in units(5)[3:]}})
    plan = plan_acquire(units(5), table, "b", NOW, random.Random(1))
    assert plan.take == () and plan.steal is None


def test_steals_from_an_owner_at_its_share_when_the_gap_is_two():
    """4 units, a and b hold 2 each (exactly their share of ceil(4/3) = 2): newcomer c with none
    still steals one, otherwise it would wait forever with nothing (the KCL's rule)."""
    table = held({**{u: "a" for u in units(4)[:2]}, **{u: "b" for u in units(4)[2:]}})
    plan = plan_acquire(units(4), table, "c", NOW, random.Random(1))
    assert plan.steal is not None and plan.victim in ("a", "b") and plan.target == 2


def test_no_steal_at_or_above_the_share():
    """An owner already at its share does not steal, even from one holding two more: 9 units,
    a 5, b 3, c 1, share ceil(9/3) = 3. b stays put; c, below its share, is the one to steal."""
    table = held({**{u: "a" for u in units(9)[:5]}, **{u: "b" for u in units(9)[5:8]}, "shard-8": "c"})
    assert plan_acquire(units(9), table, "b", NOW, random.Random(1)).steal is None
    assert plan_acquire(units(9), table, "c", NOW, random.Random(1)).victim == "a"


def test_units_outside_the_list_are_ignored():
    """Only the units passed in are balanced: leases on other units (finished shards) neither
    count toward an owner's load nor make it live."""
    table = held({"old-shard": "a"})
    plan = plan_acquire(units(2), table, "b", NOW, random.Random(1))
    assert sorted(plan.take) == units(2) and plan.owners == 1


def simulate_round(all_units, table, owners, rng):
    """Every owner in turn runs one acquire against the current table; returns whether anything
    changed hands."""
    changed = False
    for owner in owners:
        plan = plan_acquire(all_units, table, owner, NOW, rng)
        for unit in plan.take + ((plan.steal,) if plan.steal else ()):
            table[unit] = Holding(owner, LIVE)
            changed = True
    return changed


@settings(max_examples=200, deadline=None)
@given(
    n_units=st.integers(min_value=0, max_value=40),
    n_owners=st.integers(min_value=1, max_value=7),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
    start=st.data(),
)
def test_repeated_acquires_converge_to_an_even_spread(n_units, n_owners, seed, start):
    """From any starting table (some units held live by some owners, some expired, some free),
    owners calling acquire in rounds reach a fixed point within a bounded number of rounds where
    every unit has a live owner and lease counts differ by at most one; stealing never ping-pongs."""
    rng = random.Random(seed)
    owners = [f"owner-{i}" for i in range(n_owners)]
    all_units = units(n_units)
    table = {}
    for unit in all_units:
        state = start.draw(st.sampled_from(["free", "expired", *owners]))
        if state == "expired":
            table[unit] = Holding(owners[0], EXPIRED)
        elif state != "free":
            table[unit] = Holding(state, LIVE)

    # Each steal lowers the sum of squared counts by at least 2, and free units go in the first
    # rounds, so n_units**2 rounds is a generous bound.
    for _ in range(n_units * n_units + 2):
        if not simulate_round(all_units, table, owners, rng):
            break
    else:
        raise AssertionError("acquire rounds did not reach a fixed point")

    assert all(table[u].live(NOW) for u in all_units)
    counts = Counter(table[u].owner for u in all_units)
    loads = [counts[o] for o in owners]
    assert max(loads) - min(loads) <= 1, loads
    assert not simulate_round(all_units, table, owners, rng)  # stable: nobody moves again
