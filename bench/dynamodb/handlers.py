"""In-process handlers for bench/dynamodb: a no-op, and one that notes each record's write-to-handler delay."""

import time

DELAYS: list[float] = []  # seconds from the item's write (its `t` attribute) to the handler


async def noop(event, context):
    return None


async def latency(event, context):
    now = time.time()
    for record in event["Records"]:
        DELAYS.append(now - float(record["dynamodb"]["NewImage"]["t"]["N"]))
    return None
