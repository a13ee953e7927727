"""The template's queues, streams, tables, topics, buckets and functions: their names and ARNs.

A resource is found one of three ways (issue 16.3), chosen once per run:

- `offline` (`esm validate --template`): ARNs are built from physical names, region and account;
  nothing is asked of any service.
- `endpoints`: each resource is looked up by its physical name (`QueueName`, `Name`, `TableName`,
  `TopicName`, `BucketName`, `FunctionName`, else the logical id; a FIFO queue's gets `.fifo`) on
  the configured endpoints, and with `create` the template's queues (FIFO and redrive settings),
  streams (shard count), tables (keys, StreamSpecification), stream consumers and secrets are
  created there first. An Amazon MSK cluster is never created: it is looked up by name through
  `aws.endpoints.kafka`, and without that endpoint its ARN is built as offline.
- `stack`: CloudFormation's DescribeStackResources gives each resource's physical id.

Any other resource type still has the name AWS would give it: its name property, else the
`<stack>-<LogicalId>-<SUFFIX>` form CloudFormation generates (the suffix stable per stack name and
logical id), and for the types in ARN_FORMATS an ARN built from that name. esm never calls those
resources, so only a function that esm runs in-process can depend on such a value.

Clients are plain botocore clients, built the way esm builds its own: the `aws:` block's region and
endpoints override what botocore finds itself (AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>, profiles).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import string
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from esm.config.settings import AwsSettings
from esm.templates.intrinsics import Unresolvable

# How long a created stream or table may take to become ACTIVE before esm gives up on it.
ACTIVE_TIMEOUT = 60.0


@dataclass(frozen=True)
class Kind:
    service: str
    name_property: str
    ref: str  # what `Ref` returns
    label: str
    # Without a name property: True, the logical id names it (esm creates or looks it up so);
    # False, the name CloudFormation would generate (esm never creates it under a readable name).
    logical_id_names_it: bool = True


KINDS: Mapping[str, Kind] = {
    "AWS::SQS::Queue": Kind("sqs", "QueueName", "QueueUrl", "queue"),
    "AWS::Kinesis::Stream": Kind("kinesis", "Name", "Name", "stream"),
    "AWS::DynamoDB::Table": Kind("dynamodb", "TableName", "Name", "table"),
    "AWS::SNS::Topic": Kind("sns", "TopicName", "TopicArn", "topic"),
    "AWS::S3::Bucket": Kind("s3", "BucketName", "Name", "bucket"),
    "AWS::Lambda::Function": Kind("lambda", "FunctionName", "Name", "function"),
    "AWS::MSK::Cluster": Kind("kafka", "ClusterName", "Arn", "cluster", False),
    "AWS::MSK::ServerlessCluster": Kind("kafka", "ClusterName", "Arn", "cluster", False),
    "AWS::SecretsManager::Secret": Kind("secretsmanager", "Name", "Id", "secret", False),
    "AWS::KMS::Key": Kind("kms", "", "KeyId", "key", False),
    "AWS::Kinesis::StreamConsumer": Kind("kinesis", "ConsumerName", "ConsumerARN", "stream consumer"),
}
CREATABLE = ("AWS::SQS::Queue", "AWS::Kinesis::Stream", "AWS::DynamoDB::Table", "AWS::Kinesis::StreamConsumer",
             "AWS::SecretsManager::Secret")
NAME_ATTRIBUTES = {"Name", "QueueName", "TopicName", "ConsumerName", "ClusterName"}
# Types esm knows only by name: what `Fn::GetAtt X.Arn` gives, from the physical name (`{name}`).
ARN_FORMATS: Mapping[str, str] = {
    "AWS::IAM::Role": "arn:{partition}:iam::{account}:role/{name}",
    "AWS::IAM::ManagedPolicy": "arn:{partition}:iam::{account}:policy/{name}",
    "AWS::Events::EventBus": "arn:{partition}:events:{region}:{account}:event-bus/{name}",
    "AWS::Events::Rule": "arn:{partition}:events:{region}:{account}:rule/{name}",
    "AWS::StepFunctions::StateMachine": "arn:{partition}:states:{region}:{account}:stateMachine:{name}",
    "AWS::Logs::LogGroup": "arn:{partition}:logs:{region}:{account}:log-group:{name}:*",
    "AWS::AppSync::GraphQLApi": "arn:{partition}:appsync:{region}:{account}:apis/{name}",
    "AWS::ApiGatewayV2::Api": "arn:{partition}:apigateway:{region}::/apis/{name}",
    "AWS::ApiGateway::RestApi": "arn:{partition}:apigateway:{region}::/restapis/{name}",
    "AWS::SSM::Parameter": "arn:{partition}:ssm:{region}:{account}:parameter/{name}",
}
# Ref of these types gives the ARN (the rest give the physical name, as most types do).
REF_IS_ARN = ("AWS::Events::Rule", "AWS::StepFunctions::StateMachine", "AWS::AppSync::GraphQLApi")
GENERATED_NAME_LENGTH = 64  # CloudFormation trims generated names to fit most services' limits


def endpoint_override(service: str, aws: AwsSettings, environ: Mapping[str, str]) -> str | None:
    """The endpoint a client for `service` would use instead of AWS's, or None (it would reach AWS)."""
    return (aws.endpoint_for(service) or environ.get(endpoint_variable(service))
            or environ.get("AWS_ENDPOINT_URL"))


