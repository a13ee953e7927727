"""Benchmark functions: a no-op, and one that records send-to-handler latency."""

import time

LATENCIES: list[float] = []


async def noop(event, context):
    return None


async def latency(event, context):
    now = time.time()
    for record in event["Records"]:
        LATENCIES.append(now - float(record["body"]))
    return None
