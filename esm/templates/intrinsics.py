"""CloudFormation intrinsic functions, resolved offline.

`Resolver.value(node, path)` turns a property value into plain data: `Ref`, `Fn::GetAtt`,
`Fn::Sub` (both forms, `${!Literal}`), `Fn::Join`, `Fn::Select`, `Fn::Split`, `Fn::If` with the
template's Conditions (`Fn::Equals`, `Fn::Not`, `Fn::And`, `Fn::Or`, `Condition`), `Fn::FindInMap`,
`Fn::Base64`, `Fn::ToJsonString` and `AWS::NoValue`. Parameters take their override, else their
default (a Number parameter becomes a number, a list type a list). What a resource is (a name, an
ARN) is asked of the caller's `attribute(logical_id, attribute_or_None)`. Anything that needs AWS
to answer (`Fn::ImportValue`, `Fn::GetAZs`, `Fn::Cidr`, SSM parameter types) raises Unresolvable
with the property path, never a guess.
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any, Callable, Mapping

NO_VALUE = "AWS::NoValue"
_REMOVED = object()
SUB_REFERENCE = re.compile(r"\$\{([^}]*)\}")
LIST_TYPES = ("CommaDelimitedList", "List<")


class Unresolvable(Exception):
    """A value that cannot be known offline; `path` is relative to the resolved property."""

    def __init__(self, path: str, message: str):
        super().__init__(message)
        self.path = path
        self.message = message


Attribute = Callable[[str, "str | None"], Any]


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


class Resolver:
    def __init__(self, template: Mapping[str, Any], parameters: Mapping[str, Any], pseudo: Mapping[str, Any],
                 attribute: Attribute):
        self.template = template
        self.declared: Mapping[str, Any] = template.get("Parameters") or {}
        self.overrides = parameters
        self.pseudo = pseudo
        self.attribute = attribute
        self.conditions: Mapping[str, Any] = template.get("Conditions") or {}
        self._condition_values: dict[str, bool] = {}
        self._evaluating: set[str] = set()

    # -- parameters and conditions -----------------------------------------------------------
    def parameter(self, name: str, path: str) -> Any:
        if name in self.pseudo:
            return self.pseudo[name]
        if name not in self.declared:
            raise Unresolvable(path, f"Ref {name}: no parameter or resource has this name")
        spec = self.declared[name] or {}
        kind = str(spec.get("Type", "String"))
        if name in self.overrides:
            value: Any = self.overrides[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise Unresolvable(path, f"parameter {name} has no Default: give it with --parameter-overrides {name}=VALUE")
        if kind.startswith("AWS::SSM::Parameter"):
            raise Unresolvable(path, f"parameter {name} is of type {kind}, which only SSM can answer; "
                                     f"give its value with --parameter-overrides {name}=VALUE and a plain type")
        allowed = spec.get("AllowedValues")
        if isinstance(allowed, list) and str(value) not in [str(a) for a in allowed]:
            raise Unresolvable(path, f"parameter {name} is {value!r}, not one of its AllowedValues {allowed}")
        if kind == "Number":
            try:
                number = float(value)
            except (TypeError, ValueError):
                raise Unresolvable(path, f"parameter {name} is a Number, got {value!r}") from None
            return int(number) if number.is_integer() else number
        if kind.startswith(LIST_TYPES):
            return value if isinstance(value, list) else [part.strip() for part in str(value).split(",")]
        return value if isinstance(value, (str, bool)) else str(value)

    def condition(self, name: str, path: str = "") -> bool:
        if name in self._condition_values:
            return self._condition_values[name]
        if name not in self.conditions:
            raise Unresolvable(path, f"condition {name} is not in the template's Conditions")
        if name in self._evaluating:
            raise Unresolvable(path, f"condition {name} refers to itself")
        self._evaluating.add(name)
        try:
            result = self._boolean(self.conditions[name], f"Conditions.{name}")
        finally:
            self._evaluating.discard(name)
        self._condition_values[name] = result
        return result

    def _boolean(self, node: Any, path: str) -> bool:
        value = self.value(node, path)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise Unresolvable(path, f"a condition must be true or false (got {value!r})")

    # -- values --------------------------------------------------------------------------------
    def value(self, node: Any, path: str = "") -> Any:
        result = self._value(node, path)
        return None if result is _REMOVED else result

    def _value(self, node: Any, path: str) -> Any:
        if isinstance(node, list):
            items = [self._value(item, f"{path}[{i}]") for i, item in enumerate(node)]
            return [item for item in items if item is not _REMOVED]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (key, argument), = node.items()
            if key == "Ref" or key == "Condition" or key.startswith("Fn::"):
                return self._function(key, argument, _join(path, key))
        resolved = {key: self._value(item, _join(path, str(key))) for key, item in node.items()}
        return {key: item for key, item in resolved.items() if item is not _REMOVED}

    def _function(self, name: str, argument: Any, path: str) -> Any:
        if name == "Ref":
            if not isinstance(argument, str):
                raise Unresolvable(path, "Ref takes a name")
            if argument == NO_VALUE:
                return _REMOVED
            if argument in self.pseudo or argument in self.declared:
                return self.parameter(argument, path)
            return self._attribute(argument, None, path)
        if name == "Condition":
            return self.condition(str(argument), path)
        handler = getattr(self, "_fn_" + name[4:].lower(), None)
        if handler is None:
            raise Unresolvable(path, f"{name} is not an intrinsic function esm resolves offline")
        return handler(argument, path)

    def _fn_getatt(self, argument: Any, path: str) -> Any:
        if isinstance(argument, str):
            argument = argument.split(".", 1)
        if not (isinstance(argument, list) and len(argument) == 2):
            raise Unresolvable(path, "Fn::GetAtt takes [LogicalId, Attribute]")
        logical_id, attribute = argument[0], self.value(argument[1], path)
        return self._attribute(str(logical_id), str(attribute), path)

    def _attribute(self, logical_id: str, attribute: str | None, path: str) -> Any:
        try:
            return self.attribute(logical_id, attribute)
        except Unresolvable as error:  # the resource's own problem, told at the property that needs it
            raise Unresolvable(error.path or path, error.message) from None

    def _fn_sub(self, argument: Any, path: str) -> str:
        variables: dict[str, Any] = {}
        if isinstance(argument, list):
            if len(argument) != 2 or not isinstance(argument[1], dict):
                raise Unresolvable(path, "Fn::Sub takes a string or [string, {variables}]")
            argument, raw_variables = argument
            variables = {k: self.value(v, f"{path}[1].{k}") for k, v in raw_variables.items()}
        if not isinstance(argument, str):
            raise Unresolvable(path, "Fn::Sub takes a string")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} is written as ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name], path)
            if "." in name and name.split(".", 1)[0] not in self.pseudo:
                logical_id, attribute = name.split(".", 1)
                return _text(self._attribute(logical_id, attribute, path), path)
            return _text(self._function("Ref", name, path), path)

        return SUB_REFERENCE.sub(replace, argument)

    def _fn_join(self, argument: Any, path: str) -> str:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise Unresolvable(path, "Fn::Join takes [delimiter, [values]]")
        delimiter, items = self.value(argument[0], path), self.value(argument[1], path)
        if not isinstance(items, list):
            raise Unresolvable(path, "Fn::Join's second argument must be a list")
        return str(delimiter).join(_text(item, path) for item in items)

    def _fn_select(self, argument: Any, path: str) -> Any:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise Unresolvable(path, "Fn::Select takes [index, [values]]")
        index, items = self.value(argument[0], path), self.value(argument[1], path)
        try:
            return items[int(index)]
        except (TypeError, ValueError, IndexError):
            raise Unresolvable(path, f"Fn::Select: no item {index!r} in {items!r}") from None

    def _fn_split(self, argument: Any, path: str) -> list[str]:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise Unresolvable(path, "Fn::Split takes [delimiter, string]")
        return _text(self.value(argument[1], path), path).split(str(self.value(argument[0], path)))

    def _fn_if(self, argument: Any, path: str) -> Any:
        if not (isinstance(argument, list) and len(argument) == 3):
            raise Unresolvable(path, "Fn::If takes [condition, value if true, value if false]")
        chosen = argument[1] if self.condition(str(argument[0]), path) else argument[2]
        return self._value(chosen, path)

    def _fn_equals(self, argument: Any, path: str) -> bool:
        if not (isinstance(argument, list) and len(argument) == 2):
            raise Unresolvable(path, "Fn::Equals takes [value, value]")
        left, right = (self.value(item, path) for item in argument)
        return str(left) == str(right) if not (isinstance(left, list) or isinstance(right, list)) else left == right

    def _fn_not(self, argument: Any, path: str) -> bool:
        if not (isinstance(argument, list) and len(argument) == 1):
            raise Unresolvable(path, "Fn::Not takes [condition]")
        return not self._boolean(argument[0], path)

    def _fn_and(self, argument: Any, path: str) -> bool:
        if not isinstance(argument, list):
            raise Unresolvable(path, "Fn::And takes a list of conditions")
        return all(self._boolean(item, path) for item in argument)

    def _fn_or(self, argument: Any, path: str) -> bool:
        if not isinstance(argument, list):
            raise Unresolvable(path, "Fn::Or takes a list of conditions")
        return any(self._boolean(item, path) for item in argument)

    def _fn_findinmap(self, argument: Any, path: str) -> Any:
        if not (isinstance(argument, list) and len(argument) >= 3):
            raise Unresolvable(path, "Fn::FindInMap takes [map, top-level key, second-level key]")
        names = [self.value(item, path) for item in argument[:3]]
        try:
            return self.value(self.template["Mappings"][names[0]][names[1]][names[2]], path)
        except (KeyError, TypeError):
            raise Unresolvable(path, f"Fn::FindInMap: Mappings has no {'.'.join(map(str, names))}") from None

    def _fn_base64(self, argument: Any, path: str) -> str:
        return base64.b64encode(_text(self.value(argument, path), path).encode()).decode()

    def _fn_tojsonstring(self, argument: Any, path: str) -> str:
        return json.dumps(self.value(argument, path), separators=(",", ":"))

    def _fn_importvalue(self, argument: Any, path: str) -> Any:
        raise Unresolvable(path, "Fn::ImportValue reads another stack's exports, which esm does not resolve; "
                                 "write the value (or a parameter) instead")

    def _fn_getazs(self, argument: Any, path: str) -> Any:
        raise Unresolvable(path, "Fn::GetAZs needs AWS to answer; it is not resolved offline")

    def _fn_cidr(self, argument: Any, path: str) -> Any:
        raise Unresolvable(path, "Fn::Cidr is not resolved by esm")


def _text(value: Any, path: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise Unresolvable(path, f"expected a string here, got {type(value).__name__} {value!r}")
