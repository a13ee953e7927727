"""How a function's raw answer becomes Succeeded, FunctionError or InvocationError (behaviour §9.1).

Pure functions, no I/O: every invoker reduces what it got (an HTTP status, headers and body; an
Invoke API response or error) to these calls, so the rules live in one place and are table-tested.

The Runtime Interface Emulator (RIE) differs from real Lambda; what the build the tests run
(aws-sam-cli 1.170.0's `aws-lambda-rie`, awslambdaric 4.2) was observed to answer:

| the function                    | RIE answer                                                      |
|---------------------------------|-----------------------------------------------------------------|
| returns a value                 | 200, the value as JSON (`None` -> `null`, never an empty body)  |
| raises                          | 200, `{"errorMessage", "errorType", "requestId", "stackTrace"}` |
| runs past its timeout           | 200, plain text `Task timed out after 3.00 seconds`             |
| exits / is killed mid-invoke    | 502, `{"errorType": "Runtime.ExitError", "errorMessage": ...}`  |
| fails to import (init error)    | 502, `{"errorType": "Runtime.ImportModuleError", ...}`          |
| exits during init               | 502, **empty** body                                             |
| gets a 2nd invoke while busy    | the emulator panics (nil dereference after `ReserveFailed: AlreadyReserved`) and both connections drop; older builds answer 400 with an empty body |

Hence the empty-body rule, which tells a crash from "no response": a Lambda runtime writes a
function that returns nothing as `null` (4 bytes; the Python runtime's, observed), so an emulator
does not answer a successful invoke with an empty body, while older RIE builds answered a runtime that exited with one (its
issue #86), and this build still does when the runtime exits during init (a 502). So from an
emulator (an RIE-style URL, or a non-AWS endpoint behind the Invoke API) an empty 2xx or 502
body is a function error `Runtime.ExitError`; from any other HTTP server, or from
real Lambda, an empty 2xx body is a success without a response (behaviour §3: "null / empty response
-> complete success"). A 502 that is not an emulator's crash is a gateway failing to reach its
backend: an invocation error.

A Lambda error object is a JSON object with an `errorType` and/or `errorMessage` key, as every
Lambda runtime writes one. A function that *returns* such an object successfully cannot be told
apart from a failed one through a `url` target or an emulator; esm treats it as failed (the safe reading: records are
retried, never lost). Error types esm makes up itself are `Sandbox.Timedout` (a timeout, esm's
own or the RIE's: the type real Lambda reports), `Runtime.ExitError` (as the RIE names a crash),
`Runtime.MarshalError` (an unserialisable return, as the Python runtime names it),
`Function.ResponseSizeTooLarge` (a response over Lambda's 6 MB, Lambda's name),
`Esm.InvalidJSON` (a 2xx body that is not JSON: behaviour §3 "invalid JSON response -> failure") and
`HTTP<status>` (a 5xx without an error object).
"""

from __future__ import annotations

import email.utils
import json
import re
import time
from typing import Any, Mapping
from urllib.parse import urlsplit

import orjson

from esm.invokers.base import FunctionError, InvocationError, InvokeResult, Succeeded

# Lambda's synchronous invoke response limit; a larger answer is Lambda's own function error.
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
# How much of an unexpected body goes into a reason or a log line.
EXCERPT_CHARS = 300

TIMEOUT = "Sandbox.Timedout"
RUNTIME_EXIT = "Runtime.ExitError"
MARSHAL_ERROR = "Runtime.MarshalError"
TOO_LARGE = "Function.ResponseSizeTooLarge"
INVALID_JSON = "Esm.InvalidJSON"
UNHANDLED = "Unhandled"

FUNCTION_ERROR_HEADER = "X-Amz-Function-Error"
EMPTY_FROM_EMULATOR = "the runtime exited without a response (the emulator answered with an empty body)"

