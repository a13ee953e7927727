"""`python -m tests.nemesis.run --minutes M --seed N`: one nemesis run, start to verdict.

1. make the sources and proxies, start three replicas, watch checkpoints and commits;
2. for M minutes: steady traffic into every source, the function failing a seeded fraction, and
   the seeded fault schedule played against replicas and network;
3. traffic stops, every fault is undone (proxies healed, paused replicas continued, dead ones
   restarted), the function stops failing (poison records still fail), and the system drains;
4. a fault-free probe (the metrics check), then the replicas stop and the checker runs.

Everything goes to the work directory (default build/nemesis/seed-N): the schedule, the event log,
each replica's config and log, and report.json / report.md. Exit status 0 when every check held, 1
when one failed (the seed, the schedule and the first violating records are printed).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.nemesis.backends import OwnBackends
from tests.nemesis.broken import BREAKS
from tests.nemesis.checker import SourceReport, as_json, check_source, metric_problems, table
from tests.nemesis.function import NemesisFunction
from tests.nemesis.nemesis import Nemesis
from tests.nemesis.schedule import counts, make_schedule
from tests.nemesis.system import (
    BATCH_SIZE, INVOKE_TIMEOUT, LANES, ORDERED, SOURCES, System, made, read_dead_letters, watch_checkpoints,
)
from tests.nemesis.traffic import Traffic
from tests.support.ledger import Ledger

ROOT = Path(__file__).resolve().parents[2]
REPLICAS = 3
PROBE_RECORDS = 20  # per source
STUCK = 90.0  # seconds a drained system may miss the same records before the books are settled anyway


def say(text: str) -> None:
    print(f"[nemesis {time.strftime('%H:%M:%S')}] {text}", flush=True)


async def scrape(system: System) -> dict[str, dict[str, float]]:
    """Every replica's counters, added up per source (by the `mapping` label: the mapping's name)."""
    names = {f"nemesis-{s}": s for s in SOURCES}
    names.update({k: v for k, v in system.mapping_of().items()})
    totals: dict[str, dict[str, float]] = {s: {} for s in SOURCES}
    for replica in system.replicas:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            async with session.get(f"http://127.0.0.1:{replica.metrics_port}/metrics") as response:
                text = await response.text()
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                source = names.get(sample.labels.get("mapping", ""))
                if source is not None:
                    totals[source][sample.name] = totals[source].get(sample.name, 0.0) + sample.value
    return totals


async def settle(system: System, ledgers: dict[str, Ledger], timeout: float) -> dict[str, list[str]]:
    """Wait until every source's books close (dead letters read back as needed) and the queues and
    the group's commits are drained; returns the dead-letter documents naming no record."""
    deadline = time.monotonic() + timeout
    unnamed: dict[str, list[str]] = {s: [] for s in SOURCES}
    last: tuple[dict[str, int], float] = ({}, time.monotonic())  # what was missing, since when
    while True:
        pending = {s: len(l.lost()) for s, l in ledgers.items()}
        if any(pending.values()):
            for s in SOURCES:
                if pending[s]:
                    unnamed[s] = await read_dead_letters(system, s, ledgers[s])
            pending = {s: len(l.lost()) for s, l in ledgers.items()}
        drained = {s: await _drained(system, s) for s in SOURCES}
        if not any(pending.values()) and all(drained.values()):
            return unnamed
        if pending != last[0] or not all(drained.values()):
            last = (pending, time.monotonic())
        elif time.monotonic() - last[1] > STUCK:  # drained, and nothing moved: those records are gone
            say(f"drained, but missing {pending} for {STUCK:.0f}s: settling the books as they are")
            return unnamed
        if time.monotonic() > deadline:
            say(f"not settled after {timeout:.0f}s: missing {pending}, drained {drained}")
            return unnamed
        await asyncio.sleep(2)


async def _drained(system: System, source: str) -> bool:
    try:
        return await system.drained(source)
    except Exception:
        return False


