"""A template into the Config `esm run --config` would build (issue 16.1).

`load_template(options)` reads the template, turns SAM into CloudFormation (esm.templates.sam),
resolves every `AWS::Lambda::EventSourceMapping` whose Condition holds (esm.templates.intrinsics,
with names and ARNs from esm.templates.resources), places each function (esm.templates.functions),
merges the optional `--config` file (its `functions:` override single functions; its `aws:`,
`checkpoints:`, `metrics:` ... apply as in `esm run --config`) and hands the result to
`esm.config.loading.build_config`, so the mapping properties get exactly the checks a config file gets.
Every problem comes back as one ConfigError whose paths start with the resource's logical id
(`OrdersFunction.Properties.Events.Paid.Properties.BatchSize` for a SAM event,
`OrdersMapping.Properties.BatchSize` for a plain mapping).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

from esm import registry
from esm.arns import NOT_SERVED, parse_arn
from esm.config.loading import build_config, parse_raw
from esm.config.settings import AwsSettings, Config
from esm.errors import ConfigError, Problem
from esm.templates import functions as fn
from esm.templates.intrinsics import Resolver, Unresolvable
from esm.templates.loader import read_template
from esm.templates.resources import Resources, endpoint_override, services_to_create
from esm.templates.sam import SAM_TRANSFORM, SERVERLESS_FUNCTION, is_sam, local_code, to_cloudformation, uses_sam

MAPPING = "AWS::Lambda::EventSourceMapping"
FUNCTION = "AWS::Lambda::Function"
DEFAULT_ACCOUNT = "000000000000"  # the local backends' account (ElasticMQ's, kinesis-mock's)
DEFAULT_STACK_NAME = "esm"
# SAM event types of the sources esm does not serve yet, and the SAM name of their EventSourceArn
# (each served source's descriptor names its own: sam_source_property()).
UNSERVED_SAM_PROPERTY = {"MQ": "Broker", "DocumentDB": "Cluster"}
SKIP_HINT = "(--skip-unsupported runs the template's other mappings and leaves this source's records untouched)"


@dataclass(frozen=True)
class TemplateOptions:
    template: str
    parameter_overrides: Mapping[str, str] = field(default_factory=dict)
    config: str | None = None
    stack: str | None = None
    create_resources: bool = False
    functions_endpoint: str | None = None
    functions_url: str | None = None
    skip_unsupported: bool = False
    offline: bool = False  # `esm validate --template`: no network at all


@dataclass(frozen=True)
class Row:
    """One line of the start-up table."""

    mapping: str
    function: str
    source: str
    settings: str
    runs: str


@dataclass(frozen=True)
class LoadedTemplate:
    config: Config
    rows: tuple[Row, ...]
    skipped: tuple[Problem, ...]
    placements: Mapping[str, fn.Placement]
    environment: Mapping[str, str]
    created: tuple[str, ...] = ()

    def install(self) -> None:
        """Make in-process functions importable and set their environment variables."""
        fn.install(self.placements, self.environment)


def parse_parameter_overrides(values: list[str]) -> dict[str, str]:
    """`Key=Value` (as `sam deploy` spells it) or `ParameterKey=K,ParameterValue=V` (as the AWS CLI does)."""
    result: dict[str, str] = {}
    for value in values:
        match = re.fullmatch(r"ParameterKey=([^,]+),ParameterValue=(.*)", value)
        if match is None:
            match = re.fullmatch(r"([A-Za-z0-9:]+)=(.*)", value, re.DOTALL)
        if match is None:
            raise ConfigError([Problem("--parameter-overrides", f"{value!r} is not Key=Value")])
        result[match.group(1)] = match.group(2)
    return result


@dataclass
class _Mapping:
    logical_id: str
    label: str  # where the mapping is written: a SAM event, or the mapping resource
    sam_event_type: str | None
    request: dict[str, Any]
    function: str
    unserved: str | None = None


def load_template(options: TemplateOptions, environ: Mapping[str, str] | None = None) -> LoadedTemplate:
    environ = os.environ if environ is None else environ
    if not options.offline:
        # Every problem that needs no service first: nothing is looked up or created for a template
        # that would be refused anyway.
        load_template(dataclasses.replace(options, offline=True, create_resources=False), environ)
    problems: list[Problem] = []
    file_raw = _read_config_file(options.config)
    overrides = file_raw.pop("functions", None) or {}
    if not isinstance(overrides, dict):
        raise ConfigError([Problem(f"{options.config}: functions", "must be a mapping of names to function targets")])
    aws = _aws_settings(file_raw.get("aws"))
    template, sam_events, parameters, pseudo = _cloudformation(options, aws, environ, problems)
    resources_raw: dict[str, Any] = template.get("Resources") or {}
    mode = "offline" if options.offline else "stack" if options.stack else "endpoints"
    if options.create_resources:
        _check_create(options, resources_raw, aws, environ)
    try:
        resources = Resources(resources_raw, mode=mode, region=str(pseudo["AWS::Region"]),
                              account=str(pseudo["AWS::AccountId"]), partition=str(pseudo["AWS::Partition"]),
                              aws=aws, stack=options.stack, create=options.create_resources,
                              stack_name=str(pseudo["AWS::StackName"]))
    except Unresolvable as error:
        raise ConfigError([Problem(error.path, error.message)]) from None
    try:
        return _build(options, template, sam_events, parameters, pseudo, resources, file_raw, overrides, problems)
    finally:
        resources.close()


def _cloudformation(options: TemplateOptions, aws: AwsSettings, environ: Mapping[str, str],
                    problems: list[Problem]) -> tuple[dict[str, Any], dict[str, tuple[str, str]], dict[str, Any],
                                                      dict[str, Any]]:
    """The template as CloudFormation, where SAM events are in it, parameter values and pseudo parameters."""
    template = read_template(options.template)
    parameters = {k: v for k, v in options.parameter_overrides.items() if not k.startswith("AWS::")}
    pseudo: dict[str, Any] = {
        "AWS::Region": aws.region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        "AWS::AccountId": DEFAULT_ACCOUNT, "AWS::Partition": "aws", "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": options.stack or DEFAULT_STACK_NAME, "AWS::NotificationARNs": [],
    }
    pseudo.update({k: v for k, v in options.parameter_overrides.items() if k.startswith("AWS::")})
    for name in parameters:
        if name not in (template.get("Parameters") or {}):
            problems.append(Problem("--parameter-overrides", f"{name} is not a parameter of this template"))

    sam_events: dict[str, tuple[str, str]] = {}  # generated mapping id -> (SAM path, event type)
    if not is_sam(template) and uses_sam(template):
        raise ConfigError([Problem("Transform", f"is missing: the template has AWS::Serverless::* resources, which only "
                                                f"the SAM transform understands; add `Transform: {SAM_TRANSFORM}`")])
    if is_sam(template):
        sam_events = _sam_events(template)
        try:
            template = to_cloudformation(template, {**parameters, **pseudo}, Path(options.template).resolve().parent)
        except ConfigError as error:  # the translator names a mapping by the id it generates for the event
            raise ConfigError([dataclasses.replace(p, path=sam_events.get(p.path, (p.path, None))[0])
                               for p in error.problems]) from None
    return template, sam_events, parameters, pseudo


def _build(options: TemplateOptions, template: dict[str, Any], sam_events: dict[str, tuple[str, str]],
           parameters: dict[str, Any], pseudo: dict[str, Any], resources: Resources, file_raw: dict[str, Any],
           overrides: dict[str, Any], problems: list[Problem]) -> LoadedTemplate:
    """Resolve the mappings and functions and check them as esm.config.loading checks a file."""
    resources_raw = resources.resources
    template_dir = str(Path(options.template).resolve().parent)
    pseudo["AWS::Region"], pseudo["AWS::AccountId"] = resources.region, resources.account
    resolver = Resolver(template, parameters, pseudo, resources.attribute)
    resources.value = resolver.value

    def active(logical_id: str) -> bool:
        condition = (resources_raw.get(logical_id) or {}).get("Condition")
        if condition is None:
            return True
        try:
            return resolver.condition(str(condition), f"{logical_id}.Condition")
        except Unresolvable as error:
            problems.append(Problem(error.path, error.message))
            return False

    if options.create_resources:
        try:
            resources.create_all(active)
        except Unresolvable as error:
            raise ConfigError([Problem(error.path or "--create-resources", error.message)]) from None

    function_ids = {lid for lid, r in resources_raw.items() if isinstance(r, dict) and r.get("Type") == FUNCTION}
    mappings: list[_Mapping] = []
    for logical_id, resource in resources_raw.items():
        if not (isinstance(resource, dict) and resource.get("Type") == MAPPING) or not active(logical_id):
            continue
        sam_path, sam_type = sam_events.get(logical_id, (logical_id, None))
        built = _mapping(logical_id, sam_path, sam_type, resource, resolver, resources, function_ids, problems)
        if built is not None:
            mappings.append(built)

    skipped: list[Problem] = []
    if options.skip_unsupported:
        for mapping in [m for m in mappings if m.unserved]:
            skipped.append(Problem(mapping.label, f"skipped: {mapping.unserved} is not served by esm yet"))
            mappings.remove(mapping)

    function_options = fn.FunctionOptions(endpoint=options.functions_endpoint, url_pattern=options.functions_url,
                                          overrides=overrides, stack=bool(options.stack))
    placements: dict[str, fn.Placement] = {}
    for name in dict.fromkeys(m.function for m in mappings):
        placement = _place(name, resources_raw, function_ids, resolver, resources, template_dir, function_options,
                           problems)
        if placement is not None:
            placements[name] = placement
            if options.offline:
                fn.check_code(name, placement, problems)
    environment = fn.merged_environment(placements, problems)
    # A mapping whose function has no place was reported with the function; esm.config.loading need not repeat it.
    mappings = [m for m in mappings if m.function in placements]
    if not mappings and not problems:
        problems.append(Problem(options.template, "has no AWS::Lambda::EventSourceMapping (nor SAM event of type "
                                                  "SQS, Kinesis, DynamoDB, MSK or SelfManagedKafka) to run"))

    raw: dict[str, Any] = dict(file_raw)
    raw["functions"] = {**{k: v for k, v in overrides.items() if k not in placements},
                        **{k: dict(p.spec) for k, p in placements.items()}}
    raw["event_source_mappings"] = [{**m.request, "esm": {"name": m.logical_id}} for m in mappings]
    if options.functions_endpoint:
        raw["aws"] = {**(raw.get("aws") or {})}
        raw["aws"]["endpoints"] = {**(raw["aws"].get("endpoints") or {}), "lambda": options.functions_endpoint}
    base_dir = str(Path(options.config).resolve().parent) if options.config else template_dir
    config: Config | None = None
    if mappings and raw["functions"]:  # else esm.config.loading would only add "functions: is required" to the problems
        try:
            config = build_config(raw, base_dir=base_dir)
        except ConfigError as error:
            problems.extend(_locate(p, mappings, overrides, options.config) for p in error.problems)
    if problems:
        raise ConfigError(problems)
    assert config is not None
    rows = tuple(_row(m, settings, placements) for m, settings in zip(mappings, config.mappings))
    return LoadedTemplate(config=config, rows=rows, skipped=tuple(skipped),
                          placements=MappingProxyType(placements), environment=MappingProxyType(environment),
                          created=tuple(resources.created))


# -- the parts ---------------------------------------------------------------------------------
def _read_config_file(path: str | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([Problem(path, f"cannot read: {error.strerror or error}")]) from None
    try:
        raw = parse_raw(text)
    except ConfigError as error:
        raise ConfigError([Problem(f"{path}: {p.path}" if p.path else path, p.message) for p in error.problems]) from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ConfigError([Problem(path, "must be a mapping (functions:, aws:, checkpoints:, metrics: ...)")])
    if "event_source_mappings" in raw:
        raise ConfigError([Problem(f"{path}: event_source_mappings",
                                   "comes from the template with --template; remove it from this file")])
    return dict(raw)


def _aws_settings(raw: Any) -> AwsSettings:
    """What resource lookups need before esm.config.loading checks the block (it reports any problem)."""
    if not isinstance(raw, dict):
        return AwsSettings()
    region = raw.get("region") if isinstance(raw.get("region"), str) else None
    endpoints = raw.get("endpoints") if isinstance(raw.get("endpoints"), dict) else {}
    return AwsSettings(region=region, endpoints=MappingProxyType({str(k): str(v) for k, v in endpoints.items()}))


def _sam_events(template: Mapping[str, Any]) -> dict[str, tuple[str, str]]:
    """The mapping ids the translator generates (function id + event id) and where their events are."""
    events: dict[str, tuple[str, str]] = {}
    for function_id, resource in (template.get("Resources") or {}).items():
        if not (isinstance(resource, dict) and resource.get("Type") == SERVERLESS_FUNCTION):
            continue
        for event_id, event in ((resource.get("Properties") or {}).get("Events") or {}).items():
            if isinstance(event, dict) and event.get("Type") in sam_source_property():
                events[f"{function_id}{event_id}"] = (f"{function_id}.Properties.Events.{event_id}", event["Type"])
    return events


def _check_create(options: TemplateOptions, resources: Mapping[str, Any], aws: AwsSettings,
                  environ: Mapping[str, str]) -> None:
    if options.stack:
        raise ConfigError([Problem("--create-resources", "cannot be used with --stack (the stack has its resources)")])
    missing = [s for s in services_to_create(resources) if not endpoint_override(s, aws, environ)]
    if missing:
        raise ConfigError([Problem("--create-resources", f"refused: {service} has no endpoint override (aws.endpoints."
                                   f"{service} in --config, AWS_ENDPOINT_URL_{service.upper()} or AWS_ENDPOINT_URL); "
                                   "esm never creates resources in a real AWS account") for service in missing])


def sam_source_property() -> dict[str, str]:
    """SAM event types that become event source mappings -> the SAM name of their EventSourceArn."""
    served = {event: name for d in registry.descriptors() for event, name in d.templates.sam_events}
    return {**UNSERVED_SAM_PROPERTY, **served}


def _sam_property(sam_type: str | None, key: str) -> str:
    if sam_type and key == "EventSourceArn":
        return sam_source_property()[sam_type]
    return key


def _property_path(mapping_label: str, sam_type: str | None, rest: str) -> str:
    """`BatchSize`, `EventSourceArn.Fn::GetAtt` ... as a path in the template file."""
    if not rest:
        return mapping_label
    match = re.match(r"([^.\[]+)(.*)", rest, re.DOTALL)
    assert match is not None
    return f"{mapping_label}.Properties.{_sam_property(sam_type, match.group(1))}{match.group(2)}"


def _mapping(logical_id: str, label: str, sam_type: str | None, resource: Mapping[str, Any], resolver: Resolver,
             resources: Resources, function_ids: set[str], problems: list[Problem]) -> _Mapping | None:
    properties = resource.get("Properties") or {}
    if not isinstance(properties, dict):
        problems.append(Problem(f"{label}.Properties", "must be a mapping"))
        return None
    request: dict[str, Any] = {}
    failed = False
    # A Ref or GetAtt to a function of the template is that function: nothing to look up.
    direct = _referenced_function(properties.get("FunctionName"), resources.resources)
    for key, node in properties.items():
        if key == "FunctionName" and direct is not None:
            continue
        try:
            value = resolver.value(node, f"{logical_id}.Properties.{key}")
        except Unresolvable as error:
            path = error.path
            prefix = f"{logical_id}.Properties."
            if path.startswith(prefix):
                path = _property_path(label, sam_type, path[len(prefix):])
            problems.append(Problem(path, error.message))
            failed = True
            continue
        if value is not None:
            request[key] = value
    if failed:
        return None
    function = direct or _function_by_name(request.get("FunctionName"), resources, function_ids)
    if function is None:
        problems.append(Problem(_property_path(label, sam_type, "FunctionName"), "is required"))
        return None
    request["FunctionName"] = function
    _to_api_spelling(request)
    arn = parse_arn(str(request.get("EventSourceArn", "")))
    served = arn is not None and any(arn.service in d.arn_services for d in registry.descriptors())
    unserved = NOT_SERVED.get(arn.service) if arn is not None and not served else None
    return _Mapping(logical_id, label, sam_type, request, function, unserved)


# AWS::Lambda::EventSourceMapping properties that CloudFormation spells differently from the
# CreateEventSourceMapping API (the rest of its resource schema uses the API's names).
CLOUDFORMATION_SPELLINGS: Mapping[str, str] = MappingProxyType({"KmsKeyArn": "KMSKeyArn"})


def _to_api_spelling(request: dict[str, Any]) -> None:
    """CloudFormation's spellings into the API's: the renamed properties above, the bootstrap
    servers' key inside SelfManagedEventSource, and Tags as a Key/Value list."""
    for cloudformation, api in CLOUDFORMATION_SPELLINGS.items():
        if cloudformation in request and api not in request:
            request[api] = request.pop(cloudformation)
    endpoints = (request.get("SelfManagedEventSource") or {}).get("Endpoints")
    if isinstance(endpoints, dict) and "KafkaBootstrapServers" in endpoints:
        endpoints["KAFKA_BOOTSTRAP_SERVERS"] = endpoints.pop("KafkaBootstrapServers")
    tags = request.get("Tags")
    if isinstance(tags, list) and all(isinstance(t, dict) and set(t) == {"Key", "Value"} for t in tags):
        request["Tags"] = {t["Key"]: t["Value"] for t in tags}


