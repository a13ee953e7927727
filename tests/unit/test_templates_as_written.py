"""Templates as people write them (issue 26): each cause that made `esm validate --template`
refuse a template AWS deploys, reproduced by a small template of that shape, offline.

The rules checked (docs/behaviour.md §9.12, "Templates"): references resolve to any resource the
template defines (by its name property, or the name CloudFormation would generate); only the
functions esm runs in-process have their Environment resolved; CloudFormation's property
spellings are taken; Python handlers load as Lambda's runtime loads them (any file name, folders,
.zip code, the template's own layers); local API definitions and AWS::Include are read from disk;
errors name a missing Transform and clashes by logical id.
"""

from __future__ import annotations

import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from esm.errors import ConfigError
from esm.invokers.python import load_handler
from esm.templates import TemplateOptions, load_template
from esm.templates.resources import generated_name

URL = "http://127.0.0.1:9/{function}"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "template.yaml"
    path.write_text(textwrap.dedent(text))
    return str(path)


def offline(path: str, **kwargs) -> TemplateOptions:
    return TemplateOptions(template=path, offline=True, **kwargs)


def problems_of(options: TemplateOptions) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_template(options)
    return [str(problem) for problem in raised.value.problems]


MSK = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Cluster:
    Type: AWS::MSK::Cluster
    Properties: {ClusterName: orders-cluster, KafkaVersion: 3.6.0, NumberOfBrokerNodes: 2}
  Credentials:
    Type: AWS::SecretsManager::Secret
    Properties:
      GenerateSecretString: {SecretStringTemplate: '{"username": "app"}', GenerateStringKey: password}
  Key:
    Type: AWS::KMS::Key
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: nodejs20.x
      Handler: index.handler
      CodeUri: s3://artifacts/consumer.zip
      Events:
        Orders:
          Type: MSK
          Properties:
            Stream: !GetAtt Cluster.Arn
            Topics: [orders]
            StartingPosition: TRIM_HORIZON
            KmsKeyArn: !GetAtt Key.Arn
            SourceAccessConfigurations:
              - {Type: SASL_SCRAM_512_AUTH, URI: !Ref Credentials}
"""


def test_template_msk_cluster_secret_and_key_resolve(tmp_path):
    """Issue 26 causes 2, 3 and 5: the template's own MSK cluster (GetAtt Arn), Secrets Manager
    secret (Ref gives its ARN) and KMS key (GetAtt Arn) resolve to the ARNs AWS would give them, and
    CloudFormation's `KmsKeyArn` spelling becomes the API's KMSKeyArn."""
    loaded = load_template(offline(write(tmp_path, MSK), functions_url=URL))
    (mapping,) = loaded.config.mappings
    name = generated_name("esm", "Credentials")
    assert mapping.source_id.startswith("arn:aws:kafka:us-east-1:000000000000:cluster/orders-cluster/")
    assert mapping.get("SourceAccessConfigurations") == [
        {"Type": "SASL_SCRAM_512_AUTH",
         "URI": f"arn:aws:secretsmanager:us-east-1:000000000000:secret:{name}-" +
                mapping.get("SourceAccessConfigurations")[0]["URI"].rsplit("-", 1)[-1]}]
    assert mapping.get("KMSKeyArn").startswith("arn:aws:kms:us-east-1:000000000000:key/")
    # Stable per stack name and logical id: a second load gives the same names.
    again = load_template(offline(write(tmp_path, MSK), functions_url=URL)).config.mappings[0]
    assert again.source_id == mapping.source_id and again.get("KMSKeyArn") == mapping.get("KMSKeyArn")


def test_generated_names_follow_cloudformation_form():
    """Issue 26.1: a resource without a name property gets `<stack>-<LogicalId>-<SUFFIX>`, stable
    per stack and logical id, different across stacks, within CloudFormation's usual length."""
    name = generated_name("shop", "Credentials")
    assert name.startswith("shop-Credentials-") and len(name.rsplit("-", 1)[1]) == 13
    assert name == generated_name("shop", "Credentials") != generated_name("other", "Credentials")
    assert len(generated_name("s" * 80, "L" * 80)) <= 64


def test_stream_consumer_as_the_source(tmp_path):
    """Issue 26 cause 3: an AWS::Kinesis::StreamConsumer (enhanced fan-out) of the template is the
    mapping's source: its Ref is the consumer ARN under the stream's ARN."""
    path = write(tmp_path, """
        Resources:
          Clicks: {Type: AWS::Kinesis::Stream, Properties: {ShardCount: 1}}
          FanOut:
            Type: AWS::Kinesis::StreamConsumer
            Properties: {ConsumerName: esm-reader, StreamARN: !GetAtt Clicks.Arn}
          Mapping:
            Type: AWS::Lambda::EventSourceMapping
            Properties:
              FunctionName: reader
              EventSourceArn: !Ref FanOut
              StartingPosition: LATEST
        """)
    (mapping,) = load_template(offline(path, functions_url=URL)).config.mappings
    assert mapping.source_id.startswith("arn:aws:kinesis:us-east-1:000000000000:stream/Clicks/consumer/esm-reader:")


