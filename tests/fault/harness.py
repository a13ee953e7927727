"""What every fault scenario needs: proxies in front of the backends and the function, the daemon's
config pointing at them, watchers of checkpoints and commits, and readers of dead letters.

The daemon runs in the test's event loop (`tests.support.daemon.running_config`) except where a
scenario kills it (`DaemonProcess`: `python -m esm run`, metrics scraped from its /metrics).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

from esm.config.loading import parse_config
from tests.support.daemon import RunningDaemon, running_config
from tests.support.ledger import Ledger, identity
from tests.support.ports import free_port
from tests.support.toxiproxy import Proxy, Toxiproxy
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Proxies:
    """One proxy per thing esm talks to; esm's config names the proxies' addresses."""

    toxi: Toxiproxy
    sqs: Proxy
    kinesis: Proxy
    aws: Proxy  # moto: S3, SNS, DynamoDB
    function: Proxy
    # The broker's PROXIED listener advertises KAFKA_PROXIED_BOOTSTRAP, so clients that reconnect to
    # the advertised address come back through this proxy too.
    kafka: Proxy | None = None

    def endpoints(self) -> dict[str, str]:
        return {"sqs": self.sqs.url(), "kinesis": self.kinesis.url(), "s3": self.aws.url(),
                "sns": self.aws.url(), "dynamodb": self.aws.url()}

    def function_url(self) -> str:
        return self.function.url("/invoke")


@contextlib.asynccontextmanager
async def proxies(function_url: str, *, kafka: bool = False) -> AsyncIterator[Proxies]:
    async with Toxiproxy.from_env() as toxi:
        async with contextlib.AsyncExitStack() as stack:
            made = [await stack.enter_async_context(toxi.proxy(name, upstream)) for name, upstream in (
                ("sqs", os.environ["ESM_SQS_ENDPOINT"]), ("kinesis", os.environ["ESM_KINESIS_ENDPOINT"]),
                ("aws", os.environ["ESM_AWS_ENDPOINT"]), ("function", function_url))]
            broker = None
            if kafka:
                broker = await stack.enter_async_context(toxi.proxy(
                    "kafka", os.environ["KAFKA_PROXIED_UPSTREAM"], listen=os.environ["KAFKA_PROXIED_BOOTSTRAP"]))
            yield Proxies(toxi, *made, kafka=broker)


def config_doc(mapping: dict[str, Any], proxied: Proxies, *, tmp_path: Path, timeout: float = 5,
               max_concurrency: int = 4, **extra: Any) -> dict[str, Any]:
    return {
        "functions": {"fn": {"url": proxied.function_url(), "timeout": timeout, "max_concurrency": max_concurrency}},
        "event_source_mappings": [{"FunctionName": "fn", **mapping}],
        "aws": {"region": "us-east-1", "endpoints": proxied.endpoints()},
        "checkpoints": {"sqlite": str(tmp_path / "checkpoints.db")},
        "metrics": {"listen": "127.0.0.1:0"},
        "shutdown_timeout": 20,
        "startup_timeout": 60,
        **extra,
    }


def run_daemon(doc: dict[str, Any]) -> contextlib.AbstractAsyncContextManager[RunningDaemon]:
    return running_config(parse_config(yaml.safe_dump(doc, sort_keys=False)))


# ---------------------------------------------------------------- waiting


# ---------------------------------------------------------------- checkpoints and commits


@contextlib.asynccontextmanager
async def watch(poll: Callable[[], Awaitable[None]], interval: float = 0.2) -> AsyncIterator[None]:
    """Run `poll` every `interval` seconds in the background for the duration of a block."""

    async def loop() -> None:
        while True:
            with contextlib.suppress(Exception):  # a store mid-write, a broker away: the next poll sees it
                await poll()
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name="fault-watcher")
    try:
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        with contextlib.suppress(Exception):
            await poll()  # the last word


def sqlite_checkpoints(path: Path, ledger: Ledger) -> Callable[[], Awaitable[None]]:
    """Read the Kinesis checkpoint store (WAL: a second reader is fine) into the ledger."""

    def read() -> list[tuple[str, str]]:
        if not path.exists():
            return []
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1)
        try:
            return list(conn.execute("SELECT unit, position FROM checkpoints"))
        except sqlite3.OperationalError:  # table not there yet
            return []
        finally:
            conn.close()

    async def poll() -> None:
        rows = await asyncio.to_thread(read)
        when = time.time()  # after the read: whatever it shows was written before now
        for unit, position in rows:
            if position.isdigit():
                ledger.checkpoint(unit, int(position), when)

    return poll


async def lease_checkpoints(dynamodb: Any, table: str) -> list[tuple[str, str, int]]:
    """(mapping, unit, position) of every numeric checkpoint in a DynamoDB lease table
    (esm.checkpoints.dynamodb), read consistently."""
    kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
    items: list[dict[str, Any]] = []
    while True:
        page = await dynamodb.scan(**kwargs)
        items.extend(page.get("Items") or [])
        if not page.get("LastEvaluatedKey"):
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    found = []
    for item in items:
        position = item.get("checkpoint", {}).get("S", "")
        if "unit" in item and position.isdigit():
            found.append((item.get("mapping", {}).get("S", ""), item["unit"]["S"], int(position)))
    return found


async def released_offsets(admin: Any, group: str, topic: str) -> list[tuple[str, int]]:
    """(partition unit, last released offset) per committed partition of `topic`: a committed offset
    O releases every record below O."""
    offsets = await admin.list_consumer_group_offsets(group)
    return [(f"{tp.topic}-{tp.partition}", meta.offset - 1) for tp, meta in offsets.items()
            if tp.topic == topic and meta.offset >= 0]


def dynamodb_checkpoints(dynamodb: Any, table: str, ledger: Ledger) -> Callable[[], Awaitable[None]]:
    """Read the DynamoDB lease table's checkpoints into the ledger."""

    async def poll() -> None:
        found = await lease_checkpoints(dynamodb, table)
        when = time.time()  # after the read: whatever it shows was written before now
        for _mapping, unit, position in found:
            ledger.checkpoint(unit, position, when)

    return poll


