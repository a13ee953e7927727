"""The checkpoint store interface: where a unit's position lives, and who may move it.

A *unit* is a unit of order (a Kinesis shard id); a *position* is an opaque string (a sequence
number). The store never compares positions: the caller's offset tracker owns ordering, and calls
`put` only with a position whose records were processed, filtered, dead-lettered or dropped
(behaviour §9.6). With many replicas, a unit is worked by whoever holds its *lease*; a checkpoint written
under a lease is fenced by it (the KCL model): once the lease has passed to another owner, the old
owner's `put` raises `LeaseLost` instead of moving the position.

Lease semantics shared by every store:

- `Lease.counter` is a fencing epoch. It changes on every change of hands (acquire, take over an
  expired lease, steal) and never on a heartbeat, so a `Lease` object stays valid for `put` for as
  long as its holder keeps it, and a holder that lost a unit and later got it back cannot write
  with its old lease.
- `acquire` returns only the leases it took in that call; the caller keeps the ones it holds and
  heartbeats them with `renew` every `lease_duration / 3`.
- `renew` returns the leases still held (with a later `expires_at`); a lease missing from the
  answer was lost and its worker must stop without a checkpoint.
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from esm.errors import EsmError, LeaseLost

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "DEFAULT_LEASE_DURATION",
    "Lease",
    "LeaseLost",
    "StoreUnavailable",
    "default_owner",
]

DEFAULT_LEASE_DURATION = 10.0


@dataclass(frozen=True)
class Checkpoint:
    """The last position a unit may resume after; `shard_end` says the unit was read to its end."""

    position: str
    shard_end: bool = False


@dataclass(frozen=True)
class Lease:
    """The right to work `unit` of mapping `mapping_uuid` and to move its checkpoint.

    `expires_at` is an epoch-seconds deadline (replicas compare it with their own clocks, so their
    clocks must agree to well within a lease duration, as NTP gives).
    """

    unit: str
    owner: str
    counter: int
    expires_at: float
    mapping_uuid: str

    def expired(self, now: float) -> bool:
        return now >= self.expires_at


class StoreUnavailable(EsmError):
    """The store could not be reached or answered with an error other than a lost condition."""

    retriable = True


def default_owner() -> str:
    """A lease owner id unique to this process: host, pid and a random suffix.

    Unique per process on purpose: a restarted replica must not inherit (and double-run) the units
    its previous incarnation held; it takes them over once they expire.
    """
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


@runtime_checkable
class CheckpointStore(Protocol):
    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def get(self, mapping_uuid: str, unit: str) -> Checkpoint | None:
        """The unit's checkpoint, or None if none was ever written."""
        ...

    async def put(
        self,
        mapping_uuid: str,
        unit: str,
        position: str,
        *,
        shard_end: bool = False,
        lease: Lease | None = None,
    ) -> None:
        """Durably record `position`. With `lease`, only while that lease (owner and counter) is
        still the unit's current one; otherwise raise LeaseLost and leave the checkpoint alone."""
        ...

    async def acquire(
        self, mapping_uuid: str, units: list[str], owner: str, now: float | None = None
    ) -> list[Lease]:
        """Take leases for `owner` among `units` (the units that need an owner now; leave out
        finished ones) and return those newly taken. Takes free or expired leases up to the fair
        share ceil(len(units) / live owners); when none is free, steals at most one lease from
        the most loaded owner if that owner holds at least two more than `owner` does."""
        ...

    async def renew(self, leases: list[Lease], now: float | None = None) -> list[Lease]:
        """Extend `leases`; return those still held, each with its new `expires_at`.

        Raises StoreUnavailable when the store cannot answer: nothing is known to be lost then,
        the counters are unchanged, and each lease's old `expires_at` says how long its worker
        may go on while the caller retries at its next heartbeat."""
        ...

    async def release(self, lease: Lease) -> None:
        """Give the unit up now (shutdown, shard end), so another owner need not wait for expiry.
        Releasing a lease that was already lost does nothing."""
        ...
