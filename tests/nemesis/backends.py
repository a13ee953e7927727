"""The run's own backend servers: scripts/nemesis starts a private set (scripts/backends in a
directory of its own, ESM_BACKENDS_DIR), so the nemesis may stop and freeze them without touching
anyone else's.

Each server was started detached in its own session (`setsid`), so its pid file names its process
group: a freeze is SIGSTOP to the group and SIGCONT after; a restart is SIGTERM (a clean stop) or
SIGKILL (a crash) to the group, then `scripts/backends start`, which starts a dead server again on
its previous ports. If a port was taken meanwhile the server comes back elsewhere, the replicas'
paths would lead nowhere, and the fault is reported as not applied.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What a restarted server must still answer on: the addresses the run's clients and proxies hold.
ADDRESSES = ("KAFKA_BOOTSTRAP_SERVERS", "KAFKA_PROXIED_UPSTREAM", "KAFKA_PROXIED_BOOTSTRAP", "ESM_SQS_ENDPOINT",
             "ESM_KINESIS_ENDPOINT", "ESM_AWS_ENDPOINT", "TOXIPROXY_URL", "RABBITMQ_URL", "RABBITMQ_MANAGEMENT_URL",
             "ACTIVEMQ_STOMP_URL", "ACTIVEMQ_ADMIN_URL")


@dataclass(frozen=True)
class OwnBackends:
    directory: Path  # the private ESM_BACKENDS_DIR

    def pid(self, name: str) -> int:
        return int((self.directory / "run" / f"{name}.pid").read_text().strip())

    def signal(self, name: str, sig: signal.Signals) -> None:
        os.killpg(self.pid(name), sig)

    async def stop(self, name: str, sig: signal.Signals, timeout: float = 60.0) -> None:
        """Signal the server's group and wait until its leader is gone (SIGKILL after `timeout`)."""
        pid = self.pid(name)
        os.killpg(pid, sig)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while _alive(pid):
            if loop.time() > deadline:
                os.killpg(pid, signal.SIGKILL)
                deadline = loop.time() + timeout
            await asyncio.sleep(0.2)

    async def start(self) -> None:
        """`scripts/backends start` in the private directory: dead servers start again; raises if
        one came back on other addresses than the run holds."""
        env = dict(os.environ, ESM_BACKENDS_DIR=str(self.directory))
        names = os.environ.get("ESM_NEMESIS_BACKENDS", "").split()  # scripts/nemesis's choice; empty: all
        done = await asyncio.to_thread(subprocess.run, [str(ROOT / "scripts" / "backends"), "start", *names], env=env,
                                       capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"scripts/backends start exited {done.returncode}: {done.stderr.strip()[-300:]}")
        exports = dict(_export(line) for line in done.stdout.splitlines() if line.startswith("export "))
        moved = [n for n in ADDRESSES if n in os.environ and exports.get(n) != os.environ[n]]
        if moved:
            raise RuntimeError(f"a backend came back on other addresses: {moved}")


def _alive(pid: int) -> bool:
    """The process lives and is not a zombie (a server's parent is init, which reaps it later)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _export(line: str) -> tuple[str, str]:
    name, _, value = line[len("export "):].partition("=")
    return name, value.strip("'").replace("'\\''", "'")
