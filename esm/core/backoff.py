"""The one backoff policy: exponential with equal jitter, a floor from the target's Retry-After.

Every wait after a failure that may clear by itself (a throttled or unreachable function, a
source or destination call that failed, a service that is away) grows the same way, so behaviour
under faults does not depend on which source hit it. The callers count their own attempts; the
named policies below differ only in where the wait starts and where it stops growing.
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    base: float = 0.1
    cap: float = 30.0

    def delay(self, attempt: int, floor: float | None = None) -> float:
        """Seconds to wait before try `attempt + 1` (attempt counts from 1)."""
        ceiling = min(self.cap, self.base * 2 ** min(attempt - 1, 32))
        # Equal jitter: never a zero wait (no hot loop), and replicas that failed together spread out.
        return max(random.uniform(ceiling / 2, ceiling), floor or 0.0)


# Calls to the function (throttles, unavailable): behaviour §9.1.
INVOKE_BACKOFF = Backoff(0.1, 30.0)
# Calls to the source service (GetRecords, fetch, receive, a Kafka partition's start position).
SOURCE_BACKOFF = Backoff(0.2, 10.0)
# A service that is away as a whole: a mapping's source and function while it starts, a schema registry.
RECONNECT_BACKOFF = Backoff(0.5, 10.0)
# The checkpoint store's throttled batch reads: short, so a lease round ends well within a lease's life.
STORE_BACKOFF = Backoff(0.05, 1.0)
# On-failure destinations: the checkpoint waits for the document to land (behaviour §9.6).
DESTINATION_BACKOFF = Backoff(0.5, 30.0)
