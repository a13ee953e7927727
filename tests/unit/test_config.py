"""Config validation: docs/design.md "Configuration" and the parameter rules of docs/behaviour.md §1.

Every bad case names the rule it checks, and asserts the exact path and the gist of the message,
so a rule that stops firing (or fires at the wrong path) fails its test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from esm.config.loading import load_config, mapping_uuid, parse_config
from esm.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
SQS = "arn:aws:sqs:us-east-1:000000000000:orders"
FIFO = "arn:aws:sqs:us-east-1:000000000000:orders.fifo"
KINESIS = "arn:aws:kinesis:us-east-1:000000000000:stream/payments"
# A self-managed cluster without authentication gives its VPC entries (AWS requires SourceAccessConfigurations).
NO_AUTH = [{"Type": "VPC_SUBNET", "URI": "subnet:subnet-1"},
           {"Type": "VPC_SECURITY_GROUP", "URI": "security_group:sg-1"}]
SMK = {"SelfManagedEventSource": {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}},
       "Topics": ["orders"], "StartingPosition": "LATEST", "SourceAccessConfigurations": NO_AUTH}
FUNCTIONS = {"fn": {"url": "http://127.0.0.1:9000/2015-03-31/functions/function/invocations"}}


def config_text(*mappings: dict, functions: dict | None = None, **extra) -> str:
    doc = {"functions": functions or FUNCTIONS, "event_source_mappings": list(mappings), **extra}
    return yaml.safe_dump(doc, sort_keys=False)


def problems(*mappings: dict, **kwargs) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(config_text(*mappings, **kwargs), environ={})
    return [str(p) for p in caught.value.problems]


def one_problem(*mappings: dict, **kwargs) -> str:
    found = problems(*mappings, **kwargs)
    assert len(found) == 1, found
    return found[0]


def sqs(**fields) -> dict:
    return {"FunctionName": "fn", "EventSourceArn": SQS, **fields}


def kinesis(**fields) -> dict:
    return {"FunctionName": "fn", "EventSourceArn": KINESIS, "StartingPosition": "TRIM_HORIZON", **fields}


def kafka(**fields) -> dict:
    return {"FunctionName": "fn", **SMK, **fields}


# -- good files ----------------------------------------------------------------------------

def test_example_config_is_valid():
    """The shipped config.example.yaml validates (docs/design.md: it is the reference example)."""
    config = load_config(ROOT / "config.example.yaml")
    assert [m.source for m in config.mappings] == ["sqs", "kinesis", "dynamodb", "kafka", "rabbitmq", "activemq"]
    assert config.mappings[3].enabled is False


def test_defaults_per_source():
    """behaviour §1: BatchSize defaults to 10 for SQS and 100 otherwise; Kafka's window defaults to 500 ms."""
    config = parse_config(config_text(sqs(), kinesis(), kafka()), environ={})
    by_source = {m.source: m for m in config.mappings}
    assert by_source["sqs"].get("BatchSize") == 10
    assert by_source["kinesis"].get("BatchSize") == 100
    assert by_source["kafka"].get("BatchSize") == 100
    assert by_source["kafka"].batching_window == 0.5
    assert by_source["sqs"].batching_window == 0.0
    assert by_source["kinesis"].get("MaximumRetryAttempts") == -1
    assert by_source["kinesis"].get("MaximumRecordAgeInSeconds") == -1
    assert all(m.enabled for m in config.mappings)


def test_identity_is_uuid5_of_name_or_source_and_function():
    """behaviour §9.9: the UUID is uuid5(NAMESPACE, esm.name) or of source plus FunctionName."""
    config = parse_config(config_text(sqs(), kinesis(esm={"name": "pay"})), environ={})
    assert config.mappings[0].uuid == mapping_uuid(f"{SQS}->fn")
    assert config.mappings[1].uuid == mapping_uuid("pay")
    assert config.mappings[1].name == "pay"
    again = parse_config(config_text(sqs()), environ={})
    assert again.mappings[0].uuid == config.mappings[0].uuid


def test_settings_are_frozen():
    """docs/design.md: config becomes frozen objects; a running mapping cannot be mutated by accident."""
    config = parse_config(config_text(sqs()), environ={})
    with pytest.raises(Exception):
        config.mappings[0].request["BatchSize"] = 5  # type: ignore[index]
    with pytest.raises(Exception):
        config.mappings[0].name = "x"  # type: ignore[misc]


