"""bench/kinesis: records per second per shard through esm against a raw GetRecords loop.

    eval "$(scripts/backends start)"
    .venv/bin/python -m bench.kinesis.run [--records 20000] [--batch-size 100] [--turns 3]

Both read the same backlog from kinesis-mock (one shard, TRIM_HORIZON): the raw loop calls
GetRecords and decodes nothing; esm builds Lambda's records, batches, invokes an in-process no-op
handler and checkpoints to SQLite. The ratio esm/raw is printed (the best of --turns runs each, in
turns). A second run feeds the stream at a steady rate and samples esm_iterator_age_milliseconds; a
third notes each record's put-to-handler delay (window 0) and prints p50/p99. Prints a table, writes bench/results/kinesis.json.
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from aiobotocore.session import get_session

from bench.kinesis import handlers
from esm.config.loading import parse_config
from esm.daemon import run_daemon, tune_garbage_collector
from esm.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]


def client(session: Any) -> Any:
    return session.create_client("kinesis", region_name="us-east-1", endpoint_url=os.environ["ESM_KINESIS_ENDPOINT"],
                                 aws_access_key_id="test", aws_secret_access_key="test")


async def new_stream(kinesis: Any) -> tuple[str, str]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    await kinesis.create_stream(StreamName=name, ShardCount=1)
    while (await kinesis.describe_stream_summary(StreamName=name))["StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
        await asyncio.sleep(0.05)
    return name, f"arn:aws:kinesis:us-east-1:000000000000:stream/{name}"


async def fill(kinesis: Any, name: str, count: int) -> None:
    data = json.dumps({"payload": "x" * 200}).encode()
    for start in range(0, count, 500):
        entries = [{"PartitionKey": f"k{i % 17}", "Data": data} for i in range(start, min(count, start + 500))]
        await kinesis.put_records(StreamName=name, Records=entries)


async def raw_loop(kinesis: Any, name: str, total: int) -> float:
    shard = (await kinesis.list_shards(StreamName=name))["Shards"][0]["ShardId"]
    iterator = (await kinesis.get_shard_iterator(StreamName=name, ShardId=shard,
                                                 ShardIteratorType="TRIM_HORIZON"))["ShardIterator"]
    seen = 0
    start = time.perf_counter()
    while seen < total:
        response = await kinesis.get_records(ShardIterator=iterator, Limit=10000)
        seen += len(response["Records"])
        iterator = response["NextShardIterator"]
    return total / (time.perf_counter() - start)


def esm_config(arn: str, batch_size: int, folder: str, handler: str = "noop") -> str:
    return yaml.safe_dump({
        "functions": {"f": {"handler": f"bench.kinesis.handlers:{handler}"}},
        "event_source_mappings": [{"FunctionName": "f", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON",
                                   "BatchSize": batch_size, "MaximumBatchingWindowInSeconds": 0}],
        "checkpoints": {"sqlite": f"{folder}/checkpoints.db"},
        "metrics": {"listen": "127.0.0.1:0"},
    })


async def through_esm(arn: str, total: int, batch_size: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = parse_config(esm_config(arn, batch_size, folder))
        metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
        labels = {"mapping": config.mappings[0].uuid, "source": "kinesis"}
        task = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
        await ready.wait()
        start = time.perf_counter()
        while (metrics.registry.get_sample_value("esm_invoked_events_total", labels) or 0) < total:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        stop.set()
        await task
    return total / elapsed


async def iterator_age(kinesis: Any, rate: float, seconds: float, batch_size: int) -> dict[str, float]:
    name, arn = await new_stream(kinesis)
    with tempfile.TemporaryDirectory() as folder:
        config = parse_config(esm_config(arn, batch_size, folder))
        metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
        await ready.wait()
        samples: list[float] = []
        end = time.monotonic() + seconds
        data = b'{"steady": true}'
        while time.monotonic() < end:
            await kinesis.put_record(StreamName=name, PartitionKey="k", Data=data)
            for family in metrics.registry.collect():
                for sample in family.samples:
                    if sample.name == "esm_iterator_age_milliseconds":
                        samples.append(sample.value)
            await asyncio.sleep(1 / rate)
        stop.set()
        await task
    samples = samples[len(samples) // 5:]  # skip the warm-up
    return {"rate_per_s": rate, "samples": len(samples), "median_ms": statistics.median(samples) if samples else 0.0,
            "max_ms": max(samples) if samples else 0.0}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def latency(kinesis: Any, rate: float, seconds: float, batch_size: int) -> dict[str, float]:
    """Put-to-handler delay at a steady low rate, window 0 (each record's data is its put time)."""
    name, arn = await new_stream(kinesis)
    handlers.DELAYS.clear()
    with tempfile.TemporaryDirectory() as folder:
        config = parse_config(esm_config(arn, batch_size, folder, "latency"))
        stop, ready = asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run_daemon(config, stop=stop, metrics=Metrics(), ready=ready))
        await ready.wait()
        put = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await kinesis.put_record(StreamName=name, PartitionKey="k", Data=repr(time.time()).encode())
            put += 1
            await asyncio.sleep(1 / rate)
        deadline = time.monotonic() + 10
        while len(handlers.DELAYS) < put and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await task
    delays = [d * 1000 for d in handlers.DELAYS[len(handlers.DELAYS) // 10:]]  # skip the warm-up
    return {"rate_per_s": rate, "put": put, "received": len(handlers.DELAYS), "p50_ms": percentile(delays, 0.5),
            "p99_ms": percentile(delays, 0.99), "max_ms": max(delays, default=0.0)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tune_garbage_collector()  # as `esm run` does; every path below runs under the same collector settings
    async with client(get_session()) as kinesis:
        name, arn = await new_stream(kinesis)
        await fill(kinesis, name, args.records)
        await raw_loop(kinesis, name, args.records)  # warm-up, untimed
        raws, esms = [], []
        for _ in range(args.turns):  # in turns, so both see the same machine load
            raws.append(await raw_loop(kinesis, name, args.records))
            esms.append(await through_esm(arn, args.records, args.batch_size))
        raw, esm = max(raws), max(esms)
        age = await iterator_age(kinesis, args.rate, args.age_seconds, args.batch_size)
        delays = await latency(kinesis, args.rate, args.age_seconds, args.batch_size)
    return {"records": args.records, "batch_size": args.batch_size, "turns": args.turns,
            "raw_getrecords_records_per_s": round(raw), "esm_records_per_s": round(esm),
            "ratio": round(esm / raw, 3), "runs_records_per_s": {"raw": [round(r) for r in raws],
                                                                 "esm": [round(r) for r in esms]},
            "iterator_age": age, "latency": delays}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--turns", type=int, default=3, help="runs of each path, in turns (the best counts)")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--age-seconds", type=float, default=15.0)
    result = asyncio.run(main(parser.parse_args()))
    print(f"\nKinesis (kinesis-mock), one shard, {result['records']} records, BatchSize {result['batch_size']}, "
          f"best of {result['turns']}")
    print(f"{'path':<38}{'records/s':>10}{'vs raw':>8}")
    print(f"{'raw GetRecords loop (no decoding)':<38}{result['raw_getrecords_records_per_s']:>10}{1.0:>8.2f}")
    print(f"{'esm -> in-process no-op handler':<38}{result['esm_records_per_s']:>10}{result['ratio']:>8.2f}")
    age = result["iterator_age"]
    print(f"\nIteratorAge at {age['rate_per_s']:.0f} records/s: median {age['median_ms']:.0f} ms, max {age['max_ms']:.0f} ms "
          f"({age['samples']} samples)")
    lat = result["latency"]
    print(f"put-to-handler latency at {lat['rate_per_s']:.0f} records/s, window 0 ({lat['received']}/{lat['put']} "
          f"received): p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms")
    out = ROOT / "bench" / "results" / "kinesis.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
