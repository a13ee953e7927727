"""How many batches an SQS mapping keeps in flight, like Lambda's SQS scaling (behaviour §7).

The SQS source's scaling policy (esm.core.contract.ScalingPolicy), asked for by the queue runner
(`SqsSource.scaling`), and the ceiling a mapping may reach (`concurrency_ceiling`).

A *lane* is one batch in flight (one concurrent invoke); the SQS source runs one worker task per
lane. Two policies size the lanes, both as the same small deterministic object: workers report
what their last batch looked like, a periodic `tick` moves the target, and workers above the
target finish their batch and exit.

- On-demand (Lambda's default): start with 5 lanes, add up to 300 a minute while batches come
  back full, never exceed MaximumConcurrency (or 1,250), idle down towards 2, back off when the
  function is throttled or fails without ReportBatchItemFailures. Here a poller is a lane.
- Provisioned (`ProvisionedPollerConfig`, November 2025): MinimumPollers pollers stay up even on
  an idle queue, each carrying up to 10 concurrent invokes: an idle mapping keeps one polling
  lane per poller, and the first busy tick opens all 10 x MinimumPollers lanes the warm pollers
  can carry; growth is then up to 1,000 concurrent invokes a minute (AWS: "3x faster") and stops
  at 10 x MaximumPollers (AWS's ceiling is 20,000). Pollers are counted from the lanes that run: a poller per 10 busy lanes,
  and never fewer than the idle lanes that stand for the minimum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

LAMBDA_SQS_MAX_CONCURRENCY = 1250  # on-demand: the ceiling when the mapping gives no MaximumConcurrency
INITIAL = 5
FLOOR = 2
ADD_PER_SECOND = 5  # 300 a minute

# Provisioned mode (behaviour §7, R2/R19).
INVOKES_PER_POLLER = 10
PROVISIONED_MAX_CONCURRENCY = 20_000
PROVISIONED_ADD_PER_SECOND = math.ceil(1000 / 60)  # up to 1,000 concurrent invokes a minute
SQS_DEFAULT_MINIMUM_POLLERS = 2
SQS_DEFAULT_MAXIMUM_POLLERS = 200


def concurrency_ceiling(request: Mapping[str, Any] | None) -> int:
    """The most invokes an SQS mapping (a CreateEventSourceMapping request, defaults filled) may run
    at once; None (any mapping the control API may create): the provisioned mode's ceiling."""
    if request is None:
        return PROVISIONED_MAX_CONCURRENCY
    provisioned = request.get("ProvisionedPollerConfig")
    if provisioned is not None:
        pollers = provisioned.get("MaximumPollers", SQS_DEFAULT_MAXIMUM_POLLERS)
        return min(INVOKES_PER_POLLER * pollers, PROVISIONED_MAX_CONCURRENCY)
    return (request.get("ScalingConfig") or {}).get("MaximumConcurrency") or LAMBDA_SQS_MAX_CONCURRENCY


@dataclass
class ConcurrencyTarget:
    ceiling: int
    target: int = 0
    full_batches: int = 0
    empty_polls: int = 0
    batches: int = 0
    hold_ticks: int = 0
    received: int = 0  # messages received since the last tick
    quiet: bool = False  # an empty poll came back since messages last arrived
    # The shape of the policy: on-demand unless built by `provisioned()`.
    lowest: int = FLOOR
    step: int = ADD_PER_SECOND
    initial: int = INITIAL
    burst: int = 0  # what the first busy tick may open at once (the warm pollers' capacity)
    min_pollers: int = 0  # 0: on-demand (a poller is a lane)
    max_pollers: int = 0

    def __post_init__(self) -> None:
        self.ceiling = max(1, self.ceiling)
        self.target = self.target or min(self.initial, self.ceiling)

    @classmethod
    def provisioned(cls, *, min_pollers: int, max_pollers: int, cap: int) -> "ConcurrencyTarget":
        """Provisioned mode: lanes between one per minimum poller and 10 per maximum poller (and `cap`)."""
        ceiling = min(INVOKES_PER_POLLER * max_pollers, PROVISIONED_MAX_CONCURRENCY, cap)
        return cls(ceiling=ceiling, lowest=min_pollers, step=PROVISIONED_ADD_PER_SECOND, initial=min_pollers,
                   burst=INVOKES_PER_POLLER * min_pollers, min_pollers=min_pollers, max_pollers=max_pollers)

    @property
    def floor(self) -> int:
        return min(self.lowest, self.ceiling)

    def pollers(self, lanes: int) -> int:
        """Active pollers for `lanes` running lanes (the ProvisionedPollers metric)."""
        if not self.min_pollers:
            return lanes
        return min(self.max_pollers, max(math.ceil(lanes / INVOKES_PER_POLLER), min(lanes, self.min_pollers)))

    def batch_done(self, *, full: bool) -> None:
        self.batches += 1
        self.full_batches += int(full)

    def poll_empty(self) -> None:
        self.empty_polls += 1
        self.quiet = True

    def polled(self, messages: int) -> None:
        self.received += messages
        self.quiet = False

    def back_off(self) -> None:
        """Throttled, or a function error without partial batch responses: halve, and hold for a while."""
        self.target = max(self.floor, self.target // 2)
        self.hold_ticks = 5

    def tick(self) -> int:
        """Called about once a second; returns the new target."""
        if self.hold_ticks:
            self.hold_ticks -= 1
        elif self.full_batches and self.full_batches * 2 >= self.batches and self.empty_polls == 0:
            self.target = min(self.ceiling, max(self.target + self.step, self.burst))
        elif self.batches == 0 and self.received == 0 and self.quiet:
            # Idle: nothing arrived this tick and the queue answered empty. A long poll takes seconds,
            # so idleness is the absence of messages, not a count of empty answers per tick.
            self.target = max(self.floor, self.target - 1)
        self.full_batches = self.empty_polls = self.batches = self.received = 0
        return self.target


def scaling_for(request: Mapping[str, Any], invoker_cap: int) -> ConcurrencyTarget:
    """Provisioned mode when the mapping has ProvisionedPollerConfig, else on-demand (behaviour §7).

    Either way the function target's own concurrency cap bounds the lanes."""
    cap = min(concurrency_ceiling(request), invoker_cap)
    provisioned = request.get("ProvisionedPollerConfig")
    if provisioned is None:
        return ConcurrencyTarget(ceiling=cap)
    return ConcurrencyTarget.provisioned(
        min_pollers=provisioned.get("MinimumPollers", SQS_DEFAULT_MINIMUM_POLLERS),
        max_pollers=provisioned.get("MaximumPollers", SQS_DEFAULT_MAXIMUM_POLLERS),
        cap=cap)
