"""Config validation for DynamoDB stream mappings (issue 14.5; behaviour §1): what `esm validate` and the
control API (the same checks) accept and refuse, with Lambda's defaults."""

from __future__ import annotations

import pytest
import yaml

from esm.api.manager import MappingManager
from esm.api.protocol import ApiError
from esm.cli import main
from esm.config.loading import parse_config
from esm.errors import ConfigError
from esm.observability.metrics import Metrics

ARN = "arn:aws:dynamodb:us-east-1:123456789012:table/orders/stream/2024-01-01T00:00:00.000"
FUNCTIONS = {"fn": {"handler": "mod:fn"}}


def config_text(*mappings: dict) -> str:
    return yaml.safe_dump({"functions": FUNCTIONS, "event_source_mappings": list(mappings)})


def ddb(**fields) -> dict:
    return {"FunctionName": "fn", "EventSourceArn": ARN, "StartingPosition": "TRIM_HORIZON", **fields}


def problems(*mappings: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_text(*mappings), environ={})
    return [str(p) for p in caught.value.problems]


def test_a_stream_mapping_loads_as_dynamodb_with_lambdas_defaults():
    """behaviour §1: BatchSize 100, window 0, PF 1, retries and age -1, no bisect, tumbling off."""
    [mapping] = parse_config(config_text(ddb()), environ={}).mappings
    assert mapping.source == "dynamodb" and mapping.source_id == ARN
    assert (mapping.get("BatchSize"), mapping.batching_window, mapping.get("ParallelizationFactor")) == (100, 0.0, 1)
    assert (mapping.get("MaximumRetryAttempts"), mapping.get("MaximumRecordAgeInSeconds")) == (-1, -1)
    assert mapping.get("BisectBatchOnFunctionError") is False and mapping.get("TumblingWindowInSeconds") == 0


def test_every_stream_control_is_accepted():
    """Issue 14.3: the Kinesis stream controls apply to DynamoDB Streams."""
    parse_config(config_text(ddb(
        BatchSize=10000, MaximumBatchingWindowInSeconds=5, ParallelizationFactor=10, BisectBatchOnFunctionError=True,
        MaximumRetryAttempts=3, MaximumRecordAgeInSeconds=60, FunctionResponseTypes=["ReportBatchItemFailures"],
        TumblingWindowInSeconds=900, DestinationConfig={"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}},
        FilterCriteria={"Filters": [{"Pattern": '{"dynamodb": {"NewImage": {"status": {"S": ["paid"]}}}}'}]})),
        environ={})


def test_at_timestamp_is_refused_with_lambdas_message():
    """behaviour §1: AT_TIMESTAMP is only for Kinesis, Kafka and DocumentDB; Lambda answers
    `Unsupported starting position for arn type: <EventSourceArn>`."""
    found = problems(ddb(StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=1))
    assert found == [f"event_source_mappings[0].StartingPosition: Unsupported starting position for arn type: {ARN}"]


def test_starting_position_is_required():
    """behaviour §1: StartingPosition is required for DynamoDB streams."""
    mapping = ddb()
    del mapping["StartingPosition"]
    [found] = problems(mapping)
    assert found == "event_source_mappings[0].StartingPosition: 1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null."
    assert "AT_TIMESTAMP" not in found


def test_a_table_arn_is_not_a_stream():
    """Issue 14.1: EventSourceArn must name the table's stream, not the table."""
    [found] = problems(ddb(EventSourceArn="arn:aws:dynamodb:us-east-1:123456789012:table/orders"))
    assert "must be a DynamoDB stream ARN" in found


@pytest.mark.parametrize("field, value", [("Topics", ["orders"]), ("ScalingConfig", {"MaximumConcurrency": 2})])
def test_other_sources_settings_are_refused(field, value):
    """behaviour §1: Kafka's and SQS's fields are not DynamoDB's."""
    [found] = problems(ddb(**{field: value}))
    assert found == f"event_source_mappings[0].{field}: is not supported for DynamoDB Streams event sources"


def test_a_plain_pattern_on_the_dynamodb_key_is_refused():
    """behaviour §5: DynamoDB data is JSON; a plain value pattern on `dynamodb` is a create error."""
    [found] = problems(ddb(FilterCriteria={"Filters": [{"Pattern": '{"dynamodb": ["x"]}'}]}))
    assert "Invalid filter pattern definition" in found


def test_esm_validate_accepts_a_mapping_and_rejects_at_timestamp(tmp_path, capsys):
    """Issue 14 done-when: `esm validate` exits 0 for a DynamoDB mapping and 2 for AT_TIMESTAMP."""
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    good.write_text(config_text(ddb()))
    bad.write_text(config_text(ddb(StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=1)))
    assert main(["validate", "--config", str(good)]) == 0
    assert main(["validate", "--config", str(bad)]) == 2
    assert f"Unsupported starting position for arn type: {ARN}" in capsys.readouterr().err


def test_control_api_refuses_at_timestamp_as_invalid_parameter():
    """behaviour §10: CreateEventSourceMapping with AT_TIMESTAMP on a DynamoDB stream is InvalidParameterValueException."""
    functions = dict(parse_config(config_text()).functions)
    manager = MappingManager(functions, runtime=None, invokers={}, metrics=Metrics(), store=None,  # type: ignore[arg-type]
                             shutdown_timeout=1)
    with pytest.raises(ApiError) as caught:
        manager._build(ddb(StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=1), "u")
    assert caught.value.code == "InvalidParameterValueException"
    assert f"Unsupported starting position for arn type: {ARN}" in caught.value.message