def test_env_interpolation_with_default():
    """docs/design.md: ${ENV} and ${ENV:-default} are substituted in any string."""
    text = config_text(sqs(EventSourceArn="arn:aws:sqs:us-east-1:${ACCOUNT}:q"),
                       metrics={"listen": "${LISTEN:-127.0.0.1:9999}"})
    config = parse_config(text, environ={"ACCOUNT": "123456789012"})
    assert config.mappings[0].source_id == "arn:aws:sqs:us-east-1:123456789012:q"
    assert config.metrics.port == 9999


def test_unset_env_variable_is_an_error_with_its_path():
    """docs/design.md: an unset ${NAME} without a default is reported where it is used."""
    found = problems(sqs(EventSourceArn="arn:aws:sqs:us-east-1:${NOPE}:q"))
    assert "event_source_mappings[0].EventSourceArn: environment variable NOPE is not set" in found


# -- API shape (botocore) ------------------------------------------------------------------

@pytest.mark.parametrize(
    "mapping, expected",
    [
        (sqs(Bogus=1), "event_source_mappings[0].Bogus: unknown field"),
        (sqs(BatchSize="ten"), "event_source_mappings[0].BatchSize: must be of type int"),
        (sqs(BatchSize=True), "event_source_mappings[0].BatchSize: must be of type int, got bool"),
        (sqs(BatchSize=0), "event_source_mappings[0].BatchSize: must be at least 1"),
        (sqs(BatchSize=10001, MaximumBatchingWindowInSeconds=1), "event_source_mappings[0].BatchSize: must be at most 10000"),
        (sqs(MaximumBatchingWindowInSeconds=301), "event_source_mappings[0].MaximumBatchingWindowInSeconds: must be at most 300"),
        (kinesis(StartingPosition="NOW"), "event_source_mappings[0].StartingPosition: 1 validation error detected: Value 'NOW' at 'startingPosition' "
         "failed to satisfy constraint: Member must satisfy enum value set: [LATEST, AT_TIMESTAMP, TRIM_HORIZON]"),
        (kinesis(ParallelizationFactor=11), "event_source_mappings[0].ParallelizationFactor: must be at most 10"),
        (kinesis(MaximumRetryAttempts=10001), "event_source_mappings[0].MaximumRetryAttempts: must be at most 10000"),
        (kinesis(MaximumRetryAttempts=-2), "event_source_mappings[0].MaximumRetryAttempts: must be at least -1"),
        (kinesis(TumblingWindowInSeconds=901), "event_source_mappings[0].TumblingWindowInSeconds: must be at most 900"),
        (sqs(FunctionResponseTypes=["Partial"]), "event_source_mappings[0].FunctionResponseTypes[0]: 1 validation error detected: Value 'Partial' at "
         "'functionResponseTypes' failed to satisfy constraint: Member must satisfy enum value set: [ReportBatchItemFailures]"),
        (sqs(ScalingConfig={"MaximumConcurrency": 1}), "event_source_mappings[0].ScalingConfig.MaximumConcurrency: must be at least 2"),
        (sqs(ScalingConfig={"MaximumConcurrency": 1001}), "event_source_mappings[0].ScalingConfig.MaximumConcurrency: must be at most 1000"),
        (sqs(EventSourceArn="queue-name"), "event_source_mappings[0].EventSourceArn: does not match the API pattern"),
        (sqs(FilterCriteria={"Filters": [{"Pattern": "{" + " " * 4096 + "}"}]}),
         "event_source_mappings[0].FilterCriteria.Filters[0].Pattern: must be at most 4096 characters"),
    ],
)
def test_api_shape_rules(mapping, expected):
    """behaviour §1 [R1]: ranges, enums, types and patterns come from botocore's CreateEventSourceMapping shape."""
    assert one_problem(mapping).startswith(expected)


# -- behaviour §1 semantic rules -----------------------------------------------------------

