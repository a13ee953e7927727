"""Run the esm daemon inside the test's event loop, from a config written as a dict."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, AsyncIterator

import yaml

from esm.config.loading import parse_config
from esm.config.settings import Config
from esm.daemon import run_daemon
from esm.observability.metrics import Metrics

RECORDER = {"recorder": {"handler": "tests.support.recorder:handle", "max_concurrency": 100}}


def mapping_config(*mappings: dict[str, Any], functions: dict[str, Any] | None = None, **extra: Any) -> str:
    doc = {"functions": functions or RECORDER, "event_source_mappings": list(mappings),
           "metrics": {"listen": "127.0.0.1:0"}, "shutdown_timeout": 10, "startup_timeout": 30, **extra}
    return yaml.safe_dump(doc, sort_keys=False)


class RunningDaemon:
    def __init__(self, metrics: Metrics, stop: asyncio.Event, task: asyncio.Task[None]):
        self.metrics = metrics
        self.stop = stop
        self.task = task

    def value(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels) or 0.0

    def total(self, name: str) -> float:
        """A metric summed over all its label sets."""
        return sum(s.value for family in self.metrics.registry.collect() for s in family.samples if s.name == name)

    async def wait_total(self, name: str, expected: float, timeout: float = 30.0) -> None:
        """Wait until a counter reaches `expected` (it moves just after the source sees the effect),
        then check it does not overshoot."""
        deadline = asyncio.get_running_loop().time() + timeout
        while self.total(name) < expected and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        assert self.total(name) == expected, f"{name} is {self.total(name)}, expected {expected}"


@contextlib.asynccontextmanager
async def running(config_text: str) -> AsyncIterator[RunningDaemon]:
    async with running_config(parse_config(config_text, base_dir=".")) as daemon:
        yield daemon


@contextlib.asynccontextmanager
async def running_config(config: Config) -> AsyncIterator[RunningDaemon]:
    metrics = Metrics()
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_daemon(config, stop=stop, metrics=metrics, ready=ready))
    waiter = asyncio.ensure_future(ready.wait())
    await asyncio.wait({task, waiter}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        waiter.cancel()
        task.result()
    assert ready.is_set(), "daemon did not become ready"
    daemon = RunningDaemon(metrics, stop, task)
    try:
        yield daemon
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=60)
