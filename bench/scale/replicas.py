"""`python -m esm run` as separate OS processes on one written config: start, readiness, the
counters each one exports, SIGKILL and SIGTERM."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Replica:
    """One `esm run` process; its config is the shared one with its own metrics port."""

    name: str
    port: int
    log: Path
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, doc: dict[str, Any], folder: Path, name: str) -> "Replica":
        port = free_port()
        config = folder / f"{name}.yaml"
        config.write_text(yaml.safe_dump(dict(doc, metrics={"listen": f"127.0.0.1:{port}"}), sort_keys=False))
        log = folder / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen([sys.executable, "-m", "esm", "run", "--config", str(config)], cwd=ROOT,
                                       stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return cls(name, port, log, process)

    async def ready(self, session: aiohttp.ClientSession, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited {self.process.returncode}: {self.tail()}")
            try:
                async with session.get(f"http://127.0.0.1:{self.port}/readyz") as response:
                    if response.status == 200:
                        return
            except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
                pass
            await asyncio.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout}s: {self.tail()}")

    async def counter(self, session: aiohttp.ClientSession, name: str) -> float:
        """One counter summed over its labels (0 for a process that is gone)."""
        if self.process.poll() is not None:
            return 0.0
        try:
            async with session.get(f"http://127.0.0.1:{self.port}/metrics") as response:
                text = await response.text()
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError):
            return 0.0
        return sum(sample.value for family in text_string_to_metric_families(text)
                   for sample in family.samples if sample.name == name)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    async def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(self.process.wait, 60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
