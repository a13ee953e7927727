"""The daemon: the metrics listener, one supervisor per mapping, startup and phased shutdown.

Startup: the listener comes up first (so /healthz answers while sources connect), then every
enabled mapping connects its source and hears from its target; /readyz stays false until all
have, and `StartupTimeout` (exit 3) ends a start that takes longer than `startup_timeout`.
Shutdown follows uvicorn's phases: a signal only sets a flag; then polling stops and gathered
records are released, in-flight batches drain within `shutdown_timeout`, what is left is
cancelled unacknowledged, and clients close. A second SIGTERM/SIGINT during the drain ends it at
once: what is still in flight is cancelled as when the timeout runs out (same exit code).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import sys
from typing import Any

from esm.aws import AwsClients
from esm import positions
from esm.checkpoints import make_checkpoint_store
from esm.checkpoints.base import StoreUnavailable
from esm.config.settings import Config
from esm.errors import EsmError
from esm.invokers import make_invoker
from esm.invokers.base import Invoker
from esm.observability.health import HealthServer, Readiness
from esm.observability.loop_monitor import watch_loop
from esm.observability.metrics import Metrics
from esm import registry
from esm.runtime import Runtime
from esm.safety import review_and_report
from esm.supervisor import MappingSupervisor

log = logging.getLogger("esm.daemon")


class StartupTimeout(EsmError):
    """A source or target was still unreachable when the startup timeout ran out."""


def _import_paths(config: Config) -> None:
    """Handlers import from the config file's folder and the working directory (docs/design.md)."""
    for path in (os.getcwd(), config.base_dir):
        if path not in sys.path:
            sys.path.insert(0, path)


def build_invokers(config: Config) -> dict[str, Invoker]:
    """One invoker per function, shared by the mappings that call it (its concurrency cap is per target).

    A target without its own `max_concurrency` allows what its busiest mapping may run at once, as
    the mapping's source class says (`concurrency_ceiling`: for SQS `ScalingConfig.MaximumConcurrency`
    or 10 invokes per provisioned poller, else Lambda's 1,250). With the control API on, a mapping of
    any function and any source may appear at run time, so every such target allows the most any
    mapping may ask for.
    """
    invokers: dict[str, Invoker] = {}
    for name, target in config.functions.items():
        caps = [registry.source(m.source).concurrency_ceiling(m.request)
                for m in config.mappings if m.function.name == name]
        if config.api is not None:
            caps += [registry.source(kind).concurrency_ceiling(None) for kind in registry.SOURCES]
        invokers[name] = make_invoker(target, config.aws, default_concurrency=max(caps, default=1))
    return invokers


