"""Kafka connection security as configured: what a mapping's SourceAccessConfigurations and its
`esm:` Kafka options may say, checked as CreateEventSourceMapping would (and what esm does not serve).

Lambda's rules, as esm applies them (README "Kafka security"):
- self-managed Kafka: `BASIC_AUTH` is SASL/PLAIN, `SASL_SCRAM_256_AUTH` / `SASL_SCRAM_512_AUTH` are
  SASL/SCRAM, `CLIENT_CERTIFICATE_TLS_AUTH` is mutual TLS, `IAM_AUTH` is SASL/OAUTHBEARER signed with
  AWS credentials (the MSK IAM signer); at most one of them. `SERVER_ROOT_CA_CERTIFICATE` adds a
  root CA; `VPC_SUBNET` / `VPC_SECURITY_GROUP` are accepted and ignored. The mapping's
  `esm: {kafka_tls: true|false}` cannot turn TLS off where a client certificate, a root CA or IAM
  needs it.
- Amazon MSK: SCRAM with SHA-512 (`SASL_SCRAM_512_AUTH`, or `BASIC_AUTH`) or mutual TLS; no root
  CA (its brokers' certificates are public) and no `IAM_AUTH` entry (IAM is chosen from the
  cluster's broker strings when no secret is given).

`check_access`, `check_tls_option`, `check_secrets_option`, `check_destination_cluster` and
`check_kafka_extension` return `Problem`s; nothing here connects or reads a secret. How a valid
configuration becomes a connection (SASL mechanism, TLS context) is `esm.security.kafka_auth`.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from esm.config.references import check_reference
from esm.config.schema_registry import schema_registry_config
from esm.errors import Problem

BASIC_AUTH = "BASIC_AUTH"
SCRAM_256 = "SASL_SCRAM_256_AUTH"
SCRAM_512 = "SASL_SCRAM_512_AUTH"
CLIENT_CERTIFICATE = "CLIENT_CERTIFICATE_TLS_AUTH"
ROOT_CA = "SERVER_ROOT_CA_CERTIFICATE"
IAM_AUTH = "IAM_AUTH"
VPC_TYPES = ("VPC_SUBNET", "VPC_SECURITY_GROUP")
# A Kafka bootstrap server, as Lambda checks it: host:port (an IPv6 host in brackets), at most 10.
# Both the source rules (esm.config.rules) and the on-failure cluster check here use them.
MAX_BOOTSTRAP_SERVERS = 10
HOST_PORT = re.compile(r"^(\[[0-9a-fA-F:]+\]|[^:\s/]+):(\d{1,5})$")
AUTH_TYPES = (BASIC_AUTH, SCRAM_256, SCRAM_512, CLIENT_CERTIFICATE, IAM_AUTH)
NOT_SERVED = ("OAUTHBEARER_AUTH", "OAUTHBEARER_SCOPE", "OAUTHBEARER_AUDIENCE", "OAUTHBEARER_LOGICAL_CLUSTER",
              "OAUTHBEARER_IDENTITY_POOL", "IAM_OAUTHBEARER_AUTH")
NO_URI = (IAM_AUTH, "IAM_OAUTHBEARER_AUTH")  # Lambda: "omit the URI field for this type"

# What each secret must hold (required, optional), as Lambda documents the secret JSON.
SECRET_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    BASIC_AUTH: (("username", "password"), ()),
    SCRAM_256: (("username", "password"), ()),
    SCRAM_512: (("username", "password"), ()),
    CLIENT_CERTIFICATE: (("certificate", "privateKey"), ("privateKeyPassword",)),
    ROOT_CA: (("certificate",), ()),
}
ALL_SECRET_FIELDS = ("username", "password", "certificate", "privateKey", "privateKeyPassword")


def access_entries(raw: Any) -> list[dict[str, Any]]:
    return [e for e in raw or [] if isinstance(e, dict)]


def check_access(raw: Any, *, msk: bool, path: str = "SourceAccessConfigurations") -> list[Problem]:
    """What Lambda would refuse in a Kafka mapping's SourceAccessConfigurations (and what esm
    does not serve), each at `path[i].Type` / `path[i].URI`."""
    problems: list[Problem] = []
    auth: list[tuple[int, str]] = []
    seen: dict[str, int] = {}
    for i, entry in enumerate(raw or []):
        at = f"{path}[{i}]"
        if not isinstance(entry, dict):
            continue  # the API shape check reports it
        kind, uri = entry.get("Type"), entry.get("URI")
        if not kind:
            problems.append(Problem(f"{at}.Type", "is required"))
            continue
        if not isinstance(kind, str):
            problems.append(Problem(f"{at}.Type", f"must be a string (got {kind!r})"))
            continue
        if kind == "VIRTUAL_HOST":
            problems.append(Problem(f"{at}.Type", "VIRTUAL_HOST is for Amazon MQ (RabbitMQ) event sources, not Kafka"))
            continue
        if kind in NOT_SERVED:
            problems.append(Problem(f"{at}.Type", f"{kind} is not served by esm yet (served: BASIC_AUTH, "
                                    "SASL_SCRAM_256_AUTH, SASL_SCRAM_512_AUTH, CLIENT_CERTIFICATE_TLS_AUTH, "
                                    "SERVER_ROOT_CA_CERTIFICATE, IAM_AUTH)"))
            continue
        if msk:
            if kind == SCRAM_256:
                problems.append(Problem(f"{at}.Type", "Amazon MSK supports SASL/SCRAM with SHA-512 only: "
                                        "use SASL_SCRAM_512_AUTH"))
                continue
            if kind == ROOT_CA:
                problems.append(Problem(f"{at}.Type", "is for self-managed Kafka: Amazon MSK brokers use public "
                                        "certificates (Amazon Trust Services), which are trusted already"))
                continue
            if kind == IAM_AUTH:
                problems.append(Problem(f"{at}.Type", "is for self-managed Kafka; for Amazon MSK give no secret "
                                        "and IAM is used when the cluster has it on"))
                continue
        if kind in NO_URI:
            if uri:
                problems.append(Problem(f"{at}.URI", f"must be omitted for {kind} (there is no secret)"))
        elif not uri:
            what = "the subnet or security group ID" if kind in VPC_TYPES else "the secret's ARN (or a name listed under esm.secrets)"
            problems.append(Problem(f"{at}.URI", f"is required for {kind}: {what}"))
        if kind in AUTH_TYPES:
            auth.append((i, kind))
        if kind in (ROOT_CA, *AUTH_TYPES) and kind in seen:
            problems.append(Problem(f"{at}.Type", f"{kind} is given twice (also at {path}[{seen[kind]}])"))
        seen.setdefault(kind, i)
    distinct = sorted({kind for _, kind in auth})
    if len(distinct) > 1:
        i = [i for i, kind in auth if kind == distinct[1]][0]
        problems.append(Problem(f"{path}[{i}].Type", "only one authentication method may be given "
                                f"(found {' and '.join(distinct)})"))
    return problems


def check_tls_option(tls: bool | None, raw: Any, *, path: str) -> list[Problem]:
    """`tls: false` cannot go with a client certificate, a root CA or IAM, which all need TLS."""
    if tls is not False:
        return []
    needs = [e.get("Type") for e in access_entries(raw) if e.get("Type") in (CLIENT_CERTIFICATE, ROOT_CA, IAM_AUTH)]
    if needs:
        return [Problem(path, f"false turns TLS off, which {', '.join(sorted(set(needs)))} needs")]
    return []


def check_secrets_option(raw: Any, path: str, base_dir: str) -> tuple[dict[str, Any], list[Problem]]:
    """`esm.secrets`: where secrets come from outside AWS, by the URI SourceAccessConfigurations give.

    Each URI maps to either the whole secret JSON (`{env: VAR}` or `{file: PATH}`) or its fields one
    by one (`{username: {env: VAR}, password: {file: PATH}, certificate: {file: PATH}, ...}`, a
    field may also be a plain string). Relative paths are taken from the config file's folder.
    Returns the normalized option (absolute paths) and its problems.
    """
    problems: list[Problem] = []
    if raw is None:
        return {}, problems
    if not isinstance(raw, dict):
        return {}, [Problem(path, "must be a mapping of secret URIs (as in SourceAccessConfigurations) "
                            "to {env: VAR} or {file: PATH} or their fields")]
    normalized: dict[str, Any] = {}
    for uri, spec in raw.items():
        at = f"{path}.{uri}"
        if isinstance(spec, dict) and set(spec) in ({"env"}, {"file"}):
            ref = check_reference(spec, at, base_dir, problems)
            if ref is not None:
                normalized[str(uri)] = {"whole": ref}
            continue
        if not isinstance(spec, dict) or not spec:
            problems.append(Problem(at, "must be {env: VAR} or {file: PATH} (the secret's JSON), or a mapping "
                                    "of its fields (" + ", ".join(ALL_SECRET_FIELDS) + ")"))
            continue
        fields: dict[str, Any] = {}
        for name, value in spec.items():
            if name not in ALL_SECRET_FIELDS:
                problems.append(Problem(f"{at}.{name}", "unknown secret field; valid fields are " +
                                        ", ".join(ALL_SECRET_FIELDS) + " (or env/file alone for the whole JSON)"))
                continue
            if isinstance(value, str):
                fields[name] = {"value": value}
                continue
            ref = check_reference(value, f"{at}.{name}", base_dir, problems)
            if ref is not None:
                fields[name] = ref
        normalized[str(uri)] = {"fields": fields}
    return normalized, problems


def check_destination_cluster(raw: Any, path: str) -> tuple[dict[str, Any] | None, list[Problem]]:
    """`esm.on_failure_kafka`: the cluster of a kafka:// on-failure topic when it is not the source's.

    `{bootstrap_servers: [host:port, ...], SourceAccessConfigurations: [...], tls: true|false}`; the
    access entries follow the self-managed Kafka rules and their secrets resolve like the source's.
    """
    if raw is None:
        return None, []
    keys = ("bootstrap_servers", "SourceAccessConfigurations", "tls")
    if not isinstance(raw, dict):
        return None, [Problem(path, "must be a mapping with " + ", ".join(keys))]
    problems = [Problem(f"{path}.{k}", "unknown field; valid fields are " + ", ".join(keys)) for k in raw if k not in keys]
    servers = raw.get("bootstrap_servers")
    if not (isinstance(servers, list) and 1 <= len(servers) <= MAX_BOOTSTRAP_SERVERS):
        problems.append(Problem(f"{path}.bootstrap_servers",
                                f"is required: a list of 1 to {MAX_BOOTSTRAP_SERVERS} host:port entries"))
    else:
        for i, server in enumerate(servers):
            if not (isinstance(server, str) and HOST_PORT.match(server)):
                problems.append(Problem(f"{path}.bootstrap_servers[{i}]", f"must be host:port (got {server!r})"))
    access = raw.get("SourceAccessConfigurations")
    access_path = f"{path}.SourceAccessConfigurations"
    if access is not None and not (isinstance(access, list) and all(isinstance(e, dict) for e in access)):
        problems.append(Problem(access_path, "must be a list of {Type, URI} entries"))
        access = None
    elif access is not None:
        for i, entry in enumerate(access):
            unknown = [k for k in entry if k not in ("Type", "URI")]
            if unknown:
                problems.append(Problem(f"{access_path}[{i}]", f"unknown field(s) {', '.join(map(str, unknown))}; "
                                        "an entry has Type and URI"))
            if "URI" in entry and not (isinstance(entry["URI"], str) and 1 <= len(entry["URI"]) <= 200):
                problems.append(Problem(f"{access_path}[{i}].URI", "must be a string of 1 to 200 characters"))
        problems.extend(check_access(access, msk=False, path=access_path))
    tls = raw.get("tls")
    if tls is not None and not isinstance(tls, bool):
        problems.append(Problem(f"{path}.tls", f"must be true or false (got {tls!r})"))
        tls = None
    problems.extend(check_tls_option(tls, access, path=f"{path}.tls"))
    if problems:
        return None, problems
    return {"bootstrap_servers": tuple(servers), "SourceAccessConfigurations": tuple(access or ()), "tls": tls}, []


def secret_uris(raw: Sequence[Any] | None) -> set[str]:
    return {e["URI"] for e in access_entries(raw) if e.get("URI") and (e.get("Type") in SECRET_FIELDS)}


def check_kafka_extension(extension: Any, request: Mapping[str, Any], source: str) -> list[Problem]:
    """Cross-checks of the `esm:` Kafka options against the mapping (paths relative to it)."""
    problems: list[Problem] = []
    msk = "SelfManagedEventSource" not in request
    access = request.get("SourceAccessConfigurations")
    if extension.kafka_tls is not None:
        if msk:
            problems.append(Problem("esm.kafka_tls", "is for self-managed Kafka; for Amazon MSK the broker "
                                    "string chosen for the authentication decides TLS"))
        else:
            problems.extend(check_tls_option(extension.kafka_tls, access, path="esm.kafka_tls"))
    target = ((request.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination") or ""
    other = extension.on_failure_kafka
    if "on_failure_kafka" in extension.raw and not target.startswith("kafka://"):
        problems.append(Problem("esm.on_failure_kafka", "names the cluster of a kafka:// on-failure destination, "
                                "but DestinationConfig.OnFailure.Destination is not kafka://<topic>"))
    used = secret_uris(access) | secret_uris((other or {}).get("SourceAccessConfigurations"))
    registry = schema_registry_config(request)
    if registry is not None:
        used |= secret_uris(registry[1].get("AccessConfigs"))
    for uri in extension.secrets:
        if uri not in used:
            problems.append(Problem(f"esm.secrets.{uri}", "is not the URI of any secret in SourceAccessConfigurations"
                                    " (nor in esm.on_failure_kafka or the SchemaRegistryConfig's AccessConfigs)"))
    return problems
