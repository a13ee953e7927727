"""Gathering one batch: the only loop that fills a BatchPolicy, for every source and lane.

`gather(policy, pending, pull)` moves records from `pending` (what was pulled but not yet batched,
in order) into the policy, pulling more while the batch has room, and returns the batch with the
reason it was flushed (`FlushReason`): BatchSize reached, the window (which starts at the batch's
first record) elapsed, the 6 MB cap (the record that does not fit opens the next batch), a
boundary (`cut(record)`: a record that may not share this batch), nothing more ready, or the
end of the input. `pull(room, wait)` returns the next records (`wait` None: block until some;
0: only what is ready; else at most that many seconds), an empty list when none came in time,
or None when the input ended; it raises esm.aio.Stopped when the lane stops.
"""

from __future__ import annotations

from collections import deque
from typing import Awaitable, Callable

from esm.core.batching import BatchPolicy, FlushReason
from esm.core.records import Record

Pull = Callable[[int, "float | None"], Awaitable["list[Record] | None"]]
Cut = Callable[[Record], bool]


async def gather(policy: BatchPolicy, pending: deque[Record], pull: Pull,
                 cut: Cut | None = None) -> tuple[list[Record], FlushReason]:
    """Returns a non-empty batch unless the input ended with nothing held."""
    while True:
        if pending:
            reason = policy.fill(pending, cut)  # stops before the end of `pending` only with a reason
            if reason is not None:
                return policy.take(), reason
        if policy.records:
            wait = 0.0 if policy.window_over() else policy.remaining()
        else:
            wait = None
        chunk = await pull(policy.room, wait)
        if chunk is None:
            return policy.take(), FlushReason.END
        if not chunk:
            if policy.records:
                return policy.take(), FlushReason.WINDOW if policy.window > 0 else FlushReason.IDLE
            continue
        pending.extend(chunk)
