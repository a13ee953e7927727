"""Checks a mapping against the CreateEventSourceMapping input shape that botocore ships.

botocore's ParamValidator reports unknown keys, wrong types, missing required members and
minimums; it deliberately skips maximums, enums and patterns, which we read from the same shape
here. The result is a list of Problems with paths relative to the mapping (`BatchSize`,
`FilterCriteria.Filters[0].Pattern`), so the config loader can prefix them.
"""

from __future__ import annotations

import functools
import re
from typing import Any

import botocore.session
from botocore.model import ServiceModel, Shape
from botocore.validate import ParamValidator

from esm.errors import Problem


@functools.cache
def lambda_model() -> ServiceModel:
    """botocore's Lambda service model, loaded once (config checks and the control API share it)."""
    return botocore.session.get_session().get_service_model("lambda")


@functools.cache
def create_mapping_shape() -> Shape:
    return lambda_model().operation_model("CreateEventSourceMapping").input_shape


def check_role_arn(value: Any, path: str) -> list[Problem]:
    """An execution role ARN, checked against the `RoleArn` shape Lambda's CreateFunction takes."""
    if not isinstance(value, str):
        return [Problem(path, f"must be an IAM role ARN, arn:aws:iam::<account>:role/<name> (got {value!r})")]
    return _check_limits(value, lambda_model().shape_for("RoleArn"), path)


class _Validator(ParamValidator):
    def _type_check_datetime(self, value: Any) -> bool:
        try:
            return bool(super()._type_check_datetime(value))
        except (RuntimeError, OverflowError, OSError):
            # dateutil gives up on strings such as "1e400" with RuntimeError, and numbers past the
            # platform's time_t overflow: not a timestamp either way.
            return False


def check_against_api_shape(request: dict[str, Any]) -> list[Problem]:
    shape = create_mapping_shape()
    problems = [_from_botocore(e) for e in _Validator().validate(request, shape)._errors]
    problems.extend(_check_limits(request, shape, ""))
    return problems


def _path(name: str) -> str:
    return name[1:] if name.startswith(".") else name


# botocore names a map's key as `Endpoints (key: 0)`; esm's paths say `Endpoints.0`.
_MAP_KEY = re.compile(r"(.*) \(key: (.*)\)", re.DOTALL)


def _from_botocore(error: tuple[str, str, dict[str, Any]]) -> Problem:
    reason, name, extra = error
    key = _MAP_KEY.fullmatch(_path(name))
    if key is not None:
        problem = _from_botocore((reason, f"{key.group(1)}.{key.group(2)}", extra))
        return Problem(problem.path, f"the key {problem.message}")
    path = _path(name)
    if reason == "unknown field":
        where = f"{path}." if path else ""
        return Problem(
            f"{where}{extra['unknown_param']}",
            "unknown field; valid fields are " + ", ".join(extra["valid_names"]),
        )
    if reason == "missing required field":
        where = f"{path}." if path else ""
        return Problem(f"{where}{extra['required_name']}", "is required")
    if reason == "invalid type":
        wanted = " or ".join(t.split("'")[1] if "'" in t else t for t in extra["valid_types"])
        return Problem(path, f"must be of type {wanted}, got {type(extra['param']).__name__} {extra['param']!r}")
    if reason == "invalid range":
        return Problem(path, f"must be at least {extra['min_allowed']} (got {extra['param']})")
    if reason == "invalid length":
        return Problem(path, f"must have at least {extra['min_allowed']} item(s) or character(s)")
    return Problem(path, reason)


def _check_limits(value: Any, shape: Shape, path: str) -> list[Problem]:
    """Maximums, enums and patterns, plus booleans posing as integers (YAML `true` is an int in Python)."""
    problems: list[Problem] = []
    kind = shape.type_name
    meta = shape.metadata
    if kind == "structure" and isinstance(value, dict):
        for key, member in shape.members.items():
            if key in value:
                problems.extend(_check_limits(value[key], member, f"{path}.{key}" if path else key))
    elif kind == "list" and isinstance(value, (list, tuple)):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(Problem(path, f"must have at most {meta['max']} item(s) (got {len(value)})"))
        for i, item in enumerate(value):
            problems.extend(_check_limits(item, shape.member, f"{path}[{i}]"))
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            problems.extend(_check_limits(item, shape.value, f"{path}.{key}"))
    elif kind in ("integer", "long"):
        if isinstance(value, bool):
            problems.append(Problem(path, f"must be of type int, got bool {value!r}"))
        elif isinstance(value, int) and "max" in meta and value > meta["max"]:
            problems.append(Problem(path, f"must be at most {meta['max']} (got {value})"))
    elif kind == "string" and isinstance(value, str):
        if "max" in meta and len(value) > meta["max"]:
            problems.append(Problem(path, f"must be at most {meta['max']} characters (got {len(value)})"))
        if shape.enum and value not in shape.enum:
            problems.append(enum_problem(path, value, shape.enum))
        pattern = meta.get("pattern")
        if pattern and not _full_match(pattern, value):
            problems.append(Problem(path, f"does not match the API pattern {pattern}"))
    return problems


# The order AWS's message lists an enum's values in, where it is not the model's (behaviour §10).
AWS_ENUM_ORDER = {"StartingPosition": ("LATEST", "AT_TIMESTAMP", "TRIM_HORIZON")}


def enum_problem(path: str, value: str, allowed: list[str]) -> Problem:
    """A value outside its enum, in the words AWS's request validation uses (a ValidationException)."""
    aws_path = ".".join(part[:1].lower() + part[1:] for part in re.sub(r"\[\d+\]", "", path).split("."))
    order = AWS_ENUM_ORDER.get(path, tuple(allowed))
    return Problem(path, f"1 validation error detected: Value '{value}' at '{aws_path}' failed to satisfy constraint: "
                         f"Member must satisfy enum value set: [{', '.join(order)}]", code="ValidationException")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:  # a Java-only construct: the API enforces it, we cannot
        return None


def _full_match(pattern: str, value: str) -> bool:
    compiled = _compiled(pattern)
    return compiled is None or compiled.fullmatch(value) is not None
