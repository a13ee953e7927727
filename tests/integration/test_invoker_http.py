"""The `url` invoker against real HTTP servers: the Lambda Runtime Interface Emulator running
tests/functions/programmable.py (the `backends` fixture), private emulators for what would crash
the shared one, and a plain aiohttp server started in the test for the statuses the emulator
never sends. behaviour §9.1 "Error classes" throughout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from aiohttp import web

from esm.config.settings import AwsSettings, FunctionTarget
from esm.invokers import make_invoker
from esm.invokers.base import FunctionError, InvocationError, Succeeded
from tests.support.ports import free_port

RIE_PATH = "/2015-03-31/functions/function/invocations"


def url_target(url: str, **kwargs) -> FunctionTarget:
    return FunctionTarget(name=kwargs.pop("name", "fn"), url=url, **kwargs)


@contextlib.asynccontextmanager
async def serve(handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> AsyncIterator[str]:
    """A plain HTTP server on 127.0.0.1 answering every path with `handler`; yields its base URL."""
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def invoke_once(url: str, payload=None, **target_kwargs):
    invoker = make_invoker(url_target(url, **target_kwargs), AwsSettings())
    try:
        return await invoker.invoke(payload if payload is not None else {"Records": []})
    finally:
        await invoker.close()


# ------------------------------------------------------------------ the shared emulator


@pytest.fixture
def function_url(backends: dict[str, str]) -> str:
    return backends["ESM_FUNCTION_URL"]


@pytest.mark.backends
async def test_rie_success_is_parsed(function_url):
    """behaviour §9.1 success: the emulator's 200 body is parsed JSON; an emulator URL defaults to
    max_concurrency 1 (it serves one invoke at a time)."""
    invoker = make_invoker(url_target(function_url), AwsSettings(), default_concurrency=50)
    try:
        result = await invoker.invoke({"Records": [{"a": 1}, {"b": 2}, {"c": 3}]})
    finally:
        await invoker.close()
    assert invoker.max_concurrency == 1
    assert isinstance(result, Succeeded)
    assert result.body == {"ok": True, "records": 3}
    assert result.duration > 0


@pytest.mark.backends
async def test_rie_none_is_a_success_without_response(function_url):
    """behaviour §3: a null response is complete success (the RIE answers 200 `null` for None)."""
    result = await invoke_once(function_url, {"esm_test": {"return": None}})
    assert isinstance(result, Succeeded) and result.body is None


@pytest.mark.backends
async def test_rie_raised_exception_is_a_function_error(function_url):
    """behaviour §9.1: the RIE answers a raised exception with 200 and a Lambda error object and no
    X-Amz-Function-Error header; esm reads the body shape: a function error with its type and message."""
    result = await invoke_once(function_url, {"esm_test": {"raise": "kaput"}})
    assert isinstance(result, FunctionError)
    assert (result.error_type, result.message, result.status) == ("RuntimeError", "kaput", 200)


@pytest.mark.backends
async def test_rie_timeout_is_a_function_error(function_url):
    """behaviour §9.1: the RIE's timeout is 200 with plain text `Task timed out after 3.00 seconds`:
    a function error (Sandbox.Timedout). The function timeout there is 3 s; ours is longer."""
    result = await invoke_once(function_url, {"esm_test": {"sleep": 5}}, timeout=20)
    assert isinstance(result, FunctionError)
    assert result.error_type == "Sandbox.Timedout"
    assert "Task timed out after" in result.message


@pytest.mark.backends
async def test_rie_runtime_crash_is_a_function_error(function_url):
    """behaviour §9.1: a runtime that exits mid-invoke (the RIE answers 502 with a Runtime.ExitError
    object) is a function error, not an invocation error; the emulator serves the next invoke."""
    crashed = await invoke_once(function_url, {"esm_test": {"exit": 1}})
    after = await invoke_once(function_url)
    assert isinstance(crashed, FunctionError)
    assert crashed.error_type == "Runtime.ExitError" and crashed.status == 502
    assert isinstance(after, Succeeded)


@pytest.mark.backends
async def test_rie_partial_batch_response_is_a_success_with_its_failures(function_url):
    """behaviour §3 / §9.1: a partial batch response is a success whose batchItemFailures reach the
    outcome handler intact."""
    response = {"batchItemFailures": [{"itemIdentifier": "m-2"}, {"itemIdentifier": "m-5"}]}
    result = await invoke_once(function_url, {"esm_test": {"return": response}})
    assert isinstance(result, Succeeded)
    assert result.body == response


# ------------------------------------------------------------------ private emulators


@contextlib.contextmanager
def private_rie(backends: dict[str, str], folder: Path, handler: str, timeout: int = 3) -> Iterator[str]:
    """An emulator of our own, running `handler` from `folder`; yields its invoke URL.

    The concurrent-invoke test kills its emulator (this RIE build panics on a second invoke while
    one is in flight), so it must never be the shared one.
    """
    binary = Path(backends["ESM_BACKENDS_DIR"]) / "rie" / "aws-lambda-rie"
    if not binary.exists():
        pytest.fail(f"the RIE binary is not at {binary}")
    port, api_port = free_port(), free_port()
    env = {**os.environ, "AWS_LAMBDA_FUNCTION_TIMEOUT": str(timeout), "LAMBDA_TASK_ROOT": str(folder),
           "PYTHONPATH": str(folder), "PYTHONDONTWRITEBYTECODE": "1"}
    log = open(folder / "rie.log", "wb")
    proc = subprocess.Popen(
        [str(binary), "--runtime-interface-emulator-address", f"127.0.0.1:{port}",
         "--runtime-api-address", f"127.0.0.1:{api_port}", sys.executable, "-m", "awslambdaric", handler],
        cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"private RIE did not start:\n{(folder / 'rie.log').read_text(errors='replace')}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}{RIE_PATH}"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        log.close()


@pytest.mark.backends
async def test_rie_concurrent_invoke_is_an_invocation_error(backends, tmp_path):
    """behaviour §9.1: the RIE runs one invoke at a time; a second one while the first is in flight is
    an invocation error (older emulators answer 400 AlreadyReserved; the build under test drops
    the connection as it crashes). Two invokers, so the second bypasses the first's slot."""
    (tmp_path / "marked.py").write_text(textwrap.dedent(
        """
        import time

        def handler(event, context):
            open(event["marker"], "w").close()
            time.sleep(event["sleep"])
            return "first"
        """
    ))
    marker = tmp_path / "started"
    with private_rie(backends, tmp_path, "marked.handler") as url:
        first_invoker = make_invoker(url_target(url), AwsSettings())
        second_invoker = make_invoker(url_target(url), AwsSettings())
        try:
            first = asyncio.create_task(first_invoker.invoke({"marker": str(marker), "sleep": 2}, timeout=30))
            while not marker.exists():
                assert not first.done(), await first
                await asyncio.sleep(0.02)
            second = await second_invoker.invoke({"marker": str(tmp_path / "second"), "sleep": 0}, timeout=30)
            first_result = await first
        finally:
            await first_invoker.close()
            await second_invoker.close()
    assert isinstance(second, InvocationError), second
    assert not (tmp_path / "second").exists()  # the second event never reached the function
    assert isinstance(first_result, (Succeeded, InvocationError))


