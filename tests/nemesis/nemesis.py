"""The nemesis: plays a schedule (tests/nemesis/schedule.py) against the running system, each
fault at its start time, each undone after its duration, every start and end written to the
run's event log (JSON lines) as it happens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.nemesis.schedule import Fault
from tests.nemesis.system import System
from tests.support.toxiproxy import Proxy


@dataclass
class Nemesis:
    system: System
    schedule: list[Fault]
    log_path: Path
    started: float = 0.0  # loop time the schedule counts from
    done: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    # One process fault at a time per replica, restart and readiness included: the schedule leaves
    # room for a restart, but a replica that waits for a backend to come back takes longer, and a
    # fault that found it still starting would kill the process the previous fault is waiting on.
    locks: dict[int, asyncio.Lock] = field(default_factory=dict)
    sigterm_exits: list[int] = field(default_factory=list)  # exit codes after SIGTERM (0: a clean drain)

    def log(self, event: str, fault: Fault | None = None, **extra: Any) -> None:
        doc: dict[str, Any] = {"at": round(time.time(), 3), "t": round(self.now(), 2), "event": event, **extra}
        if fault is not None:
            doc.update(fault=fault.n, kind=fault.kind, target=fault.target)
        with self.log_path.open("a") as out:
            out.write(json.dumps(doc) + "\n")

    def now(self) -> float:
        return asyncio.get_running_loop().time() - self.started if self.started else 0.0

    async def run(self) -> None:
        self.started = asyncio.get_running_loop().time()
        self.log("schedule", faults=[f.describe() for f in self.schedule])
        await asyncio.gather(*(self._one(f) for f in self.schedule))

    async def _one(self, fault: Fault) -> None:
        await asyncio.sleep(max(0.0, fault.start - self.now()))
        self.log("start", fault)
        try:
            if fault.backend is not None:
                await self._backend(fault)
            elif fault.peer is None:
                await self._process(fault)
            else:
                await self._network(fault)
            self.done.append(fault.n)
            self.log("end", fault)
        except Exception as error:  # logged and reported: a fault that could not be applied
            last = (str(error).strip().splitlines() or [repr(error)])[-1][:300]  # a replica's log tail: its last line
            self.errors.append(f"{fault.describe()}: {type(error).__name__}: {last}")
            self.log("error", fault, error=repr(error))

    async def _process(self, fault: Fault) -> None:
        assert fault.replica is not None
        lock = self.locks.setdefault(fault.replica, asyncio.Lock())
        if lock.locked():
            self.log("waiting", fault, why="the replica's previous fault is not over (its restart is not ready)")
        async with lock:
            await self._process_now(fault)

    async def _process_now(self, fault: Fault) -> None:
        assert fault.replica is not None
        replica = self.system.replicas[fault.replica]
        process = replica.process
        assert process is not None
        if process.poll() is not None:  # already gone (it crashed): restart it, and say so
            self.log("found-dead", fault, code=process.returncode)
        elif fault.kind == "pause":
            process.send_signal(signal.SIGSTOP)
            try:
                await asyncio.sleep(fault.duration)
            finally:
                process.send_signal(signal.SIGCONT)
            return
        elif fault.kind == "sigkill":
            process.send_signal(signal.SIGKILL)
            await asyncio.to_thread(process.wait, 30)
        else:
            process.send_signal(signal.SIGTERM)
            code = await asyncio.to_thread(process.wait, 120)
            self.sigterm_exits.append(code)
            self.log("exited", fault, code=code)
        await asyncio.sleep(fault.duration)
        self.log("restart", fault)
        await self.system.start_replica(fault.replica)
        self.log("ready", fault)

    async def _backend(self, fault: Fault) -> None:
        backends = self.system.backends
        if backends is None:  # the schedule draws backend faults only for a run that owns them
            raise RuntimeError("a backend fault, but the run does not own its backends")
        assert fault.backend is not None
        if fault.kind == "freeze":
            backends.signal(fault.backend, signal.SIGSTOP)
            try:
                await asyncio.sleep(fault.duration)
            finally:
                backends.signal(fault.backend, signal.SIGCONT)
            return
        crash = dict(fault.params).get("sigkill") == 1
        try:
            await backends.stop(fault.backend, signal.SIGKILL if crash else signal.SIGTERM)
            self.log("stopped", fault)
            await asyncio.sleep(fault.duration)
        finally:
            self.log("restart", fault)
            await backends.start()
            self.log("ready", fault)

    async def _network(self, fault: Fault) -> None:
        assert fault.peer is not None
        proxies = self.system.proxies_of(None if fault.kind == "outage" else fault.replica, fault.peer)
        if not proxies:
            self.log("skipped", fault, why="no proxy for this peer")
            return
        params = dict(fault.params)
        undo: list[Any] = []
        try:
            for proxy in proxies:
                undo.append(await self._apply(proxy, fault.kind, params))
            await asyncio.sleep(fault.duration)
        finally:
            for proxy, toxic in zip(proxies, undo):
                with contextlib.suppress(Exception):
                    if toxic is None:
                        await proxy.enable()
                    else:
                        await proxy.remove(toxic)

    @staticmethod
    async def _apply(proxy: Proxy, kind: str, params: dict[str, int]) -> str | None:
        if kind in ("partition", "outage"):
            await proxy.disable()
            return None
        if kind == "latency":
            return await proxy.latency(params["latency"], params.get("jitter", 0))
        if kind == "bandwidth":
            return await proxy.bandwidth(params["rate"])
        if kind == "timeout":
            return await proxy.timeout(0)
        if kind == "reset_peer":
            return await proxy.reset_peer(params["timeout"])
        raise ValueError(f"unknown network fault {kind}")
