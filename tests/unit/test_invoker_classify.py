"""Table tests of the pure invoke classification (esm.invokers.classify), behaviour §9.1 and behaviour §3.

The RIE bodies below are copied from what the emulator the test backends run answered
(aws-sam-cli 1.170.0's aws-lambda-rie with awslambdaric 4.2).
"""

from __future__ import annotations

import email.utils
import json
import math

import pytest

from esm.invokers.base import FunctionError, InvocationError, Succeeded
from esm.invokers.classify import (
    MAX_RESPONSE_BYTES,
    classify_http,
    classify_lambda_error,
    classify_lambda_response,
    is_aws_endpoint,
    is_emulator_url,
    parse_retry_after,
)

RIE_RAISED = (
    b'{"errorMessage": "boom", "errorType": "RuntimeError", "requestId": "0bfb3c93-9317-4b15-b7b4-57a02f3b8943", '
    b'"stackTrace": ["  File \\"/work/main/tests/functions/programmable.py\\", line 31, in handler\\n"]}'
)
RIE_EXIT = (
    b'{"errorType":"Runtime.ExitError","errorMessage":"RequestId: 57c085f1-fb66-4596-a500-8a7c836d8944 '
    b'Error: Runtime exited with error: exit status 1"}'
)
RIE_IMPORT = (
    b'{"errorMessage": "Unable to import module \'nomod\': No module named \'nomod\'", '
    b'"errorType": "Runtime.ImportModuleError", "requestId": "", "stackTrace": []}'
)
RIE_TIMEOUT = b"Task timed out after 3.00 seconds"
NOW = 1_800_000_000.0

S, F, I = "succeeded", "function_error", "invocation_error"
KIND = {Succeeded: S, FunctionError: F, InvocationError: I}

HTTP_CASES = [
    # status, headers, body, emulator, expected kind, expected detail (body / error_type / retry_after)
    pytest.param(200, {}, b'{"ok": true, "records": 2}', True, S, {"ok": True, "records": 2}, id="200-json"),
    pytest.param(200, {}, b"null", True, S, None, id="200-null"),
    pytest.param(200, {}, b"", False, S, None, id="200-empty-is-success"),
    pytest.param(204, {}, b"", False, S, None, id="204-empty"),
    pytest.param(200, {}, b"", True, F, "Runtime.ExitError", id="200-empty-from-emulator-is-a-crash"),
    pytest.param(200, {}, b'"hello"', False, S, "hello", id="200-json-string"),
    pytest.param(200, {}, b"[1, 2]", False, S, [1, 2], id="200-json-list"),
    pytest.param(200, {}, b'{"batchItemFailures": [{"itemIdentifier": "a"}]}', True, S,
                 {"batchItemFailures": [{"itemIdentifier": "a"}]}, id="200-partial-batch"),
    pytest.param(200, {}, RIE_RAISED, True, F, "RuntimeError", id="200-rie-error-object"),
    pytest.param(200, {}, RIE_RAISED, False, F, "RuntimeError", id="200-error-object-any-url"),
    pytest.param(200, {}, b'{"errorMessage": "only a message"}', False, F, "Unhandled", id="200-errorMessage-only"),
    pytest.param(200, {}, b'{"errorType": "Custom"}', False, F, "Custom", id="200-errorType-only"),
    pytest.param(200, {}, RIE_TIMEOUT, True, F, "Sandbox.Timedout", id="200-rie-timeout-text"),
    pytest.param(200, {}, b"<html>ok</html>", False, F, "Esm.InvalidJSON", id="200-invalid-json"),
    pytest.param(200, {}, b"\xff\xfe", False, F, "Esm.InvalidJSON", id="200-not-utf8"),
    pytest.param(200, {}, b"1" * (MAX_RESPONSE_BYTES + 1), False, F, "Function.ResponseSizeTooLarge", id="200-too-large"),
    pytest.param(200, {"X-Amz-Function-Error": "Unhandled"}, b'{"errorType": "E", "errorMessage": "m"}', False, F, "E",
                 id="header-with-error-object"),
    pytest.param(200, {"x-amz-function-error": "Handled"}, b'"plain"', False, F, "Handled",
                 id="header-case-insensitive"),
    pytest.param(500, {"X-Amz-Function-Error": "Unhandled"}, b"", False, F, "Unhandled", id="header-on-500"),
    pytest.param(429, {"Retry-After": "7"}, b"", False, I, 7.0, id="429-retry-after"),
    pytest.param(429, {}, b"slow down", True, I, None, id="429-emulator-url"),
    pytest.param(503, {"Retry-After": email.utils.formatdate(NOW + 30, usegmt=True)}, b"", False, I, 30.0,
                 id="503-retry-after-date"),
    pytest.param(503, {}, RIE_RAISED, False, I, None, id="503-error-object-still-unavailable"),
    pytest.param(504, {}, b"", True, I, None, id="504"),
    pytest.param(502, {}, b"<html>Bad Gateway</html>", False, I, None, id="502-proxy"),
    pytest.param(502, {}, b"", False, I, None, id="502-empty-not-emulator"),
    pytest.param(502, {}, b"", True, F, "Runtime.ExitError", id="502-empty-emulator-runtime-crash"),
    pytest.param(502, {}, RIE_EXIT, True, F, "Runtime.ExitError", id="502-rie-exit-object"),
    pytest.param(502, {}, RIE_IMPORT, False, F, "Runtime.ImportModuleError", id="502-import-error-object"),
    pytest.param(400, {}, b"", True, I, None, id="400-emulator-already-reserved"),
    pytest.param(400, {}, b"bad request", False, I, None, id="400-other"),
    pytest.param(404, {}, b"no such route", False, I, None, id="404"),
    pytest.param(301, {"Location": "http://elsewhere/"}, b"", False, I, None, id="301-not-followed"),
    pytest.param(500, {}, b"Internal Server Error", False, F, "HTTP500", id="500"),
    pytest.param(500, {}, b"", True, F, "HTTP500", id="500-emulator"),
    pytest.param(500, {}, b'{"errorType": "Boom", "errorMessage": "x"}', False, F, "Boom", id="500-error-object"),
    pytest.param(501, {}, b"", False, F, "HTTP501", id="501"),
]