ENVIRONMENTS = """
Transform: AWS::Serverless-2016-10-31
Resources:
  Bus: {Type: AWS::Events::EventBus, Properties: {Name: orders-bus}}
  Api: {Type: AWS::Serverless::HttpApi}
  Graph:
    Type: AWS::AppSync::GraphQLApi
    Properties: {Name: graph, AuthenticationType: API_KEY}
  Queue: {Type: AWS::SQS::Queue}
  Notifier:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: nodejs20.x
      Handler: index.handler
      InlineCode: "exports.handler = async () => {}"
      Environment:
        Variables:
          BUS: !GetAtt Bus.Arn
          GRAPH_URL: !GetAtt Graph.GraphQLUrl
          ROLE: !GetAtt NotifierRole.Arn
      Events:
        Jobs: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
  Worker:
    Type: AWS::Serverless::Function
    Properties:
      Runtime: python3.12
      Handler: app.handler
      CodeUri: code/
      Environment:
        Variables:
          BUS_ARN: !GetAtt Bus.Arn
          API: !Ref Api
          ROLE: !GetAtt WorkerRole.Arn
      Events:
        Jobs: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
"""


def test_only_in_process_functions_have_their_environment_resolved(tmp_path):
    """Issue 26 causes 4 and 2: a Node function's environment (an AppSync URL esm cannot know) is
    not resolved at all, since esm never runs it; the in-process Python function's references to
    an event bus, an HTTP API and its SAM-generated role resolve to the names and ARNs AWS gives."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text("def handler(event, context):\n    return None\n")
    config = tmp_path / "esm.yaml"
    config.write_text("functions:\n  Notifier: {url: 'http://127.0.0.1:9/notifier'}\n")
    loaded = load_template(offline(write(tmp_path, ENVIRONMENTS), config=str(config)))
    environment = dict(loaded.environment)
    assert environment["BUS_ARN"] == "arn:aws:events:us-east-1:000000000000:event-bus/orders-bus"
    assert environment["API"] == generated_name("esm", "Api")
    assert environment["ROLE"] == f"arn:aws:iam::000000000000:role/{generated_name('esm', 'WorkerRole')}"
    assert "GRAPH_URL" not in environment
    # With --functions-endpoint no environment is resolved, not even the Python function's.
    assert load_template(offline(write(tmp_path, ENVIRONMENTS), functions_endpoint="http://127.0.0.1:9")).environment == {}


def test_in_process_environment_that_cannot_resolve_is_still_an_error(tmp_path):
    """Issue 26.2: a function esm runs in-process needs its environment, so an attribute esm cannot
    know is an error there, naming the variable."""
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text("def handler(event, context):\n    return None\n")
    text = ENVIRONMENTS.replace("API: !Ref Api", "URL: !GetAtt Graph.GraphQLUrl")
    config = tmp_path / "esm.yaml"
    config.write_text("functions:\n  Notifier: {url: 'http://127.0.0.1:9/notifier'}\n")
    problems = problems_of(offline(write(tmp_path, text), config=str(config)))
    assert any(p.startswith("Worker.Properties.Environment.Variables.URL") and "GraphQLUrl" in p for p in problems), problems


@pytest.mark.parametrize("handler, file", [
    ("kinesis-consumer-fn.lambda_handler", "kinesis-consumer-fn.py"),
    ("src/handlers/orders.handle", "src/handlers/orders.py"),
    ("pkg.sub.mod.handle", "pkg/sub/mod.py"),
])
def test_python_handlers_load_as_the_runtime_loads_them(tmp_path, handler, file):
    """Issue 26 cause 6: a handler's module is everything before the last dot, any file name (a
    hyphen too), with `/` or `.` for folders, as Lambda's Python runtime imports it."""
    function = handler.rsplit(".", 1)[1]
    module = tmp_path / "code" / file
    module.parent.mkdir(parents=True)
    module.write_text(f"def {function}(event, context):\n    return {{'seen': event}}\n")
    path = write(tmp_path, f"""
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Queue: {{Type: AWS::SQS::Queue}}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.12
              Handler: {handler}
              CodeUri: code/
              Events:
                Jobs: {{Type: SQS, Properties: {{Queue: !GetAtt Queue.Arn}}}}
        """)
    loaded = load_template(offline(path))
    loaded.install()
    spec = loaded.config.functions["Fn"].handler
    assert load_handler(spec)({"n": 1}, None) == {"seen": {"n": 1}}


