"""bench/soak: a steady load through SQS, Kinesis and Kafka at once, watching esm's resources.

    eval "$(scripts/backends start)"
    .venv/bin/python -m bench.soak.run [--minutes 5] [--rate 100] [--interval 5]

Runs `esm run` as its own process with three mappings (an SQS queue, a 2-shard Kinesis stream, a
4-partition Kafka topic) to one in-process handler, produces `--rate` records per second to each
source, and scrapes the daemon's /metrics every `--interval` seconds: resident memory and open
file descriptors (prometheus_client's process collector), asyncio tasks and event-loop lag
(esm/observability/loop_monitor.py), and the invoked-event counts. At the end it stops producing, waits for the
backlog to drain, stops the daemon with SIGTERM and checks every record was invoked.

"Flat" is judged by comparing the median of the second quarter of the run (after warm-up) with the
median of the last quarter: the ratio is printed per resource. Prints a table, writes JSON
(bench/results/soak.json unless --out). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import yaml
from aiobotocore.session import get_session
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[2]
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")
ACCOUNT = "000000000000"
WATCHED = {
    "rss_mib": "process_resident_memory_bytes",
    "open_fds": "process_open_fds",
    "tasks": "esm_asyncio_tasks",
    "loop_lag_ms": "esm_event_loop_lag_seconds",
}


def client(session: Any, service: str, endpoint: str) -> Any:
    return session.create_client(service, region_name=REGION, endpoint_url=endpoint,
                                 aws_access_key_id="test", aws_secret_access_key="test")


async def sources(run_id: str) -> dict[str, Any]:
    session = get_session()
    async with client(session, "sqs", os.environ["ESM_SQS_ENDPOINT"]) as sqs:
        queue = f"soak-{run_id}"
        url = (await sqs.create_queue(QueueName=queue, Attributes={"VisibilityTimeout": "60"}))["QueueUrl"]
    async with client(session, "kinesis", os.environ["ESM_KINESIS_ENDPOINT"]) as kinesis:
        stream = f"soak-{run_id}"
        await kinesis.create_stream(StreamName=stream, ShardCount=2)
        while (await kinesis.describe_stream_summary(StreamName=stream))[
                "StreamDescriptionSummary"]["StreamStatus"] != "ACTIVE":
            await asyncio.sleep(0.1)
    topic = f"soak-{run_id}"
    admin = AIOKafkaAdminClient(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"])
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 4, 1)])
    finally:
        await admin.close()
    return {"queue": queue, "url": url, "stream": stream, "topic": topic}


def config(names: dict[str, Any], folder: str, port: int) -> str:
    return yaml.safe_dump({
        "functions": {"f": {"handler": "bench.soak.handlers:handle", "max_concurrency": 50}},
        "aws": {"region": REGION},
        "event_source_mappings": [
            {"FunctionName": "f", "EventSourceArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{names['queue']}",
             "BatchSize": 10},
            {"FunctionName": "f", "EventSourceArn": f"arn:aws:kinesis:{REGION}:{ACCOUNT}:stream/{names['stream']}",
             "StartingPosition": "TRIM_HORIZON", "BatchSize": 100},
            {"FunctionName": "f", "Topics": [names["topic"]], "StartingPosition": "TRIM_HORIZON", "BatchSize": 100,
             "SelfManagedEventSource": {"Endpoints": {
                 "KAFKA_BOOTSTRAP_SERVERS": os.environ["KAFKA_BOOTSTRAP_SERVERS"].split(",")}},
             # No authentication: the VPC entries AWS requires of a self-managed cluster (esm ignores them).
             "SourceAccessConfigurations": [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"},
                                            {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-1"}]},
        ],
        "checkpoints": {"sqlite": f"{folder}/checkpoints.db"},
        "metrics": {"listen": f"127.0.0.1:{port}"},
    })


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def scrape(port: int) -> dict[str, float]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    values: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        name_labels, _, value = line.rpartition(" ")
        name = name_labels.split("{", 1)[0]
        if name in WATCHED.values() or name in ("esm_invoked_events_total", "esm_polled_events_total"):
            source = ""
            if 'source="' in name_labels:
                source = name_labels.split('source="', 1)[1].split('"', 1)[0]
            key = f"{name}:{source}" if source else name
            values[key] = values.get(key, 0.0) + float(value)
    return values


async def produce(names: dict[str, Any], rate: float, seconds: float) -> dict[str, int]:
    """`rate` records per second to each source for `seconds`; returns how many each got."""
    session = get_session()
    sent = {"sqs": 0, "kinesis": 0, "kafka": 0}
    producer = AIOKafkaProducer(bootstrap_servers=os.environ["KAFKA_BOOTSTRAP_SERVERS"], linger_ms=5)
    await producer.start()
    body = json.dumps({"payload": "x" * 300})
    try:
        async with client(session, "sqs", os.environ["ESM_SQS_ENDPOINT"]) as sqs, \
                client(session, "kinesis", os.environ["ESM_KINESIS_ENDPOINT"]) as kinesis:
            tick, start = 0.5, time.monotonic()
            per_tick = max(1, round(rate * tick))
            while time.monotonic() - start < seconds:
                began = time.monotonic()
                for first in range(0, per_tick, 10):
                    count = min(10, per_tick - first)
                    await sqs.send_message_batch(QueueUrl=names["url"], Entries=[
                        {"Id": str(i), "MessageBody": body} for i in range(count)])
                await kinesis.put_records(StreamName=names["stream"], Records=[
                    {"PartitionKey": f"k{sent['kinesis'] + i}", "Data": body.encode()} for i in range(per_tick)])
                for i in range(per_tick):
                    await producer.send(names["topic"], body.encode(), partition=(sent["kafka"] + i) % 4)
                sent = {key: value + per_tick for key, value in sent.items()}
                await asyncio.sleep(max(0.0, tick - (time.monotonic() - began)))
            await producer.flush()
    finally:
        await producer.stop()
    return sent


async def main(args: argparse.Namespace) -> dict[str, Any]:
    run_id = uuid.uuid4().hex[:8]
    names = await sources(run_id)
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "esm.yaml"
        path.write_text(config(names, folder, port))
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        daemon = subprocess.Popen([sys.executable, "-m", "esm", "run", "--config", str(path)], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(Path(folder) / "esm.log", "w"))
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2).status == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit("esm did not become ready; see its log")
                await asyncio.sleep(0.5)
            samples: list[dict[str, float]] = []
            producing = asyncio.create_task(produce(names, args.rate, args.minutes * 60))
            start = time.monotonic()
            while not producing.done():
                await asyncio.sleep(args.interval)
                values = scrape(port)
                row = {"t": round(time.monotonic() - start, 1)}
                for key, metric in WATCHED.items():
                    row[key] = values.get(metric, 0.0)
                row["rss_mib"] = round(row["rss_mib"] / 2 ** 20, 1)
                row["loop_lag_ms"] = round(row["loop_lag_ms"] * 1000, 2)
                for source in ("sqs", "kinesis", "kafka"):
                    row[f"invoked_{source}"] = values.get(f"esm_invoked_events_total:{source}", 0.0)
                samples.append(row)
                print("  ".join(f"{k}={v}" for k, v in row.items()), flush=True)
            sent = producing.result()
            drain_deadline = time.monotonic() + 120
            while True:
                values = scrape(port)
                invoked = {s: int(values.get(f"esm_invoked_events_total:{s}", 0)) for s in sent}
                if all(invoked[s] >= sent[s] for s in sent) or time.monotonic() > drain_deadline:
                    break
                await asyncio.sleep(1)
        finally:
            daemon.send_signal(signal.SIGTERM)
            exit_code = daemon.wait(timeout=60)
    quarter = max(1, len(samples) // 4)
    early, late = samples[quarter:2 * quarter] or samples, samples[-quarter:]
    flatness = {}
    for key in WATCHED:
        a = statistics.median(r[key] for r in early)
        b = statistics.median(r[key] for r in late)
        flatness[key] = {"second_quarter_median": round(a, 2), "last_quarter_median": round(b, 2),
                         "max": max(r[key] for r in samples), "ratio": round(b / a, 3) if a else None}
    return {"minutes": args.minutes, "rate_per_source": args.rate, "sent": sent, "invoked": invoked,
            "lost": {s: max(0, sent[s] - invoked[s]) for s in sent}, "exit_code": exit_code,
            "flatness": flatness, "samples": samples}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=100.0, help="records per second to each source")
    parser.add_argument("--interval", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "soak.json"))
    args = parser.parse_args()
    result = asyncio.run(main(args))
    print(f"\nsoak: {result['minutes']} min, {result['rate_per_source']:.0f} records/s to each of SQS, Kinesis, Kafka")
    print(f"sent {result['sent']}  invoked {result['invoked']}  lost {result['lost']}  esm exit {result['exit_code']}")
    print(f"{'resource':<14}{'2nd quarter':>12}{'last quarter':>14}{'max':>10}{'ratio':>8}")
    for key, row in result["flatness"].items():
        print(f"{key:<14}{row['second_quarter_median']:>12}{row['last_quarter_median']:>14}{row['max']:>10}"
              f"{row['ratio'] if row['ratio'] is not None else '-':>8}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")
