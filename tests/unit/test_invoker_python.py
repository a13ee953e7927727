"""The in-process Python invoker (`handler:` targets): docs/design.md "Configuration" -> Functions,
behaviour §9.1 (in-process targets: an exception is a function error), behaviour §3, behaviour §9.9.

Each test writes its handler module to a temporary folder on sys.path, so the invoker imports it
on first use exactly as it imports a user's module.
"""

from __future__ import annotations

import asyncio
import importlib
import textwrap
import uuid
from pathlib import Path
from typing import Any, Callable

import orjson
import pytest

from esm.config.settings import AwsSettings, FunctionTarget
from esm.invokers import make_invoker
from esm.invokers.base import FunctionError, Succeeded


@pytest.fixture
def handler_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[[str], str]:
    """Write a module with the given source; returns its (unique) name."""
    monkeypatch.syspath_prepend(str(tmp_path))

    def write(source: str, name: str | None = None) -> str:
        name = name or f"esm_test_handler_{uuid.uuid4().hex}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        return name

    return write


def target(spec: str, **kwargs: Any) -> FunctionTarget:
    return FunctionTarget(name=kwargs.pop("name", "local"), handler=spec, **kwargs)


async def test_sync_handler_gets_the_event_and_its_answer_is_parsed(handler_module):
    """docs/design.md "Configuration" (Functions): a plain `handler(event, context)` runs and its return value is the
    response (behaviour §9.1 success); the event arrives decoded, whether given as JSON bytes or a dict."""
    name = handler_module(
        """
        import threading

        def handler(event, context):
            return {"records": len(event["Records"]), "thread": threading.current_thread().name}
        """
    )
    invoker = make_invoker(target(f"{name}:handler"), AwsSettings())
    try:
        first = await invoker.invoke(orjson.dumps({"Records": [{"a": 1}, {"b": 2}]}))
        second = await invoker.invoke({"Records": [{"a": 1}]})
    finally:
        await invoker.close()
    assert isinstance(first, Succeeded) and isinstance(second, Succeeded)
    assert first.body["records"] == 2 and second.body["records"] == 1
    assert first.body["thread"].startswith("esm-local")  # a worker thread, not the loop's
    assert first.duration > 0


async def test_async_handler_is_awaited_on_the_loop(handler_module):
    """docs/design.md "Configuration" (Functions): an `async def` handler runs on the event loop (same thread as the test)."""
    name = handler_module(
        """
        import asyncio, threading

        async def handler(event, context):
            await asyncio.sleep(0)
            return {"async": True, "thread": threading.get_ident()}
        """
    )
    import threading

    invoker = make_invoker(target(f"{name}:handler"), AwsSettings())
    try:
        result = await invoker.invoke({"Records": []})
    finally:
        await invoker.close()
    assert isinstance(result, Succeeded)
    assert result.body == {"async": True, "thread": threading.get_ident()}


@pytest.mark.parametrize("style", ["colon", "lambda-dot"])
async def test_handler_spelling(handler_module, style):
    """docs/design.md "Configuration" (Functions): `module:function`; Lambda's own `module.function` is accepted too."""
    name = handler_module("def process(event, context):\n    return 'hi'\n")
    spec = f"{name}:process" if style == "colon" else f"{name}.process"
    invoker = make_invoker(target(spec), AwsSettings())
    try:
        result = await invoker.invoke({})
    finally:
        await invoker.close()
    assert result == Succeeded("hi", duration=result.duration)


async def test_context_carries_lambda_fields(handler_module):
    """docs/design.md "Configuration" (Functions) and behaviour §9.9 identity: context has function_name, function_version $LATEST,
    invoked_function_arn arn:aws:lambda:<region>:<account>:function:<name>, a uuid4
    aws_request_id per invoke, memory, log names and get_remaining_time_in_millis()."""
    name = handler_module(
        """
        def handler(event, context):
            return {
                "function_name": context.function_name,
                "function_version": context.function_version,
                "arn": context.invoked_function_arn,
                "request_id": context.aws_request_id,
                "memory": context.memory_limit_in_mb,
                "log_group": context.log_group_name,
                "log_stream": context.log_stream_name,
                "remaining": context.get_remaining_time_in_millis(),
            }
        """
    )
    invoker = make_invoker(target(f"{name}:handler", name="orders", timeout=12), AwsSettings(),
                           region="eu-west-1", account="123456789012")
    try:
        one = await invoker.invoke({})
        two = await invoker.invoke({})
    finally:
        await invoker.close()
    assert isinstance(one, Succeeded) and isinstance(two, Succeeded)
    body = one.body
    assert body["function_name"] == "orders"
    assert body["function_version"] == "$LATEST"
    assert body["arn"] == "arn:aws:lambda:eu-west-1:123456789012:function:orders"
    assert uuid.UUID(body["request_id"]).version == 4
    assert body["request_id"] != two.body["request_id"]
    assert int(body["memory"]) > 0
    assert body["log_group"] == "/aws/lambda/orders"
    assert "[$LATEST]" in body["log_stream"]
    assert 0 < body["remaining"] <= 12_000


