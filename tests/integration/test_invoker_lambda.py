"""The `lambda` invoker through the real Invoke API, served by the Lambda Runtime Interface
Emulator (the `backends` fixture: `AWS_ENDPOINT_URL_LAMBDA`, function name `function`, running
tests/functions/programmable.py with a 3 s timeout). behaviour §9.1 "Error classes", AWS Lambda targets.
"""

from __future__ import annotations

import logging

import pytest

from esm.config.settings import AwsSettings, FunctionTarget
from esm.invokers import make_invoker
from esm.invokers.base import FunctionError, InvocationError, Succeeded
from tests.support.ports import free_port

pytestmark = pytest.mark.backends

TARGET = FunctionTarget(name="function", lambda_arn="function", timeout=20)


async def invoke_once(payload, aws: AwsSettings | None = None, target: FunctionTarget = TARGET):
    invoker = make_invoker(target, aws or AwsSettings())
    try:
        return await invoker.invoke(payload), invoker
    finally:
        await invoker.close()


async def test_success_through_the_invoke_api(backends):
    """behaviour §9.1 success: the Invoke payload is parsed; the endpoint comes from the SDK's own
    AWS_ENDPOINT_URL_LAMBDA (an emulator, so body-shape detection is on)."""
    result, invoker = await invoke_once({"Records": [{"a": 1}, {"b": 2}]})
    assert isinstance(result, Succeeded), result
    assert result.body == {"ok": True, "records": 2}
    assert result.duration > 0
    assert invoker.emulator is True


async def test_raised_exception_is_a_function_error_by_body_shape(backends):
    """behaviour §9.1: the emulator behind the Invoke API returns a raised exception as a Lambda error
    object without FunctionError; the body shape makes it a function error."""
    result, _ = await invoke_once({"esm_test": {"raise": "declined"}})
    assert isinstance(result, FunctionError), result
    assert (result.error_type, result.message) == ("RuntimeError", "declined")


async def test_runtime_crash_is_a_function_error(backends):
    """behaviour §9.1: a runtime exit reaches botocore as a 502 error whose raw body is a Lambda error
    object (Runtime.ExitError): a function error, not a service error."""
    result, _ = await invoke_once({"esm_test": {"exit": 2}})
    assert isinstance(result, FunctionError), result
    assert result.error_type == "Runtime.ExitError"


async def test_emulator_timeout_is_a_function_error(backends):
    """behaviour §9.1: the emulator's `Task timed out after 3.00 seconds` text is a function error."""
    result, _ = await invoke_once({"esm_test": {"sleep": 5}})
    assert isinstance(result, FunctionError), result
    assert result.error_type == "Sandbox.Timedout"


async def test_partial_batch_response_is_a_success(backends):
    """behaviour §3: a partial batch response comes back as a success with batchItemFailures intact."""
    response = {"batchItemFailures": [{"itemIdentifier": "49590338271490256608559692538361571095921575989136588898"}]}
    result, _ = await invoke_once({"esm_test": {"return": response}})
    assert isinstance(result, Succeeded) and result.body == response


async def test_endpoint_override_wins_over_the_environment(backends, monkeypatch):
    """docs/design.md "AWS clients": the `aws.endpoints.lambda` override wins over AWS_ENDPOINT_URL_LAMBDA."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_LAMBDA", f"http://127.0.0.1:{free_port()}")
    result, _ = await invoke_once({}, AwsSettings(endpoints={"lambda": backends["AWS_ENDPOINT_URL_LAMBDA"]}))
    assert isinstance(result, Succeeded), result


async def test_connection_refused_is_an_invocation_error(backends):
    """behaviour §9.1: a Lambda endpoint that refuses connections is an invocation error."""
    result, _ = await invoke_once({}, AwsSettings(endpoints={"lambda": f"http://127.0.0.1:{free_port()}"}))
    assert isinstance(result, InvocationError), result


async def test_arn_region_is_used_and_other_4xx_is_an_invocation_error(backends, caplog):
    """A function ARN names its region (the client is built for it, whatever `aws.region` says);
    without max_concurrency the mapping's concurrency applies; and behaviour §9.1: any other 4xx is an
    invocation error logged with its body — the emulator serves only `function`, so an ARN is 404."""
    target = FunctionTarget(name="f", lambda_arn="arn:aws:lambda:eu-central-1:123456789012:function:function")
    invoker = make_invoker(target, AwsSettings(region="us-east-1"), default_concurrency=5)
    try:
        with caplog.at_level(logging.WARNING, logger="esm.invokers.aws_lambda"):
            result = await invoker.invoke({"secret": "never logged"})
        client = await invoker._get_client()
        region = client.meta.region_name
    finally:
        await invoker.close()
    assert region == "eu-central-1"
    assert invoker.max_concurrency == 5
    assert isinstance(result, InvocationError), result
    assert result.status == 404
    assert "404 page not found" in caplog.text
    assert "never logged" not in caplog.text