def _referenced_function(node: Any, resources: Mapping[str, Any], depth: int = 0) -> str | None:
    """The logical id of a template function named by `Ref` or `Fn::GetAtt [Id, Arn]`, through an
    alias or version of it (SAM's AutoPublishAlias points mappings at one), else None."""
    if not (isinstance(node, dict) and len(node) == 1) or depth > 3:
        return None
    (name, argument), = node.items()
    if name == "Fn::GetAtt":
        argument = argument.split(".")[0] if isinstance(argument, str) else \
            argument[0] if isinstance(argument, list) and argument else None
    elif name != "Ref":
        return None
    resource = resources.get(argument) if isinstance(argument, str) else None
    kind = resource.get("Type") if isinstance(resource, dict) else None
    if kind == FUNCTION:
        return str(argument)
    if kind in ("AWS::Lambda::Alias", "AWS::Lambda::Version"):
        return _referenced_function((resource.get("Properties") or {}).get("FunctionName"), resources, depth + 1)
    return None


def _function_by_name(value: Any, resources: Resources, function_ids: set[str]) -> str | None:
    """A template function's logical id from its name or ARN, else the name as given (a function
    outside the template, which --config or --functions-endpoint must place)."""
    if not isinstance(value, str) or not value:
        return None
    for logical_id in function_ids:
        try:
            if value in (resources.name(logical_id), resources.attribute(logical_id, "Arn")):
                return logical_id
        except Unresolvable:
            continue
    return value


