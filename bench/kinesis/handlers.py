"""In-process handlers for bench/kinesis: a no-op, and one that notes each record's put-to-handler delay."""

import base64
import time

DELAYS: list[float] = []  # seconds from the put (the record's data is its epoch time as text) to the handler


async def noop(event, context):
    return None


async def latency(event, context):
    now = time.time()
    for record in event["Records"]:
        DELAYS.append(now - float(base64.b64decode(record["kinesis"]["data"])))
    return None