@pytest.mark.parametrize(
    "mapping, expected",
    [
        (sqs(BatchSize=11), "event_source_mappings[0].MaximumBatchingWindowInSeconds: Maximum batch window in seconds must be greater than 0 "
         "if maximum batch size is greater than 10"),
        (sqs(EventSourceArn=FIFO, BatchSize=11), "event_source_mappings[0].BatchSize: must be at most 10 for a FIFO queue"),
        (sqs(EventSourceArn=FIFO, MaximumBatchingWindowInSeconds=5), "event_source_mappings[0].MaximumBatchingWindowInSeconds: is not supported for FIFO queues"),
        ({"FunctionName": "fn", "EventSourceArn": KINESIS}, "event_source_mappings[0].StartingPosition: 1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null."),
        (sqs(StartingPosition="LATEST"), "event_source_mappings[0].StartingPosition: StartingPosition is not valid for SQS event sources."),
        (sqs(BisectBatchOnFunctionError=True), "event_source_mappings[0].BisectBatchOnFunctionError: is not supported for SQS"),
        (kafka(TumblingWindowInSeconds=60), "event_source_mappings[0].TumblingWindowInSeconds: is not supported for Kafka"),
        (kinesis(StartingPosition="AT_TIMESTAMP"), "event_source_mappings[0].StartingPositionTimestamp: is required when StartingPosition is AT_TIMESTAMP"),
        (kinesis(StartingPosition="AT_TIMESTAMP", StartingPositionTimestamp=4102444800),
         "event_source_mappings[0].StartingPositionTimestamp: must not be in the future"),
        (kinesis(StartingPositionTimestamp=1700000000), "event_source_mappings[0].StartingPositionTimestamp: Timestamp only valid with StartingPosition AT_TIMESTAMP"),
        (kinesis(MaximumRecordAgeInSeconds=30), "event_source_mappings[0].MaximumRecordAgeInSeconds: must be -1 (infinite) or between 60 and 604800"),
        (kinesis(DestinationConfig={"OnSuccess": {"Destination": "arn:aws:sqs:us-east-1:000000000000:ok"}}),
         "event_source_mappings[0].DestinationConfig.OnSuccess: Unsupported DestinationConfig parameter for given event source mapping type."),
        (sqs(DestinationConfig={"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:dlq"}}),
         "event_source_mappings[0].DestinationConfig.OnFailure: is not supported for SQS"),
        (kinesis(DestinationConfig={"OnFailure": {"Destination": "kafka://failures"}}),
         "event_source_mappings[0].DestinationConfig.OnFailure.Destination: a kafka:// destination is only supported for Kafka"),
        (kafka(DestinationConfig={"OnFailure": {"Destination": "kafka://orders"}}),
         "event_source_mappings[0].DestinationConfig.OnFailure.Destination: must not be the source topic"),
        (kinesis(DestinationConfig={"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:dlq.fifo"}}),
         "event_source_mappings[0].DestinationConfig.OnFailure.Destination: FIFO queues are not supported"),
        (kinesis(DestinationConfig={"OnFailure": {"Destination": "arn:aws:lambda:us-east-1:000000000000:function:x"}}),
         "event_source_mappings[0].DestinationConfig.OnFailure.Destination: must be an SQS queue, SNS topic or S3 bucket ARN"),
        (sqs(FilterCriteria={"Filters": [{"Pattern": '{"body": {"a": ["x"]}}'}] * 6}),
         "event_source_mappings[0].FilterCriteria.Filters: must have at most 5 filters"),
        (kinesis(FilterCriteria={"Filters": [{"Pattern": '{"data": ["plain text"]}'}]}),
         "event_source_mappings[0].FilterCriteria.Filters[0].Pattern: Invalid filter pattern definition"),
        (kafka(Topics=None), "event_source_mappings[0].Topics: is required for Kafka"),
        (kafka(SelfManagedEventSource={"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["no-port"]}}),
         "event_source_mappings[0].SelfManagedEventSource.Endpoints.KAFKA_BOOTSTRAP_SERVERS[0]: does not match the API pattern"),
        (kafka(SelfManagedKafkaEventSourceConfig={"ConsumerGroupId": "bad group!"}),
         "event_source_mappings[0].SelfManagedKafkaEventSourceConfig.ConsumerGroupId: does not match the API pattern"),
        (kinesis(ScalingConfig={"MaximumConcurrency": 5}), "event_source_mappings[0].ScalingConfig: is not supported for Kinesis"),
        ({"FunctionName": "fn"}, "event_source_mappings[0].EventSourceArn: Unrecognized event source."),
    ],
)
def test_spec_section_1_rules(mapping, expected):
    """behaviour §1: the per-source rules CreateEventSourceMapping enforces beyond the API shape."""
    mapping = {k: v for k, v in mapping.items() if v is not None}
    assert one_problem(mapping).startswith(expected)


