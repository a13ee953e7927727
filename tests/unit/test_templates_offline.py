"""`esm validate --template` and the offline half of `esm run --template` (issue 16).

Everything here runs without a network: templates are read, SAM is translated, intrinsics are
resolved with ARNs built from names (offline mode), and the result goes through esm.config.loading's checks.
The parts that need services (looking resources up, --create-resources, --stack, running) are in
tests/integration/test_templates.py.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from esm.cli import main
from esm.config.loading import load_config
from esm.errors import ConfigError
from esm.invokers.python import load_handler
from esm.templates import TemplateOptions, load_template, parse_parameter_overrides
from esm.templates.loader import read_template

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "sam" / "template.yaml"

PLAIN = """
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Env: {Type: String, Default: dev, AllowedValues: [dev, prod]}
  Size: {Type: Number, Default: 5}
Conditions:
  IsProd: !Equals [!Ref Env, prod]
Mappings:
  Windows: {dev: {Seconds: 1}, prod: {Seconds: 4}}
Resources:
  Orders:
    Type: AWS::SQS::Queue
    Properties:
      QueueName: !Sub "orders-${Env}"
  Worker:
    Type: AWS::Lambda::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      Code: code/
      Timeout: 7
      Role: arn:aws:iam::000000000000:role/worker
  Mapping:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: !Ref Worker
      EventSourceArn: !GetAtt Orders.Arn
      BatchSize: !If [IsProd, 100, !Ref Size]
      MaximumBatchingWindowInSeconds: !FindInMap [Windows, !Ref Env, Seconds]
      FunctionResponseTypes: !If [IsProd, [ReportBatchItemFailures], !Ref AWS::NoValue]
      FilterCriteria:
        Filters:
          - Pattern: !Sub
              - '{"body": {"env": ["${Env}"], "tag": ["${Tag}"], "literal": ["${!Kept}"]}}'
              - Tag: !Join ["-", [!Select [1, !Split [",", "a,b,c"]], !Ref AWS::Region]]
  ProdOnly:
    Type: AWS::Lambda::EventSourceMapping
    Condition: IsProd
    Properties:
      FunctionName: !Ref Worker
      EventSourceArn: !Sub "arn:aws:sqs:${AWS::Region}:${AWS::AccountId}:audit"
"""


def write(tmp_path: Path, text: str, name: str = "template.yaml", handler: bool = True) -> str:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    if handler:
        (tmp_path / "code").mkdir(exist_ok=True)
        (tmp_path / "code" / "app.py").write_text("def handler(event, context):\n    return None\n")
    return str(path)


def problems_of(options: TemplateOptions) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_template(options)
    return [str(problem) for problem in raised.value.problems]


def offline(path: str, **kwargs) -> TemplateOptions:
    return TemplateOptions(template=path, offline=True, **kwargs)


def test_short_tags_become_long_form(tmp_path):
    """Issue 16.1: CloudFormation's short tags load as the intrinsic functions they stand for."""
    path = write(tmp_path, """
        Resources:
          A: {Type: T, Properties: {X: !Ref P, Y: !GetAtt Q.Arn, Z: !Sub "a-${P}", W: !If [C, 1, 2],
                                    V: !Join ["", [a, b]], U: !Condition C}}
        """, handler=False)
    properties = read_template(path)["Resources"]["A"]["Properties"]
    assert properties == {"X": {"Ref": "P"}, "Y": {"Fn::GetAtt": ["Q", "Arn"]}, "Z": {"Fn::Sub": "a-${P}"},
                          "W": {"Fn::If": ["C", 1, 2]}, "V": {"Fn::Join": ["", ["a", "b"]]}, "U": {"Condition": "C"}}


def test_parameters_conditions_and_sub_resolve(tmp_path):
    """Issue 16.1: parameters (defaults, Number typed), Conditions with Fn::If, Fn::FindInMap,
    Fn::Sub (both forms, ${!Literal}), Fn::Join/Select/Split, AWS::NoValue and a resource Condition."""
    config = load_template(offline(write(tmp_path, PLAIN))).config
    (mapping,) = config.mappings
    assert mapping.source_id == "arn:aws:sqs:us-east-1:000000000000:orders-dev"
    assert mapping.get("BatchSize") == 5
    assert mapping.get("MaximumBatchingWindowInSeconds") == 1
    assert "FunctionResponseTypes" not in mapping.request or mapping.get("FunctionResponseTypes") == []
    pattern = mapping.get("FilterCriteria")["Filters"][0]["Pattern"]
    assert pattern == '{"body": {"env": ["dev"], "tag": ["b-us-east-1"], "literal": ["${Kept}"]}}'
    assert mapping.name == "Mapping" and mapping.function.name == "Worker"
    assert mapping.function.timeout == 7