def _place(name: str, resources_raw: Mapping[str, Any], function_ids: set[str], resolver: Resolver,
           resources: Resources, template_dir: str, options: fn.FunctionOptions,
           problems: list[Problem]) -> fn.Placement | None:
    if name not in function_ids:
        if isinstance(options.overrides.get(name), dict) and set(options.overrides[name]) & set(fn.TARGET_KEYS):
            return fn.Placement(spec=options.overrides[name], where="--config functions:")
        if options.endpoint:
            return fn.Placement(spec={"lambda": name}, where=f"Invoke API at {options.endpoint}")
        if options.url_pattern:
            url = options.url_pattern.replace("{function}", name)
            return fn.Placement(spec={"url": url}, where=url)
        problems.append(Problem(name, "is not a function of this template: give it an entry under functions: in "
                                      "--config, or pass --functions-endpoint URL"))
        return None
    raw = resources_raw[name].get("Properties") or {}
    properties: dict[str, Any] = {}
    for key in ("Runtime", "Handler", "Timeout"):
        if key in raw:
            try:
                properties[key] = resolver.value(raw[key], f"{name}.Properties.{key}")
            except Unresolvable as error:
                problems.append(Problem(error.path, error.message))
                return None

    def environment() -> dict[str, Any] | None:
        """Resolved only for a function esm runs in-process: another's environment is its own business."""
        try:
            return resolver.value(raw.get("Environment") or {}, f"{name}.Properties.Environment")
        except Unresolvable as error:
            problems.append(Problem(error.path, error.message))
            return None
    code = raw.get("Code")
    # SAM's CodeUri comes back as esm's placeholder bucket; a plain template may name a folder or a
    # .zip, as `aws cloudformation package` reads `Code: ./src` before uploading it.
    folder = local_code(code) or (code if isinstance(code, str) else None)
    code_dir = fn.local_folder(Path(template_dir) / folder, f"{name}.Properties.Code", problems) \
        if folder is not None else None
    layers = [fn.local_folder(Path(template_dir) / path, f"{name}.Properties.Layers", problems)
              for path in _local_layers(raw.get("Layers"), resources_raw)]
    physical = resources.physical_id(name) if resources.mode == "stack" else None
    placement = fn.place(name, properties, code_dir, physical, options, problems, environment)
    if placement is not None and placement.code_dir is not None:
        placement = dataclasses.replace(placement, layer_dirs=tuple(d for d in layers if d is not None))
    return placement