@pytest.mark.backends
async def test_rie_runtime_exit_during_init_is_a_function_error(backends, tmp_path):
    """behaviour §9.1: a runtime that exits gives the RIE's 502 with an *empty* body (observed when it
    exits while importing the handler): from an emulator URL that is a function error."""
    (tmp_path / "dies.py").write_text("import os\nos._exit(3)\n\ndef handler(event, context):\n    return 1\n")
    with private_rie(backends, tmp_path, "dies.handler") as url:
        result = await invoke_once(url)
    assert isinstance(result, FunctionError), result
    assert (result.error_type, result.status) == ("Runtime.ExitError", 502)


# ------------------------------------------------------------------ a plain HTTP server


async def test_success_posts_json_and_reuses_the_connection():
    """behaviour §9.1 success; docs/design.md: the event is POSTed as JSON on one pooled keep-alive session
    (three invokes arrive over one connection)."""
    peers: list[object] = []

    async def echo(request: web.Request) -> web.Response:
        peers.append(request.transport.get_extra_info("peername"))
        return web.json_response({"type": request.content_type, "event": await request.json()})

    async with serve(echo) as base:
        invoker = make_invoker(url_target(f"{base}/invoke"), AwsSettings())
        try:
            results = [await invoker.invoke({"Records": [{"n": n}]}) for n in range(3)]
        finally:
            await invoker.close()
    assert [r.body for r in results] == [
        {"type": "application/json", "event": {"Records": [{"n": n}]}} for n in range(3)
    ]
    assert len(set(peers)) == 1


