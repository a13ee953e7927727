"""One fault scenario, start to finish, for any source (tests/fault/sides.py):

1. the source, its destination, the function server and a proxy in front of each are made;
2. the records are produced (and written to the ledger);
3. the fault starts (a coroutine given the `Run`: toxics, a proxy disabled, a function that
   misbehaves...) and the daemon starts, its config pointing at the proxies;
4. while it runs, the source's checkpoints/commits are watched;
5. once every record was processed or dead-lettered (or the deadline passed), and the source is
   drained, the daemon stops, the row is filed in the matrix and the books are checked.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

from esm.observability.metrics import ERROR_COUNTS, EVENT_COUNTS
from tests.fault.function import OK, Decide, FunctionServer
from tests.fault.harness import DaemonProcess, Proxies, config_doc, proxies, run_daemon, watch
from tests.support.daemon import RunningDaemon
from tests.support.ledger import Ledger, Row
from tests.support.waiting import wait_until

# Every behaviour §6 counter esm keeps, by its short name (esm.observability.metrics.EVENT_COUNTS keys: "invoke_errors"...).
METRICS = {key: f"{name}_total" for key, (name, _) in {**EVENT_COUNTS, **ERROR_COUNTS}.items()}

# What the matrix's notes column shows of each scenario's metrics (when not 0).
NOTED = ("invoke_errors", "failed_invoke", "polling_errors", "commit_errors", "destination_errors",
         "destination_delivered", "dropped")


@dataclass
class Run:
    ledger: Ledger
    server: FunctionServer
    side: Any
    proxied: Proxies
    doc: dict[str, Any]
    daemon: RunningDaemon | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    drained: bool = False
    processes: "Processes | None" = None

    @property
    def procs(self) -> "Processes":
        assert self.processes is not None, "run_scenario(processes=True)"
        return self.processes

    def metric(self, name: str) -> float:
        """A counter's value at the end of the scenario, summed over labels; `name` as in
        esm.observability.metrics.EVENT_COUNTS / ERROR_COUNTS ("invoke_errors", "failed_invoke", "destination_delivered"...)."""
        return self.metrics[METRICS[name]]

    async def until(self, condition: Callable[[], bool], timeout: float = 120, what: str = "condition") -> None:
        await wait_until(condition, timeout, what)


Fault = Callable[[Run], Awaitable[None]]


async def settled(run: Run) -> bool:
    """Nothing is missing from the books (dead letters are read back when something is)."""
    if not run.ledger.lost():
        return True
    await run.side.read_dead(run.ledger)
    return not run.ledger.lost()


async def run_scenario(side: Any, *, scenario: str, tmp_path: Path, matrix: Callable[[Ledger], Row],
                       records: list[tuple[str, str]], decide: Decide = lambda batch: OK,
                       mapping: dict[str, Any] | None = None, fault: Fault | None = None,
                       function_timeout: float = 5, max_concurrency: int = 4, settle_timeout: float = 120,
                       max_duplicates: int | None = None, expect_dead: list[str] | None = None,
                       check: Callable[[Run], None] | None = None, processes: bool = False) -> Run:
    """`processes`: run esm as `python -m esm run` processes (`run.processes`) instead of in this loop,
    for the scenarios that kill it; the first one is started and ready before the fault runs."""
    ledger = Ledger(scenario, side.source, ordered=side.ordered)
    server = FunctionServer(ledger, decide)
    async with server, side.made(), proxies(server.url, kafka=side.source == "kafka") as proxied:
        doc = config_doc(side.mapping(proxied, **(mapping or {})), proxied, tmp_path=tmp_path,
                         timeout=function_timeout, max_concurrency=max_concurrency)
        if hasattr(side, "checkpoints"):
            doc["checkpoints"] = side.checkpoints(tmp_path)
        run = Run(ledger, server, side, proxied, doc)
        await side.produce(ledger, records)
        watcher = side.watcher(ledger)
        fault_task = asyncio.create_task((fault or _no_fault)(run), name="fault")
        try:
            async with (_processes(run, tmp_path) if processes else run_daemon(doc)) as daemon, \
                    (watch(watcher) if watcher else contextlib.nullcontext()):
                run.daemon = daemon if not processes else None
                run.ready.set()
                deadline = time.monotonic() + settle_timeout
                with contextlib.suppress(AssertionError):  # the books below say what is missing
                    await wait_until(lambda: settled(run), settle_timeout, f"{scenario}: every record settled", 0.5)
                # A fault that takes a backend down ends before the source can drain; its own
                # failure (a condition it waited for never came) fails the scenario.
                await asyncio.wait_for(asyncio.shield(fault_task), max(30.0, deadline - time.monotonic()))
                with contextlib.suppress(AssertionError):
                    await wait_until(side.drained, max(30.0, deadline - time.monotonic()),
                                     f"{scenario}: the source drained")
                if processes:
                    run.metrics = await run.processes.metrics()
                else:
                    run.metrics = {name: daemon.total(name) for name in METRICS.values()}
            await side.read_dead(ledger)
            run.drained = await side.drained()
        finally:
            if not fault_task.done():
                fault_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await fault_task
    moved = ", ".join(f"{short}={run.metric(short):g}" for short in NOTED if run.metric(short))
    if moved:
        ledger.note(moved)
    matrix(ledger)
    ledger.assert_sound(max_duplicates=max_duplicates, expect_dead=expect_dead)
    assert run.drained, f"{scenario}: the source still holds records (queue not empty / commits short of the end)"
    if check is not None:
        check(run)
    return run


async def _no_fault(run: Run) -> None:
    return None


@dataclass
class Processes:
    """The esm processes of a scenario, all on the same config (each with its own metrics port)."""

    doc: dict[str, Any]
    tmp_path: Path
    started: list[DaemonProcess] = field(default_factory=list)

    async def start(self, wait_ready: bool = True) -> DaemonProcess:
        process = DaemonProcess.write(self.doc, self.tmp_path, name=f"esm-{len(self.started) + 1}")
        process.start()
        self.started.append(process)
        if wait_ready:
            await process.ready()
        return process

    @property
    def current(self) -> DaemonProcess:
        return self.started[-1]

    def alive(self) -> list[DaemonProcess]:
        return [p for p in self.started if p.process is not None and p.process.poll() is None]

    async def metrics(self) -> dict[str, float]:
        """The counters of the processes still running, added up (a killed one's are gone)."""
        totals: dict[str, float] = {name: 0.0 for name in METRICS.values()}
        for process in self.alive():
            with contextlib.suppress(Exception):
                for name, value in (await process.metrics()).items():
                    if name in totals:
                        totals[name] += value
        return totals

    async def stop_all(self) -> None:
        for process in self.alive():
            with contextlib.suppress(Exception):
                await process.terminate(timeout=60)
            process.stop_now()


@contextlib.asynccontextmanager
async def _processes(run: Run, tmp_path: Path) -> AsyncIterator[None]:
    run.processes = Processes(run.doc, tmp_path)
    try:
        await run.processes.start()
        yield None
    finally:
        await run.processes.stop_all()
