"""The contiguous position of a unit of order: how far a checkpoint or commit may move.

Records are registered in source order; lanes finish them in any order (ParallelizationFactor
lanes, filtered records, dead-lettered ones). `advance()` releases the position of the last
record such that it and every record before it is finished, and never moves backwards, so a
checkpoint can only pass records that are done (behaviour §9.6).
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from typing import Hashable, Iterable


class OffsetTracker:
    def __init__(self) -> None:
        self._order: deque[Hashable] = deque()
        self._done: set[Hashable] = set()
        self.position: Hashable | None = None

    def register(self, key: Hashable) -> None:
        self._order.append(key)

    def finish(self, key: Hashable) -> None:
        self._done.add(key)

    def register_many(self, keys: Iterable[Hashable]) -> None:
        """`register` for a whole fetch, in order, in one call."""
        self._order.extend(keys)

    def finish_many(self, keys: Iterable[Hashable]) -> None:
        """`finish` for a whole batch in one call."""
        self._done.update(keys)

    def advance(self) -> Hashable | None:
        """The new contiguous position, or None if it did not move."""
        order, done = self._order, self._done
        count = len(done)
        if count and order and order[0] in done and count <= len(order) and set(islice(order, count)) == done:
            # The usual case (lanes finish their batches in order): what is done is exactly the head
            # of the order, taken at once rather than record by record.
            self.position = order[count - 1]
            self._order = deque(islice(order, count, None))
            done.clear()
            return self.position
        moved = False
        while self._order and self._order[0] in self._done:
            key = self._order.popleft()
            self._done.discard(key)
            self.position = key
            moved = True
        return self.position if moved else None

    @property
    def pending(self) -> int:
        return len(self._order)
