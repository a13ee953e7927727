"""Several esm replicas share a stream through DynamoDB leases (docs/design.md "Kubernetes deployment", issue 5.3/5.8)."""

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

from tests.support.kinesis import create_stream, kinesis_client, put

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


async def test_two_replicas_split_shards_and_one_takes_over_after_a_kill(tmp_path):
    """Leases spread shards across live replicas; after SIGKILL the survivor takes over within the lease
    expiry and no record is skipped (at least once)."""
    record_file = tmp_path / "calls.jsonl"
    table = f"esm-leases-{uuid.uuid4().hex[:8]}"
    async with kinesis_client() as kinesis:
        name, arn = await create_stream(kinesis, shards=4)
        config = {
            "functions": {"f": {"handler": "tests.support.recorder:file_handler"}},
            "event_source_mappings": [{"FunctionName": "f", "EventSourceArn": arn, "StartingPosition": "TRIM_HORIZON",
                                       "BatchSize": 5}],
            "checkpoints": {"dynamodb": {"table": table}},
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
            # Leases rebalance one steal per discovery round (KCL style): produce in rounds until both hold shards.
            for round_no in range(30):
                batch = [(f"k{i}", f"a{round_no:02d}-{i:02d}".encode()) for i in range(20)]
                await put(kinesis, name, batch)
                await wait_for(lambda: {b.decode() for _, b in batch} <= bodies())
                if pids() == {p.pid for p in replicas}:
                    break
                await asyncio.sleep(1)
            assert pids() == {p.pid for p in replicas}, "both replicas must hold shards"

            victim, survivor = replicas
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=30)
            second_round = [(f"k{i}", f"b{i:03d}".encode()) for i in range(60)]
            await put(kinesis, name, second_round)
            await wait_for(lambda: {f"b{i:03d}" for i in range(60)} <= bodies(), timeout=120)
            late = {b for e in events(record_file) if e["phase"] == "start" and e["pid"] == survivor.pid
                    for b in e["bodies"] if b.startswith("b")}
            assert late == {f"b{i:03d}" for i in range(60)}, "the survivor processed every record after the kill"
        finally:
            for process in replicas:
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in replicas:
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
