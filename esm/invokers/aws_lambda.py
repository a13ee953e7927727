"""The `lambda` target: a synchronous Invoke API call (`InvocationType=RequestResponse`).

The endpoint is the `aws.endpoints.lambda` override or whatever botocore finds itself
(`AWS_ENDPOINT_URL_LAMBDA`, `AWS_ENDPOINT_URL`, config profiles); the region is the function
ARN's when `lambda:` is an ARN (a function can only be invoked in its own region), else
`aws.region`, else the SDK's. One client per invoker, created on first use inside the running
loop and closed by `close()`; botocore's own retries are off (`total_max_attempts=1`): esm backs
off invocation errors itself and must never re-run a function that failed. The read timeout is at
least Lambda's 900 s maximum and the target's timeout, which esm enforces itself per invoke.

Classification (behaviour §9.1, `esm.invokers.classify`): `FunctionError` in the response is a
function error. When the endpoint is not AWS (an emulator: the RIE serves the Invoke API on the
same path, LocalStack, ...), the body shape is checked too — the RIE returns a raised exception as
200 with an error object and no `FunctionError`, the timeout as plain text, and a crash as 502
with an error object (or an empty body) — which botocore's error parser would otherwise discard,
so the raw error body is kept through the `before-parse` event. Against real AWS only
`FunctionError` counts, so a function may return any object it likes. Throttles
(`TooManyRequestsException`, 429), 5xx service errors and connection failures are invocation
errors; other 4xx (`ResourceNotFoundException`, `AccessDeniedException`, ...) are invocation
errors logged at WARNING (esm keeps retrying, as Lambda's ESM does, until the records expire).

On esm's own timeout the result is `Sandbox.Timedout` and the call is left to finish in the
background, holding its concurrency slot (`esm.invokers.limits`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError, ReadTimeoutError

from esm.arns import parse_arn
from esm.config.settings import AwsSettings, FunctionTarget
from esm.invokers.base import LATEST, FunctionError, InvocationError, InvokeResult
from esm.invokers.classify import (
    TIMEOUT,
    classify_lambda_error,
    classify_lambda_response,
    excerpt,
    is_aws_endpoint,
)
from esm.invokers.http import encode_payload
from esm.invokers.limits import Slots

log = logging.getLogger(__name__)

LAMBDA_MAX_TIMEOUT = 900.0
CONNECT_TIMEOUT = 10.0
DEFAULT_REGION = "us-east-1"
# Where the raw body of a failed Invoke call is kept (botocore's parser drops unmodelled fields).
RAW_ERROR_BODY = "EsmRawErrorBody"
RAW_BODY_LIMIT = 64 * 1024


def _keep_error_body(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    if response_dict.get("status_code", 200) >= 300:
        body = response_dict.get("body")
        if isinstance(body, (bytes, bytearray)):
            customized_response_dict[RAW_ERROR_BODY] = bytes(body[:RAW_BODY_LIMIT])


class LambdaInvoker:
    kind = "lambda"

    def __init__(self, target: FunctionTarget, aws: AwsSettings, *, default_concurrency: int = 1):
        if target.lambda_arn is None:
            raise ValueError(f"function {target.name!r} has no lambda")
        self.name = target.name
        self.function_name = target.lambda_arn
        self.timeout = target.timeout
        arn = parse_arn(target.lambda_arn)
        self.region = (arn.region if arn is not None and arn.service == "lambda" and arn.region else None) or aws.region
        self.endpoint = aws.endpoint_for("lambda")
        self.max_concurrency = target.max_concurrency or max(1, default_concurrency)
        self._slots = Slots(self.max_concurrency, target.name)
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None
        self._creating: asyncio.Lock | None = None
        self.emulator = False  # decided from the endpoint the client resolved
        self._role: str | None = None

    async def _get_client(self) -> Any:
        if self._client is not None:
            return self._client
        if self._creating is None:
            self._creating = asyncio.Lock()
        async with self._creating:
            if self._client is None:
                session = get_session()
                config = AioConfig(
                    read_timeout=max(self.timeout, LAMBDA_MAX_TIMEOUT) + CONNECT_TIMEOUT,
                    connect_timeout=CONNECT_TIMEOUT,
                    retries={"mode": "standard", "total_max_attempts": 1},
                    max_pool_connections=self.max_concurrency,
                )
                kwargs: dict[str, Any] = {
                    "region_name": self.region or session.get_config_variable("region") or DEFAULT_REGION
                }
                if self.endpoint:
                    kwargs["endpoint_url"] = self.endpoint
                stack = contextlib.AsyncExitStack()
                try:
                    client = await stack.enter_async_context(session.create_client("lambda", config=config, **kwargs))
                except BaseException:
                    await stack.aclose()
                    raise
                client.meta.events.register("before-parse.lambda.Invoke", _keep_error_body)
                self.emulator = not is_aws_endpoint(client.meta.endpoint_url)
                self._stack, self._client = stack, client
        return self._client

    async def invoke(self, payload: Any, timeout: float | None = None) -> InvokeResult:
        body = encode_payload(payload)
        limit = self.timeout if timeout is None else timeout
        ran = await self._slots.run(lambda: self._call(body), limit, cancel_on_timeout=False)
        if ran.timed_out:
            return FunctionError(TIMEOUT, f"no response within {limit:g} s (esm's invoke timeout)", duration=ran.duration)
        if ran.error is not None:
            result = self._failed(ran.error)
        else:
            function_error, payload_bytes, executed_version = ran.value
            result = classify_lambda_response(function_error, payload_bytes, detect_error_object=self.emulator)
            if not isinstance(result, InvocationError):
                # On-failure documents report the version that ran (a qualified name or alias may pick another).
                result = replace(result, executed_version=executed_version or LATEST)
        log.debug("%s: Invoke -> %s", self.name, type(result).__name__, extra={"function": self.name})
        return replace(result, duration=ran.duration)

    async def _call(self, body: bytes) -> tuple[str | None, bytes, str | None]:
        client = await self._get_client()
        response = await client.invoke(FunctionName=self.function_name, Payload=body, InvocationType="RequestResponse")
        async with response["Payload"] as stream:
            data = await stream.read()
        return response.get("FunctionError"), data, response.get("ExecutedVersion")

    async def execution_role(self) -> str | None:
        """The function's execution role ARN (GetFunctionConfiguration's `Role`), or None when the
        endpoint cannot say (an emulator serves Invoke only). Stream records carry it as `invokeIdentityArn`."""
        if self._role is not None:
            return self._role
        try:
            client = await self._get_client()
            configuration = await asyncio.wait_for(
                client.get_function_configuration(FunctionName=self.function_name), CONNECT_TIMEOUT)
        except (BotoCoreError, ClientError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            log.warning("%s: GetFunctionConfiguration failed, so its execution role is not known: %s", self.name,
                        excerpt(str(error)), extra={"function": self.name})
            return None
        role = configuration.get("Role")
        if isinstance(role, str) and role:
            self._role = role  # read once: every mapping of this function shares it
        return self._role

    def _failed(self, error: BaseException) -> InvokeResult:
        if isinstance(error, ClientError):
            response = error.response
            meta = response.get("ResponseMetadata", {})
            details = response.get("Error", {})
            result = classify_lambda_error(
                str(details.get("Code", "")),
                str(details.get("Message", "")),
                meta.get("HTTPStatusCode"),
                meta.get("HTTPHeaders", {}),
                response.get(RAW_ERROR_BODY, b""),
                emulator=self.emulator,
            )
            status = meta.get("HTTPStatusCode") or 0
            if isinstance(result, InvocationError) and status < 500 and status != 429:
                log.warning("%s: Invoke %s failed: %s", self.name, self.function_name, result.reason,
                            extra={"function": self.name})
            return result
        if isinstance(error, ReadTimeoutError):
            # Sent and not answered within the read timeout: the function ran too long.
            return FunctionError(TIMEOUT, f"no response from Invoke: {error}")
        if isinstance(error, (BotoCoreError, aiohttp.ClientError, OSError)):
            # Connection refused/closed, connect timeout, no credentials, no region, ...
            log.debug("%s: Invoke not made: %r", self.name, error, extra={"function": self.name})
            return InvocationError(f"{type(error).__name__}: {excerpt(str(error))}")
        if isinstance(error, asyncio.CancelledError):
            return InvocationError("invoke cancelled (invoker closing)")
        raise error

    async def close(self) -> None:
        await self._slots.close()
        if self._stack is not None:
            stack, self._stack, self._client = self._stack, None, None
            await stack.aclose()


def make(target: FunctionTarget, aws: AwsSettings, *, default_concurrency: int = 1, **_: Any) -> LambdaInvoker:
    return LambdaInvoker(target, aws, default_concurrency=default_concurrency)