def test_invalid_filter_pattern_gives_aws_headline_and_reason():
    """behaviour §11.2, §10: config validation reports AWS's 'Invalid filter pattern definition.' and esm's reason at the filter's path."""
    found = one_problem(sqs(FilterCriteria={"Filters": [{"Pattern": '{"body": {"status": []}}'}]}))
    assert found == ("event_source_mappings[0].FilterCriteria.Filters[0].Pattern: "
                     "Invalid filter pattern definition. (Empty arrays are not allowed)")


@pytest.mark.parametrize(
    "arn, name",
    [
        ("arn:aws:rds:us-east-1:000000000000:cluster:docs", "Amazon DocumentDB"),
    ],
)
def test_sources_not_served_are_rejected_by_name(arn, name):
    """docs/design.md: sources esm does not serve yet are rejected by name, never ignored."""
    found = one_problem({"FunctionName": "fn", "EventSourceArn": arn, "StartingPosition": "LATEST"})
    assert found.startswith("event_source_mappings[0].EventSourceArn:") and name in found


@pytest.mark.parametrize(
    "key, value, hint",
    [
        ("Queue", SQS, "use EventSourceArn"),
        ("Stream", KINESIS, "use EventSourceArn"),
        ("KafkaBootstrapServers", ["b:9092"], "SelfManagedEventSource"),
        ("Type", "SQS", "SAM's event type"),
    ],
)
def test_sam_keys_get_the_api_field_to_use(key, value, hint):
    """docs/design.md: SAM's short names get a pointed error naming the API field."""
    found = problems({"FunctionName": "fn", key: value} | ({} if key in ("Queue", "Stream") else {"EventSourceArn": SQS}))
    assert any(p.startswith(f"event_source_mappings[0].{key}:") and hint in p for p in found), found


def test_function_name_must_be_a_key_of_functions():
    """docs/design.md: a FunctionName that is not a key of functions: is an error."""
    assert one_problem(sqs(FunctionName="nope")).startswith(
        "event_source_mappings[0].FunctionName: 'nope' is not a key of functions:")


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({}, "functions.f: must have exactly one of url, lambda, handler"),
        ({"url": "http://x/a", "handler": "m:f"}, "functions.f: must have exactly one of url, lambda, handler (has url, handler)"),
        ({"url": "ftp://x"}, "functions.f.url: must be an http:// or https:// URL"),
        ({"handler": "not a handler"}, "functions.f.handler: must be a Python handler"),
        ({"url": "http://x/a", "timeout": 0}, "functions.f.timeout: must be a number of seconds above 0"),
        ({"url": "http://x/a", "timeout": 901}, "functions.f.timeout: must be a number of seconds above 0 and at most 900"),
        ({"url": "http://x/a", "max_concurrency": 0}, "functions.f.max_concurrency: must be a whole number of at least 1"),
        ({"url": "http://x/a", "retries": 3}, "functions.f.retries: unknown field"),
    ],
)
def test_function_targets(spec, expected):
    """docs/design.md: a target is exactly one of url, lambda, handler, plus timeout and max_concurrency."""
    found = problems(functions={"f": spec})
    assert any(p.startswith(expected) for p in found), found


@pytest.mark.parametrize(
    "extension, expected",
    [
        ({"transform": "body.["}, "event_source_mappings[0].esm.transform: is not a valid JMESPath expression"),
        ({"nmae": "x"}, "event_source_mappings[0].esm.nmae: unknown field"),
        ({"name": ""}, "event_source_mappings[0].esm.name: must be a non-empty string"),
    ],
)
def test_extension_key(extension, expected):
    """behaviour §9.10: the esm: key holds esm's extensions and is validated too."""
    assert one_problem(sqs(esm=extension)).startswith(expected)


def test_transform_and_name_are_kept():
    """behaviour §9.10: a valid esm: key reaches the mapping settings."""
    config = parse_config(config_text(sqs(esm={"name": "n", "transform": "body.order"})), environ={})
    assert config.mappings[0].extension.transform == "body.order"


