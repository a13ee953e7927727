"""The function every bench/scale replica runs: an in-process no-op, so the aggregate rate is
esm's own (an HTTP target would be one more process on the same two cores, and its cost would be
counted against esm)."""


async def noop(event, context):
    return None
