"""YAML configuration into validated, frozen settings (docs/design.md "Configuration").

`load_config(path)` reads the file, substitutes `${ENV}` references, checks every part and
raises one ConfigError listing every problem with its zero-based path
(`event_source_mappings[1].BatchSize: ...`). It never touches the network or imports handlers,
so `esm validate` works offline.
"""

from __future__ import annotations

import copy
import dataclasses
import ipaddress
import math
import os
import re
import uuid
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable

import jmespath
import jmespath.exceptions
import yaml

from esm import registry
from esm.config.api_shape import check_against_api_shape, check_role_arn
from esm.config.references import check_reference
from esm.config.rules import check_mapping, poller_group_problems, sam_key_problems
from esm.config.settings import (
    DEFAULT_FUNCTION_TIMEOUT,
    DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_STARTUP_TIMEOUT,
    ApiCredentials,
    ApiSettings,
    AwsSettings,
    CheckpointSettings,
    Config,
    Extension,
    FunctionTarget,
    MappingSettings,
    MetricsSettings,
)
from esm.descriptor import SourceDescriptor
from esm.errors import ConfigError, Problem
from esm.core.inflight import DEFAULT_MAX_IN_FLIGHT_BYTES, MIN_MAX_IN_FLIGHT_BYTES, parse_size
from esm.config.kafka_access import check_destination_cluster, check_secrets_option

# behaviour §9.9: a mapping's UUID is uuid5(NAMESPACE, name).
NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "esm:event-source-mapping")

TOP_LEVEL_KEYS = ("functions", "event_source_mappings", "aws", "checkpoints", "metrics",
                  "shutdown_timeout", "startup_timeout", "api")
TARGET_KEYS = ("url", "lambda", "handler")
FUNCTION_KEYS = TARGET_KEYS + ("timeout", "max_concurrency", "role")
EXTENSION_KEYS = ("name", "uuid", "transform", "max_in_flight_bytes", "secrets", "kafka_tls", "on_failure_kafka",
                  "parallelization_factor")


def extension_keys() -> tuple[str, ...]:
    """The keys `esm:` takes: the common ones above and those a source's descriptor declares."""
    declared = [key for d in registry.descriptors() for key, _ in d.extension if key not in EXTENSION_KEYS]
    return EXTENSION_KEYS + tuple(dict.fromkeys(declared))


MAX_KAFKA_LANES = 10  # esm.parallelization_factor: as Kinesis's ParallelizationFactor, 1..10
MAX_FUNCTION_TIMEOUT = 900  # Lambda's own ceiling, in seconds
ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
LISTEN = re.compile(r"^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.\-]+):(\d{1,5})$")
HTTP_URL = re.compile(r"^https?://[^\s/]+(/\S*)?$")
HANDLER = re.compile(r"^[A-Za-z_][^\s:]*[:.][A-Za-z_]\w*$")  # module names as Lambda's runtime takes them (hyphens too)


def mapping_uuid(name: str) -> str:
    return str(uuid.uuid5(NAMESPACE, name))


def build_mapping(request: dict[str, Any], functions: dict[str, FunctionTarget], *,
                  base_dir: str = ".") -> MappingSettings:
    """One CreateEventSourceMapping request checked by the config file's rules (the control API's
    entry point); ConfigError with paths relative to the request (`BatchSize`)."""
    problems: list[Problem] = []
    built = _Builder(problems, base_dir).mapping(0, request, functions, path="")
    if problems or built is None:
        raise ConfigError(problems or [Problem("", "is not a valid event source mapping")])
    return built


