"""bench/kafka: records per second through esm against two baselines measured in the same run, and latency.

    eval "$(scripts/backends start)"      # or: eval "$(cat /tmp/esm-backends.env)"
    .venv/bin/python -m bench.kafka.run [--records 200000] [--partitions 4] [--batch-size 100]
                                        [--also-batch-sizes 1,10000] [--no-quix]
                                        [--latency-seconds 15] [--profile /tmp/kafka-profile.txt]

All paths read the same backlog (a new topic with --partitions partitions, TRIM_HORIZON, each in
its own consumer group):
- raw: getmany and a commit after each call, decoding nothing (the speed of aiokafka itself);
- floor (`bench.kafka.floor`): the least a Python ESM must do: getmany, each record built as
  Lambda's Kafka event record, 100 per batch per partition in the event envelope, `orjson.dumps`,
  an in-process no-op handler that `orjson.loads` it, a commit after each fetch;
- quixstreams (`bench.kafka.quix`): the Python peer, its counting consumer in a process of its own
  (values as bytes, no event built); a "not installed" row when quixstreams is missing (the
  `bench` extra installs it);
- esm: the daemon with one mapping (BatchSize --batch-size, window 0) invoking an in-process
  no-op handler, timed until its committed-events counter reaches the backlog.
The ratios esm/floor, esm/raw and esm/quixstreams are printed (each the best of --repeat
runs, the paths taking turns); then floor and esm at each of --also-batch-sizes, in turns too.
Each path's records per CPU-second of its own process over the same span are printed as well: on a
machine shared with other work the wall-clock rates swing with whoever else holds the core, the
CPU a path spends per record much less.
With --profile, esm reads the backlog once more under cProfile (not counted in the table); the
summary (top functions by cumulative and own time, esm's own functions, own time per file) goes
to that path and the raw profile to that path + ".prof".
A run that drops a record or cannot decode one fails instead of reporting a rate.
`bench.kafka.registries` measures the same esm path with a schema registry decoding each record.
A second run produces at a steady rate with MaximumBatchingWindowInSeconds 0 and reports
end-to-end latency percentiles (produce to handler; --latency-seconds 0 skips it). Peak RSS of
the process is printed too. Prints a table and writes JSON (bench/results/kafka.json unless
--out). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import re
import json
import os
import resource
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from bench.kafka import handlers
from bench.kafka.floor import floor_loop, same_as_esm
from esm.config.loading import parse_config
from esm.daemon import run_daemon, tune_garbage_collector
from esm.observability.metrics import Metrics

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


async def delete_topic(name: str) -> None:
    """The backlog takes disk on the shared broker: gone once measured."""
    admin = AIOKafkaAdminClient(bootstrap_servers=servers())
    await admin.start()
    try:
        await admin.delete_topics([name])
    finally:
        await admin.close()


async def fill(topic: str, count: int, partitions: int) -> None:
    value = json.dumps({"payload": "x" * 200}).encode()
    producer = AIOKafkaProducer(bootstrap_servers=servers(), linger_ms=20, max_batch_size=512 * 1024)
    await producer.start()
    try:
        futures = [await producer.send(topic, value, partition=i % partitions) for i in range(count)]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def raw_loop(topic: str, total: int, cpu: list[float] | None = None) -> float:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=servers(), group_id=f"raw-{uuid.uuid4().hex[:8]}",
                                enable_auto_commit=False, auto_offset_reset="earliest")
    await consumer.start()
    try:
        seen, start = 0, None
        while seen < total:
            fetched = await consumer.getmany(timeout_ms=200, max_records=500)
            if fetched and start is None:
                start, cpu_start = time.perf_counter(), time.process_time()
            seen += sum(len(records) for records in fetched.values())
            if fetched:
                await consumer.commit()
        if cpu is not None:
            cpu.append(total / max(time.process_time() - cpu_start, 1e-9))
        return total / (time.perf_counter() - (start or time.perf_counter()))
    finally:
        await consumer.stop()


def esm_config(topic: str, handler: str, batch_size: int, window: float,
               schema_registry: dict[str, Any] | None = None) -> str:
    kafka_config: dict[str, Any] = {"ConsumerGroupId": f"esm-{uuid.uuid4().hex[:8]}"}
    if schema_registry is not None:
        kafka_config["SchemaRegistryConfig"] = schema_registry
    return yaml.safe_dump({
        "functions": {"f": {"handler": f"bench.kafka.handlers:{handler}", "max_concurrency": 100}},
        "event_source_mappings": [{
            "FunctionName": "f", "Topics": [topic], "StartingPosition": "TRIM_HORIZON", "BatchSize": batch_size,
            "MaximumBatchingWindowInSeconds": window,
            "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": servers().split(",")}},
            # No authentication: the VPC entries AWS requires of a self-managed cluster (esm ignores them).
            "SourceAccessConfigurations": [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"},
                                           {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-1"}],
            "SelfManagedKafkaEventSourceConfig": kafka_config}],
        "metrics": {"listen": "127.0.0.1:0"},
    })


async def through_esm(topic: str, total: int, batch_size: int,
                      schema_registry: dict[str, Any] | None = None, cpu: list[float] | None = None) -> float:
    config = parse_config(esm_config(topic, "noop", batch_size, 0, schema_registry))
    metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
    labels = {"mapping": config.mappings[0].uuid, "source": "kafka"}
    task = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
    await ready.wait()
    start = None
    # The two counters' children, read directly: collecting the whole registry at every look cost
    # esm's path a good part of its CPU time in this loop.
    committed = metrics.counters["committed"].labels(labels["mapping"], labels["source"])
    polled = metrics.counters["polled"].labels(labels["mapping"], labels["source"])
    while committed._value.get() < total:  # noqa: SLF001
        if start is None and polled._value.get() > 0:  # noqa: SLF001
            start, cpu_start = time.perf_counter(), time.process_time()
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - (start or time.perf_counter())
    if cpu is not None:
        cpu.append(total / max(time.process_time() - cpu_start, 1e-9))
    failed = max(metrics.registry.get_sample_value(f"{name}_total", labels) or 0
                 for name in ("esm_dropped_events", "esm_malformed_records"))
    stop.set()
    await task
    if failed:  # committed, yet not delivered: the rate would measure failing, not delivering
        raise RuntimeError(f"{failed:.0f} records were dropped or could not be decoded")
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
    await delete_topic(topic)
    samples = sorted(handlers.LATENCIES_MS[len(handlers.LATENCIES_MS) // 10:])  # skip the warm-up
    def pct(p: float) -> float:
        return samples[min(len(samples) - 1, int(p * len(samples)))] if samples else 0.0
    return {"rate_per_s": rate, "samples": len(samples), "p50_ms": round(pct(0.5), 1), "p90_ms": round(pct(0.9), 1),
            "p99_ms": round(pct(0.99), 1), "mean_ms": round(statistics.fmean(samples), 1) if samples else 0.0}


def profile_summary(profile: cProfile.Profile, records: int) -> str:
    """Top functions by cumulative and own time, the same for esm's own code, and own time per file."""
    out = io.StringIO()
    own = re.escape(str(ROOT / "esm")) + "/"
    stats = pstats.Stats(profile, stream=out)
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    out.write(f"esm reading {records} records under cProfile: {total:.2f} s of own time in all functions\n")
    out.write("(coroutines: cumulative time counts each resumption separately; own time is exact)\n")
    calls = {name: row[1] for (filename, _line, name), row in stats.stats.items()  # type: ignore[attr-defined]
             if filename.endswith(("aiokafka/consumer/fetcher.py", "aiokafka/consumer/consumer.py"))}
    out.write(f"aiokafka: {calls.get('_proc_fetch_request', 0)} fetch requests, {calls.get('getmany', 0)} getmany, "
              f"{calls.get('pause', 0)} pause, {calls.get('resume', 0)} resume (pausing a partition drops the records "
              "aiokafka fetched ahead for it)\n\n")
    per_file: dict[str, float] = {}
    for (filename, _line, name), row in stats.stats.items():  # type: ignore[attr-defined]
        if filename == "~":  # a builtin (orjson.dumps, list.append...): its own row
            per_file[name] = per_file.get(name, 0.0) + row[2]
            continue
        where = filename.replace(str(ROOT) + "/", "")
        where = re.sub(r"^.*site-packages/", "", where)
        where = re.sub(r"^.*lib/python3\.\d+/", "stdlib/", where)
        per_file[where] = per_file.get(where, 0.0) + row[2]
    out.write(f"== own time per file, builtins each on their own (top 30); µs per record under cProfile "
              f"(its overhead included: {1e6 * total / records:.2f} µs per record in all)\n")
    for where, seconds in sorted(per_file.items(), key=lambda item: -item[1])[:30]:
        out.write(f"{seconds:8.3f} s {100 * seconds / total:5.1f}% {1e6 * seconds / records:7.2f} µs  {where}\n")
    for title, key, restrict in (("esm's functions by own time", "tottime", own),
                                 ("esm's functions by cumulative time", "cumulative", own),
                                 ("all functions by own time", "tottime", None),
                                 ("all functions by cumulative time", "cumulative", None)):
        out.write(f"\n== {title}\n")
        stats.sort_stats(key)
        if restrict:
            stats.print_stats(restrict, 25)
        else:
            stats.print_stats(40)
    return out.getvalue()


