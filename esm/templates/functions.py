"""Where each function of a template runs (issue 16.2), as `functions:` entries of esm's config.

In order: a `functions:` entry of the `--config` file with the function's logical id and a target
wins (an entry without one only adjusts `timeout` or `max_concurrency`); then
`--functions-endpoint URL` (the Lambda Invoke API at URL, the function named by its logical id, as
`sam local start-lambda` names them); then `--functions-url PATTERN` (`{function}` replaced by the
logical id); then a Python function with local code runs in-process; with `--stack`, any other
function is invoked where it is deployed (its physical name, through the Invoke API).

In-process code: each function's `CodeUri` folder becomes the package `esm_template_code.<LogicalId>`,
so two functions that both have an `app.py` (as `sam init` lays them out) stay two modules; the
folder is also on `sys.path`, as Lambda's /var/task is, for the function's own sibling imports.
Environment variables are the process's: they are set before the daemon starts, and two in-process
functions that set one variable to different values are an error rather than a silent mix-up.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import types
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

from esm.errors import Problem

CODE_PACKAGE = "esm_template_code"
DEFAULT_TIMEOUT = 3  # CloudFormation's default for AWS::Lambda::Function Timeout
TARGET_KEYS = ("url", "lambda", "handler")  # esm.config.loading's: one of them names where a function runs
# As the Python runtime reads a handler: everything before the last dot is the module (a file name,
# hyphens and all, `/` for folders), the rest the function.
HANDLER = re.compile(r"^(?P<module>[^\s:]+)\.(?P<function>[A-Za-z_]\w*)$")


@dataclass(frozen=True)
class Placement:
    """One function's `functions:` entry and how to say where it runs."""

    spec: Mapping[str, Any]
    where: str
    code_dir: str | None = None  # in-process functions: the CodeUri folder
    layer_dirs: tuple[str, ...] = ()  # in-process functions: the template's own layers' content folders
    environment: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FunctionOptions:
    endpoint: str | None = None
    url_pattern: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)  # the --config file's functions:
    stack: bool = False


def module_name(logical_id: str) -> str:
    return f"{CODE_PACKAGE}.{logical_id}"


Environment = Callable[[], "Mapping[str, Any] | None"]  # the function's resolved Environment, None if it failed


def place(logical_id: str, properties: Mapping[str, Any], code_dir: str | None, physical_name: str | None,
          options: FunctionOptions, problems: list[Problem], environment: Environment = dict) -> Placement | None:
    """The placement of one template function; problems name `LogicalId.Properties.<field>`.

    A `--config` entry with a target (url, lambda, handler) replaces the function; one without
    (`{max_concurrency: 1}`, `{timeout: 60}`) adjusts where the template puts it."""
    override = options.overrides.get(logical_id)
    if isinstance(override, dict) and any(key in override for key in TARGET_KEYS):
        return Placement(spec=override, where="--config functions:")
    placement = _place(logical_id, properties, code_dir, physical_name, options, problems, environment)
    if placement is not None and isinstance(override, dict):
        return replace(placement, spec={**placement.spec, **override})
    return placement