def _extension_problems(extension: Extension, request: dict[str, Any],
                        descriptor: SourceDescriptor) -> list[Problem]:
    """The `esm:` keys another source owns (each named with its owner), then the source's own
    cross-checks of its keys against the mapping (paths relative to the mapping)."""
    own = {key for key, _ in descriptor.extension}
    owners: dict[str, tuple[list[str], str]] = {}  # a foreign key -> the titles of its owners, the first hint
    for other in registry.descriptors():
        for key, hint in other.extension:
            if key in extension.raw and key not in own:
                owners.setdefault(key, ([], hint))[0].append(other.title)
    problems = [Problem(f"esm.{key}", f"is only for {' and '.join(titles)} event sources{hint}")
                for key, (titles, hint) in owners.items()]
    if descriptor.extension_rules is not None:
        problems.extend(registry.import_path(descriptor.extension_rules)(extension, request, descriptor.kind))
    return problems


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def load_config(path: str | os.PathLike[str], environ: dict[str, str] | None = None) -> Config:
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError([Problem(str(file), f"cannot read: {error.strerror or error}")]) from None
    return parse_config(text, base_dir=str(file.resolve().parent), environ=environ)


class _Loader(yaml.SafeLoader):
    """yaml.safe_load's loader (no Python tags, no includes), but a value its constructors cannot
    build (`2019-13-45`, `!!float abc`, a UTC offset past 24 h) is a YAML error with its line,
    not a ValueError from deep inside PyYAML."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except yaml.YAMLError:
            raise
        except Exception as error:  # noqa: BLE001 - ValueError, AttributeError...: whatever a constructor trips on
            raise yaml.constructor.ConstructorError(None, None, f"cannot read this value: {error}",
                                                    node.start_mark) from None


def parse_config(text: str, *, base_dir: str = ".", environ: dict[str, str] | None = None) -> Config:
    return build_config(parse_raw(text, environ=environ), base_dir=base_dir)


def parse_raw(text: str, *, environ: dict[str, str] | None = None) -> Any:
    """The YAML document with `${ENV}` substituted, not yet checked (esm.templates merges it with a template)."""
    try:
        raw = yaml.load(text, Loader=_Loader)  # noqa: S506 - _Loader is a SafeLoader
    except yaml.YAMLError as error:
        raise ConfigError([Problem("", f"not valid YAML: {error}")]) from None
    except RecursionError:  # PyYAML composes nested nodes recursively
        raise ConfigError([Problem("", "not valid YAML: nested too deeply")]) from None
    problems: list[Problem] = []
    raw = _interpolate(raw, "", os.environ if environ is None else environ, problems)
    if problems:
        raise ConfigError(problems)
    return raw


def build_config(raw: Any, *, base_dir: str = ".") -> Config:
    """Check a parsed configuration document (functions:, event_source_mappings:, ...) into a Config."""
    problems: list[Problem] = []
    config = _Builder(problems, base_dir).build(raw)
    if problems:
        raise ConfigError(problems)
    assert config is not None
    return config


_IN_PROGRESS: Any = object()


def _interpolate(value: Any, path: str, environ: Any, problems: list[Problem],
                 done: dict[int, Any] | None = None) -> Any:
    """`${NAME}` or `${NAME:-default}` in any string value; an unset name without default is an error.

    YAML aliases make one object appear at several places, even inside itself (`&a [*a]`): each
    object is interpolated once (`done`, by identity), and one that contains itself is an error,
    so neither an alias bomb nor a cycle can stall or crash the loader.
    """
    if isinstance(value, (dict, list)):
        done = {} if done is None else done
        seen = done.get(id(value))
        if seen is _IN_PROGRESS:
            problems.append(Problem(path, "contains itself (a recursive YAML alias)"))
            return None
        if seen is not None:
            return seen
        done[id(value)] = _IN_PROGRESS
        if isinstance(value, dict):
            result: Any = {k: _interpolate(v, _join(path, str(k)), environ, problems, done) for k, v in value.items()}
        else:
            result = [_interpolate(v, f"{path}[{i}]", environ, problems, done) for i, v in enumerate(value)]
        done[id(value)] = result
        return result
    if isinstance(value, str):
        def replace(match: re.Match[str]) -> str:
            name, default = match.group(1), match.group(2)
            if name in environ:
                return environ[name]
            if default is not None:
                return default
            problems.append(Problem(path, f"environment variable {name} is not set"))
            return ""
        return ENV_REFERENCE.sub(replace, value)
    return value


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class _Builder:
    def __init__(self, problems: list[Problem], base_dir: str):
        self.problems = problems
        self.base_dir = base_dir
        # Names under functions: whose entry was invalid (reported there, so mappings naming them
        # say so instead of calling the name unknown).
        self.invalid_functions: set[str] = set()

    def fail(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    def build(self, raw: Any) -> Config | None:
        if not isinstance(raw, dict):
            self.fail("", "the configuration must be a mapping with functions: and event_source_mappings:")
            return None
        for key in raw:
            if key not in TOP_LEVEL_KEYS:
                self.fail(str(key), "unknown field; valid fields are " + ", ".join(TOP_LEVEL_KEYS))
        functions = self.functions(raw.get("functions"))
        if isinstance(raw.get("functions"), dict):
            self.invalid_functions = {str(k) for k in raw["functions"]} - set(functions)
        mappings = self.mappings(raw.get("event_source_mappings"), functions)
        return Config(
            functions=MappingProxyType(functions),
            mappings=tuple(mappings),
            aws=self.aws(raw.get("aws")),
            checkpoints=self.checkpoints(raw.get("checkpoints")),
            metrics=self.metrics(raw.get("metrics")),
            shutdown_timeout=self.seconds(raw, "shutdown_timeout", DEFAULT_SHUTDOWN_TIMEOUT),
            startup_timeout=self.seconds(raw, "startup_timeout", DEFAULT_STARTUP_TIMEOUT),
            base_dir=self.base_dir,
            api=self.api(raw.get("api")),
        )

    def seconds(self, raw: dict[str, Any], key: str, default: float) -> float:
        value = raw.get(key, default)
        if not _is_number(value) or not 0 < value < math.inf:
            self.fail(key, f"must be a positive number of seconds (got {value!r})")
            return default
        return float(value)

    def section(self, value: Any, path: str, keys: tuple[str, ...]) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping")
            return {}
        for key in value:
            if key not in keys:
                self.fail(_join(path, str(key)), "unknown field; valid fields are " + ", ".join(keys))
        return value

    # -- functions ------------------------------------------------------------------------
    def functions(self, raw: Any) -> dict[str, FunctionTarget]:
        if raw is None:
            self.fail("functions", "is required: at least one function target")
            return {}
        if not isinstance(raw, dict) or not raw:
            self.fail("functions", "must be a mapping of names to function targets")
            return {}
        return {
            str(name): target
            for name, spec in raw.items()
            if (target := self.function(str(name), spec, f"functions.{name}")) is not None
        }

    def function(self, name: str, spec: Any, path: str) -> FunctionTarget | None:
        if not isinstance(spec, dict):
            self.fail(path, "must be a mapping with one of url, lambda or handler")
            return None
        self.section(spec, path, FUNCTION_KEYS)
        targets = [key for key in TARGET_KEYS if key in spec]
        if len(targets) != 1:
            self.fail(path, "must have exactly one of url, lambda, handler" +
                      (f" (has {', '.join(targets)})" if targets else ""))
            return None
        kind = targets[0]
        value = spec[kind]
        checks: dict[str, tuple[Callable[[Any], bool], str]] = {
            "url": (lambda v: isinstance(v, str) and bool(HTTP_URL.match(v)), "an http:// or https:// URL"),
            "lambda": (lambda v: isinstance(v, str) and bool(v), "a Lambda function name or ARN"),
            "handler": (lambda v: isinstance(v, str) and bool(HANDLER.match(v)),
                        "a Python handler as module:function (or module.function)"),
        }
        valid, wanted = checks[kind]
        ok = True
        if not valid(value):
            self.fail(f"{path}.{kind}", f"must be {wanted} (got {value!r})")
            ok = False
        timeout = spec.get("timeout", DEFAULT_FUNCTION_TIMEOUT)
        if not _is_number(timeout) or not 0 < timeout <= MAX_FUNCTION_TIMEOUT:
            self.fail(f"{path}.timeout", f"must be a number of seconds above 0 and at most {MAX_FUNCTION_TIMEOUT} (got {timeout!r})")
            ok = False
        concurrency = spec.get("max_concurrency")
        if concurrency is not None and (not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1):
            self.fail(f"{path}.max_concurrency", f"must be a whole number of at least 1 (got {concurrency!r})")
            ok = False
        role = spec.get("role")
        for problem in check_role_arn(role, f"{path}.role") if role is not None else ():
            self.fail(problem.path, problem.message)
            ok = False
        if not ok:
            return None
        return FunctionTarget(
            name=name,
            url=value if kind == "url" else None,
            lambda_arn=value if kind == "lambda" else None,
            handler=value if kind == "handler" else None,
            timeout=float(timeout),
            max_concurrency=concurrency,
            role=role,
        )

    # -- event source mappings -------------------------------------------------------------
    def mappings(self, raw: Any, functions: dict[str, FunctionTarget]) -> list[MappingSettings]:
        if raw is None:
            self.fail("event_source_mappings", "is required: a list of event source mappings")
            return []
        if not isinstance(raw, list):
            self.fail("event_source_mappings", "must be a list")
            return []
        built = [m for i, spec in enumerate(raw) if (m := self.mapping(i, spec, functions)) is not None]
        self.unique(built)
        return built

    def mapping(self, index: int, spec: Any, functions: dict[str, FunctionTarget],
                path: str | None = None) -> MappingSettings | None:
        path = f"event_source_mappings[{index}]" if path is None else path
        if not isinstance(spec, dict):
            self.fail(path, "must be a mapping of CreateEventSourceMapping fields")
            return None
        request = copy.deepcopy(spec)
        extension = self.kafka_extension(self.extension(request.pop("esm", None), f"{path}.esm"), spec.get("esm"),
                                         f"{path}.esm")
        local: list[Problem] = sam_key_problems(request)
        for problem in local:
            request.pop(problem.path, None)
        local.extend(check_against_api_shape(request))
        # The semantic rules assume the types the shape promises: run them on the fields that passed.
        broken = {re.split(r"[.\[]", p.path, maxsplit=1)[0] for p in local}
        written = spec.get("esm")
        check = check_mapping({k: v for k, v in request.items() if k not in broken}, frozenset(broken),
                              written if isinstance(written, dict) else None)
        local.extend(check.problems)
        if extension is not None and check.source:
            local.extend(_extension_problems(extension, check.request, registry.descriptor(check.source)))
        name = request.get("FunctionName")
        if isinstance(name, str) and name in self.invalid_functions:
            local.append(Problem("FunctionName", f"'{name}' names an invalid entry of functions (see functions.{name})"))
        elif isinstance(name, str) and name not in functions:
            known = ", ".join(functions) or "none"
            local.append(Problem("FunctionName", f"'{name}' is not a key of functions: (known: {known})"))
        elif isinstance(name, str) and check.source:
            ceiling = registry.descriptor(check.source).max_function_timeout
            if ceiling is not None and functions[name].timeout > ceiling:
                local.append(Problem("FunctionName", f"the timeout of function '{name}' "
                                     f"({functions[name].timeout:g}s) is over {ceiling:g}s, the most Lambda lets a "
                                     f"function run for {registry.descriptor(check.source).title} event sources "
                                     "(behaviour §1)"))
        self.problems.extend(dataclasses.replace(p, path=_join(path, p.path)) for p in local)
        if local or extension is None:
            return None
        label = extension.name or f"{check.source_id}->{name}"
        return MappingSettings(
            index=index,
            # esm.uuid pins the identity (checkpoints, default Kafka group) across a rename.
            uuid=str(extension.raw.get("uuid") or mapping_uuid(label)).lower(),
            name=extension.name or label,
            source=check.source,
            function=functions[name],
            request=MappingProxyType(check.request),
            extension=extension,
            source_id=check.source_id,
            batching_window=check.batching_window,
        )

    def extension(self, raw: Any, path: str) -> Extension | None:
        if raw is None:
            return Extension()
        if not isinstance(raw, dict):
            self.fail(path, "must be a mapping (keys: " + ", ".join(extension_keys()) + ")")
            return None
        before = len(self.problems)
        self.section(raw, path, extension_keys())
        name = raw.get("name")
        if name is not None and not (isinstance(name, str) and name.strip()):
            self.fail(f"{path}.name", "must be a non-empty string")
        pinned = raw.get("uuid")
        if pinned is not None:
            try:
                if not isinstance(pinned, str) or str(uuid.UUID(pinned)) != pinned.lower():
                    raise ValueError
            except ValueError:
                self.fail(f"{path}.uuid", "must be a UUID as `esm validate` prints it "
                          "(8-4-4-4-12 hexadecimal digits)")
        transform = raw.get("transform")
        if transform is not None:
            if not isinstance(transform, str):
                self.fail(f"{path}.transform", "must be a JMESPath expression (a string)")
            else:
                try:
                    jmespath.compile(transform)
                except jmespath.exceptions.JMESPathError as error:
                    self.fail(f"{path}.transform", f"is not a valid JMESPath expression: {error}")
                except RecursionError:  # jmespath parses nested expressions recursively
                    self.fail(f"{path}.transform", "is not a valid JMESPath expression: nested too deeply")
        lanes = raw.get("parallelization_factor", 1)
        if isinstance(lanes, bool) or not isinstance(lanes, int) or not 1 <= lanes <= MAX_KAFKA_LANES:
            self.fail(f"{path}.parallelization_factor", f"must be an integer from 1 to {MAX_KAFKA_LANES} "
                      f"(got {lanes!r})")
        limit = DEFAULT_MAX_IN_FLIGHT_BYTES
        if "max_in_flight_bytes" in raw:
            limit = parse_size(raw["max_in_flight_bytes"])
            if limit is None or limit < MIN_MAX_IN_FLIGHT_BYTES:
                self.fail(f"{path}.max_in_flight_bytes",
                          f"must be a size of at least {MIN_MAX_IN_FLIGHT_BYTES // 1024 ** 2}MiB (bytes, or a number "
                          "with B, KB, KiB, MB, MiB, GB or GiB), so that a 6 MB batch fits")
        if len(self.problems) > before:
            return None
        return Extension(name=name, transform=transform, max_in_flight_bytes=limit, raw=MappingProxyType(dict(raw)))

    def kafka_extension(self, extension: Extension | None, raw: Any, path: str) -> Extension | None:
        """The `esm:` Kafka security options (esm.config.kafka_access): secrets, kafka_tls, on_failure_kafka."""
        if extension is None or not isinstance(raw, dict):
            return extension
        before = len(self.problems)
        secrets, problems = check_secrets_option(raw.get("secrets"), f"{path}.secrets", self.base_dir)
        self.problems.extend(problems)
        tls = raw.get("kafka_tls")
        if tls is not None and not isinstance(tls, bool):
            self.fail(f"{path}.kafka_tls", f"must be true or false (got {tls!r})")
        other, problems = check_destination_cluster(raw.get("on_failure_kafka"), f"{path}.on_failure_kafka")
        self.problems.extend(problems)
        if len(self.problems) > before:
            return None
        return dataclasses.replace(extension, secrets=MappingProxyType(secrets), kafka_tls=tls,
                                   on_failure_kafka=MappingProxyType(other) if other else None)

    def unique(self, mappings: list[MappingSettings]) -> None:
        seen: dict[str, int] = {}
        groups: dict[str, int] = {}
        for mapping in mappings:
            path = f"event_source_mappings[{mapping.index}]"
            if mapping.uuid in seen:
                self.fail(path, f"has the same identity as event_source_mappings[{seen[mapping.uuid]}] "
                          "(same source and function); give one of them esm: {name: ...}")
            seen.setdefault(mapping.uuid, mapping.index)
            for key in registry.descriptor(mapping.source).unique_group_keys:
                group = (mapping.get(key) or {}).get("ConsumerGroupId")
                if group is None:
                    continue
                if group in groups:
                    self.fail(f"{path}.{key}.ConsumerGroupId",
                              f"'{group}' is already used by event_source_mappings[{groups[group]}]")
                groups.setdefault(group, mapping.index)
        for path, reason in poller_group_problems([(f"event_source_mappings[{m.index}]", dict(m.request))
                                                   for m in mappings]):
            self.fail(path, reason)

    # -- the rest ---------------------------------------------------------------------------
    def aws(self, raw: Any) -> AwsSettings:
        section = self.section(raw, "aws", ("region", "endpoints"))
        region = section.get("region")
        if region is not None and not (isinstance(region, str) and re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d", region)):
            self.fail("aws.region", f"must be an AWS region name such as us-east-1 (got {region!r})")
        endpoints = section.get("endpoints") or {}
        if not isinstance(endpoints, dict):
            self.fail("aws.endpoints", "must be a mapping of service name to URL")
            endpoints = {}
        for service, url in endpoints.items():
            if not (isinstance(url, str) and HTTP_URL.match(url)):
                self.fail(f"aws.endpoints.{service}", f"must be an http:// or https:// URL (got {url!r})")
        return AwsSettings(region=region, endpoints=MappingProxyType({str(k): str(v) for k, v in endpoints.items()}))

    def checkpoints(self, raw: Any) -> CheckpointSettings:
        section = self.section(raw, "checkpoints", ("sqlite", "dynamodb"))
        if not section:
            return CheckpointSettings()
        if len(section) != 1:
            self.fail("checkpoints", "must have exactly one of sqlite, dynamodb")
            return CheckpointSettings()
        if "sqlite" in section:
            path = section["sqlite"]
            if not (isinstance(path, str) and path):
                self.fail("checkpoints.sqlite", "must be a file path")
                return CheckpointSettings()
            return CheckpointSettings(sqlite=path)
        if "dynamodb" not in section:  # an unknown key, reported by section()
            return CheckpointSettings()
        table = self.section(section["dynamodb"], "checkpoints.dynamodb", ("table",)).get("table")
        if not (isinstance(table, str) and re.fullmatch(r"[a-zA-Z0-9_.\-]{3,255}", table)):
            self.fail("checkpoints.dynamodb.table", f"must be a DynamoDB table name (got {table!r})")
        return CheckpointSettings(sqlite=None, dynamodb_table=table)

    def api(self, raw: Any) -> ApiSettings | None:
        """`api: {listen, credentials}` (esm.api): off when absent; unauthenticated only on loopback."""
        if raw is None:
            return None
        section = self.section(raw, "api", ("listen", "credentials"))
        listen = section.get("listen")
        match = LISTEN.match(listen) if isinstance(listen, str) else None
        if match is None or not 0 <= int(match.group(2)) <= 65535:
            self.fail("api.listen", f"must be host:port, for example 127.0.0.1:9091 (got {listen!r})")
            return None
        credentials = None
        if section.get("credentials") is not None:
            creds = self.section(section["credentials"], "api.credentials", ("access_key_id", "secret_access_key"))
            before = len(self.problems)
            refs = {}
            for key in ("access_key_id", "secret_access_key"):
                spec = creds.get(key)
                if spec is None:
                    self.fail(f"api.credentials.{key}", "is required: {env: VARIABLE} or {file: PATH}")
                elif key == "access_key_id" and isinstance(spec, str) and spec:
                    refs[key] = {"value": spec}  # an access key id is not a secret
                else:
                    refs[key] = check_reference(spec, f"api.credentials.{key}", self.base_dir, self.problems,
                                                why=": a secret is never written in the configuration") or {}
            if len(self.problems) > before:
                return None
            credentials = ApiCredentials(MappingProxyType(refs["access_key_id"]),
                                         MappingProxyType(refs["secret_access_key"]))
        elif not _is_loopback(match.group(1).strip("[]")):
            self.fail("api.listen", f"binds {match.group(1)}, which is not a loopback address: without "
                      "api.credentials the control API may only listen on 127.0.0.1, ::1 or localhost "
                      "(anyone who reaches it can change mappings)")
            return None
        return ApiSettings(listen=listen, credentials=credentials)

    def metrics(self, raw: Any) -> MetricsSettings:
        section = self.section(raw, "metrics", ("listen",))
        listen = section.get("listen", MetricsSettings.listen)
        match = LISTEN.match(listen) if isinstance(listen, str) else None
        if match is None or not 0 <= int(match.group(2)) <= 65535:
            self.fail("metrics.listen", f"must be host:port, for example 127.0.0.1:9090 (got {listen!r})")
            return MetricsSettings()
        return MetricsSettings(listen=listen)
