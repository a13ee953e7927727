"""The `url` target: POST the event as JSON to any HTTP endpoint, Lambda RIE included.

One keep-alive aiohttp session per invoker, created lazily inside the running loop; at most
`max_concurrency` requests in flight (default 1 for the RIE's invoke path, which serves one invoke
at a time and crashes on a second; otherwise the mapping's concurrency). The answer is classified
by `esm.invokers.classify.classify_http` (behaviour §9.1). Redirects are not followed (a 3xx is an
invocation error), responses are read up to Lambda's 6 MB limit, and a connection refused, reset
or dropped is an invocation error.

Timeouts: the per-invoke timeout (the target's `timeout`, or the `timeout` argument) covers the
request from the moment a slot is free. When it passes after the request was sent, the result is
a function error `Sandbox.Timedout` (what Lambda reports for a function timeout) and the request
is left to finish in the background, holding its slot (see `esm.invokers.limits`), for at most
`ABANDONED_REQUEST_LIMIT` (900 s, Lambda's longest timeout) more. If the request was not even sent
(no connection within the timeout) it is cancelled and the result is an invocation error.

Request and response bodies are never logged at INFO; an unexpected 4xx is logged at WARNING
with an excerpt of its body (a client error usually means a misconfigured URL).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from typing import Any, Mapping

import aiohttp
import orjson

from esm.config.settings import AwsSettings, FunctionTarget
from esm.invokers.base import FunctionError, InvocationError, InvokeResult
from esm.invokers.classify import MAX_RESPONSE_BYTES, TIMEOUT, TOO_LARGE, classify_http, is_emulator_url
from esm.invokers.limits import Slots

log = logging.getLogger(__name__)

# Lambda's longest function timeout: nothing Lambda-like answers later than this, so a request
# abandoned at esm's timeout keeps its slot at most this much longer.
ABANDONED_REQUEST_LIMIT = 900.0
# Establishing a TCP connection (not the invoke) must not take longer than this.
CONNECT_TIMEOUT = 10.0


def encode_payload(payload: Any) -> bytes:
    """The event as JSON bytes; bytes/str are taken as already-encoded JSON (sources pre-encode)."""
    if isinstance(payload, (bytes, bytearray, memoryview)):
        return bytes(payload)
    if isinstance(payload, str):
        return payload.encode()
    return orjson.dumps(payload, option=orjson.OPT_NON_STR_KEYS)


@dataclass
class _Progress:
    """Set by aiohttp's tracing once the request has gone out (so a timeout is the function's)."""

    sent: bool = False


@dataclass(frozen=True)
class _Answer:
    status: int
    headers: Mapping[str, str]
    body: bytes
    too_large: bool = False


async def _on_headers_sent(session: aiohttp.ClientSession, context: Any, params: Any) -> None:
    progress = context.trace_request_ctx
    if isinstance(progress, _Progress):
        progress.sent = True


class HttpInvoker:
    kind = "url"

    def __init__(self, target: FunctionTarget, *, default_concurrency: int = 1):
        if target.url is None:
            raise ValueError(f"function {target.name!r} has no url")
        self.name = target.name
        self.url = target.url
        self.timeout = target.timeout
        self.emulator = is_emulator_url(target.url)
        self.max_concurrency = target.max_concurrency or (1 if self.emulator else max(1, default_concurrency))
        self._slots = Slots(self.max_concurrency, target.name)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            tracing = aiohttp.TraceConfig()
            tracing.on_request_headers_sent.append(_on_headers_sent)
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self.max_concurrency, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(total=None),
                trace_configs=[tracing],
                headers={"Content-Type": "application/json"},
            )
        return self._session

    async def invoke(self, payload: Any, timeout: float | None = None) -> InvokeResult:
        body = encode_payload(payload)
        limit = self.timeout if timeout is None else timeout
        progress = _Progress()
        ran = await self._slots.run(
            lambda: self._post(body, progress, limit), limit, cancel_on_timeout=lambda: not progress.sent
        )
        if ran.timed_out:
            if progress.sent:
                return FunctionError(TIMEOUT, f"no response within {limit:g} s (esm's invoke timeout)",
                                     duration=ran.duration)
            return InvocationError(f"could not connect to {self.url} within {limit:g} s", duration=ran.duration)
        if ran.error is not None:
            return self._failed(ran.error, ran.duration)
        answer: _Answer = ran.value
        if answer.too_large and 200 <= answer.status < 300:
            return FunctionError(TOO_LARGE, f"response exceeds {MAX_RESPONSE_BYTES} bytes",
                                 status=answer.status, duration=ran.duration)
        result = classify_http(answer.status, answer.headers, answer.body, emulator=self.emulator)
        if isinstance(result, InvocationError) and answer.status < 500 and answer.status != 429:
            log.warning("%s: %s answered %s", self.name, self.url, result.reason, extra={"function": self.name})
        else:
            log.debug("%s: HTTP %d -> %s", self.name, answer.status, type(result).__name__,
                      extra={"function": self.name})
        return _with_duration(result, ran.duration)

    async def _post(self, body: bytes, progress: _Progress, limit: float) -> _Answer:
        async with self._client().post(
            self.url,
            data=body,
            allow_redirects=False,
            trace_request_ctx=progress,
            timeout=aiohttp.ClientTimeout(total=limit + ABANDONED_REQUEST_LIMIT, sock_connect=CONNECT_TIMEOUT),
        ) as response:
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.content.iter_any():
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_RESPONSE_BYTES:  # stop reading; an error page is judged by its start
                    return _Answer(response.status, dict(response.headers), b"".join(chunks)[:MAX_RESPONSE_BYTES],
                                   too_large=True)
            return _Answer(response.status, dict(response.headers), b"".join(chunks))

    def _failed(self, error: BaseException, duration: float) -> InvokeResult:
        if isinstance(error, asyncio.TimeoutError):
            # aiohttp's own limits: the connect timeout, or the abandoned-request ceiling.
            return InvocationError(f"connection to {self.url} timed out", duration=duration)
        if isinstance(error, (aiohttp.ClientError, OSError)):
            # Refused, reset, dropped mid-answer (the RIE dies on a concurrent invoke): not invoked.
            return InvocationError(f"{type(error).__name__}: {error}", duration=duration)
        if isinstance(error, asyncio.CancelledError):
            return InvocationError("invoke cancelled (invoker closing)", duration=duration)
        raise error

    async def close(self) -> None:
        await self._slots.close()
        if self._session is not None:
            await self._session.close()
            self._session = None


def _with_duration(result: InvokeResult, duration: float) -> InvokeResult:
    return replace(result, duration=duration)


def make(target: FunctionTarget, aws: AwsSettings, *, default_concurrency: int = 1, **_: Any) -> HttpInvoker:
    return HttpInvoker(target, default_concurrency=default_concurrency)