def test_duplicate_identity_and_consumer_group():
    """behaviour §9.9 / behaviour §1: identities are unique; a ConsumerGroupId is unique across Kafka mappings."""
    group = {"SelfManagedKafkaEventSourceConfig": {"ConsumerGroupId": "g"}}
    found = problems(sqs(), sqs(), kafka(**group), kafka(Topics=["other"], **group))
    assert any(p.startswith("event_source_mappings[1]: has the same identity as event_source_mappings[0]") for p in found)
    assert any(p.startswith("event_source_mappings[3].SelfManagedKafkaEventSourceConfig.ConsumerGroupId: 'g' is already used")
               for p in found)


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"metrics": {"listen": "9090"}}, "metrics.listen: must be host:port"),
        ({"shutdown_timeout": -1}, "shutdown_timeout: must be a positive number of seconds"),
        ({"checkpoints": {"sqlite": "a.db", "dynamodb": {"table": "t"}}}, "checkpoints: must have exactly one of sqlite, dynamodb"),
        ({"aws": {"endpoints": {"sqs": "localhost:9324"}}}, "aws.endpoints.sqs: must be an http:// or https:// URL"),
        ({"aws": {"region": "Virginia"}}, "aws.region: must be an AWS region name"),
        ({"logging": {}}, "logging: unknown field"),
    ],
)
def test_top_level_sections(extra, expected):
    """docs/design.md "Configuration": aws, checkpoints, metrics and timeouts are validated too."""
    found = problems(sqs(), **extra)
    assert any(p.startswith(expected) for p in found), found


def test_every_problem_is_listed_in_one_pass():
    """docs/design.md: a bad config fails with every problem listed, each with its zero-based path."""
    found = problems(sqs(BatchSize=0), kinesis(StartingPosition=None), sqs(FunctionName="ghost", esm={"name": "other"}))
    assert [p.split(":")[0] for p in found] == [
        "event_source_mappings[0].BatchSize",
        "event_source_mappings[1].StartingPosition",
        "event_source_mappings[2].FunctionName",
    ]


# -- the command line ------------------------------------------------------------------------

def run_esm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "esm", *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


def test_validate_exits_0_on_the_example():
    """docs/design.md: `esm validate` exits 0 for a valid file."""
    result = run_esm("validate", "--config", "config.example.yaml")
    assert result.returncode == 0, result.stderr
    assert "valid (6 mapping(s)" in result.stdout


def test_validate_names_three_mistakes_and_exits_2(tmp_path):
    """Issue 2 "done when": a file with three distinct mistakes names all three with their paths; exit 2."""
    bad = tmp_path / "bad.yaml"
    bad.write_text(textwrap.dedent(f"""\
        functions:
          fn: {{url: "http://127.0.0.1:9000/2015-03-31/functions/function/invocations"}}
        event_source_mappings:
          - FunctionName: fn
            EventSourceArn: {SQS}
            BatchSize: 50
          - FunctionName: fn
            EventSourceArn: {KINESIS}
          - FunctionName: missing
            EventSourceArn: {FIFO}
        """))
    result = run_esm("validate", "--config", str(bad))
    assert result.returncode == 2
    assert "3 problem(s)" in result.stderr
    for path in ("event_source_mappings[0].MaximumBatchingWindowInSeconds",
                 "event_source_mappings[1].StartingPosition",
                 "event_source_mappings[2].FunctionName"):
        assert path in result.stderr


def test_validate_works_offline_and_never_imports_handlers(tmp_path):
    """docs/design.md: validate works offline, with no handler import (the module does not exist)."""
    path = tmp_path / "c.yaml"
    path.write_text(config_text(sqs(), functions={"fn": {"handler": "no_such_module_anywhere:handler"}}))
    result = run_esm("validate", "--config", str(path))
    assert result.returncode == 0, result.stderr


def test_unreadable_and_non_yaml_files_exit_2(tmp_path):
    """docs/design.md exit codes: an invalid config exits 2 with a message, never a traceback."""
    missing = run_esm("validate", "--config", str(tmp_path / "absent.yaml"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("functions: [unclosed")
    result = run_esm("validate", "--config", str(broken))
    assert result.returncode == 2 and "not valid YAML" in result.stderr and "Traceback" not in result.stderr


def test_kafka_starting_position_is_optional_and_defaults_to_latest():
    """behaviour §1: AWS requires StartingPosition for Kinesis and DynamoDB Streams only; a Kafka
    mapping (self-managed or MSK) without it is valid and starts a new group at LATEST."""
    mapping = {key: value for key, value in kafka().items() if key != "StartingPosition"}
    config = parse_config(config_text(mapping), environ={})
    assert config.mappings[0].request["StartingPosition"] == "LATEST"
    assert one_problem({"FunctionName": "fn", "EventSourceArn": KINESIS}) == (
        "event_source_mappings[0].StartingPosition: 1 validation error detected: Value null at 'startingPosition' failed to satisfy constraint: Member must not be null.")
