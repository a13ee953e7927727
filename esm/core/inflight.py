"""The in-flight bytes cap of one mapping (`esm: {max_in_flight_bytes: ...}`), which bounds its memory.

Records count from the moment a poller holds them until they are finished (deleted, committed,
checkpointed, dead-lettered) or given back at shutdown. A poller asks `has_room()` (or waits in
`room()`) before it reads more, then `hold`s what it read; whoever finishes records `release`s
them. The cap is checked before a read, so the bytes held stay below the cap plus one read's
worth (SQS: 10 messages; Kinesis: one GetRecords; Kafka: one fetch). Lanes and workers that keep
a partial batch open must flush it rather than wait for room, or two of them could wait on each
other; each source's poller says how it keeps to that.

The `esm_in_flight_bytes` gauge shows what is held and `esm_in_flight_bytes_peak` the most ever
held; `esm_in_flight_waits_total` counts reads that had to wait for room, so an operator sees when
the cap, not the source, sets the pace.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

DEFAULT_MAX_IN_FLIGHT_BYTES = 256 * 1024 * 1024
# Below this no batch of any source could form (a single record may be 6 MB with its envelope).
MIN_MAX_IN_FLIGHT_BYTES = 8 * 1024 * 1024
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_UNITS = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 1000 ** 2, "MiB": 1024 ** 2, "GB": 1000 ** 3,
          "GiB": 1024 ** 3}


def parse_size(value: Any) -> int | None:
    """`268435456`, `"256MiB"`, `"300 MB"` -> bytes; None when it is not a size."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        match = _SIZE.match(value)
        if match:
            return int(match.group(1)) * _UNITS[match.group(2)]
    return None


class InFlightBytes:
    """Bytes a mapping holds in memory, against its cap."""

    def __init__(self, limit: int, gauge: Any = None, peak_gauge: Any = None, waits: Any = None):
        self.limit = limit
        self.held = 0
        self.peak = 0
        self._gauge = gauge
        self._peak_gauge = peak_gauge
        self._waits = waits
        self._freed = asyncio.Event()

    def has_room(self) -> bool:
        return self.held < self.limit

    async def room(self) -> None:
        """Wait until the held bytes are below the cap."""
        if self.held < self.limit:
            return
        self.record_wait()
        while self.held >= self.limit:
            self._freed.clear()
            await self._freed.wait()

    def record_wait(self) -> None:
        """A poller held back for the cap (Kafka pauses a partition rather than awaiting `room`)."""
        if self._waits is not None:
            self._waits.inc()

    def hold(self, size: int) -> None:
        self.held += size
        if self._gauge is not None:
            self._gauge.set(self.held)
        if self.held > self.peak:
            self.peak = self.held
            if self._peak_gauge is not None:
                self._peak_gauge.set(self.peak)

    def release(self, size: int) -> None:
        if size <= 0:
            return
        self.held = max(0, self.held - size)
        if self._gauge is not None:
            self._gauge.set(self.held)
        if self.held < self.limit:
            self._freed.set()
