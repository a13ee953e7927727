"""A Kafka mapping's function timeout ceiling (behaviour §1): Lambda lets a Kafka or Amazon MSK
mapping's function run at most 14 minutes, so a longer `timeout:` is refused when the config is read."""

from __future__ import annotations

import pytest
import yaml

from esm.config.loading import parse_config
from esm.errors import ConfigError

URL = "http://127.0.0.1:9000/2015-03-31/functions/function/invocations"


def _config(timeout: float) -> str:
    mapping = {"FunctionName": "fn", "Topics": ["orders"], "StartingPosition": "LATEST",
               "SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
               "SourceAccessConfigurations": [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"},
                                              {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-1"}]}
    return yaml.safe_dump({"functions": {"fn": {"url": URL, "timeout": timeout}},
                           "event_source_mappings": [mapping]})


def test_a_kafka_function_timeout_over_14_minutes_is_refused() -> None:
    """behaviour §1: a function over 840 s is refused for Kafka, naming the field, the function and
    the ceiling."""
    with pytest.raises(ConfigError) as caught:
        parse_config(_config(841), base_dir="/etc/esm", environ={})
    assert [str(p) for p in caught.value.problems] == [
        "event_source_mappings[0].FunctionName: the timeout of function 'fn' (841s) is over 840s, the most "
        "Lambda lets a function run for Kafka event sources (behaviour §1)"]


def test_a_kafka_function_timeout_of_14_minutes_is_taken() -> None:
    """behaviour §1: 14 minutes exactly is within the ceiling."""
    [mapping] = parse_config(_config(840), base_dir="/etc/esm", environ={}).mappings
    assert mapping.function.timeout == 840
