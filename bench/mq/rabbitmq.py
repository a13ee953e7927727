"""bench/mq/rabbitmq: esm against a raw aio-pika consume-and-ack loop on the same RabbitMQ queue.

    eval "$(scripts/backends start)"
    .venv/bin/python -m bench.mq.rabbitmq [--messages 20000] [--rounds 3]

Both sides drain the same number of 200-byte messages from a fresh quorum queue, at BatchSize 100:
- raw: one aio-pika consumer, prefetch 200, that gathers 100 deliveries and acknowledges them with
  one `basic.ack multiple` (the least a consumer can do; no document, no invoke);
- esm: the daemon in this process with one RabbitMQ mapping (BatchSize 100, the default 0.5 s
  window, which a backlog never waits out) and an in-process no-op handler, timed from ready
  until `esm_deleted_events_total` reaches the count.
Prints messages/s for each (the best of `--rounds`), and esm's ratio to raw; writes
bench/results/mq-rabbitmq.json. Not part of the test suite.

Where esm's time goes (10,000 messages, timed inside the source on a loaded 2-core machine): about
80% waiting in `receive` for the broker's next deliveries (some 1,500 receives, seven messages
each: the broker pushes as acknowledgements free the prefetch), about 9% acknowledging (one
`basic.ack multiple` per batch), about 5% invoking; building the documents does not show. Both
loops are bound by how fast the quorum queue delivers, so on a busy machine the ratio swings
from run to run: measure on a quiet one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import aio_pika
import boto3
import yaml

from esm.config.loading import parse_config
from esm.daemon import run_daemon, tune_garbage_collector
from esm.observability.metrics import Metrics
from tests.support import rabbitmq as rmq

ROOT = Path(__file__).resolve().parents[2]
BATCH = 100
BODY = b"x" * 200


async def noop(event: Any, context: Any) -> None:
    return None


async def fill(channel: Any, queue: str, count: int) -> None:
    await rmq.declare(channel, queue)
    exchange = channel.default_exchange
    for start in range(0, count, 500):
        await asyncio.gather(*(exchange.publish(aio_pika.Message(BODY), routing_key=queue)
                               for _ in range(min(500, count - start))))


async def raw(broker: rmq.Broker, count: int) -> float:
    connection = await aio_pika.connect(broker.url)
    channel = await connection.channel()
    queue = rmq.queue_name("bench-raw")
    await fill(channel, queue, count)
    consumer_channel = await connection.channel()
    await consumer_channel.set_qos(prefetch_count=2 * BATCH)
    declared = await consumer_channel.get_queue(queue, ensure=True)
    done = asyncio.Event()
    held: list[Any] = []
    acked = 0

    async def delivered(message: Any) -> None:
        nonlocal acked
        held.append(message)
        if len(held) >= BATCH or acked + len(held) >= count:
            last = held[-1]
            held.clear()
            await last.ack(multiple=True)
            acked += BATCH if acked + BATCH <= count else count - acked
            if acked >= count:
                done.set()

    start = time.perf_counter()
    await declared.consume(delivered, no_ack=False)
    await done.wait()
    elapsed = time.perf_counter() - start
    await connection.close()
    return count / elapsed


async def through_esm(broker: rmq.Broker, count: int) -> float:
    connection = await aio_pika.connect(broker.url)
    channel = await connection.channel()
    queue = rmq.queue_name("bench-esm")
    await fill(channel, queue, count)
    await connection.close()
    mapping = rmq.mapping(broker, queue, rmq.secret(broker), BatchSize=BATCH)
    text = yaml.safe_dump({"functions": {"fn": {"handler": "bench.mq.rabbitmq:noop"}},
                           "event_source_mappings": [mapping], "metrics": {"listen": "127.0.0.1:0"}})
    config = parse_config(text)
    metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
    await ready.wait()
    start = time.perf_counter()
    labels = {"mapping": config.mappings[0].uuid, "source": "rabbitmq"}
    while (metrics.registry.get_sample_value("esm_deleted_events_total", labels) or 0) < count:
        await asyncio.sleep(0.01)
    elapsed = time.perf_counter() - start
    batches = metrics.registry.get_sample_value("esm_batch_size_records_count", labels)
    if os.environ.get("BENCH_VERBOSE"):
        print(f"esm: {batches} batches")
    stop.set()
    await task
    return count / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    tune_garbage_collector()
    boto3.setup_default_session()
    broker = rmq.broker()
    raws, esms = [], []
    for _ in range(args.rounds):
        raws.append(await raw(broker, args.messages))
        esms.append(await through_esm(broker, args.messages))
    best_raw, best_esm = max(raws), max(esms)
    result = {"messages": args.messages, "batch_size": BATCH, "rounds": args.rounds,
              "raw_per_s": round(best_raw), "esm_per_s": round(best_esm), "ratio": round(best_esm / best_raw, 2),
              "raw_all": [round(r) for r in raws], "esm_all": [round(e) for e in esms]}
    print(f"RabbitMQ {args.messages} messages, BatchSize {BATCH}, best of {args.rounds}")
    print(f"{'loop':<34}{'msg/s':>10}{'ratio':>8}")
    print(f"{'raw aio-pika consume + ack':<34}{best_raw:>10.0f}{1.0:>8.2f}")
    print(f"{'esm -> in-process no-op handler':<34}{best_esm:>10.0f}{best_esm / best_raw:>8.2f}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "mq-rabbitmq.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    if "ESM_AWS_ENDPOINT" not in os.environ:
        raise SystemExit('run eval "$(scripts/backends start)" first')
    asyncio.run(main())
