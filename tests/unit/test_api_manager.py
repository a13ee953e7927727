"""How the control API names functions (issue 15.2): `FunctionName` -> a key of `functions:`."""

from __future__ import annotations

import pytest

from esm.api.manager import MappingManager
from esm.api.protocol import ApiError
from esm.config.loading import parse_config
from esm.observability.metrics import Metrics

CONFIG = """
functions:
  orders: {handler: "mod:fn"}
  billing: {lambda: "arn:aws:lambda:eu-west-1:123456789012:function:billing-prod"}
  audit: {lambda: "audit-fn"}
event_source_mappings: []
"""


@pytest.fixture
def manager() -> MappingManager:
    functions = dict(parse_config(CONFIG).functions)
    # Only the function table is used here: no runtime, store or invokers are needed to resolve names.
    return MappingManager(functions, runtime=None, invokers={}, metrics=Metrics(), store=None,  # type: ignore[arg-type]
                          shutdown_timeout=1)


@pytest.mark.parametrize("name, key", [
    ("orders", "orders"),
    ("arn:aws:lambda:us-east-1:000000000000:function:orders", "orders"),
    ("000000000000:function:orders", "orders"),
    ("arn:aws:lambda:eu-west-1:123456789012:function:billing-prod", "billing"),
    ("billing-prod", "billing"),
    ("audit-fn", "audit"),
    ("arn:aws:lambda:us-east-1:000000000000:function:audit-fn", "audit"),
])
def test_function_name_resolves_by_key_arn_or_lambda_target(manager, name, key):
    """15.2: a key of functions:, an ARN whose name is one, or the name or ARN a lambda: target gives."""
    assert manager._function_key(name) == key


def test_an_unknown_function_is_invalid_parameter_value(manager):
    """behaviour §10: AWS answers 400 InvalidParameterValueException "Function does not exist"."""
    with pytest.raises(ApiError) as caught:
        manager._function_key("arn:aws:lambda:us-east-1:000000000000:function:nobody")
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        "InvalidParameterValueException", 400, "Function does not exist")


def test_latest_qualifier_names_the_function_itself(manager):
    """behaviour §10: AWS accepts `name:$LATEST`."""
    assert manager._function_key("orders:$LATEST") == "orders"