@pytest.mark.parametrize(("status", "headers", "body", "emulator", "kind", "detail"), HTTP_CASES)
def test_classify_http(status, headers, body, emulator, kind, detail):
    """behaviour §9.1 "Error classes" for HTTP targets, including the RIE's quirks (an empty body from
    an emulator is a crashed runtime), and behaviour §3 (null / empty response = success; invalid JSON
    = failure): status, headers and body -> result kind."""
    result = classify_http(status, headers, body, emulator=emulator, now=NOW)
    assert KIND[type(result)] == kind, result
    if kind == S:
        assert result.body == detail
    elif kind == F:
        assert result.error_type == detail
        assert result.status == status
    else:
        assert result.status == status
        if detail is not None:
            assert result.retry_after == pytest.approx(detail)


def test_error_object_message_is_kept():
    """behaviour §9.1: a 200 whose body is a Lambda error object is a function error carrying its
    errorType and errorMessage."""
    result = classify_http(200, {}, RIE_RAISED, emulator=True)
    assert isinstance(result, FunctionError)
    assert (result.error_type, result.message) == ("RuntimeError", "boom")


def test_other_4xx_reason_carries_the_body():
    """behaviour §9.1: any other 4xx is an invocation error logged with its body (truncated)."""
    result = classify_http(404, {}, b"no such route " + b"x" * 5000, emulator=False)
    assert isinstance(result, InvocationError)
    assert "no such route" in result.reason
    assert len(result.reason) < 1000


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 1.5 ", 1.5),
        ("-3", 0.0),
        ("0", 0.0),
        (email.utils.formatdate(NOW + 120, usegmt=True), 120.0),
        (email.utils.formatdate(NOW - 120, usegmt=True), 0.0),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
    ],
)
def test_parse_retry_after(value, expected):
    """behaviour §9.1 invocation errors: a Retry-After header (seconds or HTTP date) is parsed when present."""
    result = parse_retry_after(value, now=NOW)
    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected, abs=1.0)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://127.0.0.1:9000/2015-03-31/functions/function/invocations", True),
        ("http://fn:8080/2015-03-31/functions/my-fn/invocations/", True),
        ("http://127.0.0.1:9000/2015-03-31/functions/function/invocations?x=1", True),
        ("http://127.0.0.1:9000/invoke", False),
        ("http://127.0.0.1:9000/2015-03-31/functions/a/b/invocations", False),
        ("http://127.0.0.1:9000/", False),
    ],
)
def test_is_emulator_url(url, expected):
    """behaviour §9.1: a `url` target that looks like the RIE path gets max_concurrency 1 by default and
    its 400 / empty 502 answers read as the emulator's."""
    assert is_emulator_url(url) is expected


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        (None, True),
        ("https://lambda.us-east-1.amazonaws.com", True),
        ("https://lambda.cn-north-1.amazonaws.com.cn", True),
        ("http://127.0.0.1:9001", False),
        ("http://localstack:4566", False),
    ],
)
def test_is_aws_endpoint(endpoint, expected):
    """behaviour §9.1: body-shape detection applies to emulators behind the Invoke API, not to real AWS."""
    assert is_aws_endpoint(endpoint) is expected