def test_parameter_overrides_switch_conditions(tmp_path):
    """Issue 16.1: --parameter-overrides Env=prod turns IsProd on: the other branch of every Fn::If,
    and the resource guarded by `Condition: IsProd` appears."""
    config = load_template(offline(write(tmp_path, PLAIN), parameter_overrides={"Env": "prod"})).config
    by_name = {m.name: m for m in config.mappings}
    assert set(by_name) == {"Mapping", "ProdOnly"}
    assert by_name["Mapping"].get("BatchSize") == 100
    assert by_name["Mapping"].get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
    assert by_name["Mapping"].source_id.endswith(":orders-prod")
    assert by_name["ProdOnly"].source_id == "arn:aws:sqs:us-east-1:000000000000:audit"


def test_parameter_override_outside_allowed_values(tmp_path):
    """Issue 16.1: a parameter value outside AllowedValues is an error naming the property that uses it."""
    problems = problems_of(offline(write(tmp_path, PLAIN), parameter_overrides={"Env": "qa"}))
    assert any("parameter Env is 'qa', not one of its AllowedValues" in p for p in problems), problems


@pytest.mark.parametrize("value, where, message", [
    ("!Ref Missing", "Mapping.Properties.EventSourceArn.Ref", "no parameter or resource is named Missing"),
    ("!GetAtt Orders.Nope", "Mapping.Properties.EventSourceArn.Fn::GetAtt", "Orders.Nope: esm does not resolve"),
    ("!GetAtt Vpc.Arn", "Mapping.Properties.EventSourceArn.Fn::GetAtt",
     "Vpc.Arn: esm does not know this attribute of a AWS::EC2::VPC"),
    ("!ImportValue shared-queue", "Mapping.Properties.EventSourceArn.Fn::ImportValue",
     "Fn::ImportValue reads another stack's exports"),
    ("!Ref NoDefault", "Mapping.Properties.EventSourceArn.Ref",
     "parameter NoDefault has no Default: give it with --parameter-overrides NoDefault=VALUE"),
    ("!If [Unknown, a, b]", "Mapping.Properties.EventSourceArn.Fn::If",
     "condition Unknown is not in the template's Conditions"),
    ("!Sub '${Missing.Arn}'", "Mapping.Properties.EventSourceArn.Fn::Sub", "no parameter or resource is named Missing"),
    ("!GetAZs ''", "Mapping.Properties.EventSourceArn.Fn::GetAZs", "Fn::GetAZs needs AWS to answer"),
])
def test_each_unresolvable_reference_is_a_clear_error(tmp_path, value, where, message):
    """Issue 16.1: anything that cannot be resolved offline is an error naming the resource and property."""
    path = write(tmp_path, f"""
        Parameters:
          NoDefault: {{Type: String}}
        Conditions:
          Never: !Equals [a, b]
        Resources:
          Vpc: {{Type: AWS::EC2::VPC, Properties: {{CidrBlock: 10.0.0.0/16}}}}
          Orders: {{Type: AWS::SQS::Queue}}
          Mapping:
            Type: AWS::Lambda::EventSourceMapping
            Properties:
              FunctionName: worker
              EventSourceArn: {value}
        """)
    problems = problems_of(offline(path, functions_url="http://127.0.0.1:9/{function}"))
    assert len(problems) == 1 and problems[0].startswith(where + ": ") and message in problems[0], problems


