"""Waiting for a condition in tests: poll with a generous deadline instead of timed assertions."""

from __future__ import annotations

import asyncio
import time
from typing import Awaitable, Callable


async def wait_until(condition: Callable[[], bool | Awaitable[bool]], timeout: float = 60.0,
                     what: str = "condition", interval: float = 0.1) -> None:
    """Until `condition()` (a value or an awaitable) is true; AssertionError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not met in {timeout:.0f}s")
        await asyncio.sleep(interval)
