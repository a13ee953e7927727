"""`SchemaRegistryConfig` (inside `SelfManagedKafkaEventSourceConfig` / `AmazonManagedKafkaEventSourceConfig`):
the rules the API shape cannot express, and the settings the decoder runs with.

botocore's shape already checks types, the `EventRecordFormat` and `Attribute` enums and the
URI's character set (esm.config.api_shape). Added here, as Lambda's documentation describes the field:
- `SchemaRegistryURI` is an AWS Glue registry ARN (`arn:aws:glue:<region>:<account>:registry/<name>`)
  or the `http(s)://` URL of a Confluent schema registry (Confluent Cloud or self-managed);
- `EventRecordFormat` and `SchemaValidationConfigs` (1 or 2 of KEY, VALUE, each once) are required:
  without them Lambda would not know what to validate or how to deliver it;
- `AccessConfigs` (at most 2, each type once) authenticate to a Confluent registry with Secrets
  Manager secrets: BASIC_AUTH, CLIENT_CERTIFICATE_TLS_AUTH, SERVER_ROOT_CA_CERTIFICATE. A Glue
  registry takes none (it uses the AWS credentials); the TLS types need an https:// URL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import urlsplit

GLUE = "glue"
CONFLUENT = "confluent"
BASIC_AUTH = "BASIC_AUTH"
CLIENT_CERTIFICATE_TLS_AUTH = "CLIENT_CERTIFICATE_TLS_AUTH"
SERVER_ROOT_CA_CERTIFICATE = "SERVER_ROOT_CA_CERTIFICATE"
ACCESS_TYPES = (BASIC_AUTH, CLIENT_CERTIFICATE_TLS_AUTH, SERVER_ROOT_CA_CERTIFICATE)
MAX_ACCESS_CONFIGS = 2
KAFKA_CONFIG_KEYS = ("SelfManagedKafkaEventSourceConfig", "AmazonManagedKafkaEventSourceConfig")

GLUE_REGISTRY_ARN = re.compile(
    r"arn:(?P<partition>aws[a-zA-Z0-9-]*):glue:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):registry/(?P<name>[^/]+)")


@dataclass(frozen=True)
class SchemaRegistrySettings:
    uri: str
    kind: str  # GLUE | CONFLUENT
    record_format: str  # JSON | SOURCE
    attributes: frozenset[str]  # KEY and/or VALUE: the parts that are validated (and, with JSON, decoded)
    access: tuple[tuple[str, str], ...] = ()  # (Type, secret ARN)

    @property
    def region(self) -> str | None:
        match = GLUE_REGISTRY_ARN.fullmatch(self.uri)
        return match["region"] if match else None

    @property
    def registry_name(self) -> str | None:
        match = GLUE_REGISTRY_ARN.fullmatch(self.uri)
        return match["name"] if match else None


def registry_kind(uri: str) -> str | None:
    if GLUE_REGISTRY_ARN.fullmatch(uri):
        return GLUE
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https") and parts.hostname:
        return CONFLUENT
    return None


def schema_registry_config(request: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]] | None:
    """(path, SchemaRegistryConfig) of a Kafka mapping request, or None when it has none."""
    for key in KAFKA_CONFIG_KEYS:
        block = request.get(key)
        if isinstance(block, Mapping) and block.get("SchemaRegistryConfig") is not None:
            return f"{key}.SchemaRegistryConfig", block["SchemaRegistryConfig"]
    return None


def settings_for(request: Mapping[str, Any]) -> SchemaRegistrySettings | None:
    """The decoder's settings from a validated mapping request (None without a schema registry)."""
    found = schema_registry_config(request)
    if found is None:
        return None
    _, config = found
    uri = config["SchemaRegistryURI"]
    return SchemaRegistrySettings(
        uri=uri, kind=registry_kind(uri) or CONFLUENT, record_format=config["EventRecordFormat"],
        attributes=frozenset(c["Attribute"] for c in config["SchemaValidationConfigs"]),
        access=tuple((a["Type"], a["URI"]) for a in config.get("AccessConfigs") or ()))


def problems(config: Any, path: str) -> list[tuple[str, str]]:
    """(path, message) for each rule `config` breaks; types and enums are the API shape's to report."""
    if not isinstance(config, Mapping):
        return []
    out: list[tuple[str, str]] = []
    uri = config.get("SchemaRegistryURI")
    kind = None
    if uri is None:
        out.append((f"{path}.SchemaRegistryURI", "is required: an AWS Glue registry ARN "
                    "(arn:aws:glue:<region>:<account>:registry/<name>) or a Confluent schema registry's "
                    "http(s):// URL"))
    elif isinstance(uri, str):
        kind = registry_kind(uri)
        if kind is None:
            out.append((f"{path}.SchemaRegistryURI", "must be an AWS Glue registry ARN "
                        "(arn:aws:glue:<region>:<account>:registry/<name>) or a Confluent schema registry's "
                        f"http(s):// URL (got {uri!r})"))
    if "EventRecordFormat" not in config:
        out.append((f"{path}.EventRecordFormat", "is required: JSON (records delivered decoded, as JSON) or "
                    "SOURCE (as produced, without the schema framing)"))
    validations = config.get("SchemaValidationConfigs")
    if not validations:
        out.append((f"{path}.SchemaValidationConfigs", "is required: [{Attribute: KEY}] and/or "
                    "[{Attribute: VALUE}], the record parts to validate against the registry"))
    elif isinstance(validations, list):
        seen: set[str] = set()
        for i, item in enumerate(validations):
            attribute = item.get("Attribute") if isinstance(item, Mapping) else None
            if attribute is None:
                out.append((f"{path}.SchemaValidationConfigs[{i}].Attribute", "is required: KEY or VALUE"))
            elif attribute in seen:
                out.append((f"{path}.SchemaValidationConfigs[{i}].Attribute", f"{attribute} is listed twice"))
            seen.add(attribute)
    access = config.get("AccessConfigs") or []
    if isinstance(access, list):
        if len(access) > MAX_ACCESS_CONFIGS:
            out.append((f"{path}.AccessConfigs", f"must have at most {MAX_ACCESS_CONFIGS} entries (got {len(access)})"))
        types: set[str] = set()
        for i, item in enumerate(access):
            if not isinstance(item, Mapping):
                continue
            where = f"{path}.AccessConfigs[{i}]"
            kind_of = item.get("Type")
            if kind_of is None:
                out.append((f"{where}.Type", "is required: " + ", ".join(ACCESS_TYPES)))
            elif kind_of not in ACCESS_TYPES:
                out.append((f"{where}.Type",
                            f"{kind_of} is not supported by esm (supported: {', '.join(ACCESS_TYPES)})"))
            elif kind_of in types:
                out.append((f"{where}.Type", f"{kind_of} is listed twice"))
            elif kind == GLUE:
                out.append((f"{where}", "an AWS Glue registry takes no AccessConfigs: esm reaches it with "
                            "the AWS credentials"))
            elif kind == CONFLUENT and kind_of != BASIC_AUTH and urlsplit(str(uri)).scheme != "https":
                out.append((f"{where}.Type", f"{kind_of} needs an https:// SchemaRegistryURI"))
            if kind_of is not None:
                types.add(kind_of)
            if not item.get("URI"):
                out.append((f"{where}.URI", "is required: the ARN of a Secrets Manager secret"))
    return out
