"""SIGTERM and SIGKILL mid-batch, with esm as a real process (behaviour §9.6: at least once, nothing lost).

SIGTERM: the batch being invoked finishes and is deleted, gathered-but-uninvoked messages are made
visible again at once, the process exits 0, and nothing is acknowledged twice.
SIGKILL: nothing is lost; unacknowledged messages come back after their visibility timeout and a
restarted daemon processes them.
A second signal during the drain forces the exit: the batch in flight is cancelled, unacknowledged.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support.sqs import create_queue, queue_counts, send, sqs_client, wait_until_empty

pytestmark = pytest.mark.usefixtures("backends")
ROOT = Path(__file__).resolve().parents[2]


def write_config(tmp_path: Path, arn: str, **fields) -> Path:
    config = {
        "functions": {"slow": {"handler": "tests.support.recorder:file_handler", "timeout": 60}},
        "event_source_mappings": [{"FunctionName": "slow", "EventSourceArn": arn, **fields}],
        "metrics": {"listen": "127.0.0.1:0"},
        "shutdown_timeout": 20,
    }
    path = tmp_path / "esm.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def start_daemon(config: Path, record_file: Path, sleep: float) -> subprocess.Popen:
    env = dict(os.environ, ESM_TEST_RECORD_FILE=str(record_file), ESM_TEST_SLEEP=str(sleep))
    return subprocess.Popen([sys.executable, "-m", "esm", "run", "--config", str(config)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def read_events(record_file: Path) -> list[dict]:
    if not record_file.exists():
        return []
    return [json.loads(line) for line in record_file.read_text().splitlines() if line.strip()]


async def wait_for_events(record_file: Path, condition, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        events = read_events(record_file)
        if condition(events):
            return events
        await asyncio.sleep(0.2)
    raise AssertionError(f"condition not met; events: {read_events(record_file)}")


async def test_sigterm_mid_batch_drains_releases_and_loses_nothing(tmp_path):
    """behaviour §9.6 + issue 4.6: SIGTERM finishes the in-flight batch, releases gathered messages at once, exits 0."""
    record_file = tmp_path / "calls.jsonl"
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, visibility=300)
        await send(sqs, url, [f"t{i}" for i in range(25)])
        # One poller, a long window: while batch 1 is invoked, nothing else is gathered yet;
        # BatchSize 5 and a 3 s sleep leave most messages on the queue or gathered when SIGTERM lands.
        config = write_config(tmp_path, arn, BatchSize=5, ScalingConfig={"MaximumConcurrency": 2})
        process = start_daemon(config, record_file, sleep=3)
        try:
            await wait_for_events(record_file, lambda ev: any(e["phase"] == "start" for e in ev))
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.to_thread(process.communicate, timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, output
        events = read_events(record_file)
        started = [i for e in events if e["phase"] == "start" for i in e["ids"]]
        finished = [i for e in events if e["phase"] == "end" for i in e["ids"]]
        assert started and sorted(started) == sorted(finished), "an in-flight batch was cut off"
        assert len(started) == len(set(started)), "a message was invoked twice"
        # Everything not processed is visible again right away (the queue's visibility timeout is 300 s).
        visible, in_flight = await queue_counts(sqs, url)
        assert in_flight == 0, output
        assert visible == 25 - len(finished)


async def test_sigkill_mid_batch_loses_nothing(tmp_path):
    """behaviour §9.6 + issue 4.6: after SIGKILL, unacknowledged messages return after the visibility timeout."""
    record_file = tmp_path / "calls.jsonl"
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, visibility=2)
        bodies = [f"k{i}" for i in range(12)]
        await send(sqs, url, bodies)
        config = write_config(tmp_path, arn, BatchSize=4, ScalingConfig={"MaximumConcurrency": 2})
        process = start_daemon(config, record_file, sleep=2)
        try:
            await wait_for_events(record_file, lambda ev: any(e["phase"] == "start" for e in ev))
            process.kill()
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        killed_mid = [e for e in read_events(record_file) if e["phase"] == "start"]
        assert killed_mid, "the kill should land during a batch"
        restarted = start_daemon(config, record_file, sleep=0)
        try:
            await wait_until_empty(sqs, url, timeout=60)
        finally:
            restarted.send_signal(signal.SIGTERM)
            await asyncio.to_thread(restarted.communicate, timeout=60)
        processed = {b for e in read_events(record_file) if e["phase"] == "start" for b in e["bodies"]}
        assert processed == set(bodies)


async def test_sigterm_releases_gathered_messages_at_once(tmp_path):
    """Issue 4.6: on SIGTERM, messages gathered in a batching window but not yet invoked are visible again at once."""
    record_file = tmp_path / "calls.jsonl"
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, visibility=300)
        await send(sqs, url, [f"g{i}" for i in range(25)])
        config = write_config(tmp_path, arn, BatchSize=100, MaximumBatchingWindowInSeconds=60,
                              ScalingConfig={"MaximumConcurrency": 2})
        process = start_daemon(config, record_file, sleep=0)
        try:
            deadline = time.monotonic() + 60
            while await queue_counts(sqs, url) != (0, 25):  # all 25 received and held in the window
                assert time.monotonic() < deadline, await queue_counts(sqs, url)
                await asyncio.sleep(0.2)
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.to_thread(process.communicate, timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        assert process.returncode == 0, output
        assert read_events(record_file) == []  # never invoked
        # Visible again without waiting for the 300 s visibility timeout (ElasticMQ's counts settle in a moment).
        deadline = time.monotonic() + 10
        while (counts := await queue_counts(sqs, url)) != (25, 0) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert counts == (25, 0), output


async def test_a_second_signal_during_the_drain_forces_exit(tmp_path):
    """docs/design.md "Layout" (daemon: a second signal forces exit) + behaviour §9.6: the first SIGTERM starts
    the drain; a SIGINT during it cancels the batch in flight at once (the drain could last 600 s),
    the process exits as after a shutdown timeout (0), and nothing is acknowledged."""
    record_file = tmp_path / "calls.jsonl"
    async with sqs_client() as sqs:
        url, arn = await create_queue(sqs, visibility=300)
        await send(sqs, url, [f"f{i}" for i in range(25)])
        config = tmp_path / "esm.yaml"
        config.write_text(yaml.safe_dump({
            "functions": {"slow": {"handler": "tests.support.recorder:async_file_handler", "timeout": 900}},
            "event_source_mappings": [{"FunctionName": "slow", "EventSourceArn": arn, "BatchSize": 5,
                                       "ScalingConfig": {"MaximumConcurrency": 2}}],
            "metrics": {"listen": "127.0.0.1:0"},
            "shutdown_timeout": 600,
        }))
        process = start_daemon(config, record_file, sleep=600)
        lines: list[str] = []
        try:
            await wait_for_events(record_file, lambda ev: any(e["phase"] == "start" for e in ev))
            process.send_signal(signal.SIGTERM)
            while not any("shutting down" in line for line in lines):  # the drain has begun
                line = await asyncio.to_thread(process.stdout.readline)
                assert line, "".join(lines)
                lines.append(line)
            process.send_signal(signal.SIGINT)
            rest, _ = await asyncio.to_thread(process.communicate, timeout=60)
        finally:
            if process.poll() is None:
                process.kill()
        output = "".join(lines) + rest
        assert process.returncode == 0, output
        assert "forced shutdown: cancelling 1 mapping(s)" in output, output
        events = read_events(record_file)
        assert [e for e in events if e["phase"] == "start"], output
        assert [e for e in events if e["phase"] == "end"] == [], "the batch in flight was not cut off"
        visible, in_flight = await queue_counts(sqs, url)
        assert visible + in_flight == 25, output  # nothing acknowledged