def _local_layers(layers: Any, resources_raw: Mapping[str, Any]) -> list[str]:
    """The local content paths of the template's own layers that a function lists (`!Ref Layer`);
    layers elsewhere (ARNs) are not esm's to fetch."""
    paths = []
    for item in layers if isinstance(layers, list) else []:
        logical_id = item.get("Ref") if isinstance(item, dict) else None
        layer = resources_raw.get(logical_id) if isinstance(logical_id, str) else None
        if isinstance(layer, dict) and layer.get("Type") == "AWS::Lambda::LayerVersion":
            path = local_code((layer.get("Properties") or {}).get("Content"))
            if path is not None:
                paths.append(path)
    return paths


def _locate(problem: Problem, mappings: list[_Mapping], overrides: Mapping[str, Any], config: str | None) -> Problem:
    """A problem esm.config.loading found, told where it is in the template (or in the --config file)."""
    match = re.match(r"event_source_mappings\[(\d+)\]\.?(.*)", problem.path)
    if match:
        mapping = mappings[int(match.group(1))]
        path = _property_path(mapping.label, mapping.sam_event_type, match.group(2))
        # Another mapping named in the message (a clash) is named as the template names it.
        message = re.sub(r"event_source_mappings\[(\d+)\]", lambda m: mappings[int(m.group(1))].label, problem.message)
        message = f"{message} {SKIP_HINT}" if mapping.unserved else message
        return dataclasses.replace(problem, path=path, message=message)
    match = re.match(r"functions\.([^.]+)\.?(.*)", problem.path)
    if match and match.group(1) not in overrides:
        key = {"timeout": "Timeout", "handler": "Handler"}.get(match.group(2), "")
        return Problem(f"{match.group(1)}.Properties.{key}" if key else match.group(1), problem.message)
    return dataclasses.replace(problem, path=f"{config}: {problem.path}" if config else problem.path)


