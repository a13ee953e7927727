"""bench/sqs: esm against a raw aiobotocore receive-and-delete loop on the same ElasticMQ.

    eval "$(scripts/backends start)"
    .venv/bin/python -m bench.sqs.run [--messages 20000] [--concurrency 10] [--repeat 3] [--backlog 100000]

Prints a table and writes bench/results/sqs.json:
- throughput: messages/s through esm to an in-process no-op handler and to an HTTP target (a small
  aiohttp server in another process), and through the raw loop with the same concurrency (raw:
  --concurrency workers, each receive then delete; esm: MaximumConcurrency --concurrency, each
  poller one batch in flight and its next receive); each as a ratio to the raw loop, the best of
  --repeat runs, the three paths taking turns;
- latency: p50/p99 from send to handler at a low rate;
- memory: peak RSS of an `esm run` process draining a backlog, sampled every 0.5 s, with the RSS
  early and late in the drain (flat means memory does not grow with the backlog).
Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, AsyncIterator

import yaml
from aiobotocore.session import get_session

from bench.sqs import handlers
from esm.config.loading import parse_config
from esm.daemon import run_daemon, tune_garbage_collector
from esm.observability.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
REGION, ACCOUNT = "us-east-1", "000000000000"
NOOP = {"handler": "bench.sqs.handlers:noop"}  # the in-process function: returns at once


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(session: Any) -> Any:
    return session.create_client("sqs", region_name=REGION, endpoint_url=os.environ["ESM_SQS_ENDPOINT"],
                                 aws_access_key_id="test", aws_secret_access_key="test")


async def new_queue(sqs: Any, visibility: int = 60) -> tuple[str, str]:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    url = (await sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": str(visibility)}))["QueueUrl"]
    return url, f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"


async def fill(sqs: Any, url: str, count: int, body: str = "x" * 200, senders: int = 16) -> None:
    batches = [min(10, count - start) for start in range(0, count, 10)]
    queue: asyncio.Queue[int] = asyncio.Queue()
    for size in batches:
        queue.put_nowait(size)

    async def sender() -> None:
        while not queue.empty():
            size = queue.get_nowait()
            await sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i in range(size)])

    await asyncio.gather(*(sender() for _ in range(senders)))


async def counts(sqs: Any, url: str) -> tuple[int, int]:
    a = (await sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]))["Attributes"]
    return int(a["ApproximateNumberOfMessages"]), int(a["ApproximateNumberOfMessagesNotVisible"])


async def wait_empty(sqs: Any, url: str) -> None:
    while await counts(sqs, url) != (0, 0):
        await asyncio.sleep(0.05)


async def raw_loop(sqs: Any, url: str, total: int, concurrency: int) -> float:
    """Messages/s until the last one is deleted (the workers' trailing empty polls are not timed)."""
    done = 0
    finished = 0.0
    start = time.perf_counter()

    async def worker() -> None:
        nonlocal done, finished
        while done < total:
            messages = (await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                                  MessageSystemAttributeNames=["All"],
                                                  MessageAttributeNames=["All"])).get("Messages") or []
            if messages:
                await sqs.delete_message_batch(QueueUrl=url, Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)])
                done += len(messages)
                if done >= total and not finished:
                    finished = time.perf_counter()

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return total / (finished - start)


def esm_config(arn: str, function: dict[str, Any], concurrency: int, port: int = 0) -> str:
    return yaml.safe_dump({
        "functions": {"f": function},
        "event_source_mappings": [{"FunctionName": "f", "EventSourceArn": arn,
                                   "ScalingConfig": {"MaximumConcurrency": max(2, concurrency)}}],
        "metrics": {"listen": f"127.0.0.1:{port}"},
    })


async def through_esm(sqs: Any, url: str, arn: str, total: int, function: dict[str, Any], concurrency: int) -> float:
    config = parse_config(esm_config(arn, function, concurrency))
    metrics, stop, ready = Metrics(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
    await ready.wait()
    start = time.perf_counter()
    while (metrics.registry.get_sample_value("esm_deleted_events_total",
                                             {"mapping": config.mappings[0].uuid, "source": "sqs"}) or 0) < total:
        await asyncio.sleep(0.02)
    elapsed = time.perf_counter() - start
    stop.set()
    await task
    return total / elapsed


HTTP_SERVER = """
import sys
from aiohttp import web
async def ok(request):
    await request.read()
    return web.json_response({})
app = web.Application()
app.router.add_post("/invoke", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


@contextlib.asynccontextmanager
async def http_target() -> AsyncIterator[dict[str, Any]]:
    """The HTTP function: HTTP_SERVER in a process of its own on a free port, stopped on leaving."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", HTTP_SERVER, str(port)])
    try:
        await asyncio.sleep(1.5)  # the server's start-up
        yield {"url": f"http://127.0.0.1:{port}/invoke"}
    finally:
        server.terminate()
        server.wait()


