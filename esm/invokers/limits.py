"""Concurrency slots and deadlines: the part of an invoke every target kind shares.

A `Slots` object caps how many invokes of one target run at once (behaviour §9.1 `max_concurrency`)
and waits for each with a deadline. The subtle rule is what a slot means: *the function is
running*, not *someone is waiting for it*. When the deadline passes, the caller gets its answer
(a timeout) at once, but the slot is given back only when the work really ends:

- an HTTP request or Invoke API call is left to finish in the background (its answer is
  discarded), so a function that is still busy after esm gave up is never sent a second event —
  the RIE crashes on a concurrent invoke, and any function would see a retry overlap the
  timed-out attempt; a request that never reached the server is cancelled instead;
- a coroutine handler is cancelled, and frees the slot when the cancellation has unwound;
- a thread cannot be stopped: it keeps its slot until the handler returns, so `max_concurrency`
  also bounds abandoned threads.

Work left behind is owned here and cancelled by `close()`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import logging
import time
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ran:
    """How one piece of work ended: a value, an exception, or the deadline (work left running)."""

    duration: float
    value: Any = None
    error: BaseException | None = None
    timed_out: bool = False


class Slots:
    def __init__(self, limit: int, name: str):
        if limit < 1:
            raise ValueError(f"max_concurrency must be at least 1, got {limit}")
        self.limit = limit
        self.name = name
        self._free = asyncio.Semaphore(limit)
        self._abandoned: set[asyncio.Future[Any]] = set()

    async def run(
        self,
        start: Callable[[], Awaitable[Any]],
        timeout: float,
        *,
        cancel_on_timeout: bool | Callable[[], bool] = True,
    ) -> Ran:
        """Run `start()` as a task in a slot, waiting at most `timeout` seconds for it.

        `cancel_on_timeout` (or a callable deciding at the deadline) chooses between cancelling
        the task and leaving it to finish in the background; either way the slot is freed only
        when the task is done.
        """
        await self._free.acquire()
        try:
            task = asyncio.ensure_future(start())
        except BaseException:
            self._free.release()
            raise
        task.add_done_callback(self._release)
        return await self._wait(task, timeout, cancel_on_timeout)

    async def run_inline(self, start: Callable[[], Awaitable[Any]], timeout: float) -> Ran:
        """Await `start()` in the caller's own task, in a slot, cancelling it at the deadline.

        For an in-process coroutine: no task, no `asyncio.wait` and no second timer per invoke (most
        of what an invoke cost a busy Kafka mapping). The deadline cancels the coroutine as `run`
        would; the answer comes once the cancellation has unwound, which is when `run` would free
        the slot too. A coroutine that swallows the cancellation and returns anyway still timed out.
        """
        await self._free.acquire()
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(timeout, 0.0)) as deadline:
                value = await start()
        except asyncio.CancelledError as error:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the caller is being cancelled: not the work's own answer
            return Ran(time.monotonic() - started, error=error)
        except Exception as error:  # the work's own exception is its answer, as `run` reports it
            if isinstance(error, TimeoutError) and deadline.expired():
                return Ran(time.monotonic() - started, timed_out=True)
            return Ran(time.monotonic() - started, error=error)
        finally:
            self._free.release()
        duration = time.monotonic() - started
        if deadline.expired():
            return Ran(duration, timed_out=True)
        return Ran(duration, value=value)

    async def run_in_thread(
        self, executor: concurrent.futures.Executor, fn: Callable[[], Any], timeout: float
    ) -> Ran:
        """Run `fn()` in `executor` in a slot; the slot is freed when the thread returns."""
        loop = asyncio.get_running_loop()
        await self._free.acquire()
        try:
            running = executor.submit(contextvars.copy_context().run, fn)
        except BaseException:
            self._free.release()
            raise

        def release(_: concurrent.futures.Future[Any]) -> None:
            try:
                loop.call_soon_threadsafe(self._free.release)
            except RuntimeError:  # the loop is closed: nobody is left to wait for a slot
                pass

        running.add_done_callback(release)
        return await self._wait(asyncio.wrap_future(running), timeout, cancel_on_timeout=False)

    async def _wait(
        self, work: asyncio.Future[Any], timeout: float, cancel_on_timeout: bool | Callable[[], bool]
    ) -> Ran:
        started = time.monotonic()
        try:
            done, _ = await asyncio.wait({work}, timeout=max(timeout, 0.0))
        except asyncio.CancelledError:
            work.cancel()
            self._abandon(work)
            raise
        duration = time.monotonic() - started
        if done:
            if work.cancelled():
                return Ran(duration, error=asyncio.CancelledError())
            error = work.exception()
            return Ran(duration, error=error) if error is not None else Ran(duration, value=work.result())
        cancel = cancel_on_timeout() if callable(cancel_on_timeout) else cancel_on_timeout
        if cancel:
            work.cancel()
        self._abandon(work)
        return Ran(duration, timed_out=True)

    def _release(self, _: object) -> None:
        self._free.release()

    def _abandon(self, work: asyncio.Future[Any]) -> None:
        self._abandoned.add(work)
        work.add_done_callback(self._forget)

    def _forget(self, work: asyncio.Future[Any]) -> None:
        self._abandoned.discard(work)
        if not work.cancelled() and work.exception() is not None:
            log.debug("%s: abandoned invoke ended with %r", self.name, work.exception(), extra={"function": self.name})
        else:
            log.debug("%s: abandoned invoke ended", self.name, extra={"function": self.name})

    async def close(self) -> None:
        """Cancel the work left behind and wait for the cancellable part of it to unwind."""
        pending = list(self._abandoned)
        for work in pending:
            work.cancel()
        tasks = [w for w in pending if isinstance(w, asyncio.Task)]
        if tasks:
            await asyncio.wait(tasks, timeout=5.0)