def _row(mapping: _Mapping, settings: Any, placements: Mapping[str, fn.Placement]) -> Row:
    request = settings.request
    parts = [f"batch {request.get('BatchSize', '-')}"]
    if settings.batching_window:
        parts.append(f"window {settings.batching_window:g}s")
    filters = (request.get("FilterCriteria") or {}).get("Filters") or []
    if filters:
        parts.append(f"{len(filters)} filter(s)")
    if "ReportBatchItemFailures" in (request.get("FunctionResponseTypes") or []):
        parts.append("partial batch responses")
    if request.get("BisectBatchOnFunctionError"):
        parts.append("bisect")
    if "MaximumRetryAttempts" in request:
        parts.append(f"retries {request['MaximumRetryAttempts']}")
    destination = ((request.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    if destination:
        parts.append(f"on failure -> {destination.rsplit(':', 1)[-1]}")
    placement = placements.get(mapping.function)
    arn = parse_arn(settings.source_id)
    label = registry.descriptor(settings.source).templates.label
    if label is not None:
        source = label(arn, settings.source_id)
    else:
        source = arn.resource.rsplit("/", 1)[-1] if arn is not None else settings.source_id
    return Row(mapping=mapping.logical_id, function=mapping.function, source=f"{settings.source} {source}",
               settings=", ".join(parts), runs=placement.where if placement else "--config functions:")
