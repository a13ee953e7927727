"""Lease balancing: which units one owner should take in one `acquire` call (pure, no I/O).

The KCL's rule, made explicit. Live owners are the owners of unexpired leases among the mapping's
units, plus the caller. Each should end with about ceil(units / live owners):

1. Free or expired units are taken first, up to the caller's fair share.
2. Only when no unit is free does the caller steal, and at most one lease per call: from the most
   loaded other owner, if the caller is below its share and that owner holds at least two more
   leases than the caller. Each steal narrows the gap between two owners by two, so the sum of
   squared lease counts falls with every steal: rebalancing ends, with every owner within one
   lease of every other, and never ping-pongs (after a steal the victim still holds at least as
   many as the thief).
"""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence


@dataclass(frozen=True)
class Holding:
    """What the lease table says about one unit (no entry at all means the unit is free)."""

    owner: str | None
    expires_at: float

    def live(self, now: float) -> bool:
        return self.owner is not None and now < self.expires_at


@dataclass(frozen=True)
class Plan:
    take: tuple[str, ...]  # free or expired units to take
    steal: str | None  # a live unit to take from `victim`
    victim: str | None
    target: int  # the caller's fair share
    owners: int  # live owners, the caller included


def plan_acquire(
    units: Sequence[str],
    holdings: Mapping[str, Holding],
    me: str,
    now: float,
    rng: random.Random | None = None,
) -> Plan:
    rng = rng or random.Random()
    units = list(dict.fromkeys(units))
    live: dict[str, str] = {}
    for unit in units:
        holding = holdings.get(unit)
        if holding is not None and holding.live(now):
            live[unit] = holding.owner  # type: ignore[assignment]
    counts = Counter(live.values())
    owners = set(counts) | {me}
    target = math.ceil(len(units) / len(owners)) if units else 0
    mine = counts[me]

    free = [unit for unit in units if unit not in live]
    if free:
        # Shuffled so owners racing for the same free units mostly reach for different ones.
        rng.shuffle(free)
        return Plan(tuple(free[: max(0, target - mine)]), None, None, target, len(owners))

    others = {owner: n for owner, n in counts.items() if owner != me}
    if mine >= target or not others:
        return Plan((), None, None, target, len(owners))
    most = max(others.values())
    if most < mine + 2:
        return Plan((), None, None, target, len(owners))
    victim = rng.choice(sorted(owner for owner, n in others.items() if n == most))
    unit = rng.choice([u for u, owner in live.items() if owner == victim])
    return Plan((), unit, victim, target, len(owners))