@pytest.mark.parametrize("status", [429, 503])
async def test_throttle_and_unavailable_are_invocation_errors_with_retry_after(status):
    """behaviour §9.1: 429 and 503 are invocation errors (retried with backoff); Retry-After is parsed."""

    async def busy(request: web.Request) -> web.Response:
        return web.Response(status=status, text="busy", headers={"Retry-After": "4"})

    async with serve(busy) as base:
        result = await invoke_once(f"{base}/invoke")
    assert isinstance(result, InvocationError)
    assert (result.status, result.retry_after) == (status, 4.0)


async def test_500_is_a_function_error():
    """behaviour §9.1: any other 5xx (here 500) is a function error."""

    async def broken(request: web.Request) -> web.Response:
        return web.Response(status=500, text="Internal Server Error")

    async with serve(broken) as base:
        result = await invoke_once(f"{base}/invoke")
    assert isinstance(result, FunctionError)
    assert (result.error_type, result.status) == ("HTTP500", 500)


async def test_function_error_header_is_a_function_error():
    """behaviour §9.1: a response with header X-Amz-Function-Error is a function error, even with 200."""

    async def handled(request: web.Request) -> web.Response:
        return web.json_response({"errorType": "OrderRejected", "errorMessage": "no stock"},
                                 headers={"X-Amz-Function-Error": "Handled"})

    async with serve(handled) as base:
        result = await invoke_once(f"{base}/invoke")
    assert isinstance(result, FunctionError)
    assert (result.error_type, result.message) == ("OrderRejected", "no stock")


async def test_invalid_json_200_is_a_function_error():
    """behaviour §3: an invalid JSON response is a complete failure: a function error."""

    async def html(request: web.Request) -> web.Response:
        return web.Response(status=200, text="<html>hello</html>", content_type="text/html")

    async with serve(html) as base:
        result = await invoke_once(f"{base}/invoke")
    assert isinstance(result, FunctionError) and result.error_type == "Esm.InvalidJSON"


async def test_response_over_6_mb_is_a_function_error():
    """behaviour §3 / §9.1: a response larger than Lambda's 6 MB synchronous limit fails the invoke
    (Lambda's Function.ResponseSizeTooLarge); esm stops reading it."""

    async def huge(request: web.Request) -> web.Response:
        return web.Response(status=200, body=b'"' + b"x" * (7 * 1024 * 1024) + b'"', content_type="application/json")

    async with serve(huge) as base:
        result = await invoke_once(f"{base}/invoke")
    assert isinstance(result, FunctionError) and result.error_type == "Function.ResponseSizeTooLarge"


async def test_other_4xx_is_an_invocation_error_logged_with_its_body(caplog):
    """behaviour §9.1: any other 4xx is an invocation error logged with its body."""

    async def missing(request: web.Request) -> web.Response:
        return web.Response(status=404, text="no route named /invoke")

    async with serve(missing) as base:
        with caplog.at_level(logging.WARNING, logger="esm.invokers.http"):
            result = await invoke_once(f"{base}/invoke", {"secret": "never logged"})
    assert isinstance(result, InvocationError) and result.status == 404
    assert "no route named /invoke" in caplog.text
    assert "never logged" not in caplog.text