async def latency_run(sqs: Any, url: str, arn: str, rate: float, seconds: float) -> dict[str, float]:
    handlers.LATENCIES.clear()
    config = parse_config(esm_config(arn, {"handler": "bench.sqs.handlers:latency"}, 5))
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_daemon(config, stop=stop, metrics=Metrics(), ready=ready))
    await ready.wait()
    await asyncio.sleep(1)
    sent = 0
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        await sqs.send_message(QueueUrl=url, MessageBody=repr(time.time()))
        sent += 1
        await asyncio.sleep(1 / rate)
    while len(handlers.LATENCIES) < sent:
        await asyncio.sleep(0.05)
    stop.set()
    await task
    values = sorted(handlers.LATENCIES)
    return {"messages": sent, "p50_ms": 1000 * statistics.median(values),
            "p99_ms": 1000 * values[min(len(values) - 1, int(len(values) * 0.99))]}


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def memory_run(sqs: Any, url: str, arn: str, backlog: int, concurrency: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "esm.yaml"
        path.write_text(esm_config(arn, NOOP, concurrency, port=free_port()))
        process = subprocess.Popen([sys.executable, "-m", "esm", "run", "--config", str(path)], cwd=ROOT,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        samples: list[tuple[float, int, int]] = []
        start = time.monotonic()
        try:
            while True:
                visible, hidden = await counts(sqs, url)
                samples.append((time.monotonic() - start, rss_kib(process.pid), visible + hidden))
                if visible + hidden == 0:
                    break
                await asyncio.sleep(0.5)
        finally:
            process.terminate()
            process.wait(timeout=60)
    during = [s for s in samples if s[2] > 0]
    quarter = max(1, len(during) // 4)
    return {
        "backlog": backlog,
        "drain_seconds": round(samples[-1][0], 1),
        "peak_rss_mib": round(max(s[1] for s in samples) / 1024, 1),
        "rss_first_quarter_mib": round(statistics.mean(s[1] for s in during[:quarter]) / 1024, 1),
        "rss_last_quarter_mib": round(statistics.mean(s[1] for s in during[-quarter:]) / 1024, 1),
    }


async def main(args: argparse.Namespace) -> dict[str, Any]:
    tune_garbage_collector()  # as `esm run` does; every path below runs under the same collector settings
    results: dict[str, Any] = {"messages": args.messages, "concurrency": args.concurrency}
    session = get_session()
    async with client(session) as sqs:
        url, arn = await new_queue(sqs)
        await fill(sqs, url, 2000)  # warm the broker's JIT and the connection pools, untimed
        await raw_loop(sqs, url, 2000, args.concurrency)
        await wait_empty(sqs, url)
        raws, inprocs, https = [], [], []
        async with http_target() as http_function:
            for _ in range(args.repeat):  # the three paths in turns: a busy moment of the machine hits all
                await wait_empty(sqs, url)
                await fill(sqs, url, args.messages)
                raws.append(await raw_loop(sqs, url, args.messages, args.concurrency))
                await wait_empty(sqs, url)
                await fill(sqs, url, args.messages)
                inprocs.append(await through_esm(sqs, url, arn, args.messages, NOOP, args.concurrency))
                await wait_empty(sqs, url)
                await fill(sqs, url, args.messages)
                https.append(await through_esm(sqs, url, arn, args.messages, http_function, args.concurrency))
                print(f"turn {len(raws)}: raw {raws[-1]:.0f}, esm in-process {inprocs[-1]:.0f}, esm HTTP "
                      f"{https[-1]:.0f} messages/s", file=sys.stderr, flush=True)
        raw, inproc, http = max(raws), max(inprocs), max(https)  # the best of each
        results["runs_msgs_per_s"] = {"raw": [round(r) for r in raws], "esm_inprocess": [round(r) for r in inprocs],
                                      "esm_http": [round(r) for r in https]}
        results["throughput"] = {
            "raw_loop_msgs_per_s": round(raw), "esm_inprocess_msgs_per_s": round(inproc),
            "esm_http_msgs_per_s": round(http), "ratio_inprocess": round(inproc / raw, 3),
            "ratio_http": round(http / raw, 3)}
        await wait_empty(sqs, url)
        results["latency"] = await latency_run(sqs, url, arn, rate=args.rate, seconds=args.latency_seconds)
        if args.backlog:
            url2, arn2 = await new_queue(sqs, visibility=120)
            await fill(sqs, url2, args.backlog, senders=32)
            results["memory"] = await memory_run(sqs, url2, arn2, args.backlog, args.concurrency)
    return results


def print_table(results: dict[str, Any]) -> None:
    t = results["throughput"]
    print(f"\nSQS on ElasticMQ, {results['messages']} messages, concurrency {results['concurrency']} (best of "
          f"{len(results['runs_msgs_per_s']['raw'])}, the paths in turns)")
    print(f"raw: {results['concurrency']} workers, each a receive (10) then its delete; esm: MaximumConcurrency "
          f"{results['concurrency']} (on-demand scaling: 5 pollers, +5 a second), each poller one batch invoked and "
          "deleted while its next receive is in flight")
    print(f"{'path':<34}{'msgs/s':>10}{'vs raw':>9}")
    print(f"{'raw aiobotocore receive+delete':<34}{t['raw_loop_msgs_per_s']:>10}{1.0:>9.2f}")
    print(f"{'esm -> in-process no-op handler':<34}{t['esm_inprocess_msgs_per_s']:>10}{t['ratio_inprocess']:>9.2f}")
    print(f"{'esm -> HTTP target':<34}{t['esm_http_msgs_per_s']:>10}{t['ratio_http']:>9.2f}")
    lat = results["latency"]
    print(f"\nlatency send->handler, {lat['messages']} messages at a low rate: "
          f"p50 {lat['p50_ms']:.1f} ms, p99 {lat['p99_ms']:.1f} ms")
    if "memory" in results:
        m = results["memory"]
        print(f"\nmemory draining a {m['backlog']}-message backlog in {m['drain_seconds']} s: peak RSS "
              f"{m['peak_rss_mib']} MiB; first quarter {m['rss_first_quarter_mib']} MiB, "
              f"last quarter {m['rss_last_quarter_mib']} MiB")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3, help="runs of each path, in turns (the best counts)")
    parser.add_argument("--backlog", type=int, default=100000)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--latency-seconds", type=float, default=10.0)
    arguments = parser.parse_args()
    outcome = asyncio.run(main(arguments))
    print_table(outcome)
    out = ROOT / "bench" / "results" / "sqs.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(outcome, indent=2))
    print(f"\nwrote {out}")
