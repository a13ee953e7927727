"""The template's resources: their names and ARNs, and the ones esm creates locally.

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

The types a source reads live in that source's package (its descriptor's template resources);
the others are here. Any other resource type still has the name AWS would give it: its name
property, else the `<stack>-<LogicalId>-<SUFFIX>` form CloudFormation generates (the suffix stable
per stack name and logical id), and for the types in ARN_FORMATS an ARN built from that name. esm
never calls those resources, so only a function that esm runs in-process can depend on such a value.

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
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, Mapping

from esm import registry
from esm.config.settings import AwsSettings
from esm.templates.intrinsics import Unresolvable

# How long a created stream or table may take to become ACTIVE before esm gives up on it.
ACTIVE_TIMEOUT = 60.0
GENERATED_NAME_LENGTH = 64  # CloudFormation trims generated names to fit most services' limits


# resolve(resources, logical_id, name, arn_prefix) -> the attribute's value
Resolve = Callable[["Resources", str, str, str], Any]


def _arn_name(physical: str) -> str:
    return physical.rsplit(":", 1)[-1]


def _logical_name(resources: "Resources", logical_id: str, properties: Mapping[str, Any]) -> str:
    return logical_id


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


def generated(resources: "Resources", logical_id: str, properties: Mapping[str, Any]) -> str:
    """`default_name` of a kind esm neither creates nor finds by its logical id."""
    return generated_name(resources.stack_name, logical_id)


@dataclass(frozen=True)
class Kind:
    """One CloudFormation resource type esm resolves: its service and name property, what `Ref`
    returns, the attributes it resolves besides the name, and how a stack's physical id and a
    nameless resource are named. `create(resources, logical_id, name, properties)` makes it on
    a local endpoint (`--create-resources`); a source's kinds live in its package."""

    service: str
    name_property: str
    ref: str  # what `Ref` returns
    label: str
    attributes: Mapping[str, Resolve] = field(default_factory=lambda: MappingProxyType({}))
    create: Callable[["Resources", str, str, dict[str, Any]], None] | None = None
    stack_name: Callable[[str], str] = _arn_name
    default_name: Callable[["Resources", str, Mapping[str, Any]], str] = _logical_name


def _topic_arn(resources: "Resources", logical_id: str, name: str, arn_prefix: str) -> Any:
    if resources.mode == "stack":
        return resources.physical_id(logical_id)
    if resources.mode == "endpoints":
        return resources.topic(logical_id, name)
    return f"{arn_prefix}:{name}"


def _secret_arn(resources: "Resources", logical_id: str, name: str, arn_prefix: str) -> Any:
    if resources.mode == "stack":
        return resources.physical_id(logical_id)
    if resources.mode == "endpoints":
        return resources.call(logical_id, "secretsmanager", "describe_secret", SecretId=name)["ARN"]
    suffix = stable_uuid(resources.stack_name, logical_id).replace("-", "")[:6]
    return f"{arn_prefix}:secret:{name}-{suffix}"


def _create_secret(resources: "Resources", logical_id: str, name: str, properties: dict[str, Any]) -> None:
    """CreateSecret from SecretString, or from GenerateSecretString as CloudFormation reads it."""
    from botocore.exceptions import ClientError

    value = properties.get("SecretString")
    if value is None:
        value = _generated_secret(properties.get("GenerateSecretString") or {})
    try:
        resources.client("secretsmanager").create_secret(Name=name, SecretString=str(value))
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "ResourceExistsException":  # it exists already
            resources.call(logical_id, "secretsmanager", "create_secret", Name=name, SecretString=str(value))


def _generated_secret(spec: Mapping[str, Any]) -> str:
    """A password as GenerateSecretString describes it (length, excluded characters, the JSON it goes into)."""
    punctuation = "" if spec.get("ExcludePunctuation") else "!#$%&()*+,-.:;<=>?@[]^_{|}~"
    alphabet = "".join(c for c in string.ascii_letters + string.digits + punctuation
                       if c not in str(spec.get("ExcludeCharacters", "")))
    password = "".join(secrets.choice(alphabet) for _ in range(int(spec.get("PasswordLength", 32))))
    template, key = spec.get("SecretStringTemplate"), spec.get("GenerateStringKey")
    if isinstance(template, str) and isinstance(key, str):
        document = json.loads(template)
        document[key] = password
        return json.dumps(document)
    return password