async def test_emulator_style_url_400_and_empty_502():
    """behaviour §9.1: from an emulator-style URL a 400 is an invocation error (AlreadyReserved) and a
    502 with an empty body is a function error (a crashed runtime)."""
    answers = iter([400, 502])

    async def emulator(request: web.Request) -> web.Response:
        return web.Response(status=next(answers))

    async with serve(emulator) as base:
        busy = await invoke_once(f"{base}{RIE_PATH}")
        crashed = await invoke_once(f"{base}{RIE_PATH}")
    assert isinstance(busy, InvocationError) and busy.status == 400
    assert isinstance(crashed, FunctionError) and crashed.error_type == "Runtime.ExitError"


async def test_connection_refused_is_an_invocation_error():
    """behaviour §9.1: connection refused is an invocation error."""
    result = await invoke_once(f"http://127.0.0.1:{free_port()}/invoke")
    assert isinstance(result, InvocationError)


async def test_connection_dropped_mid_request_is_an_invocation_error():
    """behaviour §9.1: a connection reset or dropped before an answer is an invocation error."""

    async def drop(request: web.Request) -> web.Response:
        assert request.transport is not None
        request.transport.close()
        await asyncio.sleep(1)
        return web.Response(text="too late")

    async with serve(drop) as base:
        result = await invoke_once(f"{base}/invoke")
    assert isinstance(result, InvocationError)


async def test_own_timeout_is_a_function_error_and_the_slot_waits_for_the_answer():
    """behaviour §9.1: the configured invoke timeout is a function error. The request is left to finish
    and keeps its slot (max_concurrency 1): the next invoke reaches the server only after the
    first one was answered, so the server never sees two at once."""
    release = asyncio.Event()
    running = 0
    peak = 0
    seen = 0

    async def slow(request: web.Request) -> web.Response:
        nonlocal running, peak, seen
        seen += 1
        running += 1
        peak = max(peak, running)
        try:
            if (await request.json()).get("slow"):
                await release.wait()
            return web.json_response("answered")
        finally:
            running -= 1

    async with serve(slow) as base:
        invoker = make_invoker(url_target(f"{base}/invoke", max_concurrency=1), AwsSettings())
        try:
            timed_out = await invoker.invoke({"slow": True}, timeout=0.2)
            follower = asyncio.create_task(invoker.invoke({"slow": False}, timeout=10))
            await asyncio.sleep(0.3)
            seen_while_blocked = seen
            release.set()
            after = await follower
        finally:
            release.set()
            await invoker.close()
    assert isinstance(timed_out, FunctionError) and timed_out.error_type == "Sandbox.Timedout"
    assert seen_while_blocked == 1
    assert isinstance(after, Succeeded) and after.body == "answered"
    assert peak == 1


async def test_concurrency_cap_is_honoured():
    """behaviour §9.1 max_concurrency (here 2): six parallel invokes, the server never sees more than
    two at once and does see two (each request waits at a two-party barrier, which fails alone)."""
    barrier = asyncio.Barrier(2)
    running = 0
    peak = 0

    async def paired(request: web.Request) -> web.Response:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        try:
            await asyncio.wait_for(barrier.wait(), timeout=10)
            return web.json_response((await request.json())["i"])
        except TimeoutError:
            return web.Response(status=500, text="alone at the barrier")
        finally:
            running -= 1

    async with serve(paired) as base:
        invoker = make_invoker(url_target(f"{base}/invoke", max_concurrency=2), AwsSettings(), default_concurrency=10)
        try:
            results = await asyncio.gather(*(invoker.invoke({"i": i}) for i in range(6)))
        finally:
            await invoker.close()
    assert [r.body for r in results] == list(range(6)), results
    assert peak == 2


async def test_default_concurrency_for_a_plain_url():
    """behaviour §9.1: a `url` target that is not the RIE path takes the mapping's concurrency."""
    invoker = make_invoker(url_target("http://127.0.0.1:9/invoke"), AwsSettings(), default_concurrency=8)
    await invoker.close()
    assert invoker.max_concurrency == 8
