"""Benchmark functions for bench/kafka."""

from __future__ import annotations

import base64
import time

LATENCIES_MS: list[float] = []


async def noop(event, context):
    return None


async def latency(event, context):
    """Each record's value is its produce time (epoch seconds as text): keep now - then."""
    now = time.time()
    for records in event["records"].values():
        for record in records:
            LATENCIES_MS.append((now - float(base64.b64decode(record["value"]))) * 1000)
    return None