_RIE_PATH = re.compile(r"^/2015-03-31/functions/[^/]+/invocations/?$")
_RIE_TIMEOUT = re.compile(r"Task timed out after \d+(?:\.\d+)? seconds\s*$")
# Status codes that mean "not invoked, try again later" (behaviour §9.1 invocation errors).
_UNAVAILABLE = frozenset({429, 502, 503, 504})


# 19 digits in a row: possibly an integer past what orjson keeps exact (-2**63 - 1 has 19 digits).
# Found with bytes.translate and `in` (C loops; a regex is ten times slower on a 6 MB body).
_DIGITS_AS_ZERO = bytes.maketrans(b"123456789", b"000000000")
_LONG_DIGIT_RUN = b"0" * 19


class _NotJson:
    """Marker: the body is not JSON (distinct from a body that is JSON `null`)."""


NOT_JSON: Any = _NotJson()


def is_emulator_url(url: str) -> bool:
    """True for the Lambda Invoke path the RIE serves: /2015-03-31/functions/<name>/invocations."""
    return bool(_RIE_PATH.match(urlsplit(url).path))


def is_aws_endpoint(endpoint_url: str | None) -> bool:
    """True when a Lambda client talks to real AWS (then FunctionError alone marks a failure)."""
    if not endpoint_url:
        return True
    host = (urlsplit(endpoint_url).hostname or "").lower()
    return host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")


def excerpt(body: bytes | str, limit: int = EXCERPT_CHARS) -> str:
    text = body.decode("utf-8", "replace") if isinstance(body, (bytes, bytearray)) else body
    text = text.strip()
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} chars)"


def parse_json(body: bytes | str) -> Any:
    """The parsed body, None for an empty one, NOT_JSON when it is not JSON."""
    if not body or not body.strip():
        return None
    # orjson reads an integer past 64 bits as a float, silently (a tumbling window's state would
    # lose digits): such bodies go to the standard library, which keeps them exact.
    raw = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    if _LONG_DIGIT_RUN not in raw.translate(_DIGITS_AS_ZERO):
        try:
            return orjson.loads(body)
        except orjson.JSONDecodeError:
            pass
    try:  # what orjson refuses and Python runtimes write: NaN, Infinity, integers past 64 bits
        return json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        # RecursionError: nested deeper than orjson's 1024 levels and the interpreter's stack; a
        # body esm cannot read fails the batch (records retried), as an invalid one does.
        return NOT_JSON


def error_object(value: Any) -> tuple[str, str] | None:
    """(errorType, errorMessage) when `value` is a Lambda error object, else None."""
    if not isinstance(value, dict) or not ("errorType" in value or "errorMessage" in value):
        return None
    error_type = value.get("errorType")
    message = value.get("errorMessage")
    return (
        error_type if isinstance(error_type, str) and error_type else UNHANDLED,
        message if isinstance(message, str) else ("" if message is None else json.dumps(message)),
    )


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date); None if absent/bad."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return max(0.0, seconds)


def classify_body(
    body: bytes, *, emulator: bool = False, detect_error_object: bool = True, status: int | None = None
) -> InvokeResult:
    """A 2xx answer: success with the parsed body, unless the body itself says the function failed.

    `emulator`: the answer comes from an RIE, where an empty body is a crashed runtime.
    """
    if emulator and not body.strip():
        return FunctionError(RUNTIME_EXIT, EMPTY_FROM_EMULATOR, status=status)
    if len(body) > MAX_RESPONSE_BYTES:
        return FunctionError(TOO_LARGE, f"response of {len(body)} bytes exceeds {MAX_RESPONSE_BYTES}", status=status)
    parsed = parse_json(body)
    if parsed is NOT_JSON:
        text = excerpt(body)
        if _RIE_TIMEOUT.search(text):
            return FunctionError(TIMEOUT, text, status=status)
        return FunctionError(INVALID_JSON, f"response is not JSON: {text}", status=status)
    if detect_error_object:
        found = error_object(parsed)
        if found is not None:
            return FunctionError(*found, status=status)
    return Succeeded(parsed)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None