def test_sam_problems_name_the_event_and_its_property(tmp_path):
    """Issue 16.4: a bad SAM event property is reported at the function's event, with SAM's own
    property name (Queue for EventSourceArn), from the same checks as a config file."""
    path = write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Q: {Type: AWS::SQS::Queue}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: code/
              Handler: app.handler
              Runtime: python3.12
              Events:
                Orders:
                  Type: SQS
                  Properties:
                    Queue: !GetAtt Q.Arn
                    BatchSize: 20000
                    FilterCriteria: {Filters: [{Pattern: '{"body": '}]}
        """)
    problems = problems_of(offline(path))
    assert any(p.startswith("Fn.Properties.Events.Orders.Properties.BatchSize: ") for p in problems), problems
    assert any(p.startswith("Fn.Properties.Events.Orders.Properties.FilterCriteria.Filters[0].Pattern: ")
               for p in problems), problems


def test_sam_translator_errors_name_the_resource(tmp_path):
    """Issue 16.1: SAM's own translator checks the template; its complaints carry the logical id."""
    path = write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: code/
              Handler: app.handler
              Runtime: python3.12
              Events:
                Orders: {Type: SQS, Properties: {BatchSize: 5}}
        """)
    problems = problems_of(offline(path))
    assert problems == ["Fn.Properties.Events.Orders: SAM: Missing required property 'Queue'."]


def test_plain_mapping_problem_paths(tmp_path):
    """Issue 16.4: a plain AWS::Lambda::EventSourceMapping problem is LogicalId.Properties.<path>."""
    path = write(tmp_path, PLAIN.replace("BatchSize: !If [IsProd, 100, !Ref Size]", "BatchSize: 0"))
    problems = problems_of(offline(path))
    assert [p for p in problems if p.startswith("Mapping.Properties.BatchSize: ")], problems


def test_example_loads_its_dynamodb_stream_mapping(tmp_path):
    """Issue 14 (DynamoDB Streams served): the example's DynamoDB event loads as a dynamodb mapping of
    the table's stream, with its filter, and nothing is skipped."""
    loaded = load_template(offline(str(EXAMPLE)))
    accounts = {m.name: m for m in loaded.config.mappings}["AccountsFunctionNewAccounts"]
    assert accounts.source == "dynamodb" and ":table/" in accounts.source_id and "/stream/" in accounts.source_id
    assert accounts.get("FilterCriteria") == {"Filters": [{"Pattern": '{"eventName": ["INSERT"]}'}]}
    assert not loaded.skipped


def test_example_with_skip_unsupported(tmp_path):
    """Issue 16.5: with --skip-unsupported the example's SQS and Kinesis mappings load with the template's
    settings (filter, partial batch responses, bisect, on-failure queue) and the skip is a warning."""
    loaded = load_template(offline(str(EXAMPLE), skip_unsupported=True, parameter_overrides={"Stage": "qa"}))
    by_name = {m.name: m for m in loaded.config.mappings}
    assert set(by_name) == {"OrdersFunctionPaid", "ClicksFunctionClicks", "AccountsFunctionNewAccounts"}
    orders, clicks = by_name["OrdersFunctionPaid"], by_name["ClicksFunctionClicks"]
    assert orders.source_id == "arn:aws:sqs:us-east-1:000000000000:orders-qa"
    assert orders.get("FunctionResponseTypes") == ["ReportBatchItemFailures"]
    assert orders.get("FilterCriteria") == {"Filters": [{"Pattern": '{"body": {"status": ["paid"]}}'}]}
    assert clicks.get("BisectBatchOnFunctionError") is True
    assert clicks.get("DestinationConfig") == {
        "OnFailure": {"Destination": "arn:aws:sqs:us-east-1:000000000000:clicks-failures-qa"}}
    assert orders.function.handler == "esm_template_code.OrdersFunction.app:handler"
    assert orders.function.timeout == 10  # Globals.Function.Timeout
    assert loaded.environment == {"STAGE": "qa"}
    assert not loaded.skipped  # DynamoDB Streams is served since issue 14