async def test_exception_is_a_function_error(handler_module):
    """behaviour §9.1: in-process Python targets: an exception is a function error (its type and message)."""
    name = handler_module("def handler(event, context):\n    raise ValueError('bad record 7')\n")
    invoker = make_invoker(target(f"{name}:handler"), AwsSettings())
    try:
        result = await invoker.invoke({})
    finally:
        await invoker.close()
    assert isinstance(result, FunctionError)
    assert (result.error_type, result.message) == ("ValueError", "bad record 7")


async def test_async_exception_is_a_function_error(handler_module):
    """behaviour §9.1: an exception from an async handler is a function error as well."""
    name = handler_module("async def handler(event, context):\n    raise KeyError('k')\n")
    invoker = make_invoker(target(f"{name}:handler"), AwsSettings())
    try:
        result = await invoker.invoke({})
    finally:
        await invoker.close()
    assert isinstance(result, FunctionError) and result.error_type == "KeyError"


async def test_exit_is_a_runtime_exit_error(handler_module):
    """behaviour §9.1: a runtime that exits is a function error (Lambda's Runtime.ExitError)."""
    name = handler_module("import sys\ndef handler(event, context):\n    sys.exit(3)\n")
    invoker = make_invoker(target(f"{name}:handler"), AwsSettings())
    try:
        result = await invoker.invoke({})
    finally:
        await invoker.close()
    assert isinstance(result, FunctionError) and result.error_type == "Runtime.ExitError"


async def test_unserialisable_return_is_a_function_error(handler_module):
    """behaviour §3 (a response that is not JSON fails the batch): a return value json cannot encode is
    a function error, Runtime.MarshalError as the Python runtime reports it."""
    name = handler_module("def handler(event, context):\n    return {'x': object()}\n")
    invoker = make_invoker(target(f"{name}:handler"), AwsSettings())
    try:
        result = await invoker.invoke({})
    finally:
        await invoker.close()
    assert isinstance(result, FunctionError)
    assert result.error_type == "Runtime.MarshalError"


async def test_response_and_event_are_json_round_tripped(handler_module):
    """docs/design.md "Configuration" (Functions): the return value is JSON round-tripped exactly as an HTTP body would be
    (a tuple becomes a list, a Decimal a number, bytes are the raw body), and the handler gets its
    own decoded copy of the event (mutating it leaves the caller's payload alone)."""
    name = handler_module(
        """
        from decimal import Decimal

        def handler(event, context):
            kind = event["kind"]
            event["kind"] = "mutated"
            if kind == "bytes":
                return b'{"raw": true}'
            return {"pair": (1, 2), "price": Decimal("1.5"), "count": Decimal("3")}
        """
    )
    invoker = make_invoker(target(f"{name}:handler"), AwsSettings())
    payload = {"kind": "values"}
    try:
        values = await invoker.invoke(payload)
        raw = await invoker.invoke({"kind": "bytes"})
    finally:
        await invoker.close()
    assert isinstance(values, Succeeded)
    assert values.body == {"pair": [1, 2], "price": 1.5, "count": 3}
    assert payload == {"kind": "values"}
    assert raw == Succeeded({"raw": True}, duration=raw.duration)


async def test_import_error_is_a_function_error_and_is_retried(handler_module):
    """behaviour §9.1 (the function failed) and Lambda's re-init: a module that cannot be imported is a
    Runtime.ImportModuleError function error; once it exists, the next invoke imports it."""
    name = f"esm_test_handler_{uuid.uuid4().hex}"
    invoker = make_invoker(target(f"{name}:handler"), AwsSettings())
    try:
        missing = await invoker.invoke({})
        handler_module("def handler(event, context):\n    return 'imported'\n", name=name)
        found = await invoker.invoke({})
    finally:
        await invoker.close()
    assert isinstance(missing, FunctionError) and missing.error_type == "Runtime.ImportModuleError"
    assert isinstance(found, Succeeded) and found.body == "imported"


async def test_missing_handler_attribute_is_a_function_error(handler_module):
    """behaviour §9.1: a handler name that the module does not define is a function error."""
    name = handler_module("def other(event, context):\n    return 1\n")
    invoker = make_invoker(target(f"{name}:handler"), AwsSettings())
    try:
        result = await invoker.invoke({})
    finally:
        await invoker.close()
    assert isinstance(result, FunctionError) and result.error_type == "Runtime.HandlerNotFound"


async def test_sync_timeout_is_a_function_error_and_keeps_the_slot(handler_module):
    """behaviour §9.1: the configured invoke timeout is a function error. A thread cannot be stopped, so
    its concurrency slot stays taken until the handler returns: with max_concurrency 1 the next
    invoke starts only then."""
    name = handler_module(
        """
        import threading

        release = threading.Event()

        def handler(event, context):
            if event.get("block"):
                release.wait(30)
                return "late"
            return "quick"
        """
    )
    module = importlib.import_module(name)
    invoker = make_invoker(target(f"{name}:handler", max_concurrency=1), AwsSettings())
    try:
        timed_out = await invoker.invoke({"block": True}, timeout=0.2)
        follower = asyncio.create_task(invoker.invoke({}))
        await asyncio.sleep(0.3)
        waited = not follower.done()  # the slot is still the blocked thread's
        module.release.set()
        after = await follower
    finally:
        module.release.set()
        await invoker.close()
    assert isinstance(timed_out, FunctionError)
    assert timed_out.error_type == "Sandbox.Timedout"
    assert waited
    assert isinstance(after, Succeeded) and after.body == "quick"


