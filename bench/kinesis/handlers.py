"""Benchmark functions for bench/kinesis."""


async def noop(event, context):
    return None
