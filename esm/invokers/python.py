"""The `handler` target: a Lambda-style Python callable run inside the esm process.

`handler: "package.module:function"` (a colon, then an attribute path) or Lambda's own spelling
`package/module.function` / `package.module.function` (the last dot names the function). The
module is imported on first invoke, from `sys.path` as the daemon set it up (config folder and
working directory); an import failure is a function error `Runtime.ImportModuleError` and is
retried on the next invoke, as Lambda re-runs a failed init.

`handler(event, context)`: an `async def` handler runs on the event loop; a plain function runs
in a worker thread, so a slow handler never blocks polling. The threads come from a pool of
`max_concurrency` threads owned by this invoker rather than `asyncio.to_thread`'s shared default
pool (a handful of threads, shared with DNS lookups): the cap, not the pool, must decide how many
handlers run. `context` mimics the Python runtime's: `function_name`, `function_version`
(`$LATEST`), `invoked_function_arn`, `aws_request_id` (a uuid4), `memory_limit_in_mb` (a string,
as the runtime reads it from its environment), `log_group_name`, `log_stream_name` and
`get_remaining_time_in_millis()`.

The event is a fresh object decoded from JSON (a handler may mutate it freely), and the return
value is JSON round-tripped exactly as an HTTP body would be: a tuple becomes a list, a `Decimal`
a number, `bytes` are taken as the raw response body, and anything else unserialisable is a
function error `Runtime.MarshalError`, as in the Python runtime. An exception is a function error
named by its type; `SystemExit` is `Runtime.ExitError`.

Timeouts: a coroutine handler is awaited in the invoking task itself (no task of its own per
invoke) and cancelled at the deadline; the invoke is a function error `Sandbox.Timedout` even if
the handler swallowed the cancellation. A thread cannot be killed: the invoke returns a
function error `Sandbox.Timedout` at once, the thread keeps running until the handler returns,
and its concurrency slot stays taken until then (so abandoned threads never exceed the cap).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime
import decimal
import importlib
import inspect
import json
import logging
import time
import uuid
from dataclasses import replace
from typing import Any, Callable

import orjson

from esm.config.settings import AwsSettings, FunctionTarget
from esm.invokers.base import FunctionError, InvocationError, InvokeResult, Succeeded
from esm.invokers.classify import MARSHAL_ERROR, RUNTIME_EXIT, TIMEOUT, classify_body
from esm.invokers.limits import Slots

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
DEFAULT_ACCOUNT = "000000000000"
# Lambda's default memory size; the in-process handler has no memory limit of its own.
MEMORY_LIMIT_IN_MB = "128"

IMPORT_ERROR = "Runtime.ImportModuleError"
SYNTAX_ERROR = "Runtime.UserCodeSyntaxError"
HANDLER_NOT_FOUND = "Runtime.HandlerNotFound"


class HandlerLoadError(Exception):
    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


def split_handler(spec: str) -> tuple[str, list[str]]:
    """`mod.sub:obj.fn` -> ("mod.sub", ["obj", "fn"]); Lambda's `dir/mod.fn` / `mod.fn` -> (module, [fn])."""
    spec = spec.strip()
    if ":" in spec:
        module, _, attrs = spec.partition(":")
        names = attrs.split(".")
    else:
        module, _, name = spec.rpartition(".")
        names = [name]
    module = module.replace("/", ".").strip(".")
    if not module or not all(names):
        raise HandlerLoadError(
            "Runtime.MalformedHandlerName", f"Bad handler {spec!r}: expected 'module:function' or 'module.function'"
        )
    return module, names


