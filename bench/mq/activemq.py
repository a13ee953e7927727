"""bench/mq/activemq: esm against a raw stompman consume-and-ack loop on the same ActiveMQ broker.

    eval "$(scripts/backends start)"
    .venv/bin/python -m bench.mq.activemq [--messages 10000] [--rounds 3]

Both sides drain the same number of 200-byte persistent messages from a fresh queue, at BatchSize 100:
- raw: one stompman subscription (client-individual, prefetch 500 as esm's five consumers of 100)
  that gathers 100 frames and acknowledges each (STOMP has no multiple-ack in that mode; the least
  a consumer that settles messages one by one can do: no document, no invoke);
- esm: the daemon in this process with one ActiveMQ mapping (BatchSize 100, no batching window) and
  an in-process no-op handler, timed from ready until `esm_deleted_events_total` reaches the count.
Prints messages/s for each (the best of `--rounds`) and esm's ratio to raw; writes
bench/results/mq-activemq.json. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from esm.config.loading import parse_config
from esm.daemon import run_daemon, tune_garbage_collector
from esm.observability.metrics import Metrics
from tests.support import activemq

ROOT = Path(__file__).resolve().parents[2]
BATCH = 100
BODY = b"x" * 200


async def noop(event: Any, context: Any) -> None:
    return None


async def waiting(queue: str) -> int:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{activemq.admin_url()}/queue", params={"name": queue}) as answer:
            return int((await answer.json())["waiting"])


async def fill(queue: str, count: int) -> None:
    async with activemq.stomp_client() as client:
        for _ in range(count):
            await client.send(BODY, queue, headers={"persistent": "true"})
    while await waiting(queue) < count:  # sends without a receipt: wait until the broker has them all
        await asyncio.sleep(0.2)


async def raw(count: int) -> float:
    queue = activemq.queue_name("bench-raw")
    await fill(queue, count)
    done = asyncio.Event()
    held: list[Any] = []
    acked = 0

    async def take(frame: Any) -> None:
        nonlocal acked
        held.append(frame)
        if len(held) >= BATCH or acked + len(held) >= count:
            batch = held[:]
            held.clear()
            for f in batch:
                await f.ack()
            acked += len(batch)
            if acked >= count:
                done.set()

    async with activemq.stomp_client() as client:
        began = time.perf_counter()
        subscription = await client.subscribe_with_manual_ack(
            queue, take, ack="client-individual", headers={"activemq.prefetchSize": str(5 * BATCH)})
        await done.wait()
        seconds = time.perf_counter() - began
        await subscription.unsubscribe()
    return count / seconds


async def through_esm(count: int) -> float:
    queue = activemq.queue_name("bench-esm")
    await fill(queue, count)
    secret = await activemq.make_secret()
    doc = {"functions": {"noop": {"handler": "bench.mq.activemq:noop", "max_concurrency": 10}},
           "event_source_mappings": [activemq.mapping(queue, secret, "noop", BatchSize=BATCH,
                                                      MaximumBatchingWindowInSeconds=0)],
           "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 10}
    config = parse_config(yaml.safe_dump(doc, sort_keys=False))
    metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
    await ready.wait()
    began = time.perf_counter()

    def deleted() -> float:
        return sum(s.value for f in metrics.registry.collect() for s in f.samples
                   if s.name == "esm_deleted_events_total")

    while deleted() < count:
        await asyncio.sleep(0.01)
    seconds = time.perf_counter() - began
    stop.set()
    await task
    return count / seconds


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tune_garbage_collector()
    raws, esms = [], []
    for _ in range(args.rounds):
        raws.append(await raw(args.messages))
        esms.append(await through_esm(args.messages))
    best_raw, best_esm = max(raws), max(esms)
    rows = [("raw stompman consume-and-ack", best_raw, 1.0), ("esm, in-process no-op handler", best_esm,
                                                               best_esm / best_raw)]
    print(f"ActiveMQ, {args.messages} messages of {len(BODY)} bytes, BatchSize {BATCH}, best of {args.rounds}")
    print(f"{'loop':34} {'msg/s':>9} {'vs raw':>7}")
    for name, rate, ratio in rows:
        print(f"{name:34} {rate:9.0f} {ratio:7.2f}")
    out = ROOT / "bench" / "results" / "mq-activemq.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"messages": args.messages, "batch_size": BATCH, "raw": raws, "esm": esms,
                               "ratio": best_esm / best_raw}, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