def _place(logical_id: str, properties: Mapping[str, Any], code_dir: str | None, physical_name: str | None,
           options: FunctionOptions, problems: list[Problem], environment: Environment) -> Placement | None:
    timeout = properties.get("Timeout", DEFAULT_TIMEOUT)
    if options.endpoint:
        return Placement(spec={"lambda": logical_id, "timeout": timeout}, where=f"Invoke API at {options.endpoint}")
    if options.url_pattern:
        url = options.url_pattern.replace("{function}", logical_id)
        return Placement(spec={"url": url, "timeout": timeout}, where=url)
    runtime = str(properties.get("Runtime", ""))
    if runtime.startswith("python") and code_dir is not None:
        handler = str(properties.get("Handler", ""))
        match = HANDLER.match(handler)
        if not match:
            problems.append(Problem(f"{logical_id}.Properties.Handler",
                                    f"must be module.function, as the Python runtime reads it (got {handler!r})"))
            return None
        module = match.group("module").replace("/", ".")
        resolved = environment()
        if resolved is None:
            return None
        variables = resolved.get("Variables") or {}
        return Placement(
            spec={"handler": f"{module_name(logical_id)}.{module}:{match.group('function')}", "timeout": timeout},
            where=f"in-process {os.path.relpath(os.path.join(code_dir, module.replace('.', '/')))}.py "
                  f"{match.group('function')}",
            code_dir=code_dir,
            environment={str(k): _env_text(v) for k, v in variables.items()},
        )
    if options.stack:  # without the stack at hand (validating), the logical id stands in for its name
        name = physical_name or logical_id
        return Placement(spec={"lambda": name, "timeout": timeout}, where=f"deployed function {name}")
    why = (f"its Runtime is {runtime or 'not set (a container image?)'}" if not runtime.startswith("python")
           else "its code is not a local folder (CodeUri on S3, InlineCode or an image)")
    problems.append(Problem(logical_id, f"cannot run inside esm: {why}; pass --functions-endpoint URL or "
                                        "--functions-url PATTERN, or give it an entry under functions: in --config"))
    return None


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def local_folder(path: Path, where: str, problems: list[Problem]) -> str | None:
    """A local code path as a folder: a .zip is unpacked into a temporary folder (kept while esm runs)."""
    path = path.resolve()
    if path.suffix.lower() != ".zip":
        return str(path)
    try:
        with zipfile.ZipFile(path) as archive:
            folder = tempfile.mkdtemp(prefix=f"esm-code-{path.stem}-")
            archive.extractall(folder)
    except (OSError, zipfile.BadZipFile) as error:
        problems.append(Problem(where, f"cannot unpack {path}: {error}"))
        return None
    return folder


def check_code(logical_id: str, placement: Placement, problems: list[Problem]) -> None:
    """Offline: the handler's module file is where the Python runtime would look for it."""
    if placement.code_dir is None:
        return
    folder = Path(placement.code_dir)
    module = str(placement.spec["handler"]).split(":")[0][len(module_name(logical_id)) + 1:]
    relative = Path(*module.split("."))
    if not folder.is_dir():
        problems.append(Problem(f"{logical_id}.Properties.CodeUri", f"folder {folder} does not exist"))
    elif not (folder / relative.with_suffix(".py")).is_file() and not (folder / relative / "__init__.py").is_file():
        problems.append(Problem(f"{logical_id}.Properties.Handler", f"no module {relative}.py in {folder}"))


def merged_environment(placements: Mapping[str, Placement], problems: list[Problem]) -> dict[str, str]:
    """One environment for the process; a variable two functions set differently is a problem."""
    merged: dict[str, str] = {}
    owner: dict[str, str] = {}
    for logical_id, placement in placements.items():
        for name, value in placement.environment.items():
            if name in merged and merged[name] != value:
                problems.append(Problem(f"{logical_id}.Properties.Environment.Variables.{name}",
                                        f"is {value!r} here and {merged[name]!r} in {owner[name]}; in-process functions "
                                        "share one environment: run one of them with --functions-endpoint or a "
                                        "functions: entry in --config"))
                continue
            merged[name], owner[name] = value, logical_id
    return merged


def install(placements: Mapping[str, Placement], environment: Mapping[str, str]) -> None:
    """Make the in-process functions importable and set their environment (before the daemon starts)."""
    package = sys.modules.get(CODE_PACKAGE)
    if package is None:
        package = types.ModuleType(CODE_PACKAGE, "Code folders of a template's functions (esm.templates)")
        package.__path__ = []
        sys.modules[CODE_PACKAGE] = package
    for logical_id, placement in placements.items():
        if placement.code_dir is None:
            continue
        name = module_name(logical_id)
        for stale in [key for key in sys.modules if key.startswith(name + ".")]:  # code of an earlier load
            del sys.modules[stale]
        module = types.ModuleType(name, f"The code folder of {logical_id}")
        module.__path__ = [placement.code_dir]
        sys.modules[name] = module
        setattr(package, logical_id, module)
        # Lambda's order: the function's code (/var/task), then its layers' python/ folders (/opt/python
        # and its site-packages), then the runtime's own packages.
        version = f"python{sys.version_info.major}.{sys.version_info.minor}"
        layer_paths = [os.path.join(d, *p) for d in placement.layer_dirs
                       for p in (("python", "lib", version, "site-packages"), ("python",))]
        for index, folder in enumerate([placement.code_dir, *layer_paths]):
            if folder not in sys.path:
                sys.path.insert(index, folder)
    os.environ.update(environment)