async def profiled_esm(topic: str, total: int, batch_size: int, path: str) -> float:
    profile = cProfile.Profile()
    profile.enable()
    try:
        rate = await through_esm(topic, total, batch_size)
    finally:
        profile.disable()
    profile.dump_stats(f"{path}.prof")  # for pstats / snakeviz
    Path(path).write_text(profile_summary(profile, total))
    return rate


async def main(args: argparse.Namespace) -> dict[str, Any]:
    # The daemon tunes the garbage collector for the whole process (esm.daemon); every path runs
    # under the same settings from the start, so the ratios compare the work, not the collector.
    tune_garbage_collector()
    topic = await new_topic(args.partitions)
    try:
        return await measure(topic, args)
    finally:
        await delete_topic(topic)


async def quix_loop(topic: str, total: int, cpu: list[float] | None = None) -> float | None:
    """quixstreams' counting consumer (bench.kafka.quix) in a process of its own; None when not installed."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.kafka.quix", "--servers", servers(), "--topic", topic, "--records", str(total),
        stdout=asyncio.subprocess.PIPE, cwd=ROOT)
    out, _ = await process.communicate()
    answer = json.loads(out.decode().strip().splitlines()[-1])
    if cpu is not None and "cpu_records_per_s" in answer:
        cpu.append(answer["cpu_records_per_s"])
    return answer.get("records_per_s")


async def measure(topic: str, args: argparse.Namespace) -> dict[str, Any]:
    await fill(topic, args.records, args.partitions)
    await same_as_esm(topic, servers())
    await raw_loop(topic, args.records)  # warm-up, untimed
    raws, floors, quixes, esms = [], [], [], []
    cpu: dict[str, list[float]] = {"raw": [], "floor": [], "quixstreams": [], "esm": []}
    for _ in range(args.repeat):  # interleaved, so that a busy moment of the machine does not hit one path only
        raws.append(await raw_loop(topic, args.records, cpu["raw"]))
        floors.append(await floor_loop(topic, args.records, servers(), args.batch_size, cpu["floor"]))
        quixes.append(await quix_loop(topic, args.records, cpu["quixstreams"]) if args.quix else None)
        esms.append(await through_esm(topic, args.records, args.batch_size, cpu=cpu["esm"]))
    raw, floor, esm = max(raws), max(floors), max(esms)
    quix = max(quixes) if all(q is not None for q in quixes) else None  # type: ignore[type-var]
    result: dict[str, Any] = {
        "records": args.records, "partitions": args.partitions, "batch_size": args.batch_size,
        "raw_getmany_records_per_s": round(raw), "floor_records_per_s": round(floor), "esm_records_per_s": round(esm),
        "quixstreams_records_per_s": None if quix is None else round(quix),
        "ratio": round(esm / raw, 3), "ratio_esm_raw": round(esm / raw, 3), "ratio_esm_floor": round(esm / floor, 3),
        "ratio_floor_raw": round(floor / raw, 3),
        "ratio_esm_quixstreams": None if quix is None else round(esm / quix, 3),
        "runs_records_per_s": {"raw": [round(r) for r in raws], "floor": [round(r) for r in floors],
                               "quixstreams": [None if q is None else round(q) for q in quixes],
                               "esm": [round(r) for r in esms]}}
    # Records per CPU-second of each path's own process over its timed span: on a shared machine,
    # where another process can take the core at any moment, the steadier comparison of the work.
    best_cpu = {path: max(rates) for path, rates in cpu.items() if rates}
    result["cpu_records_per_s"] = {path: round(rate) for path, rate in best_cpu.items()}
    result["cpu_ratio_esm_floor"] = round(best_cpu["esm"] / best_cpu["floor"], 3)
    if "quixstreams" in best_cpu:
        result["cpu_ratio_esm_quixstreams"] = round(best_cpu["esm"] / best_cpu["quixstreams"], 3)
    other_sizes = []
    for size in args.also_batch_sizes:  # the same backlog, floor and esm in turns at another BatchSize
        size_floors, size_esms, cpu_floors, cpu_esms = [], [], [], []  # type: ignore[var-annotated]
        for _ in range(args.repeat):
            size_floors.append(await floor_loop(topic, args.records, servers(), size, cpu_floors))
            size_esms.append(await through_esm(topic, args.records, size, cpu=cpu_esms))
        other_sizes.append({"batch_size": size, "floor_records_per_s": round(max(size_floors)),
                            "esm_records_per_s": round(max(size_esms)),
                            "ratio_esm_floor": round(max(size_esms) / max(size_floors), 3),
                            "cpu_ratio_esm_floor": round(max(cpu_esms) / max(cpu_floors), 3),
                            "runs_records_per_s": {"floor": [round(r) for r in size_floors],
                                                   "esm": [round(r) for r in size_esms]}})
    result["other_batch_sizes"] = other_sizes
    if args.profile:
        result["profiled_esm_records_per_s"] = round(await profiled_esm(topic, args.records, args.batch_size,
                                                                         args.profile))
        result["profile"] = args.profile
    if args.latency_seconds > 0:
        result["latency"] = await latency(args.partitions, args.rate, args.latency_seconds, args.batch_size)
    result["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=200000)
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path (the best counts)")
    parser.add_argument("--also-batch-sizes", default="1,10000",
                        help="more BatchSizes for floor and esm only, comma-separated ('' for none)")
    parser.add_argument("--no-quix", dest="quix", action="store_false", help="leave quixstreams' row out")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--latency-seconds", type=float, default=15.0)
    parser.add_argument("--profile", default="", help="profile one more esm run with cProfile, summary to this path")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "kafka.json"))
    args = parser.parse_args()
    args.also_batch_sizes = [int(size) for size in args.also_batch_sizes.split(",") if size.strip()]
    result = asyncio.run(main(args))
    print(f"\nKafka, {result['partitions']} partitions, {result['records']} records, BatchSize {result['batch_size']}"
          f" (best of {args.repeat}, the paths in turns)")
    print(f"{'path':<58}{'records/s':>10}{'vs floor':>10}{'vs raw':>8}{'vs quix':>9}")
    floor, raw = result["floor_records_per_s"], result["raw_getmany_records_per_s"]
    quix = result["quixstreams_records_per_s"]
    for name, rate in (("raw: getmany + commit loop (no decoding)", raw),
                       ("floor: getmany, Lambda events, dumps, loads, commit", floor),
                       ("quixstreams: counting consumer (own process)", quix),
                       ("esm -> in-process no-op handler", result["esm_records_per_s"])):
        if rate is None:
            print(f"{name:<58}{'not installed (pip install quixstreams)' if args.quix else 'not run':>37}")
            continue
        versus_quix = f"{rate / quix:>9.2f}" if quix else f"{'-':>9}"
        print(f"{name:<58}{rate:>10}{rate / floor:>10.2f}{rate / raw:>8.2f}{versus_quix}")
    rates = result["cpu_records_per_s"]
    print("per CPU-second of the path's own process (steadier on a shared machine): "
          + ", ".join(f"{path} {rate}" for path, rate in rates.items())
          + f"; esm/floor {result['cpu_ratio_esm_floor']:.2f}"
          + (f", esm/quixstreams {result['cpu_ratio_esm_quixstreams']:.2f}" if "cpu_ratio_esm_quixstreams" in result
             else ""))
    for row in result["other_batch_sizes"]:
        print(f"BatchSize {row['batch_size']:>5}: floor {row['floor_records_per_s']:>8} records/s, "
              f"esm {row['esm_records_per_s']:>8} records/s, esm/floor {row['ratio_esm_floor']:.2f} "
              f"(per CPU-second {row['cpu_ratio_esm_floor']:.2f})")
    if "profile" in result:
        print(f"\nesm under cProfile: {result['profiled_esm_records_per_s']} records/s; summary in {result['profile']}")
    if "latency" in result:
        lat = result["latency"]
        print(f"\nproduce -> handler at {lat['rate_per_s']:.0f} records/s, window 0: p50 {lat['p50_ms']} ms, "
              f"p90 {lat['p90_ms']} ms, p99 {lat['p99_ms']} ms ({lat['samples']} samples)")
    print(f"peak RSS {result['peak_rss_mb']} MB")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