def test_in_process_functions_keep_their_own_code_folders(tmp_path):
    """Issue 16.2: two functions whose code folders both hold app.py (sam init's layout) load as two
    modules, each from its own CodeUri."""
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "app.py").write_text(f"def handler(event, context):\n    return '{name}'\n")
    path = write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Globals: {Function: {Runtime: python3.11, Handler: app.handler}}
        Resources:
          Q: {Type: AWS::SQS::Queue}
          One: {Type: AWS::Serverless::Function, Properties: {CodeUri: one/, Events: {E: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}}}}
          Two: {Type: AWS::Serverless::Function, Properties: {CodeUri: two/, Events: {E: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}}}}
        """, handler=False)
    loaded = load_template(offline(path))
    loaded.install()
    answers = {name: load_handler(target.handler)({}, None) for name, target in loaded.config.functions.items()}
    assert answers == {"One": "one", "Two": "two"}
    assert str(tmp_path / "one") in sys.path


def test_conflicting_environment_is_an_error(tmp_path):
    """Issue 16.2: in-process functions share the process environment; two values for one variable
    are an error naming both functions, never a silent mix-up."""
    path = write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Globals: {Function: {Runtime: python3.12, Handler: app.handler, CodeUri: code/}}
        Resources:
          Q: {Type: AWS::SQS::Queue}
          A: {Type: AWS::Serverless::Function, Properties: {Environment: {Variables: {TABLE: a}},
              Events: {E: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}}}}
          B: {Type: AWS::Serverless::Function, Properties: {Environment: {Variables: {TABLE: b}},
              Events: {E: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}}}}
        """)
    problems = problems_of(offline(path))
    assert len(problems) == 1 and problems[0].startswith("B.Properties.Environment.Variables.TABLE: is 'b' here "
                                                         "and 'a' in A"), problems
    # Either one through an endpoint: no shared environment, no problem.
    loaded = load_template(offline(path, functions_endpoint="http://127.0.0.1:9001"))
    assert {t.kind for t in loaded.config.functions.values()} == {"lambda"}


def test_where_functions_run(tmp_path):
    """Issue 16.2: a non-Python function needs an endpoint (clear error otherwise); --functions-url
    fills in the logical id; a --config functions: entry overrides one function (with a target) or
    adjusts it (without one)."""
    text = PLAIN.replace("Runtime: python3.12", "Runtime: nodejs20.x")
    path = write(tmp_path, text)
    assert problems_of(offline(path)) == [
        "Worker: cannot run inside esm: its Runtime is nodejs20.x; pass --functions-endpoint URL or "
        "--functions-url PATTERN, or give it an entry under functions: in --config"]
    config = load_template(offline(path, functions_url="http://127.0.0.1:9000/fn/{function}/invoke")).config
    assert config.functions["Worker"].url == "http://127.0.0.1:9000/fn/Worker/invoke"
    config = load_template(offline(path, functions_endpoint="http://127.0.0.1:9001")).config
    assert config.functions["Worker"].lambda_arn == "Worker" and config.aws.endpoint_for("lambda") == "http://127.0.0.1:9001"
    overrides = tmp_path / "esm.yaml"
    overrides.write_text("functions:\n  Worker: {url: 'http://127.0.0.1:8080/run', timeout: 12}\n"
                         "metrics: {listen: '127.0.0.1:9191'}\n")
    config = load_template(offline(path, config=str(overrides))).config
    assert config.functions["Worker"].url == "http://127.0.0.1:8080/run" and config.functions["Worker"].timeout == 12
    assert config.metrics.listen == "127.0.0.1:9191"
    # An entry without a target adjusts the template's placement instead of replacing it.
    overrides.write_text("functions:\n  Worker: {max_concurrency: 1, timeout: 12}\n")
    config = load_template(offline(path, config=str(overrides), functions_url="http://127.0.0.1:9000/{function}")).config
    worker = config.functions["Worker"]
    assert (worker.url, worker.max_concurrency, worker.timeout) == ("http://127.0.0.1:9000/Worker", 1, 12)


def test_missing_handler_module_is_reported(tmp_path):
    """Issue 16.4: validate finds a Handler whose module is not in the code folder."""
    path = write(tmp_path, PLAIN.replace("Handler: app.handler", "Handler: main.handler"))
    assert problems_of(offline(path)) == [f"Worker.Properties.Handler: no module main.py in {tmp_path / 'code'}"]


def test_create_resources_refused_without_endpoint_overrides(tmp_path, monkeypatch, capsys):
    """Issue 16.3: --create-resources is refused unless every involved service has an endpoint
    override, so nothing is ever created in a real AWS account (exit 2, each service named)."""
    for name in [n for n in list(__import__("os").environ) if n.startswith("AWS_ENDPOINT_URL")]:
        monkeypatch.delenv(name)
    code = main(["run", "--template", str(EXAMPLE), "--create-resources", "--skip-unsupported"])
    err = capsys.readouterr().err
    assert code == 2
    for service in ("dynamodb", "kinesis", "sqs"):
        assert f"--create-resources: refused: {service} has no endpoint override" in err, err
    # One service overridden is not enough: the others are still named.
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9")
    code = main(["run", "--template", str(EXAMPLE), "--create-resources", "--skip-unsupported"])
    err = capsys.readouterr().err
    assert code == 2 and "sqs has no endpoint" not in err and "kinesis has no endpoint override" in err


