"""The daemon's own vital signs: event-loop lag and the number of asyncio tasks.

A monitor task sleeps a fixed interval and measures how late it wakes; that delay is how long
every other coroutine waited for the loop too (a blocking call, a CPU-heavy batch). The task
count shows work piling up (a task per record would). With prometheus_client's process collector
(resident memory, open file descriptors) these are what `bench/soak` watches stay flat.
"""

from __future__ import annotations

import asyncio

from esm.aio import sleep_unless
from esm.observability.metrics import Metrics

INTERVAL = 0.5


async def watch_loop(metrics: Metrics, stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        started = loop.time()
        await sleep_unless(stop, INTERVAL)
        if stop.is_set():
            return
        metrics.loop_lag.set(max(0.0, loop.time() - started - INTERVAL))
        metrics.tasks.set(len(asyncio.all_tasks(loop)))