async def ensure_alive(system: System) -> None:
    for r, replica in enumerate(system.replicas):
        process = replica.process
        if process is None or process.poll() is not None:
            say(f"replica {r} is down at the end of the faults: restarting it")
            await system.start_replica(r)
        else:
            process.send_signal(signal.SIGCONT)


async def main(minutes: float, seed: int, workdir: Path, rate: float, settle_timeout: float,
               backends: OwnBackends | None = None, broken: str | None = None) -> int:
    seconds = minutes * 60
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    ledgers = {s: Ledger(f"nemesis/{s}", s, ordered=ORDERED[s]) for s in SOURCES}
    function = NemesisFunction(ledgers, seed, invoke_timeout=INVOKE_TIMEOUT)
    await function.start()
    try:
        async with made(seed, workdir, function.url, REPLICAS, backends=backends, broken=broken) as system:
            function.dynamodb_unit = system.res.dynamodb_shard
            schedule = make_schedule(seed, seconds, REPLICAS, kafka_proxied=system.kafka_proxy is not None,
                                     backends=backends is not None, mq=True)
            (workdir / "schedule.txt").write_text("\n".join(f.describe() for f in schedule) + "\n")
            say(f"seed {seed}, {minutes:g} min, {len(schedule)} faults {counts(schedule)}; "
                f"Kafka proxy: {'yes' if system.kafka_proxy else 'no (its address is taken; no Kafka network faults)'}; "
                f"backends: {'its own (restarts and freezes)' if backends else 'shared (never restarted)'}"
                + (f"; BROKEN BUILD: {broken}" if broken else ""))
            say(f"work directory {workdir}")
            for r in range(REPLICAS):
                await system.start_replica(r, wait=False)
            for replica in system.replicas:
                await replica.ready(timeout=180)
            say("three replicas ready")
            stop_watching = asyncio.Event()
            watcher = asyncio.create_task(watch_checkpoints(system, ledgers, stop_watching))
            traffic = Traffic(system, ledgers, seed, rate=rate)
            nemesis = Nemesis(system, schedule, workdir / "events.jsonl")
            await asyncio.gather(traffic.run(seconds), nemesis.run())
            say(f"traffic stopped ({sum(len(l.order) for l in ledgers.values())} records); faults done "
                f"{len(nemesis.done)}/{len(schedule)}, errors {len(nemesis.errors)}")
            await system.heal()
            await ensure_alive(system)
            function.failing = False
            unnamed = await settle(system, ledgers, settle_timeout)
            say("drained; the probe runs")

            await asyncio.sleep(5)  # the last commits and deletes land before the baseline
            before = await scrape(system)
            presented_before = dict(function.appearances)
            probe = Traffic(system, ledgers, seed + 1, rate=rate, prefix="probe", poison_rate=0.0)
            await probe.run(PROBE_RECORDS / rate)
            await settle(system, ledgers, 180)
            await asyncio.sleep(5)
            after = await scrape(system)
            probed = {s: sum(1 for i in ledgers[s].order if i.startswith("probe-")) for s in SOURCES}
            stop_watching.set()
            polls = await watcher
            await system.stop_all()
            for s in SOURCES:  # the last word: whatever reached a dead-letter queue since
                unnamed[s] = await read_dead_letters(system, s, ledgers[s])
            reports = []
            for s in SOURCES:
                problems = metric_problems(s, before[s], after[s],
                                           presented=function.appearances[s] - presented_before.get(s, 0),
                                           probe_records=probed[s])
                reports.append(check_source(ledgers[s], lanes=LANES[s], batch_size=BATCH_SIZE,
                                            faults=len(schedule), failed_invocations=function.failed_invocations[s],
                                            unnamed_dead_letters=unnamed[s], metric_problems=problems))
            return report(seed, minutes, rate, schedule, nemesis, system, traffic, reports, workdir, polls, function,
                          broken)
    finally:
        await function.stop()


