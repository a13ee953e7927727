"""How many batches a mapping keeps in flight, like Lambda's SQS scaling (SPEC section 7).

Lambda starts an SQS mapping with 5 concurrent pollers, adds up to 300 a minute while there is a
backlog, never exceeds MaximumConcurrency (or 1,250), idles down towards 2, and backs off when
the function is throttled or fails without ReportBatchItemFailures. `ConcurrencyTarget` is that
policy as a small deterministic object: workers report what their last batch looked like, a
periodic `tick` moves the target, and workers above the target finish their batch and exit.
"""

from __future__ import annotations

from dataclasses import dataclass

LAMBDA_SQS_MAX_CONCURRENCY = 1250
INITIAL = 5
FLOOR = 2
ADD_PER_SECOND = 5  # 300 a minute


@dataclass
class ConcurrencyTarget:
    ceiling: int
    target: int = 0
    full_batches: int = 0
    empty_polls: int = 0
    batches: int = 0
    hold_ticks: int = 0

    def __post_init__(self) -> None:
        self.ceiling = max(1, self.ceiling)
        self.target = self.target or min(INITIAL, self.ceiling)

    @property
    def floor(self) -> int:
        return min(FLOOR, self.ceiling)

    def batch_done(self, *, full: bool) -> None:
        self.batches += 1
        self.full_batches += int(full)

    def poll_empty(self) -> None:
        self.empty_polls += 1

    def back_off(self) -> None:
        """Throttled, or a function error without partial batch responses: halve, and hold for a while."""
        self.target = max(self.floor, self.target // 2)
        self.hold_ticks = 5

    def tick(self) -> int:
        """Called about once a second; returns the new target."""
        if self.hold_ticks:
            self.hold_ticks -= 1
        elif self.full_batches and self.full_batches * 2 >= self.batches and self.empty_polls == 0:
            self.target = min(self.ceiling, self.target + ADD_PER_SECOND)
        elif self.batches == 0 and self.empty_polls >= self.target:
            self.target = max(self.floor, self.target - 1)
        self.full_batches = self.empty_polls = self.batches = 0
        return self.target
