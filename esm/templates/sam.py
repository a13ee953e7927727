"""SAM into CloudFormation, with AWS's own translator (`aws-sam-translator`).

The translator runs offline here; what it would ask AWS for gets a harmless local value: an empty
managed-policy map (IAM roles are never created by esm), a boto3 session that only names a region,
and the pseudo parameters the caller chose. A function's local `CodeUri` (a folder, as `sam build`
reads it) is not an S3 URI the translator accepts, so it is swapped for `s3://esm-local-code/<folder>`
first and comes back as the function's `Code.S3Key`: that is how esm finds each function's code
after Globals are merged, without expanding any SAM itself.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Mapping

from esm.errors import ConfigError, Problem

SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
LOCAL_CODE_BUCKET = "esm-local-code"
SERVERLESS_FUNCTION = "AWS::Serverless::Function"


def is_sam(template: Mapping[str, Any]) -> bool:
    transform = template.get("Transform")
    transforms = transform if isinstance(transform, list) else [transform]
    return SAM_TRANSFORM in transforms


def local_code(code: Any) -> str | None:
    """The local folder a translated function's `Code` points at, or None (S3, image, inline code)."""
    if isinstance(code, dict) and code.get("S3Bucket") == LOCAL_CODE_BUCKET and isinstance(code.get("S3Key"), str):
        return code["S3Key"]
    return None


def _swap_code_uri(properties: dict[str, Any], *, default: str | None) -> None:
    uri = properties.get("CodeUri", default)
    if isinstance(uri, str) and not uri.startswith("s3://"):
        properties["CodeUri"] = f"s3://{LOCAL_CODE_BUCKET}/{uri or '.'}"


def to_cloudformation(template: Mapping[str, Any], parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The translated template. `parameters` holds parameter values and the pseudo parameters
    (AWS::Region, AWS::AccountId, AWS::Partition, AWS::StackName). ConfigError lists what the
    translator refused, with the resource's logical id it names."""
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
