"""bench/scale: aggregate throughput with 1, 2 and 3 `esm run` processes on one config, and the
time the survivor takes to deliver a SIGKILLed replica's share again.

    eval "$(scripts/backends start)"
    .venv/bin/python -m bench.scale.run [--sources sqs,kafka,kinesis] [--turns 3] \
        [--kafka-records 600000] [--kinesis-records 40000] [--sqs-records 20000]

Each replica is a separate OS process (`python -m esm run`) on the same config, whose function is
an in-process no-op (bench/scale/handlers.py), so the rate is esm's, not a target's. Stream
positions and leases live in one DynamoDB table on moto, shared by the replicas.

Throughput: the backlog is there before the replicas start; the rate is taken from the moment the
source's units are spread over all replicas (Kafka: the group Stable with one member each;
Kinesis: every shard leased, 1 or 2 per replica; SQS: all replicas ready) until 75% of what was
left is invoked (the summed `esm_invoked_events_total` of the replicas), so neither the group's
rebalance nor the tail where some units run dry counts. Each process count runs --turns times, in
turns, and the best counts.

Takeover: 2 replicas on a steady feed; one is SIGKILLed. Kafka and Kinesis: the time until every
partition's committed offset (every shard's checkpoint) has moved past where it stood at the kill,
which for the dead replica's units only the survivor can do. SQS: the feed stops at the kill, and
the time until the queue is empty (the dead replica's in-flight messages came back after the
queue's visibility timeout and were delivered by the survivor).

Prints a table and writes bench/results/scale.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from bench.scale.replicas import ROOT, Replica
from bench.scale.sources import SOURCES, SQS_VISIBILITY, UNITS

COUNTER = "esm_invoked_events_total"
POLL = 0.25


async def total(session: aiohttp.ClientSession, replicas: list[Replica]) -> float:
    return sum(await asyncio.gather(*(r.counter(session, COUNTER) for r in replicas)))


@contextlib.asynccontextmanager
async def running(doc: dict[str, Any], count: int, folder: Path, session: aiohttp.ClientSession):
    replicas = [Replica.start(doc, folder, f"replica-{i}") for i in range(count)]
    try:
        await asyncio.gather(*(r.ready(session) for r in replicas))
        yield replicas
    finally:
        await asyncio.gather(*(r.stop() for r in replicas))


async def throughput(source: Any, count: int, records: int, folder: Path,
                     session: aiohttp.ClientSession) -> dict[str, Any]:
    doc = await source.point(records)
    load = os.getloadavg()[0]
    async with running(doc, count, folder, session) as replicas:
        started = time.perf_counter()
        while not await source.balanced(count):
            if time.perf_counter() - started > 120:
                raise RuntimeError(f"{source.kind}: {count} replicas not balanced after 120 s")
            await asyncio.sleep(POLL)
        t1, c1 = time.perf_counter(), await total(session, replicas)
        goal = c1 + 0.75 * (records - c1)
        c2 = c1
        while c2 < goal:
            await asyncio.sleep(POLL)
            c2 = await total(session, replicas)
            if time.perf_counter() - t1 > 300:
                raise RuntimeError(f"{source.kind}: {c2:.0f} of {records} after 300 s")
        t2 = time.perf_counter()
    return {"replicas": count, "records_per_s": round((c2 - c1) / (t2 - t1)), "measured_records": round(c2 - c1),
            "invoked_before_balanced": round(c1), "balanced_after_s": round(t1 - started, 2),
            "load_1m_at_start": round(load, 2)}


async def takeover(source: Any, rate: float, folder: Path, session: aiohttp.ClientSession) -> dict[str, Any]:
    doc = await source.point(0, latest=True)
    stop_feed = asyncio.Event()
    async with running(doc, 2, folder, session) as replicas:
        feeder = asyncio.create_task(source.feed(rate, stop_feed))
        try:
            while not await source.balanced(2):
                await asyncio.sleep(POLL)
            # Both replicas delivering, and (streams) every unit's position written once.
            while True:
                counts = await asyncio.gather(*(r.counter(session, COUNTER) for r in replicas))
                units = len(await source.positions()) if source.kind != "sqs" else UNITS
                if min(counts) > 0 and units == UNITS:
                    break
                await asyncio.sleep(POLL)
            await asyncio.sleep(2)
            replicas[1].kill()
            killed = time.perf_counter()
            extra: dict[str, Any] = {}
            if source.kind == "sqs":
                stop_feed.set()
                extra["in_flight_at_kill"] = (await source.counts())[1]
                while await source.counts() != (0, 0):
                    await asyncio.sleep(0.1)
                extra["visibility_timeout_s"] = SQS_VISIBILITY
            else:
                before = await source.positions()
                while True:
                    now = await source.positions()
                    if all(now.get(unit, -1) > position for unit, position in before.items()):
                        break
                    if time.perf_counter() - killed > 120:
                        raise RuntimeError(f"{source.kind}: no takeover after 120 s: {before} -> {now}")
                    await asyncio.sleep(0.1)
            seconds = time.perf_counter() - killed
        finally:
            stop_feed.set()
            await feeder
    return {"feed_per_s": rate, "takeover_s": round(seconds, 2), **extra}


async def one_source(kind: str, records: int, args: argparse.Namespace,
                     session: aiohttp.ClientSession) -> dict[str, Any]:
    async with SOURCES[kind]() as source:
        await source.prepare(records)
        runs: dict[int, list[dict[str, Any]]] = {n: [] for n in args.replicas}
        with contextlib.ExitStack() as stack:
            folder = Path(args.workdir or stack.enter_context(tempfile.TemporaryDirectory())) / kind
            folder.mkdir(parents=True, exist_ok=True)
            for _ in range(args.turns):  # in turns, so each process count sees the same load
                for count in args.replicas:
                    point = await throughput(source, count, records, folder, session)
                    print(kind, point, flush=True)
                    runs[count].append(point)
            over = await takeover(source, args.feed, folder, session) if args.takeover else None
            print(kind, "takeover", over, flush=True)
    best = {n: max(r, key=lambda p: p["records_per_s"]) for n, r in runs.items()}
    one = best[args.replicas[0]]["records_per_s"]
    return {"records": records, "batch_size": source.batch_size,
            "best": {str(n): p for n, p in best.items()},
            "ratio_vs_1": {str(n): round(p["records_per_s"] / one, 2) for n, p in best.items()},
            "runs_records_per_s": {str(n): [p["records_per_s"] for p in r] for n, r in runs.items()},
            "takeover": over}


def write(result: dict[str, Any]) -> None:
    out = ROOT / "bench" / "results" / "scale.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    records = {"sqs": args.sqs_records, "kafka": args.kafka_records, "kinesis": args.kinesis_records}
    result: dict[str, Any] = {"turns": args.turns, "cores": os.cpu_count(), "sources": {}}
    timeout = aiohttp.ClientTimeout(total=5)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for kind in args.sources.split(","):
            try:
                result["sources"][kind] = await one_source(kind, records[kind], args, session)
            except Exception as error:  # noqa: BLE001 - the other sources' rows still count
                print(f"{kind}: failed: {error!r}", flush=True)
                result["sources"][kind] = {"error": repr(error)}
            write(result)
    return result


def table(result: dict[str, Any]) -> str:
    lines = [f"\nScale-out, {result['cores']} cores, best of {result['turns']} (records/s summed over the replicas)",
             f"{'source':<9}{'1 proc':>9}{'2 procs':>9}{'3 procs':>9}{'2 vs 1':>8}{'3 vs 1':>8}{'takeover':>10}"]
    for kind, s in result["sources"].items():
        if "error" in s:
            lines.append(f"{kind:<9}failed: {s['error']}")
            continue
        rate = {n: s["best"].get(n, {}).get("records_per_s", 0) for n in ("1", "2", "3")}
        over = s["takeover"]["takeover_s"] if s["takeover"] else float("nan")
        lines.append(f"{kind:<9}{rate['1']:>9}{rate['2']:>9}{rate['3']:>9}{s['ratio_vs_1'].get('2', 0):>8.2f}"
                     f"{s['ratio_vs_1'].get('3', 0):>8.2f}{over:>9.1f}s")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sources", default="sqs,kafka,kinesis")
    parser.add_argument("--replicas", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2, 3])
    parser.add_argument("--turns", type=int, default=3, help="runs of each process count, in turns (the best counts)")
    parser.add_argument("--sqs-records", type=int, default=20000)
    parser.add_argument("--kafka-records", type=int, default=600000)
    parser.add_argument("--kinesis-records", type=int, default=40000)
    parser.add_argument("--feed", type=float, default=200.0, help="records/s fed while a replica is killed")
    parser.add_argument("--workdir", help="keep the replicas' configs and logs here (default: a temporary folder)")
    parser.add_argument("--no-takeover", dest="takeover", action="store_false")
    outcome = asyncio.run(main(parser.parse_args()))
    print(table(outcome))
    print(f"wrote {ROOT / 'bench' / 'results' / 'scale.json'}")
