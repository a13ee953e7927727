"""Two esm replicas share a DynamoDB stream through DynamoDB leases (issue 14.1, docs/design.md "Kubernetes deployment").

moto gives a stream one shard, so sharing is one holder at a time: exactly one replica reads the
shard, and after it is killed (SIGKILL: no release, no last checkpoint) the other takes the lease
over when it expires and resumes from the checkpoint, skipping nothing.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml

from tests.support.dynamodb import create_table, dynamodb_client, item, put_items

pytestmark = pytest.mark.usefixtures("backends")
ROOT = Path(__file__).resolve().parents[2]


def events(record_file: Path) -> list[dict]:
    if not record_file.exists():
        return []
    return [json.loads(line) for line in record_file.read_text().splitlines() if line.strip()]


async def wait_for(condition, timeout: float = 90) -> None:
    for _ in range(int(timeout * 10)):
        if condition():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_one_replica_holds_the_shard_and_the_other_takes_over_after_a_kill(tmp_path):
    """Leases in the DynamoDB checkpoint table: one holder; after SIGKILL the survivor reads on from
    the checkpoint and every later change reaches the function (at least once)."""
    record_file = tmp_path / "calls.jsonl"
    leases_table = f"esm-leases-{uuid.uuid4().hex[:8]}"
    async with dynamodb_client() as ddb:
        table, arn = await create_table(ddb)
        config = {
            "functions": {"f": {"handler": "tests.support.recorder:file_handler"}},
            "event_source_mappings": [{"FunctionName": "f", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON",
                                       "BatchSize": 5}],
            "checkpoints": {"dynamodb": {"table": leases_table}},
            "metrics": {"listen": "127.0.0.1:0"},
        }
        path = tmp_path / "esm.yaml"
        path.write_text(yaml.safe_dump(config))
        env = dict(os.environ, ESM_TEST_RECORD_FILE=str(record_file), ESM_TEST_SLEEP="0")
        replicas = [subprocess.Popen([sys.executable, "-m", "esm", "run", "--config", str(path)], cwd=ROOT, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(2)]
        try:
            bodies = lambda: {b for e in events(record_file) if e["phase"] == "start" for b in e["bodies"]}  # noqa: E731
            pids = lambda: {e["pid"] for e in events(record_file) if e["phase"] == "start"}  # noqa: E731
            first = [f"a{i:02d}" for i in range(20)]
            await put_items(ddb, table, [item(k) for k in first])
            await wait_for(lambda: set(first) <= bodies())
            await asyncio.sleep(3)  # a couple of discovery rounds: the other replica must not read it too
            [holder_pid] = pids()
            holder = next(p for p in replicas if p.pid == holder_pid)
            survivor = next(p for p in replicas if p is not holder)

            holder.send_signal(signal.SIGKILL)
            holder.wait(timeout=30)
            second = [f"b{i:02d}" for i in range(30)]
            await put_items(ddb, table, [item(k) for k in second])
            await wait_for(lambda: set(second) <= bodies(), timeout=120)
            late = {b for e in events(record_file) if e["phase"] == "start" and e["pid"] == survivor.pid
                    for b in e["bodies"] if b.startswith("b")}
            assert late == set(second), "the survivor processed every change made after the kill"
        finally:
            for process in replicas:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in replicas:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