def load_handler(spec: str) -> Callable[..., Any]:
    """Import the module and find the callable (blocking: imports run user code)."""
    module_name, names = split_handler(spec)
    importlib.invalidate_caches()  # a module written since a failed attempt must be found
    try:
        target: Any = importlib.import_module(module_name)
    except SyntaxError as error:
        raise HandlerLoadError(SYNTAX_ERROR, f"Syntax error in module '{module_name}': {error}") from error
    except Exception as error:  # the user's module failed to import, whatever it raised
        raise HandlerLoadError(IMPORT_ERROR, f"Unable to import module '{module_name}': {error}") from error
    for name in names:
        try:
            target = getattr(target, name)
        except AttributeError as error:
            raise HandlerLoadError(
                HANDLER_NOT_FOUND, f"Handler '{'.'.join(names)}' missing on module '{module_name}'"
            ) from error
    if not callable(target):
        raise HandlerLoadError(HANDLER_NOT_FOUND, f"Handler '{'.'.join(names)}' on module '{module_name}' is not callable")
    handler: Callable[..., Any] = target
    return handler


def is_async(handler: Callable[..., Any]) -> bool:
    if inspect.iscoroutinefunction(handler):
        return True
    call = getattr(handler, "__call__", None)
    return not inspect.isroutine(handler) and inspect.iscoroutinefunction(call)


class LambdaContext:
    """The `context` argument, with the attributes of the Python runtime's LambdaContext."""

    def __init__(self, *, function_name: str, invoked_function_arn: str, log_stream_name: str, timeout: float):
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.invoked_function_arn = invoked_function_arn
        self.memory_limit_in_mb = MEMORY_LIMIT_IN_MB
        self._request_id: str | None = None
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = log_stream_name
        self.client_context = None
        self.identity = None
        self.tenant_id = None
        self._deadline = time.monotonic() + timeout

    @property
    def aws_request_id(self) -> str:
        """A uuid4, made when first read: most handlers never read it, and one costs a system call."""
        if self._request_id is None:
            self._request_id = str(uuid.uuid4())
        return self._request_id

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

    def __repr__(self) -> str:
        return f"LambdaContext(function_name={self.function_name!r}, aws_request_id={self.aws_request_id!r})"


def _decode_event(payload: Any) -> Any:
    if isinstance(payload, (bytes, bytearray, memoryview, str)):
        return orjson.loads(payload)
    return orjson.loads(orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS))


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):  # the Python runtime writes Decimals as numbers
        if value.is_nan():
            return float("nan")
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def marshal_response(value: Any) -> InvokeResult:
    """The return value as the ESM would receive it over the wire."""
    if value is None:  # what classify_body makes of b"null", without the round trip
        return Succeeded(None)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return classify_body(bytes(value), detect_error_object=False)
    try:
        body = json.dumps(value, default=_json_default, allow_nan=True).encode()
    except (TypeError, ValueError, RecursionError) as error:
        return FunctionError(MARSHAL_ERROR, f"Unable to marshal response: {error}")
    return classify_body(body, detect_error_object=False)


