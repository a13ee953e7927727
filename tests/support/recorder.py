"""In-process test functions: record every batch, and answer as the current test says.

Config files in tests name `tests.support.recorder:handle` (async) or `...:handle_sync`. A test
installs a `Recorder` with `install()`; the recorder keeps every batch it was given, how many
invokes ran at once (overall and per FIFO message group), and answers with `behaviour(event)`.
A second form, `file_handler` (or `async_file_handler`, whose sleep a cancel ends), appends
batches to the file named by ESM_TEST_RECORD_FILE, for daemons started as separate processes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import time
from typing import Any, Callable


class Recorder:
    def __init__(self, behaviour: Callable[[dict[str, Any]], Any] | None = None, delay: float = 0.0):
        self.behaviour = behaviour or (lambda event: None)
        self.delay = delay
        self.batches: list[list[dict[str, Any]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.groups_in_flight: dict[str, int] = {}
        self.max_per_group = 0
        self.changed = asyncio.Event()

    @property
    def records(self) -> list[dict[str, Any]]:
        return [r for batch in self.batches for r in batch]

    def bodies(self) -> list[str]:
        return [r["body"] for r in self.records]

    async def handle(self, event: dict[str, Any]) -> Any:
        records = event.get("Records", [])
        groups = {r.get("attributes", {}).get("MessageGroupId") for r in records} - {None}
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        for group in groups:
            self.groups_in_flight[group] = self.groups_in_flight.get(group, 0) + 1
            self.max_per_group = max(self.max_per_group, self.groups_in_flight[group])
        try:
            self.batches.append(records)
            if self.delay:
                await asyncio.sleep(self.delay)
            return self.behaviour(event)
        finally:
            self.in_flight -= 1
            for group in groups:
                self.groups_in_flight[group] -= 1
            self.changed.set()

    async def wait_for(self, condition: Callable[["Recorder"], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not condition(self):
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met in {timeout}s; saw {len(self.records)} record(s)")
            self.changed.clear()
            try:
                await asyncio.wait_for(self.changed.wait(), timeout=0.5)
            except asyncio.TimeoutError:
                pass


CURRENT = Recorder()


def install(recorder: Recorder) -> Recorder:
    global CURRENT
    CURRENT = recorder
    return recorder


async def handle(event: dict[str, Any], context: Any) -> Any:
    return await CURRENT.handle(event)


def _identity(record: dict[str, Any]) -> tuple[str, str]:
    """(id, body) of an SQS, Kinesis or DynamoDB record (a DynamoDB record's body: its item key `pk`)."""
    if "dynamodb" in record:
        return record["dynamodb"]["SequenceNumber"], record["dynamodb"]["Keys"]["pk"]["S"]
    if "kinesis" in record:
        return record["kinesis"]["sequenceNumber"], base64.b64decode(record["kinesis"]["data"]).decode()
    return record["messageId"], record["body"]


def file_handler(event: dict[str, Any], context: Any) -> Any:
    """For a daemon in another process: append the batch, then sleep ESM_TEST_SLEEP seconds."""
    ids, bodies = zip(*(_identity(r) for r in event["Records"]))
    with open(os.environ["ESM_TEST_RECORD_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"phase": "start", "ids": ids, "bodies": bodies, "pid": os.getpid()}) + "\n")
    time.sleep(float(os.environ.get("ESM_TEST_SLEEP", "0")))
    with open(os.environ["ESM_TEST_RECORD_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"phase": "end", "ids": ids}) + "\n")
    return None


async def async_file_handler(event: dict[str, Any], context: Any) -> Any:
    """`file_handler` as a coroutine: its sleep ends when esm cancels the invoke (a forced shutdown)."""
    ids, bodies = zip(*(_identity(r) for r in event["Records"]))
    with open(os.environ["ESM_TEST_RECORD_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"phase": "start", "ids": ids, "bodies": bodies, "pid": os.getpid()}) + "\n")
    await asyncio.sleep(float(os.environ.get("ESM_TEST_SLEEP", "0")))
    with open(os.environ["ESM_TEST_RECORD_FILE"], "a", encoding="utf-8") as out:
        out.write(json.dumps({"phase": "end", "ids": ids}) + "\n")
    return None
