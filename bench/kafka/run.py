"""bench/kafka: records per second through esm against a raw aiokafka getmany loop, and latency.

    eval "$(scripts/backends start)"
    .venv/bin/python -m bench.kafka.run [--records 40000] [--partitions 4] [--batch-size 100]

Both read the same backlog (TRIM_HORIZON, each in its own consumer group): the raw loop calls
getmany and commits after each call, decoding nothing; esm builds Lambda's Kafka records, batches
per partition, invokes an in-process no-op handler and commits after every batch. The ratio
esm/raw is printed. A second run produces at a steady rate with MaximumBatchingWindowInSeconds 0
and reports end-to-end latency percentiles (produce to handler). Peak RSS of the process is
printed too. Prints a table and writes JSON (bench/results/kafka.json unless --out). Not part of
the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.kafka import handlers
from esm.config import parse_config
from esm.daemon import run_daemon
from esm.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]


def servers() -> str:
    return os.environ["KAFKA_BOOTSTRAP_SERVERS"]


async def new_topic(partitions: int) -> str:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=servers())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, partitions, 1)])
    finally:
        await admin.close()
    return name


async def fill(topic: str, count: int, partitions: int) -> None:
    value = json.dumps({"payload": "x" * 200}).encode()
    producer = AIOKafkaProducer(bootstrap_servers=servers(), linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, partition=i % partitions) for i in range(count)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_loop(topic: str, total: int) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers(), group_id=f"raw-{uuid.uuid4().hex[:8]}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        seen, start = 0, None
        while seen < total:
            fetched = await consumer.getmany(timeout_ms=200, max_records=500)
            if fetched and start is None:
                start = time.perf_counter()
            seen += sum(len(records) for records in fetched.values())
            if fetched:
                await consumer.commit()
        return total / (time.perf_counter() - (start or time.perf_counter()))
    finally:
        await consumer.stop()


def esm_config(topic: str, handler: str, batch_size: int, window: float) -> str:
    return yaml.safe_dump({
        "functions": {"f": {"handler": f"bench.kafka.handlers:{handler}", "max_concurrency": 100}},
        "event_source_mappings": [{
            "FunctionName": "f", "Topics": [topic], "StartingPosition": "TRIM_HORIZON", "BatchSize": batch_size,
            "MaximumBatchingWindowInSeconds": window,
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": servers().split(",")}},
            "SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": f"esm-{uuid.uuid4().hex[:8]}"}}],
        "metrics": {"listen": "127.0.0.1:0"},
    })


async def through_esm(topic: str, total: int, batch_size: int) -> float:
    config = parse_config(esm_config(topic, "noop", batch_size, 0))
    metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
    labels = {"mapping": config.mappings[0].uuid, "source": "kafka"}
    task = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
    await ready.wait()
    start = None
    while (metrics.registry.get_sample_value("esm_committed_events_total", labels) or 0) < total:
        if start is None and (metrics.registry.get_sample_value("esm_polled_events_total", labels) or 0) > 0:
            start = time.perf_counter()
        await asyncio.sleep(0.005)
    elapsed = time.perf_counter() - (start or time.perf_counter())
    stop.set()
    await task
    return total / elapsed


async def latency(partitions: int, rate: float, seconds: float, batch_size: int) -> dict[str, float]:
    topic = await new_topic(partitions)
    handlers.LATENCIES_MS.clear()
    config = parse_config(esm_config(topic, "latency", batch_size, 0))
    metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
    await ready.wait()
    await asyncio.sleep(3)  # the group's first assignment
    producer = AIOKafkaProducer(bootstrap_servers=servers(), linger_ms=0)
    await producer.start()
    try:
        end, sent = time.monotonic() + seconds, 0
        while time.monotonic() < end:
            await producer.send(topic, repr(time.time()).encode(), partition=sent % partitions)
            sent += 1
            await asyncio.sleep(1 / rate)
        await producer.flush()
    finally:
        await producer.stop()
    await asyncio.sleep(1)
    stop.set()
    await task
    samples = sorted(handlers.LATENCIES_MS[len(handlers.LATENCIES_MS) // 10:])  # skip the warm-up
    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p * len(samples)))] if samples else 0.0
    return {"rate_per_s": rate, "samples": len(samples), "p50_ms": round(pct(0.5), 1), "p90_ms": round(pct(0.9), 1),
            "p99_ms": round(pct(0.99), 1), "mean_ms": round(statistics.fmean(samples), 1) if samples else 0.0}


async def main(args: argparse.Namespace) -> dict[str, Any]:
    topic = await new_topic(args.partitions)
    await fill(topic, args.records, args.partitions)
    await raw_loop(topic, args.records)  # warm-up, untimed
    raw = max([await raw_loop(topic, args.records) for _ in range(2)])
    esm = await through_esm(topic, args.records, args.batch_size)
    lat = await latency(args.partitions, args.rate, args.latency_seconds, args.batch_size)
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"records": args.records, "partitions": args.partitions, "batch_size": args.batch_size,
            "raw_getmany_records_per_s": round(raw), "esm_records_per_s": round(esm), "ratio": round(esm / raw, 3),
            "latency": lat, "peak_rss_mb": round(peak_rss_mb, 1)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=40000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "kafka.json"))
    result = asyncio.run(main(parser.parse_args()))
    print(f"\nKafka 3.9, {result['partitions']} partitions, {result['records']} records, "
          f"BatchSize {result['batch_size']}")
    print(f"{'path':<40}{'records/s':>10}{'vs raw':>8}")
    print(f"{'raw getmany + commit loop (no decoding)':<40}{result['raw_getmany_records_per_s']:>10}{1.0:>8.2f}")
    print(f"{'esm -> in-process no-op handler':<40}{result['esm_records_per_s']:>10}{result['ratio']:>8.2f}")
    lat = result["latency"]
    print(f"\nproduce -> handler at {lat['rate_per_s']:.0f} records/s, window 0: p50 {lat['p50_ms']} ms, "
          f"p90 {lat['p90_ms']} ms, p99 {lat['p99_ms']} ms ({lat['samples']} samples)")
    print(f"peak RSS {result['peak_rss_mb']} MB")
    out = Path(parser.parse_args().out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