def test_validate_command(tmp_path, capsys):
    """Issue 16.4: `esm validate --template` prints the table of mappings (exit 0) or every problem (exit 2)."""
    assert main(["validate", "--template", str(EXAMPLE), "--skip-unsupported"]) == 0
    out = capsys.readouterr().out
    assert "valid (3 mapping(s), 3 function(s))" in out
    assert "OrdersFunctionPaid" in out and "ClicksFunctionClicks" in out and "AccountsFunctionNewAccounts" in out
    assert main(["validate", "--template", str(EXAMPLE)]) == 0  # nothing unsupported left in the example


def test_parameter_override_spellings():
    """Issue 16.1: Key=Value as SAM spells it, ParameterKey=..,ParameterValue=.. as the AWS CLI does."""
    assert parse_parameter_overrides(["Stage=prod", "ParameterKey=Size,ParameterValue=3", "Empty="]) == {
        "Stage": "prod", "Size": "3", "Empty": ""}
    with pytest.raises(ConfigError, match="not Key=Value"):
        parse_parameter_overrides(["novalue"])


def test_kafka_events_and_cloudformation_spellings(tmp_path):
    """Issue 16.1: SAM's SelfManagedKafka and MSK events become Kafka mappings; CloudFormation's
    `Endpoints.KafkaBootstrapServers` and list-of-{Key, Value} `Tags` take the API's spelling
    (`KAFKA_BOOTSTRAP_SERVERS`, a map) before the API-shape checks."""
    path = write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: code/
              Handler: app.handler
              Runtime: python3.12
              Events:
                Self:
                  Type: SelfManagedKafka
                  Properties:
                    KafkaBootstrapServers: ["127.0.0.1:9092"]
                    Topics: [orders]
                    ConsumerGroupId: orders-group
                    StartingPosition: TRIM_HORIZON
                    SourceAccessConfigurations:
                      - {Type: VPC_SUBNET, URI: "subnet:subnet-1"}
                      - {Type: VPC_SECURITY_GROUP, URI: "security_group:sg-1"}
                Msk:
                  Type: MSK
                  Properties:
                    Stream: arn:aws:kafka:us-east-1:000000000000:cluster/c1/abc
                    Topics: [clicks]
                    StartingPosition: LATEST
          Tagged:
            Type: AWS::Lambda::EventSourceMapping
            Properties:
              FunctionName: !Ref Fn
              EventSourceArn: arn:aws:kafka:us-east-1:000000000000:cluster/c2/def
              Topics: [audit]
              StartingPosition: LATEST
              Tags: [{Key: team, Value: payments}]
        """)
    by_name = {m.name: m for m in load_template(offline(path)).config.mappings}
    assert by_name["FnSelf"].source_id == "kafka://127.0.0.1:9092/orders"
    assert by_name["FnSelf"].get("SelfManagedEventSource") == {"Endpoints": {"KAFKA_BOOTSTRAP_SERVERS": ["127.0.0.1:9092"]}}
    assert by_name["FnMsk"].source == "kafka" and by_name["FnMsk"].get("Topics") == ["clicks"]
    assert by_name["Tagged"].get("Tags") == {"team": "payments"}


def test_fifo_queue_without_a_name_is_its_logical_id(tmp_path):
    """Issue 16.3: a queue without QueueName is named by its logical id, with `.fifo` for a FIFO queue
    (the name SQS requires), as esm looks it up or creates it."""
    path = write(tmp_path, """
        Resources:
          Jobs: {Type: AWS::SQS::Queue, Properties: {FifoQueue: true}}
          Fn: {Type: AWS::Lambda::Function, Properties: {Runtime: python3.12, Handler: app.handler, Code: code/}}
          Mapping:
            Type: AWS::Lambda::EventSourceMapping
            Properties: {FunctionName: !Ref Fn, EventSourceArn: !GetAtt Jobs.Arn}
        """)
    (mapping,) = load_template(offline(path)).config.mappings
    assert mapping.source_id == "arn:aws:sqs:us-east-1:000000000000:Jobs.fifo"


def test_json_logs_carry_the_table(caplog):
    """Issue 16.4 with --log-format json: each row of the start-up table is a log record with the
    mapping, function and source as context fields (no non-JSON table lines), the skip a warning."""
    import logging

    from esm.templates import report

    loaded = load_template(offline(str(EXAMPLE), skip_unsupported=True))
    with caplog.at_level(logging.INFO, logger="esm.templates"):
        report.log(loaded, logging.getLogger("esm.templates"))
    rows = [r for r in caplog.records if r.levelno == logging.INFO]
    assert [(r.mapping, r.function, r.source) for r in rows] == [
        ("OrdersFunctionPaid", "OrdersFunction", "sqs orders-dev"), ("ClicksFunctionClicks", "ClicksFunction", "kinesis clicks-dev"),
        ("AccountsFunctionNewAccounts", "AccountsFunction", "dynamodb accounts-dev")]
    assert not [r for r in caplog.records if r.levelno == logging.WARNING]


def test_function_names_resolve_to_template_functions_or_need_a_place(tmp_path):
    """Issue 16.2: a mapping's FunctionName written as the function's name (or ARN) is that template
    function; a name outside the template is an error until --config (or an endpoint) places it."""
    text = """
        Resources:
          Q: {Type: AWS::SQS::Queue}
          Worker: {Type: AWS::Lambda::Function, Properties: {FunctionName: orders-worker, Runtime: python3.12,
                                                            Handler: app.handler, Code: code/}}
          ByName: {Type: AWS::Lambda::EventSourceMapping, Properties: {FunctionName: orders-worker, EventSourceArn: !GetAtt Q.Arn}}
          ByArn:
            Type: AWS::Lambda::EventSourceMapping
            Properties: {FunctionName: "arn:aws:lambda:us-east-1:000000000000:function:orders-worker",
                         EventSourceArn: !GetAtt Q.Arn, BatchSize: 5}
          Outside: {Type: AWS::Lambda::EventSourceMapping, Properties: {FunctionName: billing, EventSourceArn: !GetAtt Q.Arn, BatchSize: 7}}
        """
    path = write(tmp_path, text)
    assert problems_of(offline(path)) == ["billing: is not a function of this template: give it an entry under "
                                          "functions: in --config, or pass --functions-endpoint URL"]
    overrides = tmp_path / "esm.yaml"
    overrides.write_text("functions:\n  billing: {url: 'http://127.0.0.1:8080/billing'}\n")
    config = load_template(offline(path, config=str(overrides))).config
    assert {m.name: m.function.name for m in config.mappings} == {"ByName": "Worker", "ByArn": "Worker",
                                                                  "Outside": "billing"}


def test_auto_publish_alias_points_at_the_function(tmp_path):
    """Issue 16.1: with SAM's AutoPublishAlias the generated mapping names the alias (Ref FnAliaslive);
    esm follows alias and version back to the function it runs."""
    path = write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Q: {Type: AWS::SQS::Queue}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: code/
              Handler: app.handler
              Runtime: python3.12
              AutoPublishAlias: live
              Events:
                E: {Type: SQS, Properties: {Queue: !GetAtt Q.Arn}}
        """)
    (mapping,) = load_template(offline(path)).config.mappings
    assert mapping.function.name == "Fn" and mapping.function.handler == "esm_template_code.Fn.app:handler"


def test_template_and_config_report_a_rule_in_the_same_aws_words(tmp_path):
    """behaviour §10, issue 22.2: a template's mapping and a config file's mapping refused by one
    rule get the same AWS text; only the path in front differs."""
    path = write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Q: {Type: AWS::SQS::Queue}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              CodeUri: code/
              Handler: app.handler
              Runtime: python3.12
              Events:
                Orders:
                  Type: SQS
                  Properties:
                    Queue: !GetAtt Q.Arn
                    BatchSize: 50
        """)
    text = "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10"
    assert f"Fn.Properties.Events.Orders.Properties.MaximumBatchingWindowInSeconds: {text}" in problems_of(offline(path))
    config = tmp_path / "esm.yaml"
    config.write_text(textwrap.dedent("""
        functions: {orders: {handler: "mod:fn"}}
        event_source_mappings:
          - {FunctionName: orders, EventSourceArn: "arn:aws:sqs:us-east-1:000000000000:q", BatchSize: 50}
        """))
    with pytest.raises(ConfigError) as caught:
        load_config(config)
    assert [str(p) for p in caught.value.problems] == [
        f"event_source_mappings[0].MaximumBatchingWindowInSeconds: {text}"]
