"""The soak's function: a no-op that takes a little time, as a real handler would."""

from __future__ import annotations

import asyncio


async def handle(event, context):
    await asyncio.sleep(0.005)
    return None
