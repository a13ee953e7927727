"""Lambda's REST-JSON protocol for the event source mapping operations, read from botocore's model.

Routes (method and URI template), where each input member travels (URI, query string or JSON
body), the output shapes and the error shapes with their HTTP statuses all come from the Lambda
service model botocore ships; nothing here lists fields by hand. `parse` turns a request into the
operation's parameters and rejects what the input shape does not allow; `render` keeps only the
members of the output shape (timestamps as epoch seconds, as rest-json sends them); `ApiError`
is one of the operation's modeled errors, answered with `x-amzn-ErrorType` and a JSON body.
"""

from __future__ import annotations

import datetime
import functools
import re
from dataclasses import dataclass
from typing import Any, Mapping

from botocore.model import OperationModel, Shape
from botocore.validate import ParamValidator

from esm.config.api_shape import lambda_model

OPERATIONS = ("CreateEventSourceMapping", "GetEventSourceMapping", "UpdateEventSourceMapping",
              "DeleteEventSourceMapping", "ListEventSourceMappings", "TagResource", "UntagResource", "ListTags")


@dataclass(frozen=True)
class Route:
    operation: OperationModel
    method: str
    pattern: re.Pattern[str]


@functools.cache
def routes() -> tuple[Route, ...]:
    found = []
    for name in OPERATIONS:
        operation = lambda_model().operation_model(name)
        template = operation.http["requestUri"].rstrip("/")
        # `{UUID}` is one path segment; clients may add a trailing slash (the CLI posts to `.../`).
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        found.append(Route(operation, operation.http["method"], re.compile(f"^{regex}/?$")))
    return tuple(found)


class ApiError(Exception):
    """A modeled Lambda error: its HTTP status and message member come from the error shape."""

    def __init__(self, code: str, message: str, *, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        shape = _error_shape(code)
        self.status = status or (shape.metadata.get("error", {}).get("httpStatusCode", 400) if shape else 400)
        self.modeled = shape is not None
        # The model names the member `message` for some errors and `Message` for others.
        self.message_member = next((m for m in (shape.members if shape else ()) if m.lower() == "message"), "message")

    def body(self) -> dict[str, Any]:
        # Lambda's own errors say who is at fault; request validation (ValidationException) does not.
        if not self.modeled:
            return {self.message_member: self.message}
        return {"Type": "Service" if self.status >= 500 else "User", self.message_member: self.message}


def _error_shape(code: str) -> Shape | None:
    try:
        return lambda_model().shape_for(code)
    except Exception:  # noqa: BLE001 - not a modeled error (the SigV4 ones): plain message
        return None


def match_route(method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    """The route for `method path`, with its URI parameters; None when no operation lives there.
    A path that exists under another method is reported by `allowed_methods`."""
    for route in routes():
        found = route.pattern.match(path)
        if found and route.method == method:
            return route, found.groupdict()
    return None


def allowed_methods(path: str) -> list[str]:
    return [route.method for route in routes() if route.pattern.match(path)]


def parse(route: Route, uri: Mapping[str, str], query: Mapping[str, str], body: Any) -> dict[str, Any]:
    """The operation's parameters from URI, query and JSON body, checked against its input shape."""
    shape = route.operation.input_shape
    params: dict[str, Any] = {}
    if body is not None and not isinstance(body, dict):
        raise ApiError("InvalidParameterValueException", "The request body must be a JSON object.")
    located = {name: member for name, member in shape.members.items() if member.serialization.get("location")}
    for name, value in (body or {}).items():
        if name in located or name not in shape.members:
            raise ApiError("InvalidParameterValueException",
                           f"Unknown parameter in the request body: {name!r}; valid parameters are "
                           + ", ".join(n for n in shape.members if n not in located))
        params[name] = value
    for name, member in located.items():
        where, wire = member.serialization["location"], member.serialization.get("name", name)
        source = uri if where == "uri" else query if where == "querystring" else {}
        if wire not in source:
            continue
        value: Any = source.getall(wire) if member.type_name == "list" and hasattr(source, "getall") else source[wire]
        if member.type_name == "integer":
            try:
                value = int(value)
            except ValueError:
                raise ApiError("InvalidParameterValueException", f"{name} must be an integer (got {value!r})") from None
        params[name] = value
    report = ParamValidator().validate(params, shape)
    if report.has_errors():
        raise ApiError("InvalidParameterValueException", report.generate_report())
    limits = _limit_problems(params, shape, "")
    if limits:
        raise ApiError("InvalidParameterValueException", "; ".join(limits))
    for name, member in located.items():
        pattern = member.metadata.get("pattern")
        if name in params and pattern and isinstance(params[name], str) and not re.fullmatch(pattern, params[name]):
            # AWS's request validation, in its words (a tag operation on something not an ARN).
            wire = member.serialization.get("name", name)
            raise ApiError("ValidationException", f"1 validation error detected: Value '{params[name]}' at "
                           f"'{wire[:1].lower() + wire[1:]}' failed to satisfy constraint: Member must satisfy "
                           f"regular expression pattern: {pattern}")
    return params


def _limit_problems(params: dict[str, Any], shape: Shape, path: str) -> list[str]:
    """Maximums, enums and patterns of the URI and query members (the body is checked with the
    config file's rules, which read them from the same model)."""
    problems = []
    for name, member in shape.members.items():
        if name not in params or not member.serialization.get("location"):
            continue
        value, meta = params[name], member.metadata
        if member.type_name == "integer" and "max" in meta and value > meta["max"]:
            problems.append(f"{name}: must be at most {meta['max']} (got {value})")
        if member.type_name == "string" and "max" in meta and len(value) > meta["max"]:
            problems.append(f"{name}: must be at most {meta['max']} characters")
    return problems


def render(shape: Shape, value: Any) -> Any:
    """`value` reduced to what `shape` declares, in rest-json's wire form."""
    if value is None:
        return None
    kind = shape.type_name
    if kind == "structure" and isinstance(value, Mapping):
        out = {}
        for name, member in shape.members.items():
            if name in value and value[name] is not None:
                out[name] = render(member, value[name])
        return out
    if kind == "list" and isinstance(value, (list, tuple)):
        return [render(shape.member, item) for item in value]
    if kind == "map" and isinstance(value, Mapping):
        return {key: render(shape.value, item) for key, item in value.items()}
    if kind == "timestamp":
        if isinstance(value, datetime.datetime):
            value = (value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)).timestamp()
        return float(value)
    return value


def output_shape(route: Route) -> Shape:
    return route.operation.output_shape


def configuration_shape() -> Shape:
    return lambda_model().shape_for("EventSourceMappingConfiguration")
