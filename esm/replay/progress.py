"""What a replay says while it runs and when it ends: a pace, progress lines, the summary."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO


class Pace:
    """At most `per_second` items a second on average (None: no limit): `await pace.take(n)` before n items."""

    def __init__(self, per_second: float | None):
        self.per_second = per_second
        self.started = time.monotonic()
        self.taken = 0

    async def take(self, count: int) -> None:
        if self.per_second:
            due = self.started + self.taken / self.per_second
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
        self.taken += count


@dataclass
class Summary:
    """Records (or messages) by what became of them."""

    dry_run: bool
    replayed: int = 0
    still_failing: int = 0
    gone: int = 0
    documents_done: int = 0
    documents_left: int = 0
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        verb = "would replay" if self.dry_run else "replayed"
        out = [f"{verb}: {self.replayed}",
               f"still failing: {self.still_failing}",
               f"no longer in the source: {self.gone}"]
        if self.documents_done or self.documents_left:
            out.append(f"documents removed: {self.documents_done}, left where they were: {self.documents_left}")
        if self.dry_run:
            out.append("dry run: nothing was invoked, moved or deleted (add --execute)")
        return out + self.notes


class Progress:
    """One line per step on `out` (stderr by default), prefixed with `[done/total]` when the total is known."""

    def __init__(self, out: TextIO | None = None):
        self.out = out or sys.stderr
        self.done = 0

    def step(self, text: str, total: int | None = None) -> None:
        self.done += 1
        prefix = f"[{self.done}/{total}] " if total else f"[{self.done}] "
        print(prefix + text, file=self.out, flush=True)