def _key_id(resources: "Resources", logical_id: str, name: str, arn_prefix: str) -> Any:
    return resources.physical_id(logical_id) or stable_uuid(resources.stack_name, logical_id)


def _key_arn(resources: "Resources", logical_id: str, name: str, arn_prefix: str) -> Any:
    return f"{arn_prefix}:key/{_key_id(resources, logical_id, name, arn_prefix)}"


# The resource types that are no event source; each source's descriptor adds its own (kinds()).
OTHER_KINDS: Mapping[str, Kind] = {
    "AWS::SNS::Topic": Kind("sns", "TopicName", "TopicArn", "topic", attributes={"TopicArn": _topic_arn}),
    "AWS::S3::Bucket": Kind("s3", "BucketName", "Name", "bucket", attributes={
        "Arn": lambda resources, logical_id, name, prefix: f"arn:{resources.partition}:s3:::{name}"}),
    "AWS::Lambda::Function": Kind("lambda", "FunctionName", "Name", "function", attributes={
        "Arn": lambda resources, logical_id, name, prefix: f"{prefix}:function:{name}"}),
    "AWS::SecretsManager::Secret": Kind("secretsmanager", "Name", "Id", "secret", attributes={"Id": _secret_arn},
                                        create=_create_secret, default_name=generated),
    "AWS::KMS::Key": Kind("kms", "", "KeyId", "key", attributes={"KeyId": _key_id, "Arn": _key_arn},
                          default_name=generated),
}
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


def kinds() -> dict[str, Kind]:
    """Every resource type esm resolves: the sources' (their descriptors' template resources), then the others."""
    found: dict[str, Kind] = {}
    for descriptor in registry.descriptors():
        for resource_type, path in descriptor.templates.resources:
            found[resource_type] = registry.import_path(path)
    return {**found, **OTHER_KINDS}


def _creatable(resource_type: Any) -> bool:
    kind = kinds().get(str(resource_type))
    return kind is not None and kind.create is not None


def endpoint_variable(service: str) -> str:
    """The environment variable botocore reads for `service`'s endpoint (`AWS_ENDPOINT_URL_SECRETS_MANAGER`)."""
    import botocore.session

    service_id = botocore.session.get_session().get_service_model(service).service_id
    return "AWS_ENDPOINT_URL_" + str(service_id).replace(" ", "_").upper()


def endpoint_override(service: str, aws: AwsSettings, environ: Mapping[str, str]) -> str | None:
    """The endpoint a client for `service` would use instead of AWS's, or None (it would reach AWS)."""
    return (aws.endpoint_for(service) or environ.get(endpoint_variable(service))
            or environ.get("AWS_ENDPOINT_URL"))


def _name_property(kind_type: str, properties: Mapping[str, Any]) -> str | None:
    """The name property of a type esm knows only by name: CloudFormation's convention is
    `<Noun>Name` (RoleName, EventBusName ...) or `Name`."""
    noun = kind_type.rsplit("::", 1)[-1]
    for key in (f"{noun}Name", "Name"):
        if key in properties:
            return key
    return None


