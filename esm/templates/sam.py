"""SAM into CloudFormation, with AWS's own translator (`aws-sam-translator`).

The translator runs offline here; what it would ask AWS for gets a harmless local value: an empty
managed-policy map (IAM roles are never created by esm), a boto3 session that only names a region,
and the pseudo parameters the caller chose. A function's local `CodeUri` (a folder or a .zip, as
`sam build` reads it) and a layer's local `ContentUri` are not S3 URIs the translator accepts, so
they are swapped for `s3://esm-local-code/<path>` first and come back as `Code.S3Key` and
`Content.S3Key`: that is how esm finds each function's code and layers after Globals are merged,
without expanding any SAM itself. An API's local `DefinitionUri` and an `AWS::Include` of a local
file are read from disk before translation, as `sam build` and `sam deploy` would upload them.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Mapping

import yaml

from esm.errors import ConfigError, Problem

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
LOCAL_CODE_BUCKET = "esm-local-code"
SERVERLESS_FUNCTION = "AWS::Serverless::Function"
SERVERLESS_LAYER = "AWS::Serverless::LayerVersion"
SERVERLESS_APIS = ("AWS::Serverless::Api", "AWS::Serverless::HttpApi")


def is_sam(template: Mapping[str, Any]) -> bool:
    transform = template.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in transforms


def local_code(code: Any) -> str | None:
    """The local folder a translated function's `Code` points at, or None (S3, image, inline code)."""
    if isinstance(code, dict) and code.get("S3Bucket") == LOCAL_CODE_BUCKET and isinstance(code.get("S3Key"), str):
        return code["S3Key"]
    return None


def uses_sam(template: Mapping[str, Any]) -> bool:
    """Whether any resource is of a SAM type (`AWS::Serverless::*`), which only the transform understands."""
    return any(isinstance(r, dict) and str(r.get("Type", "")).startswith("AWS::Serverless::")
               for r in (template.get("Resources") or {}).values())


def _swap_code_uri(properties: dict[str, Any], *, default: str | None, key: str = "CodeUri") -> None:
    uri = properties.get(key, default)
    if isinstance(uri, str) and not uri.startswith("s3://"):
        properties[key] = f"s3://{LOCAL_CODE_BUCKET}/{uri or '.'}"


def _read_local(path: str, base: Path, where: str) -> Any:
    """A local YAML or JSON file a template points at (DefinitionUri, AWS::Include's Location)."""
    from esm.templates.loader import TemplateLoader

    file = (base / path).resolve()
    try:
        return yaml.load(file.read_text(encoding="utf-8"), Loader=TemplateLoader)  # noqa: S506 - SafeLoader
    except OSError as error:
        raise ConfigError([Problem(where, f"cannot read {file}: {error.strerror or error}")]) from None
    except yaml.YAMLError as error:
        raise ConfigError([Problem(where, f"{file} is not valid YAML or JSON: {error}")]) from None


def _includes(node: Any, base: Path, where: str) -> Any:
    """`Fn::Transform: {Name: AWS::Include, Parameters: {Location: <local file>}}` replaced by the file."""
    if isinstance(node, list):
        return [_includes(item, base, f"{where}[{i}]") for i, item in enumerate(node)]
    if not isinstance(node, dict):
        return node
    transform = node.get("Fn::Transform") if len(node) == 1 else None
    if isinstance(transform, dict) and transform.get("Name") == "AWS::Include":
        location = (transform.get("Parameters") or {}).get("Location")
        if isinstance(location, str) and not location.startswith("s3://"):
            return _includes(_read_local(location, base, f"{where}.Fn::Transform"), base, where)
    return {key: _includes(value, base, f"{where}.{key}") for key, value in node.items()}


def _inline_definitions(resources: dict[str, Any], base: Path) -> None:
    for logical_id, resource in resources.items():
        properties = resource.get("Properties") if isinstance(resource, dict) else None
        if not (isinstance(properties, dict) and resource.get("Type") in SERVERLESS_APIS):
            continue
        uri = properties.get("DefinitionUri")
        if isinstance(uri, str) and not uri.startswith("s3://") and "DefinitionBody" not in properties:
            properties["DefinitionBody"] = _read_local(uri, base, f"{logical_id}.Properties.DefinitionUri")
            del properties["DefinitionUri"]
        if "DefinitionBody" in properties:
            properties["DefinitionBody"] = _includes(properties["DefinitionBody"], base,
                                                     f"{logical_id}.Properties.DefinitionBody")


def to_cloudformation(template: Mapping[str, Any], parameters: Mapping[str, Any], base: Path = Path(".")) -> dict[str, Any]:
    """The translated template. `parameters` holds parameter values and the pseudo parameters
    (AWS::Region, AWS::AccountId, AWS::Partition, AWS::StackName); `base` is the template's folder,
    which local paths are relative to. ConfigError lists what the translator refused, with the
    resource's logical id it names."""
    import boto3
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.model.exceptions import InvalidDocumentException, InvalidTemplateException
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(dict(template))
    globals_function = ((sam.get("Globals") or {}).get("Function") or {}) if isinstance(sam.get("Globals"), dict) else {}
    if isinstance(globals_function, dict) and "CodeUri" in globals_function:
        _swap_code_uri(globals_function, default=None)
    for resource in (sam.get("Resources") or {}).values():
        if not (isinstance(resource, dict) and resource.get("Type") == SERVERLESS_FUNCTION):
            continue
        properties = resource.setdefault("Properties", {})
        if not isinstance(properties, dict):
            continue
        has_other_code = any(key in properties for key in ("InlineCode", "ImageUri")) or "CodeUri" in globals_function
        # `sam build` reads a function without CodeUri from the template's folder; so does esm.
        _swap_code_uri(properties, default=None if has_other_code else ".")
    for resource in (sam.get("Resources") or {}).values():
        if isinstance(resource, dict) and resource.get("Type") == SERVERLESS_LAYER and \
                isinstance(resource.get("Properties"), dict):
            _swap_code_uri(resource["Properties"], default=None, key="ContentUri")
    _inline_definitions(sam.get("Resources") or {}, base)
    session = boto3.session.Session(region_name=str(parameters["AWS::Region"]))
    # The translator's usage metrics go nowhere; publishing them keeps it from warning about them.
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translator = Translator({}, Parser(), boto_session=session, metrics=metrics)
    try:
        return translator.translate(sam, parameter_values=dict(parameters), get_managed_policy_map=dict)
    except (InvalidDocumentException, InvalidTemplateException) as error:
        causes = getattr(error, "causes", None) or [error]
        raise ConfigError([_problem(getattr(cause, "message", str(cause))) for cause in causes]) from None
    finally:
        metrics.publish()


def _problem(message: str) -> Problem:
    """The translator says `Resource with id [X] is invalid. ...`: lead with the logical id."""
    match = re.match(r"Resource with id \[(\w+)\] is invalid\.\s*(.*)", message, re.DOTALL)
    if match:
        return Problem(match.group(1), f"SAM: {match.group(2)}")
    return Problem("", f"SAM: {message}")