class PythonInvoker:
    kind = "handler"

    def __init__(
        self,
        target: FunctionTarget,
        *,
        default_concurrency: int = 1,
        region: str = DEFAULT_REGION,
        account: str = DEFAULT_ACCOUNT,
    ):
        if target.handler is None:
            raise ValueError(f"function {target.name!r} has no handler")
        self.name = target.name
        self.spec = target.handler
        self.timeout = target.timeout
        self.max_concurrency = target.max_concurrency or max(1, default_concurrency)
        self.function_arn = f"arn:aws:lambda:{region}:{account}:function:{target.name}"
        # One "execution environment" per invoker, named the way Lambda names its log streams.
        self.log_stream_name = f"{datetime.date.today():%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._slots = Slots(self.max_concurrency, target.name)
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._handler: Callable[..., Any] | None = None
        self._handler_is_async = False
        self._loading: asyncio.Lock | None = None

    async def _load(self) -> Callable[..., Any]:
        if self._handler is not None:
            return self._handler
        if self._loading is None:
            self._loading = asyncio.Lock()
        async with self._loading:
            if self._handler is None:
                handler = await asyncio.to_thread(load_handler, self.spec)
                self._handler_is_async = is_async(handler)
                self._handler = handler
        return self._handler

    def _context(self, timeout: float) -> LambdaContext:
        return LambdaContext(function_name=self.name, invoked_function_arn=self.function_arn,
                             log_stream_name=self.log_stream_name, timeout=timeout)

    async def invoke(self, payload: Any, timeout: float | None = None) -> InvokeResult:
        limit = self.timeout if timeout is None else timeout
        started = time.monotonic()
        try:
            handler = await self._load()
        except HandlerLoadError as error:
            log.warning("%s: %s", self.name, error.message, extra={"function": self.name})
            return FunctionError(error.error_type, error.message, duration=time.monotonic() - started)
        if self._handler_is_async:
            async def call() -> InvokeResult:
                return await self._call_async(handler, payload, limit)

            ran = await self._slots.run_inline(call, limit)
            note = "the handler was cancelled"
        else:
            if self._executor is None:
                self._executor = concurrent.futures.ThreadPoolExecutor(
                    max_workers=self.max_concurrency, thread_name_prefix=f"esm-{self.name}"
                )
            ran = await self._slots.run_in_thread(self._executor, lambda: self._call_sync(handler, payload, limit), limit)
            note = "the handler thread runs on and keeps its concurrency slot until it returns"
        if ran.timed_out:
            log.warning("%s: handler timed out after %.2f s; %s", self.name, limit, note, extra={"function": self.name})
            return FunctionError(TIMEOUT, f"Task timed out after {limit:.2f} seconds ({note})", duration=ran.duration)
        if ran.error is not None:
            if isinstance(ran.error, asyncio.CancelledError):
                return InvocationError("invoke cancelled (invoker closing)", duration=ran.duration)
            raise ran.error
        result: InvokeResult = ran.value
        if type(result) is Succeeded:  # the common answer, without dataclasses.replace's generic copy
            return Succeeded(result.body, ran.duration, result.executed_version)
        return replace(result, duration=ran.duration)

    def _call_sync(self, handler: Callable[..., Any], payload: Any, timeout: float) -> InvokeResult:
        context = self._context(timeout)
        try:
            event = _decode_event(payload)
        except (orjson.JSONDecodeError, TypeError) as error:
            return FunctionError("Runtime.UnmarshalError", f"Unable to unmarshal input: {error}")
        try:
            value = handler(event, context)
        except (Exception, SystemExit) as error:
            return self._raised(error, context)
        return marshal_response(value)

    async def _call_async(self, handler: Callable[..., Any], payload: Any, timeout: float) -> InvokeResult:
        context = self._context(timeout)
        try:
            event = _decode_event(payload)
        except (orjson.JSONDecodeError, TypeError) as error:
            return FunctionError("Runtime.UnmarshalError", f"Unable to unmarshal input: {error}")
        try:
            value = await handler(event, context)
        except (Exception, SystemExit) as error:
            return self._raised(error, context)
        return marshal_response(value)

    def _raised(self, error: BaseException, context: LambdaContext) -> FunctionError:
        if isinstance(error, SystemExit):
            log.warning("%s: handler called exit(%s)", self.name, error.code, extra={"function": self.name})
            return FunctionError(RUNTIME_EXIT, f"RequestId: {context.aws_request_id} Error: Runtime exited with "
                                               f"error: exit status {error.code}")
        # The function's own log, as Lambda would print it; the event itself is never logged.
        log.warning("%s: handler raised %s (request %s)", self.name, type(error).__name__, context.aws_request_id,
                    exc_info=error, extra={"function": self.name})
        return FunctionError(type(error).__name__, str(error))

    async def close(self) -> None:
        await self._slots.close()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None


def make(
    target: FunctionTarget,
    aws: AwsSettings,
    *,
    default_concurrency: int = 1,
    region: str | None = None,
    account: str | None = None,
    **_: Any,
) -> PythonInvoker:
    return PythonInvoker(
        target,
        default_concurrency=default_concurrency,
        region=region or aws.region or DEFAULT_REGION,
        account=account or DEFAULT_ACCOUNT,
    )