def services_to_create(resources: Mapping[str, Any]) -> list[str]:
    return sorted({kinds()[r["Type"]].service for r in resources.values() if _creatable(r.get("Type"))})


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
        return resource, kinds().get(str(resource.get("Type")))

    def name(self, logical_id: str) -> str:
        resource, kind = self._resource(logical_id)
        if self.mode == "stack":
            physical = self._physical.get(logical_id)
            if physical is None:
                raise Unresolvable("", f"stack {self.stack!r} has no resource {logical_id}")
            return kind.stack_name(physical) if kind else _arn_name(physical)
        properties = resource.get("Properties") or {}
        name_property = kind.name_property if kind else _name_property(str(resource.get("Type")), properties)
        if name_property and name_property in properties:
            path = f"{logical_id}.Properties.{name_property}"
            name = self.value(properties[name_property], path)
            if not isinstance(name, str) or not name:
                raise Unresolvable(path, f"must be a name (got {name!r})")
            return name
        return kind.default_name(self, logical_id, properties) if kind else generated_name(self.stack_name, logical_id)

    # -- attributes ----------------------------------------------------------------------------
    def attribute(self, logical_id: str, attribute: str | None) -> Any:
        resource, kind = self._resource(logical_id)
        if kind is None:
            return self._known_by_name(logical_id, str(resource.get("Type")), attribute)
        attribute = attribute or kind.ref
        if self.create and kind.create is not None:
            self.ensure(logical_id)
        name = self.name(logical_id)
        if attribute in NAME_ATTRIBUTES:
            return name
        arn_prefix = f"arn:{self.partition}:{kind.service}:{self.region}:{self.account}"
        resolve = kind.attributes.get(attribute)
        if resolve is not None:
            return resolve(self, logical_id, name, arn_prefix)
        raise Unresolvable("", f"{logical_id}.{attribute}: esm does not resolve this attribute of a {resource['Type']}")

    def _known_by_name(self, logical_id: str, kind_type: str, attribute: str | None) -> str:
        """Ref and Arn of a type esm never calls: its physical name, and the ARN AWS's format gives."""
        name = self.name(logical_id)
        arn_format = ARN_FORMATS.get(kind_type)
        if attribute is None and kind_type not in REF_IS_ARN:
            return name
        if attribute in (None, "Arn") and arn_format is not None:
            physical = self._physical.get(logical_id, "")
            if self.mode == "stack" and physical.startswith("arn:"):
                return physical
            return arn_format.format(partition=self.partition, region=self.region, account=self.account, name=name)
        what = f"{logical_id}.{attribute}" if attribute else f"Ref {logical_id}"
        raise Unresolvable("", f"{what}: esm does not know this attribute of a {kind_type} (esm neither creates nor "
                               "calls it); give the value as a parameter")

    def topic(self, logical_id: str, name: str) -> str:
        client = self.client("sns")
        for page in client.get_paginator("list_topics").paginate():
            for topic in page.get("Topics", []):
                if topic["TopicArn"].rsplit(":", 1)[-1] == name:
                    return str(topic["TopicArn"])
        raise Unresolvable("", f"{logical_id}: topic {name!r} does not exist at {self.where('sns')}")

    def where(self, service: str) -> str:
        return endpoint_override(service, self.aws, os.environ) or f"{service} in {self.region}"

    def call(self, logical_id: str, service: str, operation: str, **kwargs: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client(service), operation)(**kwargs)
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code", "")
            missing = "NonExistent" in code or "NotFound" in code or "DoesNotExist" in code
            hint = "; create it, or pass --create-resources" if missing and self.mode == "endpoints" else ""
            raise Unresolvable("", f"{logical_id}: {operation} at {self.where(service)} failed: "
                                   f"{error.response.get('Error', {}).get('Message') or code}{hint}") from None
        except BotoCoreError as error:
            raise Unresolvable("", f"{logical_id}: cannot reach {self.where(service)}: {error}") from None

    # -- creation ------------------------------------------------------------------------------
    def create_all(self, active: Callable[[str], bool]) -> None:
        """Create every resource of the template that esm can create and whose Condition holds."""
        for logical_id, resource in self.resources.items():
            if isinstance(resource, dict) and _creatable(resource.get("Type")) and active(logical_id):
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
            kind = self._resource(logical_id)[1]
            assert kind is not None and kind.create is not None  # only creatable resources are ensured
            create = kind.create
            create(self, logical_id, name, properties)
        finally:
            self._ensuring.discard(logical_id)
        self._ensured.add(logical_id)
        self.created.append(logical_id)

    def wait(self, logical_id: str, status: Callable[[], str]) -> None:
        deadline = time.monotonic() + ACTIVE_TIMEOUT
        while (state := status()) != "ACTIVE":
            if time.monotonic() > deadline:
                raise Unresolvable("", f"{logical_id} is still {state} after {ACTIVE_TIMEOUT:.0f}s")
            time.sleep(0.1)