async def test_async_timeout_cancels_the_handler(handler_module):
    """behaviour §9.1: the configured invoke timeout is a function error; an async handler is cancelled
    (and its slot freed, so the next invoke runs)."""
    name = handler_module(
        """
        import asyncio

        cancelled = []

        async def handler(event, context):
            if event.get("block"):
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    cancelled.append(context.aws_request_id)
                    raise
            return "ok"
        """
    )
    module = importlib.import_module(name)
    invoker = make_invoker(target(f"{name}:handler", max_concurrency=1), AwsSettings())
    try:
        timed_out = await invoker.invoke({"block": True}, timeout=0.1)
        after = await invoker.invoke({})
    finally:
        await invoker.close()
    assert isinstance(timed_out, FunctionError) and timed_out.error_type == "Sandbox.Timedout"
    assert len(module.cancelled) == 1
    assert isinstance(after, Succeeded) and after.body == "ok"


async def test_async_handler_that_swallows_its_cancellation_still_timed_out(handler_module):
    """behaviour §9.1: an in-process handler that overruns the timeout is a timeout, even when it catches the
    cancellation and returns a value; the slot is free again afterwards."""
    name = handler_module(
        """
        import asyncio

        async def handler(event, context):
            if event.get("block"):
                try:
                    await asyncio.sleep(30)
                except asyncio.CancelledError:
                    return "finished anyway"
            return "ok"
        """
    )
    invoker = make_invoker(target(f"{name}:handler", max_concurrency=1), AwsSettings())
    try:
        timed_out = await invoker.invoke({"block": True}, timeout=0.1)
        after = await invoker.invoke({})
    finally:
        await invoker.close()
    assert isinstance(timed_out, FunctionError) and timed_out.error_type == "Sandbox.Timedout"
    assert isinstance(after, Succeeded) and after.body == "ok"


async def test_slow_sync_handler_does_not_block_the_loop(handler_module):
    """docs/design.md "Configuration" (Functions): a plain handler runs in a worker thread, so a slow handler never blocks
    the loop. The handler blocks until a coroutine on the loop releases it; were it on the loop,
    that coroutine could not run and the handler would report it was never released."""
    name = handler_module(
        """
        import threading

        started = threading.Event()
        release = threading.Event()

        def handler(event, context):
            started.set()
            return "released by the loop" if release.wait(30) else "never released"
        """
    )
    module = importlib.import_module(name)
    invoker = make_invoker(target(f"{name}:handler"), AwsSettings())

    async def release_when_started() -> None:
        while not module.started.is_set():
            await asyncio.sleep(0.01)
        module.release.set()

    try:
        result, _ = await asyncio.gather(invoker.invoke({}, timeout=60), release_when_started())
    finally:
        module.release.set()
        await invoker.close()
    assert isinstance(result, Succeeded) and result.body == "released by the loop"


async def test_concurrency_cap(handler_module):
    """behaviour §9.1 max_concurrency (here 2): of six parallel invokes, two handlers run at once (they
    meet at a two-party barrier, which fails alone) and, while those two are held at a gate, no
    third one starts."""
    name = handler_module(
        """
        import threading

        lock = threading.Lock()
        running = 0
        peak = 0
        barrier = threading.Barrier(2, timeout=10)
        gate = threading.Event()

        def handler(event, context):
            global running, peak
            with lock:
                running += 1
                peak = max(peak, running)
            try:
                barrier.wait()
                gate.wait(30)
            finally:
                with lock:
                    running -= 1
            return event["i"]
        """
    )
    module = importlib.import_module(name)
    invoker = make_invoker(target(f"{name}:handler", max_concurrency=2), AwsSettings(), default_concurrency=10)
    try:
        invokes = asyncio.gather(*(invoker.invoke({"i": i}) for i in range(6)))
        while module.peak < 2:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)  # room for a third handler to start, were the cap broken
        peak_while_held = module.peak
        module.gate.set()
        results = await invokes
    finally:
        module.gate.set()
        await invoker.close()
    assert invoker.max_concurrency == 2
    assert peak_while_held == 2
    assert [r.body for r in results] == list(range(6)), results
    assert module.peak == 2


async def test_default_concurrency_applies_without_max_concurrency(handler_module):
    """behaviour §9.1: without max_concurrency an in-process target takes the mapping's concurrency."""
    name = handler_module("def handler(event, context):\n    return 1\n")
    invoker = make_invoker(target(f"{name}:handler"), AwsSettings(), default_concurrency=7)
    try:
        assert invoker.max_concurrency == 7
    finally:
        await invoker.close()
