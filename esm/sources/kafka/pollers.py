"""Kafka provisioned mode (behaviour §7, §9.11): a mapping's event pollers and the poller groups
that share event poller units.

What a poller is in esm. Lambda's Kafka event poller is a compute unit that reads some partitions
(never more pollers than partitions) and carries up to 5 MB/s or 5 concurrent invokes. esm reads
every partition it owns through one consumer, so a poller here is that capacity: the right for
up to INVOKES_PER_POLLER batches of the mapping to be in flight at once. `PollerPool` is the
in-flight limiter the engine's lanes pass through (`async with pool`):

- `MinimumPollers` stay warm: the pool never shrinks below them, so an idle mapping keeps their
  capacity open and a burst starts at once on min x 5 invokes (within the partitions owned).
- `MaximumPollers` caps them: under a backlog (a batch waited for capacity during a tick) the pool
  grows by at least one poller a tick, at once to what the waiting batches need, never past
  MaximumPollers nor the partitions this consumer owns; idle ticks give one poller back at a time.
- Without ProvisionedPollerConfig (on-demand) there is no pool: every owned partition is worked
  and counts as one poller, as before.

`PollerGroup`: mappings naming the same `PollerGroupName` in one daemon share event poller units.
A unit serves POLLERS_PER_UNIT pollers whichever mapping they belong to, so the group's units are
its pollers' total / 10, rounded up once for the group (two mappings of 3 pollers: one unit, not
two), and together its mappings never hold more than GROUP_MAX_POLLERS pollers. Each mapping's
`esm_event_poller_units` then reports its share (pollers / 10); the group's own gauges report
the whole.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from esm.observability.events import POLLERS_PER_UNIT

# Lambda's figures for Kafka provisioned mode (behaviour §7; botocore's ProvisionedPollerConfig).
INVOKES_PER_POLLER = 5
DEFAULT_MINIMUM_POLLERS = 1
DEFAULT_MAXIMUM_POLLERS = 200
MAXIMUM_POLLERS = 2000  # Kafka's ceiling (the API shape allows 10,000, for SQS)
GROUP_MAX_MAPPINGS = 100
GROUP_MAX_POLLERS = 2000  # the total of MaximumPollers over a group's mappings
IDLE_TICKS = 3  # idle ticks before a poller above the minimum is given back
TICK_SECONDS = 1.0


@dataclass(frozen=True)
class Provisioned:
    """A Kafka mapping's ProvisionedPollerConfig with Lambda's defaults filled in."""

    minimum: int
    maximum: int
    group: str | None

    @classmethod
    def of(cls, request: Mapping[str, Any]) -> "Provisioned | None":
        config = request.get("ProvisionedPollerConfig")
        if config is None:
            return None
        return cls(minimum=int(config.get("MinimumPollers", DEFAULT_MINIMUM_POLLERS)),
                   maximum=int(config.get("MaximumPollers", DEFAULT_MAXIMUM_POLLERS)),
                   group=config.get("PollerGroupName") or None)


@dataclass
class PollerGroup:
    """The mappings of one PollerGroupName in this daemon and the pollers each holds."""

    name: str
    held: dict[object, int] = field(default_factory=dict)  # a mapping's pool -> its pollers
    report: Callable[["PollerGroup"], None] | None = None

    @property
    def pollers(self) -> int:
        return sum(self.held.values())

    @property
    def units(self) -> int:
        return math.ceil(self.pollers / POLLERS_PER_UNIT)

    def grant(self, member: object, wanted: int) -> int:
        """`member` asks to hold `wanted` pollers: what the group's budget leaves it (never below
        what it holds now, so a warm minimum is never taken away)."""
        others = self.pollers - self.held.get(member, 0)
        granted = max(min(wanted, GROUP_MAX_POLLERS - others), min(wanted, self.held.get(member, 0)))
        self.held[member] = granted
        if self.report is not None:
            self.report(self)
        return granted

    def leave(self, member: object) -> None:
        self.held.pop(member, None)
        if self.report is not None:
            self.report(self)


def poller_group(shared: dict[str, Any], name: str, report: Callable[[PollerGroup], None]) -> PollerGroup:
    """The daemon-wide PollerGroup called `name` (kept in the Runtime's `shared`)."""
    groups: dict[str, PollerGroup] = shared.setdefault("kafka.poller_groups", {})
    group = groups.get(name)
    if group is None:
        group = groups[name] = PollerGroup(name, report=report)
    return group


class PollerPool:
    """One provisioned mapping's pollers: an in-flight limiter of INVOKES_PER_POLLER batches per
    poller whose size `tick` moves between MinimumPollers and MaximumPollers (module docstring)."""

    def __init__(self, config: Provisioned, *, group: PollerGroup | None = None,
                 report: Callable[[int, float | None], None] | None = None):
        self.config = config
        self.group = group
        self.report = report  # (pollers, their share of the group's units or None) on every change
        self.target = config.minimum  # pollers wanted, within [minimum, maximum]
        self.partitions = 0  # partitions this consumer owns: the pollers never exceed them
        self.in_use = 0
        self.waiting = 0
        self.peak = 0  # the most batches that wanted to run at once during this tick
        self.idle_ticks = 0
        self._changed = asyncio.Condition()
        self._pollers = -1
        self._settle()

    # -- the limiter ---------------------------------------------------------------------------
    @property
    def pollers(self) -> int:
        """Active pollers (ProvisionedPollers): the target, within the partitions owned."""
        return self._pollers

    @property
    def capacity(self) -> int:
        """Batches that may be in flight: 5 per poller (at least one poller's while any runs, so a
        batch of a partition being revoked is never stranded)."""
        return INVOKES_PER_POLLER * max(1, self._pollers)

    async def __aenter__(self) -> None:
        async with self._changed:
            self.waiting += 1
            self.peak = max(self.peak, self.in_use + self.waiting)
            try:
                await self._changed.wait_for(lambda: self.in_use < self.capacity)
            finally:
                self.waiting -= 1
            self.in_use += 1

    async def __aexit__(self, *exc: object) -> None:
        async with self._changed:
            self.in_use -= 1
            self._changed.notify_all()

    # -- sizing --------------------------------------------------------------------------------
    def owned(self, partitions: int) -> None:
        """The consumer owns `partitions` partitions now (assigned or revoked)."""
        self.partitions = partitions
        self._settle()

    def tick(self) -> int:
        """About once a second: grow under a backlog, shrink after IDLE_TICKS quiet ticks; the pollers."""
        backlog = self.peak > self.capacity or self.waiting > 0
        if backlog:
            needed = math.ceil(self.peak / INVOKES_PER_POLLER)
            self.target = min(self.config.maximum, max(self.target + 1, needed))
            self.idle_ticks = 0
        elif self.peak <= INVOKES_PER_POLLER * (self.target - 1):
            self.idle_ticks += 1
            if self.idle_ticks >= IDLE_TICKS and self.target > self.config.minimum:
                self.target -= 1
                self.idle_ticks = 0
        else:
            self.idle_ticks = 0
        self.peak = self.in_use + self.waiting
        self._settle()
        return self._pollers

    async def run(self, stopping: asyncio.Event) -> None:
        """Tick until `stopping` is set, waking waiting batches when the pool grew."""
        while not stopping.is_set():
            try:
                await asyncio.wait_for(stopping.wait(), TICK_SECONDS)
            except asyncio.TimeoutError:
                pass
            before = self._pollers
            self.tick()
            if self._pollers > before:
                async with self._changed:
                    self._changed.notify_all()

    def close(self) -> None:
        if self.group is not None:
            self.group.leave(self)

    def _settle(self) -> None:
        wanted = min(self.target, self.partitions)
        if self.group is not None:
            wanted = self.group.grant(self, wanted)
        if wanted != self._pollers:
            self._pollers = wanted
            if self.report is not None:
                self.report(wanted, wanted / POLLERS_PER_UNIT if self.group is not None else None)


def pollers_for(mapping: Any, runtime: Any, events: Any) -> PollerPool | None:
    """The pool of a mapping (esm MappingSettings) with ProvisionedPollerConfig, reporting through
    its Events and joined to its poller group; None on demand."""
    config = Provisioned.of(mapping.request)
    if config is None:
        return None
    group = None
    if config.group is not None:
        group = poller_group(runtime.shared, config.group,
                             lambda g: events.poller_group(g.name, g.pollers, g.units))
    return PollerPool(config, group=group,
                      report=lambda pollers, share: events.pollers(pollers, units=True, share=share))
