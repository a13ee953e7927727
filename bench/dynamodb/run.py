"""bench/dynamodb: records per second through esm against a raw GetRecords loop, and write-to-handler latency.

    eval "$(scripts/backends start)"
    .venv/bin/python -m bench.dynamodb.run [--records 10000] [--batch-size 100]

Both read the same backlog from moto's DynamoDB Streams (one shard, TRIM_HORIZON): the raw loop
calls GetRecords and bridges nothing; esm builds Lambda's DynamoDB records, batches, invokes an
in-process no-op handler and checkpoints to SQLite. The ratio esm/raw is printed (best of turns).
A second run writes items at a steady rate, each carrying its write time, and the handler notes how
long each took to reach it (p50/p90/p99/max). Prints a table, writes bench/results/dynamodb.json.
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
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session

from bench.dynamodb import handlers
from esm.config.loading import parse_config
from esm.daemon import run_daemon, tune_garbage_collector
from esm.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
GET_RECORDS_LIMIT = 1000


def client(session: Any, service: str) -> Any:
    return session.create_client(service, region_name="us-east-1", endpoint_url=os.environ["AWS_ENDPOINT_URL_DYNAMODB"],
                                 aws_access_key_id="test", aws_secret_access_key="test",
                                 config=AioConfig(retries={"max_attempts": 1}))


async def new_table(ddb: Any) -> tuple[str, str]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    table = await ddb.create_table(
        TableName=name, KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        StreamSpecification={"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"})
    return name, table["TableDescription"]["LatestStreamArn"]


async def fill(ddb: Any, name: str, count: int) -> None:
    payload = {"S": "x" * 200}
    for start in range(0, count, 25):
        requests = [{"PutRequest": {"Item": {"pk": {"S": f"k{i}"}, "payload": payload}}}
                    for i in range(start, min(count, start + 25))]
        await ddb.batch_write_item(RequestItems={name: requests})


async def raw_loop(streams: Any, arn: str, total: int) -> float:
    shard = (await streams.describe_stream(StreamArn=arn))["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = (await streams.get_shard_iterator(StreamArn=arn, ShardId=shard,
                                                 ShardIteratorType="TRIM_HORIZON"))["ShardIterator"]
    seen = 0
    start = time.perf_counter()
    while seen < total:
        response = await streams.get_records(ShardIterator=iterator, Limit=GET_RECORDS_LIMIT)
        seen += len(response["Records"])
        iterator = response["NextShardIterator"]
    return total / (time.perf_counter() - start)


def esm_config(arn: str, batch_size: int, folder: str, handler: str) -> str:
    return yaml.safe_dump({
        "functions": {"f": {"handler": f"bench.dynamodb.handlers:{handler}"}},
        "event_source_mappings": [{"FunctionName": "f", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON",
                                   "BatchSize": batch_size}],
        "checkpoints": {"sqlite": f"{folder}/checkpoints.db"},
        "metrics": {"listen": "127.0.0.1:0"},
    })


async def through_esm(arn: str, total: int, batch_size: int) -> float:
    with tempfile.TemporaryDirectory() as folder:
        config = parse_config(esm_config(arn, batch_size, folder, "noop"))
        metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
        labels = {"mapping": config.mappings[0].uuid, "source": "dynamodb"}
        task = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
        await ready.wait()
        start = time.perf_counter()
        while (metrics.registry.get_sample_value("esm_invoked_events_total", labels) or 0) < total:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - start
        stop.set()
        await task
    return total / elapsed


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def latency(ddb: Any, rate: float, seconds: float, batch_size: int) -> dict[str, float]:
    name, arn = await new_table(ddb)
    handlers.DELAYS.clear()
    with tempfile.TemporaryDirectory() as folder:
        config = parse_config(esm_config(arn, batch_size, folder, "latency"))
        metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
        task = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
        await ready.wait()
        written = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            await ddb.put_item(TableName=name, Item={"pk": {"S": f"k{written}"}, "t": {"N": repr(time.time())}})
            written += 1
            await asyncio.sleep(1 / rate)
        deadline = time.monotonic() + 10
        while len(handlers.DELAYS) < written and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        stop.set()
        await task
    delays = [d * 1000 for d in handlers.DELAYS[len(handlers.DELAYS) // 10:]]  # skip the warm-up
    return {"rate_per_s": rate, "written": written, "received": len(handlers.DELAYS),
            "p50_ms": percentile(delays, 0.5), "p90_ms": percentile(delays, 0.9), "p99_ms": percentile(delays, 0.99),
            "max_ms": max(delays), "mean_ms": statistics.fmean(delays)}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tune_garbage_collector()  # as `esm run` does; every path below runs under the same collector settings
    session = get_session()
    async with client(session, "dynamodb") as ddb, client(session, "dynamodbstreams") as streams:
        name, arn = await new_table(ddb)
        await fill(ddb, name, args.records)
        await raw_loop(streams, arn, args.records)  # warm-up, untimed
        raw, esm = [], []
        for _ in range(args.turns):  # in turns, so both see the same machine load
            raw.append(await raw_loop(streams, arn, args.records))
            esm.append(await through_esm(arn, args.records, args.batch_size))
        delays = await latency(ddb, args.rate, args.latency_seconds, args.batch_size)
        await ddb.delete_table(TableName=name)
    return {"records": args.records, "batch_size": args.batch_size, "turns": args.turns,
            "raw_getrecords_records_per_s": round(max(raw)), "esm_records_per_s": round(max(esm)),
            "ratio": round(max(esm) / max(raw), 3), "latency": delays}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=10000)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    result = asyncio.run(main(parser.parse_args()))
    print(f"\nDynamoDB Streams (moto), one shard, {result['records']} records, BatchSize {result['batch_size']}, "
          f"best of {result['turns']}")
    print(f"{'path':<40}{'records/s':>10}{'vs raw':>8}")
    print(f"{'raw GetRecords loop (no bridging)':<40}{result['raw_getrecords_records_per_s']:>10}{1.0:>8.2f}")
    print(f"{'esm -> in-process no-op handler':<40}{result['esm_records_per_s']:>10}{result['ratio']:>8.2f}")
    lat = result["latency"]
    print(f"\nwrite-to-handler latency at {lat['rate_per_s']:.0f} writes/s ({lat['received']}/{lat['written']} received): "
          f"p50 {lat['p50_ms']:.0f} ms, p90 {lat['p90_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms, max {lat['max_ms']:.0f} ms")
    out = ROOT / "bench" / "results" / "dynamodb.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