def classify_http(
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    *,
    emulator: bool,
    now: float | None = None,
) -> InvokeResult:
    """One HTTP answer from a `url` target (behaviour §9.1). `emulator`: the URL is the RIE's invoke path."""
    function_error = _header(headers, FUNCTION_ERROR_HEADER)
    if function_error is not None:
        found = error_object(parse_json(body))
        if found is not None:
            return FunctionError(*found, status=status)
        return FunctionError(function_error.strip() or UNHANDLED, excerpt(body), status=status)
    if 200 <= status < 300:
        return classify_body(body, emulator=emulator, status=status)
    if status == 502:
        found = error_object(parse_json(body))
        if found is not None:  # RIE: import error, runtime exit
            return FunctionError(*found, status=status)
        if emulator and not body.strip():
            return FunctionError(RUNTIME_EXIT, EMPTY_FROM_EMULATOR, status=status)
    if status in _UNAVAILABLE:
        retry_after = parse_retry_after(_header(headers, "Retry-After"), now)
        detail = f": {excerpt(body)}" if body.strip() else ""
        return InvocationError(f"HTTP {status}{detail}", status=status, retry_after=retry_after)
    if status == 400 and emulator:
        return InvocationError(
            "HTTP 400 from the emulator: it is busy with another invoke (AlreadyReserved)", status=status,
            retry_after=parse_retry_after(_header(headers, "Retry-After"), now),
        )
    if status >= 500:
        found = error_object(parse_json(body))
        if found is not None:
            return FunctionError(*found, status=status)
        return FunctionError(f"HTTP{status}", excerpt(body), status=status)
    # 3xx (redirects are not followed) and every other 4xx: esm could not invoke the function.
    detail = f": {excerpt(body)}" if body.strip() else " (empty body)"
    return InvocationError(
        f"HTTP {status}{detail}", status=status, retry_after=parse_retry_after(_header(headers, "Retry-After"), now)
    )


# Invoke API error codes that are throttles or service faults: not invoked, retry later.
LAMBDA_THROTTLES = frozenset({"TooManyRequestsException", "ThrottlingException", "RequestLimitExceeded"})


def classify_lambda_response(function_error: str | None, payload: bytes, *, detect_error_object: bool) -> InvokeResult:
    """A successful Invoke API call (HTTP 200). `detect_error_object`: not real AWS (an emulator),
    so the body shape and the empty-body rule apply."""
    if function_error:
        found = error_object(parse_json(payload))
        if found is not None:
            return FunctionError(*found, status=200)
        return FunctionError(function_error, excerpt(payload), status=200)
    return classify_body(payload, emulator=detect_error_object, detect_error_object=detect_error_object, status=200)


def classify_lambda_error(
    code: str,
    message: str,
    status: int | None,
    headers: Mapping[str, str],
    raw_body: bytes,
    *,
    emulator: bool,
    now: float | None = None,
) -> InvokeResult:
    """A failed Invoke API call (botocore ClientError). `raw_body`: the unparsed error body."""
    retry_after = parse_retry_after(_header(headers, "Retry-After"), now)
    if emulator and status == 502:
        found = error_object(parse_json(raw_body))
        if found is not None:
            return FunctionError(*found, status=status)
        if not raw_body.strip():
            return FunctionError(RUNTIME_EXIT, EMPTY_FROM_EMULATOR, status=status)
    detail = f"{code}: {message}" if message else code
    if code in LAMBDA_THROTTLES or status == 429:
        return InvocationError(f"throttled ({detail})", status=status, retry_after=retry_after)
    if status is not None and status >= 500:
        return InvocationError(f"Lambda service error ({detail})", status=status, retry_after=retry_after)
    if emulator and status == 400:
        return InvocationError("HTTP 400 from the emulator: it is busy with another invoke (AlreadyReserved)",
                               status=status, retry_after=retry_after)
    if not message and raw_body.strip():
        detail = f"{code}: {excerpt(raw_body)}"
    return InvocationError(f"Invoke failed ({detail})", status=status, retry_after=retry_after)
