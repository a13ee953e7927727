"""Reading a template file: YAML (or JSON) with CloudFormation's short-form tags.

`!Ref X`, `!GetAtt A.B`, `!Sub ...` and the other `!Fn` tags become their long form
(`{"Ref": "X"}`, `{"Fn::GetAtt": ["A", "B"]}`, ...). The tag constructor is the SAM translator's own
(`samtranslator.yaml_helper`), registered on a private SafeLoader subclass: the translator's helper
registers it on `yaml.SafeLoader` itself, which would let `!Ref` into esm's configuration files too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from samtranslator.yaml_helper import intrinsics_multi_constructor

from esm.errors import ConfigError, Problem


class TemplateLoader(yaml.SafeLoader):
    """SafeLoader plus CloudFormation's `!` tags; nothing else (no Python objects)."""


TemplateLoader.add_multi_constructor("!", intrinsics_multi_constructor)


def read_template(path: str | Path) -> dict[str, Any]:
    """The template as a dict; ConfigError (the file, what is wrong) when it cannot be one."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([Problem(str(file), f"cannot read: {error.strerror or error}")]) from None
    try:
        document = yaml.load(text, Loader=TemplateLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as error:
        raise ConfigError([Problem(str(file), f"not valid YAML or JSON: {error}")]) from None
    except RecursionError:
        raise ConfigError([Problem(str(file), "not valid YAML: nested too deeply")]) from None
    if not isinstance(document, dict) or not isinstance(document.get("Resources"), dict):
        raise ConfigError([Problem(str(file), "is not a CloudFormation or SAM template (no Resources: mapping)")])
    return document
