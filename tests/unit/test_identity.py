"""The names a function goes by in records and documents (esm.identity; behaviour §4, §9.9)."""

from __future__ import annotations

import pytest

from esm.config.loading import parse_config
from esm.config.settings import FunctionTarget
from esm.errors import ConfigError
from esm.identity import default_role_arn, execution_role_arn, function_arn, function_name


def test_function_arn_is_the_lambda_arn_or_built_in_the_source_account():
    """behaviour §9.9: a lambda: ARN as given, else arn:aws:lambda:<region>:<account>:function:<name>."""
    arn = "arn:aws:lambda:eu-west-1:123456789012:function:orders:live"
    assert function_arn(FunctionTarget("f", lambda_arn=arn), "us-east-1", "1") == arn
    assert function_arn(FunctionTarget("f", lambda_arn="orders"), "us-east-2", "123456789012") == \
        "arn:aws:lambda:us-east-2:123456789012:function:orders"
    assert function_arn(FunctionTarget("local", handler="m:f"), "us-east-1", None) == \
        "arn:aws:lambda:us-east-1:000000000000:function:local"


def test_default_role_is_documented_and_in_the_source_account():
    """Issue 13.1: without a readable or configured role, the default is
    arn:aws:iam::<source account>:role/service-role/<function name>-role."""
    assert function_name(FunctionTarget("f", lambda_arn="arn:aws:lambda:us-east-1:1:function:orders:7")) == "orders"
    assert default_role_arn(FunctionTarget("local", url="http://x"), "123456789012") == \
        "arn:aws:iam::123456789012:role/service-role/local-role"


async def test_configured_role_wins_over_the_default_for_targets_that_cannot_say():
    """Issue 13.1: `functions.<name>.role` when set; a url/handler target has no API to ask."""
    role = "arn:aws:iam::123456789012:role/reader"
    assert await execution_role_arn(FunctionTarget("f", url="http://x", role=role), object(), "1") == role
    assert await execution_role_arn(FunctionTarget("f", url="http://x"), object(), "123456789012") == \
        "arn:aws:iam::123456789012:role/service-role/f-role"


def test_role_must_be_an_iam_role_arn():
    """Issue 13.1: `functions.<name>.role` is checked against the RoleArn shape botocore ships."""
    with pytest.raises(ConfigError) as caught:
        parse_config("functions: {f: {url: 'http://x', role: 'arn:aws:lambda:us-east-1:1:function:f'}}\n"
                     "event_source_mappings: [{FunctionName: f, EventSourceArn: 'arn:aws:sqs:us-east-1:000000000000:q'}]\n")
    assert caught.value.problems[0].path == "functions.f.role"
    assert "does not match the API pattern" in caught.value.problems[0].message
    config = parse_config("functions: {f: {url: 'http://x', role: 'arn:aws:iam::123456789012:role/r'}}\n"
                          "event_source_mappings: [{FunctionName: f, EventSourceArn: 'arn:aws:sqs:us-east-1:000000000000:q'}]\n")
    assert config.functions["f"].role == "arn:aws:iam::123456789012:role/r"
