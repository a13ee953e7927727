"""References to secrets in the configuration: `{env: VARIABLE}`, `{file: PATH}` (or, where a value
is not secret, `{value: ...}`), checked when the config loads and read when they are needed.

Two parts of esm use them: a Kafka mapping's `esm.secrets` (esm.config.kafka_access checks them,
esm.security.secrets reads them) and the control API's `api.credentials` (esm.config.loading checks
them, esm.api.server reads them). Each caller puts its own place in front of the messages here
and turns `ReferenceUnreadable` into its own error; no message ever carries a secret's value.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from esm.errors import EsmError, Problem


class ReferenceUnreadable(EsmError):
    """The variable or file a reference names is not there (the message says which, without the
    caller's place)."""


def check_reference(spec: Any, path: str, base_dir: str, problems: list[Problem], *,
                    why: str = "") -> dict[str, str] | None:
    """`{env: VAR}` or `{file: PATH}` (PATH relative to the config's folder), normalized; None,
    with a problem added (its message ending in `why`), for anything else."""
    if not (isinstance(spec, dict) and len(spec) == 1 and set(spec) <= {"env", "file"}):
        problems.append(Problem(path, "must be {env: VARIABLE} or {file: PATH}" + why))
        return None
    (kind, value), = spec.items()
    if not (isinstance(value, str) and value):
        problems.append(Problem(f"{path}.{kind}", "must be a non-empty string"))
        return None
    if kind == "file":
        value = os.path.normpath(os.path.join(base_dir, os.path.expanduser(value)))
    return {kind: value}


def read_reference(ref: Mapping[str, Any], *, note: str = "", one_line: bool = False) -> str:
    """What `ref` names. `note` follows what could not be read in a message (where the reference
    came from); `one_line` (a credential) drops a file's surrounding whitespace and takes an empty
    variable or file for a missing one."""
    if "value" in ref:
        return str(ref["value"])
    if "env" in ref:
        value = os.environ.get(ref["env"])
        if value is None or (one_line and not value):
            raise ReferenceUnreadable(f"environment variable {ref['env']} is not set{note}")
        return value
    try:
        with open(ref["file"], encoding="utf-8") as source:
            value = source.read()
    except OSError as error:
        raise ReferenceUnreadable(f"cannot read {ref['file']}{note}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ReferenceUnreadable(f"{ref['file']} is not UTF-8 text{note}") from None
    if one_line:
        value = value.strip()
        if not value:
            raise ReferenceUnreadable(f"{ref['file']} is empty{note}")
    return value