LAMBDA_RESPONSES = [
    # FunctionError, payload, detect_error_object (not real AWS), kind, detail
    pytest.param(None, b'{"ok": true}', True, S, {"ok": True}, id="ok"),
    pytest.param(None, b"", False, S, None, id="real-aws-empty-payload"),
    pytest.param(None, b"", True, F, "Runtime.ExitError", id="emulator-empty-payload"),
    pytest.param(None, b"null", True, S, None, id="emulator-null"),
    pytest.param("Unhandled", b'{"errorType": "ValueError", "errorMessage": "bad"}', False, F, "ValueError",
                 id="FunctionError-with-object"),
    pytest.param("Unhandled", b"garbage", False, F, "Unhandled", id="FunctionError-plain"),
    pytest.param(None, RIE_RAISED, True, F, "RuntimeError", id="emulator-error-object-without-FunctionError"),
    pytest.param(None, b'{"errorType": "Mine", "errorMessage": "returned"}', False, S,
                 {"errorType": "Mine", "errorMessage": "returned"}, id="real-aws-returned-object"),
    pytest.param(None, RIE_TIMEOUT, True, F, "Sandbox.Timedout", id="emulator-timeout-text"),
    pytest.param(None, b"{not json", False, F, "Esm.InvalidJSON", id="invalid-json"),
]


@pytest.mark.parametrize(("function_error", "payload", "detect", "kind", "detail"), LAMBDA_RESPONSES)
def test_classify_lambda_response(function_error, payload, detect, kind, detail):
    """behaviour §9.1, AWS Lambda targets: `FunctionError` in the Invoke response is a function error;
    behind an emulator the body shape counts too; behaviour §3 empty = success, invalid JSON = failure."""
    result = classify_lambda_response(function_error, payload, detect_error_object=detect)
    assert KIND[type(result)] == kind, result
    if kind == S:
        assert result.body == detail
    else:
        assert result.error_type == detail


LAMBDA_ERRORS = [
    # code, message, status, headers, raw body, emulator, kind, detail
    pytest.param("TooManyRequestsException", "Rate exceeded", 429, {"retry-after": "2"}, b"", False, I, 2.0,
                 id="throttle"),
    pytest.param("ThrottlingException", "", 400, {}, b"", False, I, None, id="throttling-400"),
    pytest.param("ServiceException", "oops", 500, {}, b"", False, I, None, id="service-500"),
    pytest.param("EC2UnexpectedException", "", 502, {}, b'{"Type": "Server"}', False, I, None, id="aws-502"),
    pytest.param("502", "", 502, {}, RIE_EXIT, True, F, "Runtime.ExitError", id="emulator-502-exit"),
    pytest.param("502", "", 502, {}, RIE_IMPORT, True, F, "Runtime.ImportModuleError", id="emulator-502-import"),
    pytest.param("502", "", 502, {}, b"", True, F, "Runtime.ExitError", id="emulator-502-empty"),
    pytest.param("400", "", 400, {}, b"", True, I, None, id="emulator-400-busy"),
    pytest.param("ResourceNotFoundException", "Function not found", 404, {}, b"", False, I, None, id="not-found"),
]


@pytest.mark.parametrize(("code", "message", "status", "headers", "raw", "emulator", "kind", "detail"), LAMBDA_ERRORS)
def test_classify_lambda_error(code, message, status, headers, raw, emulator, kind, detail):
    """behaviour §9.1: TooManyRequestsException and service errors are invocation errors; an emulator's
    502 with a Lambda error object (or an empty body) is a function error; other 4xx are
    invocation errors."""
    result = classify_lambda_error(code, message, status, headers, raw, emulator=emulator, now=NOW)
    assert KIND[type(result)] == kind, result
    if kind == F:
        assert result.error_type == detail
    elif detail is not None:
        assert result.retry_after == pytest.approx(detail)
    if code == "ResourceNotFoundException":
        assert "ResourceNotFoundException" in result.reason


def test_python_runtime_nan_is_still_json():
    """behaviour §3 "invalid JSON response -> failure" applies only to bodies that are not JSON: the
    Python runtime writes NaN for float('nan'), which is JSON as Python reads it."""
    result = classify_http(200, {}, json.dumps({"x": float("nan")}).encode(), emulator=True)
    assert isinstance(result, Succeeded)
    assert math.isnan(result.body["x"])