def services_to_create(resources: Mapping[str, Any]) -> list[str]:
    return sorted({KINDS[r["Type"]].service for r in resources.values() if r.get("Type") in CREATABLE})


def endpoint_variable(service: str) -> str:
    """The environment variable botocore reads for `service`'s endpoint (`AWS_ENDPOINT_URL_SECRETS_MANAGER`)."""
    import botocore.session

    service_id = botocore.session.get_session().get_service_model(service).service_id
    return "AWS_ENDPOINT_URL_" + str(service_id).replace(" ", "_").upper()


def generated_name(stack: str, logical_id: str) -> str:
    """The `<stack>-<LogicalId>-<SUFFIX>` name CloudFormation gives a resource without a name
    property; AWS's suffix is random, esm's is derived from stack and logical id so it is stable."""
    digest = hashlib.sha256(f"{stack}/{logical_id}".encode()).digest()
    alphabet = string.ascii_uppercase + string.digits
    suffix = "".join(alphabet[b % len(alphabet)] for b in digest[:13])
    head = f"{stack}-{logical_id}"[:GENERATED_NAME_LENGTH - len(suffix) - 1]
    return f"{head}-{suffix}"


def stable_uuid(stack: str, logical_id: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"esm-template:{stack}/{logical_id}"))


def _name_property(kind_type: str, properties: Mapping[str, Any]) -> str | None:
    """The name property of a type esm knows only by name: CloudFormation's convention is
    `<Noun>Name` (RoleName, EventBusName ...) or `Name`."""
    noun = kind_type.rsplit("::", 1)[-1]
    for key in (f"{noun}Name", "Name"):
        if key in properties:
            return key
    return None


def _name_in(physical: str, kind_type: str) -> str:
    """A resource's name inside its physical id (a queue URL's last segment, an ARN's last part)."""
    if kind_type == "AWS::SQS::Queue":
        return physical.rstrip("/").rsplit("/", 1)[-1]
    return physical.rsplit(":", 1)[-1] if physical.startswith("arn:") else physical