def report(seed: int, minutes: float, rate: float, schedule: list[Any], nemesis: Nemesis, system: System,
           traffic: Traffic, reports: list[SourceReport], workdir: Path, polls: int,
           function: NemesisFunction, broken: str | None = None) -> int:
    kinds = counts(schedule)
    command = f"scripts/nemesis --minutes {minutes:g} --seed {seed}" + (f" --broken {broken}" if broken else "")
    text = [f"nemesis: seed {seed}, {minutes:g} minutes, {rate:g} records/s per source, "
            f"{len(schedule)} faults ({', '.join(f'{k} {n}' for k, n in kinds.items())}), "
            f"{system.restarts} replica restarts, {polls} checkpoint polls, "
            f"{'own' if system.backends else 'shared'} backends" + (f", BROKEN BUILD {broken}" if broken else ""),
            f"command: {command}", "", table(reports)]
    replies: dict[str, int] = dict(sorted(function.replies.items()))
    text += ["", f"function replies: {replies}", f"produce retries: {dict(traffic.produce_errors)}",
             f"exit codes after SIGTERM: {nemesis.sigterm_exits} (0: drained and stopped cleanly)"]
    if nemesis.errors:
        text += ["", "faults that could not be applied:"] + [f"  {e}" for e in nemesis.errors]
    failed = [r for r in reports if not r.sound]
    if failed or nemesis.errors:  # a fault that could not be applied: a replica that would not restart
        text += ["", f"FAILED (seed {seed}; replay: {command})"]
        for r in failed:
            text += [f"  {r.source}:"] + [f"    {p}" for p in r.problems]
        text += ["", "schedule:"] + [f"  {f.describe()}" for f in schedule]
    else:
        text += ["", "every check held: lost 0, order kept, no checkpoint past an unfinished record, "
                     "duplicates within their bounds, metrics agree"]
    out = "\n".join(text)
    print(out, flush=True)
    (workdir / "report.md").write_text(out + "\n")
    (workdir / "report.json").write_text(json.dumps({
        "seed": seed, "minutes": minutes, "rate": rate, "broken": broken,
        "own_backends": system.backends is not None, "polls": polls, "faults": kinds, "fault_count": len(schedule),
        "restarts": system.restarts, "sources": as_json(reports), "fault_errors": nemesis.errors,
        "sigterm_exits": nemesis.sigterm_exits,
        "replies": replies}, indent=2) + "\n")
    return 1 if failed or nemesis.errors else 0


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/nemesis", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--seed", type=int, default=int(time.time()) % 100000)
    parser.add_argument("--rate", type=float, default=4.0, help="records per second per source (default 4)")
    parser.add_argument("--settle", type=float, default=600.0, help="seconds to wait for the drain (default 600)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--backends-dir", type=Path, default=None,
                        help="the run owns the backends started in this ESM_BACKENDS_DIR: the schedule restarts "
                             "and freezes them (scripts/nemesis passes its private set)")
    parser.add_argument("--broken", choices=sorted(BREAKS), default=None,
                        help="run the replicas as a deliberately broken build (tests/nemesis/broken.py): the "
                             "checker must fail")
    args = parser.parse_args(argv)
    for name in ("ESM_SQS_ENDPOINT", "ESM_KINESIS_ENDPOINT", "ESM_AWS_ENDPOINT", "TOXIPROXY_URL",
                 "KAFKA_BOOTSTRAP_SERVERS"):
        if not os.environ.get(name):
            print(f"nemesis: {name} is not set: start the backends first (scripts/nemesis does)", file=sys.stderr)
            return 2
    workdir = args.workdir or ROOT / "build" / "nemesis" / (
        f"seed-{args.seed}" + (f"-broken-{args.broken}" if args.broken else ""))
    backends = OwnBackends(args.backends_dir.resolve()) if args.backends_dir else None
    # The run's own Kafka clients (the producer, the watcher's admin) complain on every broker restart
    # and partition; they retry, and the report counts the producer's retries instead.
    # The same for its RabbitMQ and ActiveMQ clients (the producers, the dead-letter readers).
    for name in ("aiokafka", "aiormq", "aio_pika", "stompman"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    return asyncio.run(main(args.minutes, args.seed, workdir, args.rate, args.settle, backends, args.broken))


if __name__ == "__main__":
    sys.exit(cli())