def test_zip_code_and_local_layers(tmp_path):
    """Issue 26 cause 7: a CodeUri .zip is unpacked and run; the template's own layer (a local
    ContentUri folder or .zip) is on the import path as Lambda puts /opt/python there."""
    with zipfile.ZipFile(tmp_path / "function.zip", "w") as archive:
        archive.writestr("app.py", "import shared\n\ndef handler(event, context):\n    return shared.VALUE\n")
    with zipfile.ZipFile(tmp_path / "layer.zip", "w") as archive:
        archive.writestr("python/shared.py", "VALUE = 'from the layer'\n")
    path = write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Queue: {Type: AWS::SQS::Queue}
          Shared:
            Type: AWS::Serverless::LayerVersion
            Properties: {ContentUri: layer.zip, CompatibleRuntimes: [python3.12]}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.12
              Handler: app.handler
              CodeUri: function.zip
              Layers: [!Ref Shared]
              Events:
                Jobs: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
        """)
    sys.modules.pop("shared", None)
    loaded = load_template(offline(path))
    loaded.install()
    assert load_handler(loaded.config.functions["Fn"].handler)({}, None) == "from the layer"


def test_local_api_definitions_and_includes_are_read(tmp_path):
    """Issue 26 cause 7: an Api's local DefinitionUri and an AWS::Include of a local file reach the
    SAM translator as their content, so the template loads (its SQS mapping runs)."""
    (tmp_path / "openapi.yaml").write_text(textwrap.dedent("""
        openapi: 3.0.1
        info: {title: orders, version: "1"}
        paths: {}
        """))
    (tmp_path / "paths.yaml").write_text("/orders: {get: {responses: {'200': {description: ok}}}}\n")
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text("def handler(event, context):\n    return None\n")
    path = write(tmp_path, """
        Transform: AWS::Serverless-2016-10-31
        Resources:
          Queue: {Type: AWS::SQS::Queue}
          Rest: {Type: AWS::Serverless::Api, Properties: {StageName: prod, DefinitionUri: openapi.yaml}}
          Http:
            Type: AWS::Serverless::HttpApi
            Properties:
              DefinitionBody:
                openapi: 3.0.1
                info: {title: http, version: "1"}
                paths:
                  Fn::Transform: {Name: AWS::Include, Parameters: {Location: paths.yaml}}
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.12
              Handler: app.handler
              CodeUri: code/
              Events:
                Jobs: {Type: SQS, Properties: {Queue: !GetAtt Queue.Arn}}
        """)
    (mapping,) = load_template(offline(path)).config.mappings
    assert mapping.source_id == "arn:aws:sqs:us-east-1:000000000000:Queue"


def test_missing_transform_is_named(tmp_path):
    """Issue 26 "Also": SAM resources without the Transform line are told so, not that the
    template has no mapping."""
    path = write(tmp_path, """
        Resources:
          Fn:
            Type: AWS::Serverless::Function
            Properties:
              Runtime: python3.12
              Handler: app.handler
              Events:
                Jobs: {Type: SQS, Properties: {Queue: arn:aws:sqs:us-east-1:000000000000:jobs}}
        """)
    (problem,) = problems_of(offline(path))
    assert problem.startswith("Transform: is missing") and "AWS::Serverless-2016-10-31" in problem, problem


def test_clashes_name_the_other_mapping_by_logical_id(tmp_path):
    """Issue 26 "Also": a ConsumerGroupId used twice names the other mapping as the template does."""
    path = write(tmp_path, """
        Resources:
          First:
            Type: AWS::Lambda::EventSourceMapping
            Properties:
              FunctionName: f
              SelfManagedEventSource: {Endpoints: {KafkaBootstrapServers: ["127.0.0.1:9092"]}}
              SourceAccessConfigurations:
                - {Type: VPC_SUBNET, URI: "subnet:subnet-1"}
                - {Type: VPC_SECURITY_GROUP, URI: "security_group:sg-1"}
              Topics: [orders-a]
              StartingPosition: LATEST
              SelfManagedKafkaEventSourceConfig: {ConsumerGroupId: shared}
          Second:
            Type: AWS::Lambda::EventSourceMapping
            Properties:
              FunctionName: f
              SelfManagedEventSource: {Endpoints: {KafkaBootstrapServers: ["127.0.0.1:9092"]}}
              SourceAccessConfigurations:
                - {Type: VPC_SUBNET, URI: "subnet:subnet-1"}
                - {Type: VPC_SECURITY_GROUP, URI: "security_group:sg-1"}
              Topics: [orders-b]
              StartingPosition: LATEST
              SelfManagedKafkaEventSourceConfig: {ConsumerGroupId: shared}
        """)
    problems = problems_of(offline(path, functions_url=URL))
    assert len(problems) == 1 and problems[0].startswith("Second.") and "First" in problems[0], problems
    assert "event_source_mappings[" not in problems[0]