class Resources:
    """`attribute(logical_id, attribute_or_None)` for the intrinsic resolver (None means Ref)."""

    def __init__(self, resources: Mapping[str, Any], *, mode: str, region: str, account: str, partition: str,
                 aws: AwsSettings, stack: str | None = None, create: bool = False, stack_name: str = "esm"):
        assert mode in ("offline", "endpoints", "stack")
        self.resources = resources
        self.mode = mode
        self.region, self.account, self.partition = region, account, partition
        self.aws = aws
        self.stack = stack
        self.stack_name = stack or stack_name  # AWS::StackName: what generated names start with
        self.create = create
        self.value: Callable[[Any, str], Any] = lambda node, path: node  # set to the resolver's `value`
        self._clients: dict[str, Any] = {}
        self._physical: dict[str, str] = {}
        self._ensured: set[str] = set()
        self._ensuring: set[str] = set()
        self.created: list[str] = []
        if mode == "stack":
            try:
                self._read_stack()
            except BaseException:
                self.close()  # the caller never gets an object to close
                raise

    # -- clients and the stack ---------------------------------------------------------------
    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def client(self, service: str) -> Any:
        if service not in self._clients:
            import botocore.session

            self._clients[service] = botocore.session.get_session().create_client(
                service, region_name=self.aws.region or self.region, endpoint_url=self.aws.endpoint_for(service))
        return self._clients[service]

    def _read_stack(self) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            response = self.client("cloudformation").describe_stack_resources(StackName=self.stack)
        except (ClientError, BotoCoreError) as error:
            raise Unresolvable("--stack", f"cannot read stack {self.stack!r}: {error}") from None
        for row in response["StackResources"]:
            self._physical[row["LogicalResourceId"]] = row["PhysicalResourceId"]
        stack_id = next((row.get("StackId") for row in response["StackResources"] if row.get("StackId")), "")
        parts = stack_id.split(":")
        if len(parts) > 4 and parts[3] and parts[4]:  # the stack's own region and account name its resources
            self.region, self.account = parts[3], parts[4]

    def physical_id(self, logical_id: str) -> str | None:
        return self._physical.get(logical_id)

    # -- names -------------------------------------------------------------------------------
    def _resource(self, logical_id: str) -> tuple[dict[str, Any], Kind | None]:
        """The resource and its Kind (None: a type esm knows only by name, see ARN_FORMATS)."""
        resource = self.resources.get(logical_id)
        if not isinstance(resource, dict):
            raise Unresolvable("", f"no parameter or resource is named {logical_id}")
        return resource, KINDS.get(str(resource.get("Type")))

    def name(self, logical_id: str) -> str:
        resource, kind = self._resource(logical_id)
        if self.mode == "stack":
            physical = self._physical.get(logical_id)
            if physical is None:
                raise Unresolvable("", f"stack {self.stack!r} has no resource {logical_id}")
            return _name_in(physical, str(resource.get("Type")))
        properties = resource.get("Properties") or {}
        name_property = kind.name_property if kind else _name_property(str(resource.get("Type")), properties)
        if name_property and name_property in properties:
            path = f"{logical_id}.Properties.{name_property}"
            name = self.value(properties[name_property], path)
            if not isinstance(name, str) or not name:
                raise Unresolvable(path, f"must be a name (got {name!r})")
            return name
        if kind is None or not kind.logical_id_names_it:
            # Not created or looked up under its logical id: the name CloudFormation would generate.
            return generated_name(self.stack_name, logical_id)
        fifo = resource.get("Type") == "AWS::SQS::Queue" and \
            str(self.value(properties.get("FifoQueue", False), logical_id)).lower() == "true"
        return logical_id + (".fifo" if fifo else "")

    # -- attributes ----------------------------------------------------------------------------
    def attribute(self, logical_id: str, attribute: str | None) -> Any:
        resource, kind = self._resource(logical_id)
        kind_type = str(resource.get("Type"))
        if kind is None:
            return self._known_by_name(logical_id, kind_type, attribute)
        attribute = attribute or kind.ref
        if self.create and kind_type in CREATABLE:
            self.ensure(logical_id)
        name = self.name(logical_id)
        if attribute in NAME_ATTRIBUTES:
            return name
        resolve = self._ATTRIBUTES.get(kind_type)
        value = resolve(self, logical_id, name, attribute) if resolve else None
        if value is None:
            raise Unresolvable("", f"{logical_id}.{attribute}: esm does not resolve this attribute of a {kind_type}")
        return value

    def _arn_prefix(self, service: str) -> str:
        return f"arn:{self.partition}:{service}:{self.region}:{self.account}"

    def _known_by_name(self, logical_id: str, kind_type: str, attribute: str | None) -> str:
        """Ref and Arn of a type esm never calls: its physical name, and the ARN AWS's format gives."""
        name = self.name(logical_id)
        arn_format = ARN_FORMATS.get(kind_type)
        if attribute is None and kind_type not in REF_IS_ARN:
            return name
        if attribute in (None, "Arn") and arn_format is not None:
            if self.mode == "stack" and self._physical.get(logical_id, "").startswith("arn:"):
                return self._physical[logical_id]
            return arn_format.format(partition=self.partition, region=self.region, account=self.account, name=name)
        what = f"{logical_id}.{attribute}" if attribute else f"Ref {logical_id}"
        raise Unresolvable("", f"{what}: esm does not know this attribute of a {kind_type} (esm neither creates nor "
                               "calls it); give the value as a parameter")

    def _queue(self, logical_id: str, name: str, attribute: str) -> str | None:
        if attribute not in ("Arn", "QueueUrl"):
            return None
        arn_prefix = self._arn_prefix("sqs")
        if self.mode == "offline":
            return f"{arn_prefix}:{name}" if attribute == "Arn" else \
                f"https://sqs.{self.region}.amazonaws.com/{self.account}/{name}"
        if self.mode == "stack":
            return f"{arn_prefix}:{name}" if attribute == "Arn" else self._physical[logical_id]
        url = self._call(logical_id, "sqs", "get_queue_url", QueueName=name)["QueueUrl"]
        if attribute == "QueueUrl":
            return str(url)
        return str(self._call(logical_id, "sqs", "get_queue_attributes", QueueUrl=url,
                              AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def _stream(self, logical_id: str, name: str, attribute: str) -> str | None:
        if attribute != "Arn":
            return None
        if self.mode == "endpoints":
            return str(self._call(logical_id, "kinesis", "describe_stream_summary",
                                  StreamName=name)["StreamDescriptionSummary"]["StreamARN"])
        return f"{self._arn_prefix('kinesis')}:stream/{name}"

    def _table(self, logical_id: str, name: str, attribute: str) -> str | None:
        if attribute not in ("Arn", "StreamArn"):
            return None
        if self.mode == "offline":
            table = f"{self._arn_prefix('dynamodb')}:table/{name}"
            return table if attribute == "Arn" else f"{table}/stream/1970-01-01T00:00:00.000"
        described = self._call(logical_id, "dynamodb", "describe_table", TableName=name)["Table"]
        if attribute == "Arn":
            return str(described["TableArn"])
        if not described.get("LatestStreamArn"):
            raise Unresolvable("", f"{logical_id}: table {name!r} has no stream (StreamSpecification)")
        return str(described["LatestStreamArn"])

    def _topic_attribute(self, logical_id: str, name: str, attribute: str) -> str | None:
        if attribute != "TopicArn":
            return None
        if self.mode == "stack":
            return self._physical[logical_id]
        if self.mode == "endpoints":
            return self._topic(logical_id, name)
        return f"{self._arn_prefix('sns')}:{name}"

    def _bucket(self, logical_id: str, name: str, attribute: str) -> str | None:
        return f"arn:{self.partition}:s3:::{name}" if attribute == "Arn" else None

    def _function(self, logical_id: str, name: str, attribute: str) -> str | None:
        return f"{self._arn_prefix('lambda')}:function:{name}" if attribute == "Arn" else None

    def _cluster(self, logical_id: str, name: str, attribute: str) -> str | None:
        """An MSK cluster is never created. Its ARN comes from the stack, from the MSK API at an
        `aws.endpoints.kafka` that knows the cluster by name, or is built as AWS builds it."""
        if attribute != "Arn":
            return None
        if self.mode == "stack":
            return self._physical[logical_id]
        if self.mode == "endpoints" and endpoint_override("kafka", self.aws, os.environ):
            return self._cluster_arn(logical_id, name)
        return f"{self._arn_prefix('kafka')}:cluster/{name}/{stable_uuid(self.stack_name, logical_id)}-1"

    def _cluster_arn(self, logical_id: str, name: str) -> str:
        answer = self._call(logical_id, "kafka", "list_clusters_v2", ClusterNameFilter=name)
        for cluster in answer.get("ClusterInfoList", []):
            if cluster.get("ClusterName") == name:
                return str(cluster["ClusterArn"])
        raise Unresolvable("", f"{logical_id}: esm never creates Amazon MSK clusters, and the MSK API at "
                               f"{self._where('kafka')} has no cluster named {name!r}")

    def _secret(self, logical_id: str, name: str, attribute: str) -> str | None:
        if attribute != "Id":
            return None
        if self.mode == "stack":
            return self._physical[logical_id]
        if self.mode == "endpoints":
            return str(self._call(logical_id, "secretsmanager", "describe_secret", SecretId=name)["ARN"])
        suffix = stable_uuid(self.stack_name, logical_id).replace("-", "")[:6]
        return f"{self._arn_prefix('secretsmanager')}:secret:{name}-{suffix}"

    def _key(self, logical_id: str, name: str, attribute: str) -> str | None:
        key_id = self._physical.get(logical_id) or stable_uuid(self.stack_name, logical_id)
        if attribute == "KeyId":
            return key_id
        return f"{self._arn_prefix('kms')}:key/{key_id}" if attribute == "Arn" else None

    def _consumer(self, logical_id: str, name: str, attribute: str) -> str | None:
        if attribute not in ("ConsumerARN", "StreamARN"):
            return None
        stream = self.value((self.resources[logical_id].get("Properties") or {}).get("StreamARN"),
                            f"{logical_id}.Properties.StreamARN")
        if not isinstance(stream, str) or not stream:
            raise Unresolvable(f"{logical_id}.Properties.StreamARN", "is required (the stream's ARN)")
        if attribute == "StreamARN":
            return stream
        if self.mode == "stack":
            return self._physical[logical_id]
        if self.mode == "endpoints":
            return str(self._call(logical_id, "kinesis", "describe_stream_consumer", StreamARN=stream,
                                  ConsumerName=name)["ConsumerDescription"]["ConsumerARN"])
        return f"{stream}/consumer/{name}:0"

    _ATTRIBUTES: Mapping[str, Callable[["Resources", str, str, str], str | None]] = {
        "AWS::SQS::Queue": _queue, "AWS::Kinesis::Stream": _stream, "AWS::DynamoDB::Table": _table,
        "AWS::SNS::Topic": _topic_attribute, "AWS::S3::Bucket": _bucket, "AWS::Lambda::Function": _function,
        "AWS::MSK::Cluster": _cluster, "AWS::MSK::ServerlessCluster": _cluster, "AWS::SecretsManager::Secret": _secret,
        "AWS::KMS::Key": _key, "AWS::Kinesis::StreamConsumer": _consumer,
    }

    def _topic(self, logical_id: str, name: str) -> str:
        client = self.client("sns")
        for page in client.get_paginator("list_topics").paginate():
            for topic in page.get("Topics", []):
                if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                    return str(topic["TopicArn"])
        raise Unresolvable("", f"{logical_id}: topic {name!r} does not exist at {self._where('sns')}")

    def _where(self, service: str) -> str:
        return endpoint_override(service, self.aws, os.environ) or f"{service} in {self.region}"

    def _call(self, logical_id: str, service: str, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client(service), operation)(**kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            missing = "NonExistent" in code or "NotFound" in code or "DoesNotExist" in code
            hint = "; create it, or pass --create-resources" if missing and self.mode == "endpoints" else ""
            raise Unresolvable("", f"{logical_id}: {operation} at {self._where(service)} failed: "
                                   f"{error.response.get('Error', {}).get('Message') or code}{hint}") from None
        except BotoCoreError as error:
            raise Unresolvable("", f"{logical_id}: cannot reach {self._where(service)}: {error}") from None

    # -- creation ------------------------------------------------------------------------------
    def create_all(self, active: Callable[[str], bool]) -> None:
        """Create every queue, stream and table of the template whose Condition holds."""
        for logical_id, resource in self.resources.items():
            if isinstance(resource, dict) and resource.get("Type") in CREATABLE and active(logical_id):
                self.ensure(logical_id)

    def ensure(self, logical_id: str) -> None:
        if logical_id in self._ensured:
            return
        if logical_id in self._ensuring:
            raise Unresolvable("", f"{logical_id} refers to itself through other resources")
        self._ensuring.add(logical_id)
        try:
            resource = self.resources[logical_id]
            properties = self.value(resource.get("Properties") or {}, f"{logical_id}.Properties")
            name = self.name(logical_id)
            {"AWS::SQS::Queue": self._create_queue, "AWS::Kinesis::Stream": self._create_stream,
             "AWS::DynamoDB::Table": self._create_table, "AWS::Kinesis::StreamConsumer": self._create_consumer,
             "AWS::SecretsManager::Secret": self._create_secret}[resource["Type"]](logical_id, name, properties)
        finally:
            self._ensuring.discard(logical_id)
        self._ensured.add(logical_id)
        self.created.append(logical_id)

    def _create_queue(self, logical_id: str, name: str, properties: dict[str, Any]) -> None:
        # The SQS API's own list of attribute names: the CloudFormation properties of the same name.
        shape = self.client("sqs").meta.service_model.shape_for("QueueAttributeName")
        attributes = {}
        for key, value in properties.items():
            if key in shape.enum:
                if isinstance(value, (dict, list)):
                    value = json.dumps(value)
                elif isinstance(value, bool):
                    value = "true" if value else "false"
                attributes[key] = str(value)
        self._call(logical_id, "sqs", "create_queue", QueueName=name, Attributes=attributes)

    def _create_stream(self, logical_id: str, name: str, properties: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError

        mode = (properties.get("StreamModeDetails") or {}).get("StreamMode")
        kwargs: dict[str, Any] = {"StreamName": name}
        if mode == "ON_DEMAND":
            kwargs["StreamModeDetails"] = {"StreamMode": "ON_DEMAND"}
        else:
            kwargs["ShardCount"] = int(properties.get("ShardCount", 1))
        try:
            self.client("kinesis").create_stream(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":  # it exists already
                self._call(logical_id, "kinesis", "create_stream", **kwargs)  # reports the error
        self._wait(logical_id, lambda: self._call(logical_id, "kinesis", "describe_stream_summary", StreamName=name)
                   ["StreamDescriptionSummary"]["StreamStatus"])

    def _create_table(self, logical_id: str, name: str, properties: dict[str, Any]) -> None:
        from botocore.exceptions import ClientError

        kwargs: dict[str, Any] = {"TableName": name}
        for key in ("KeySchema", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput",
                    "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in properties:
                kwargs[key] = properties[key]
        if kwargs.get("BillingMode") is None and "ProvisionedThroughput" not in kwargs:
            kwargs["BillingMode"] = "PAY_PER_REQUEST"
        view = (properties.get("StreamSpecification") or {}).get("StreamViewType")
        if view:  # CloudFormation's StreamSpecification has the view type only; the API also wants StreamEnabled
            kwargs["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": view}
        try:
            self.client("dynamodb").create_table(**kwargs)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                self._call(logical_id, "dynamodb", "create_table", **kwargs)
        self._wait(logical_id, lambda: self._call(logical_id, "dynamodb", "describe_table", TableName=name)
                   ["Table"]["TableStatus"])

    def _create_consumer(self, logical_id: str, name: str, properties: dict[str, Any]) -> None:
        """RegisterStreamConsumer (the stream is created first when the template defines it too)."""
        from botocore.exceptions import ClientError

        stream = properties.get("StreamARN")
        try:
            self.client("kinesis").register_stream_consumer(StreamARN=stream, ConsumerName=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                self._call(logical_id, "kinesis", "register_stream_consumer", StreamARN=stream, ConsumerName=name)
        self._wait(logical_id, lambda: self._call(logical_id, "kinesis", "describe_stream_consumer", StreamARN=stream,
                                                  ConsumerName=name)["ConsumerDescription"]["ConsumerStatus"])

    def _create_secret(self, logical_id: str, name: str, properties: dict[str, Any]) -> None:
        """CreateSecret from SecretString, or from GenerateSecretString as CloudFormation reads it
        (a JSON template with the generated password under GenerateStringKey, or the password alone)."""
        from botocore.exceptions import ClientError

        value = properties.get("SecretString")
        if value is None:
            value = _generated_secret(properties.get("GenerateSecretString") or {})
        try:
            self.client("secretsmanager").create_secret(Name=name, SecretString=str(value))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceExistsException":
                self._call(logical_id, "secretsmanager", "create_secret", Name=name, SecretString=str(value))

    def _wait(self, logical_id: str, status: Callable[[], str]) -> None:
        deadline = time.monotonic() + ACTIVE_TIMEOUT
        while (state := status()) != "ACTIVE":
            if time.monotonic() > deadline:
                raise Unresolvable("", f"{logical_id} is still {state} after {ACTIVE_TIMEOUT:.0f}s")
            time.sleep(0.1)


def _generated_secret(spec: Mapping[str, Any]) -> str:
    """A password as GenerateSecretString describes it (length, excluded characters, the JSON it goes into)."""
    alphabet = string.ascii_letters + string.digits + ("" if spec.get("ExcludePunctuation") else "!#$%&()*+,-.:;<=>?@[]^_{|}~")
    alphabet = "".join(c for c in alphabet if c not in str(spec.get("ExcludeCharacters", "")))
    password = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    template, key = spec.get("SecretStringTemplate"), spec.get("GenerateStringKey")
    if isinstance(template, str) and isinstance(key, str):
        document = json.loads(template)
        document[key] = password
        return json.dumps(document)
    return password