def kafka_commits(admin: Any, group: str, topic: str, ledger: Ledger) -> Callable[[], Awaitable[None]]:
    """Read the group's committed offsets into the ledger."""

    async def poll() -> None:
        released = await released_offsets(admin, group, topic)
        when = time.time()
        for unit, position in released:
            ledger.checkpoint(unit, position, when)

    return poll


# ---------------------------------------------------------------- dead letters


async def read_dead_letters(sqs: Any, url: str, ledger: Ledger) -> int:
    """Everything in an SQS queue used as the on-failure destination or redrive DLQ, into the ledger:
    redriven messages (the record itself), Kinesis and Kafka failure records (ranges of positions).
    Messages are left in the queue (visibility 0), so a second read sees them again."""
    count = 0
    seen_ids: set[str] = set()
    handles: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        response = await sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                             VisibilityTimeout=20, MessageSystemAttributeNames=["All"])
        messages = response.get("Messages") or []
        if not messages:
            break
        for m in messages:
            if m["MessageId"] in seen_ids:
                continue
            seen_ids.add(m["MessageId"])
            handles.append(m["ReceiptHandle"])
            count += 1
            when = int(m["Attributes"]["SentTimestamp"]) / 1000
            found = identity(m["Body"])
            if found is not None:
                ledger.dead_letter(found[0], when, m["MessageId"])
                continue
            doc = json.loads(m["Body"])
            if "KinesisBatchInfo" in doc:
                info = doc["KinesisBatchInfo"]
                ledger.dead_letter_range(info["shardId"], int(info["startSequenceNumber"]),
                                         int(info["endSequenceNumber"]), when, m["MessageId"])
            elif "KafkaBatchInfo" in doc:
                for unit, bounds in doc["KafkaBatchInfo"]["recordsInfo"].items():
                    ledger.dead_letter_range(unit, int(bounds["firstRecordOffset"]),
                                             int(bounds["lastRecordOffset"]), when, m["MessageId"])
            else:
                raise AssertionError(f"unexpected message in the dead-letter queue: {m['Body'][:300]}")
    for start in range(0, len(handles), 10):  # visible again, for a later read
        chunk = handles[start:start + 10]
        await sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": h, "VisibilityTimeout": 0} for i, h in enumerate(chunk)])
    return count


async def read_s3_dead_letters(s3: Any, bucket: str, ledger: Ledger) -> int:
    """Every on-failure object in an S3 bucket: its `payload` is the whole invocation event."""
    count = 0
    kwargs: dict[str, Any] = {"Bucket": bucket}
    while True:
        listing = await s3.list_objects_v2(**kwargs)
        for item in listing.get("Contents") or []:
            obj = await s3.get_object(Bucket=bucket, Key=item["Key"])
            doc = json.loads(await obj["Body"].read())
            when = item["LastModified"].timestamp()  # whole seconds: never later than the real time
            for record in json.loads(doc["payload"])["Records"]:
                found = identity(base64.b64decode(record["kinesis"]["data"]))
                if found is not None:
                    ledger.dead_letter(found[0], when, item["Key"])
            count += 1
        if not listing.get("IsTruncated"):
            return count
        kwargs["ContinuationToken"] = listing["NextContinuationToken"]


# ---------------------------------------------------------------- the daemon as a process


@dataclass
class DaemonProcess:
    """`python -m esm run` on a written config, for the scenarios that SIGKILL or SIGTERM it."""

    config: Path
    log: Path
    metrics_port: int
    process: subprocess.Popen[bytes] | None = None
    exits: list[int] = field(default_factory=list)
    # What Python runs: esm itself, or a wrapper that breaks it on purpose first
    # (tests/nemesis/broken.py, to show the nemesis's checker catches a broken build).
    program: tuple[str, ...] = ("-m", "esm")

    @classmethod
    def write(cls, doc: dict[str, Any], tmp_path: Path, name: str = "esm",
              program: tuple[str, ...] = ("-m", "esm")) -> "DaemonProcess":
        port = free_port()
        doc = dict(doc, metrics={"listen": f"127.0.0.1:{port}"})
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        return cls(path, tmp_path / f"{name}.log", port, program=program)

    def start(self) -> None:
        out = self.log.open("ab")
        self.process = subprocess.Popen([sys.executable, *self.program, "run", "--config", str(self.config)],
                                        cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        out.close()

    async def ready(self, timeout: float = 60) -> None:
        async def answers() -> bool:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"esm exited {self.process.returncode}: {self.tail()}")
            try:
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
                    async with session.get(f"http://127.0.0.1:{self.metrics_port}/readyz") as response:
                        return response.status == 200
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                return False

        await wait_until(answers, timeout, "esm ready")

    async def metrics(self) -> dict[str, float]:
        """Every sample of /metrics summed over its labels, by sample name."""
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.get(f"http://127.0.0.1:{self.metrics_port}/metrics") as response:
                text = await response.text()
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                totals[sample.name] = totals.get(sample.name, 0.0) + sample.value
        return totals

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.exits.append(self.process.wait(timeout=30))

    async def terminate(self, timeout: float = 90) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(self.process.wait, timeout)
        self.exits.append(code)
        return code

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop_now(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)