# Records in flight are many small acyclic objects (dicts, strings, tuples) that live for a batch or
# two; with the default threshold (700 allocations) the cyclic collector walks them over and over,
# which cost a busy Kafka mapping about a third of its time. Collections stay on, just rarer.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_garbage_collector() -> None:
    """Freeze what start-up allocated (modules, config: it lives as long as the process) and make
    collections rarer, so the collector does not keep walking records that are about to go anyway.

    For a process that is the daemon (`esm run`), called once before it starts: a process that
    embeds the daemon (tests, the benchmarks) decides for itself."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def run_daemon(config: Config, stop: asyncio.Event | None = None, metrics: Metrics | None = None,
                     ready: asyncio.Event | None = None) -> None:
    """Run until `stop` is set (or SIGTERM/SIGINT). `ready` is set once every mapping is running."""
    stop = stop or asyncio.Event()
    metrics = metrics or Metrics()
    readiness = Readiness()
    readiness.expect("startup", "starting")
    _import_paths(config)
    server = HealthServer(metrics, readiness, config.metrics.host, config.metrics.port)
    await server.start()
    force = asyncio.Event()  # a second signal: stop draining, cancel what is in flight
    signals = _Signals(stop, force)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, signals.received, sig)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (tests)
            pass
    log.info("esm listening on %s:%d (/metrics /healthz /readyz)", server.host, server.port)
    monitor = asyncio.create_task(watch_loop(metrics, stop), name="loop-monitor")
    runtime = Runtime(clients=AwsClients(config.aws))
    # The control API may create Kinesis mappings at any time: it needs the store from the start.
    if config.api is not None or any(registry.descriptor(m.source).checkpoints and m.enabled for m in config.mappings):
        runtime.checkpoints = make_checkpoint_store(config.checkpoints, runtime.clients)
        await _open_store(runtime.checkpoints, config.startup_timeout, stop)
    await positions.report_at_start(config.mappings, runtime.checkpoints, runtime.clients)  # did you rename?
    invokers = build_invokers(config)
    supervisors = [MappingSupervisor(m, runtime, invokers[m.function.name], metrics, readiness)
                   for m in config.mappings]
    for s in supervisors:
        m = s.mapping
        log.info("mapping %s (%s): %s %s -> %s %s [%s]", m.name, m.uuid, m.source, m.source_id,
                 m.function.kind, m.function.name, "enabled" if m.enabled else "disabled",
                 extra={"mapping": m.name, "source": m.source, "function": m.function.name})
    control = None
    safety: asyncio.Task[None] | None = None
    try:
        if config.api is not None:
            from esm.api.service import ControlApi

            control = ControlApi(config, runtime, invokers, metrics, supervisors)
            await control.start(stop)
        await _start_all(supervisors, config.startup_timeout, stop)
        readiness.set("startup", True)
        # Settings that lose or duplicate messages: warned about once the sources answer (esm.safety).
        safety = asyncio.create_task(review_and_report(config.mappings, runtime.clients, metrics), name="safety")
        if ready is not None:
            ready.set()
        if not stop.is_set():
            await _run_until_stopped(supervisors, stop, config.shutdown_timeout, force)
    finally:
        if control is not None:  # its mappings drain first, while invokers and checkpoints are open
            await control.close()
        for s in supervisors:
            await s.close()
        for invoker in invokers.values():
            await invoker.close()
        if runtime.checkpoints is not None:
            await runtime.checkpoints.close()
        monitor.cancel()
        if safety is not None:
            safety.cancel()
        await asyncio.gather(monitor, *([safety] if safety is not None else []), return_exceptions=True)
        await server.stop()
        log.info("esm stopped")


class _Signals:
    """SIGTERM/SIGINT: the first asks for a graceful stop, the next one forces the drain to end."""

    def __init__(self, stop: asyncio.Event, force: asyncio.Event):
        self.stop, self.force, self.count = stop, force, 0

    def received(self, sig: signal.Signals) -> None:
        self.count += 1
        if self.count == 1:
            self.stop.set()
        elif not self.force.is_set():
            log.warning("%s again: forcing shutdown, in-flight batches are cancelled now", sig.name)
            self.force.set()


async def _open_store(store: Any, timeout: float, stop: asyncio.Event) -> None:
    """Open the checkpoint store, waiting out a store that is away for a moment (a replica restarted
    while the network to DynamoDB blinks) within `startup_timeout`, as sources and targets are:
    exit 3 if it is still unreachable then, never exit 1 on the first refused connection."""
    loop = asyncio.get_running_loop()
    deadline, delay = loop.time() + timeout, 0.2
    while True:
        try:
            await store.open()
            return
        except StoreUnavailable as error:
            if stop.is_set() or loop.time() + delay > deadline:
                raise StartupTimeout(f"checkpoint store still unreachable after {timeout:.0f}s: {error}") from error
            log.warning("checkpoint store unavailable, retrying in %.1fs: %s", delay, error)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), delay)
            delay = min(delay * 2, 5.0)


async def _start_all(supervisors: list[MappingSupervisor], timeout: float, stop: asyncio.Event) -> None:
    starting = asyncio.gather(*(s.start() for s in supervisors))
    stopper = asyncio.ensure_future(stop.wait())
    done, _ = await asyncio.wait({starting, stopper}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    if starting in done:
        starting.result()
        return
    starting.cancel()
    await asyncio.gather(starting, return_exceptions=True)
    if stop.is_set():
        return
    missing = [problem for s in supervisors for problem in s.not_ready()]
    raise StartupTimeout(f"still unreachable after {timeout:.0f}s: " + "; ".join(missing))


async def _run_until_stopped(supervisors: list[MappingSupervisor], stop: asyncio.Event, shutdown_timeout: float,
                             force: asyncio.Event | None = None) -> None:
    # A disabled mapping has nothing to run; only a running mapping ending early stops the daemon.
    runs = {asyncio.create_task(s.run(), name=f"{s.mapping.name}/run"): s for s in supervisors if s.mapping.enabled}
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait({*runs, stopper}, return_when=asyncio.FIRST_COMPLETED)
    failed = [t for t in done if t is not stopper and not t.cancelled() and t.exception() is not None]
    log.info("shutting down: stopping polling, draining in-flight batches (up to %.0fs)", shutdown_timeout)
    for s in supervisors:
        s.stop()
    stopper.cancel()
    pending = [t for t in runs if not t.done()]
    if pending:
        late = await _drain(pending, shutdown_timeout, force or asyncio.Event())
        if late:
            reason = "forced shutdown" if force is not None and force.is_set() else "shutdown timeout"
            log.warning("%s: cancelling %d mapping(s) with batches still in flight "
                        "(their messages are not acknowledged and will be redelivered)", reason, len(late))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
    for task in runs:
        if task.done() and not task.cancelled() and task.exception() is not None and task not in failed:
            failed.append(task)
    if failed:
        raise failed[0].exception()  # type: ignore[misc]


async def _drain(pending: list[asyncio.Task[None]], timeout: float, force: asyncio.Event) -> set[asyncio.Task[None]]:
    """Wait for `pending` until all end, `timeout` passes or `force` is set; the tasks still running."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    forced = asyncio.create_task(force.wait())
    running = set(pending)
    try:
        while running and not force.is_set() and (left := deadline - loop.time()) > 0:
            done, _ = await asyncio.wait({*running, forced}, timeout=left, return_when=asyncio.FIRST_COMPLETED)
            running -= done
    finally:
        forced.cancel()
        await asyncio.gather(forced, return_exceptions=True)
    return {t for t in pending if not t.done()}
