"""Kafka connection security: what a mapping's SourceAccessConfigurations ask for, checked and planned.

Lambda's rules, as esm applies them (README "Kafka security"):
- self-managed Kafka: `BASIC_AUTH` is SASL/PLAIN, `SASL_SCRAM_256_AUTH` / `SASL_SCRAM_512_AUTH` are
  SASL/SCRAM, `CLIENT_CERTIFICATE_TLS_AUTH` is mutual TLS, `IAM_AUTH` is SASL/OAUTHBEARER signed with
  AWS credentials (the MSK IAM signer); at most one of them. SASL runs over TLS (Lambda has no
  SASL_PLAINTEXT), `SERVER_ROOT_CA_CERTIFICATE` alone means TLS without authentication, nothing at
  all means PLAINTEXT. The mapping's `esm: {kafka_tls: true|false}` turns TLS on for a cluster with
  public certificates and no authentication, or off for SASL on a plaintext listener (outside AWS).
- Amazon MSK: SCRAM with SHA-512 (`SASL_SCRAM_512_AUTH`, or `BASIC_AUTH`, which can only mean that
  there since MSK has no SASL/PLAIN) or mutual TLS; without a secret the broker string the cluster
  offers decides, strongest first: IAM, then TLS, then plaintext (`esm.sources.kafka.msk`).
- `VPC_SUBNET` / `VPC_SECURITY_GROUP` are accepted and ignored (esm runs in whatever network its
  host has; the source logs that once).
- TLS always verifies the broker's certificate and host name, against the system's CAs plus the
  `SERVER_ROOT_CA_CERTIFICATE`, if given. There is no switch to turn verification off.

`check_access` reports what CreateEventSourceMapping would refuse (and what esm does not serve);
`plan_access` turns valid entries into an `AccessPlan`; `client_options` turns a plan plus the
secrets' contents into aiokafka's connection keywords. Nothing here does I/O.
"""

from __future__ import annotations

import os
import re
import ssl
import tempfile
from dataclasses import dataclass, replace
from typing import Any, Mapping, Sequence

from esm.config.references import check_reference
from esm.errors import Problem, SourceUnavailable

BASIC_AUTH = "BASIC_AUTH"
SCRAM_256 = "SASL_SCRAM_256_AUTH"
SCRAM_512 = "SASL_SCRAM_512_AUTH"
CLIENT_CERTIFICATE = "CLIENT_CERTIFICATE_TLS_AUTH"
ROOT_CA = "SERVER_ROOT_CA_CERTIFICATE"
IAM_AUTH = "IAM_AUTH"
VPC_TYPES = ("VPC_SUBNET", "VPC_SECURITY_GROUP")
# A Kafka bootstrap server, as Lambda checks it: host:port (an IPv6 host in brackets), at most 10.
# Defined here, not in esm.config.rules, because both the source rules there and the on-failure
# cluster check here use them (and rules imports this module).
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

# How the connection authenticates.
NONE, PLAIN, SCRAM_SHA_256, SCRAM_SHA_512, MTLS, IAM = "none", "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "mTLS", "IAM"
_AUTH_OF = {BASIC_AUTH: PLAIN, SCRAM_256: SCRAM_SHA_256, SCRAM_512: SCRAM_SHA_512, CLIENT_CERTIFICATE: MTLS,
            IAM_AUTH: IAM}


@dataclass(frozen=True)
class AccessPlan:
    """How to connect: the authentication, the secrets it needs (by URI), and whether TLS is on."""

    auth: str = NONE
    auth_type: str | None = None  # the SourceAccessConfigurations Type that asked for it
    auth_secret: str | None = None
    root_ca_secret: str | None = None
    tls: bool = False
    ignored: tuple[str, ...] = ()  # VPC entries: accepted, meaningless outside AWS

    @property
    def security_protocol(self) -> str:
        sasl = self.auth in (PLAIN, SCRAM_SHA_256, SCRAM_SHA_512, IAM)
        if sasl:
            return "SASL_SSL" if self.tls else "SASL_PLAINTEXT"
        return "SSL" if self.tls else "PLAINTEXT"

    def describe(self) -> str:
        """For logs: the protocol and mechanism, never a secret."""
        return self.security_protocol + (f" ({self.auth})" if self.auth != NONE else "")


def _entries(raw: Any) -> list[dict[str, Any]]:
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
    needs = [e.get("Type") for e in _entries(raw) if e.get("Type") in (CLIENT_CERTIFICATE, ROOT_CA, IAM_AUTH)]
    if needs:
        return [Problem(path, f"false turns TLS off, which {', '.join(sorted(set(needs)))} needs")]
    return []


def plan_access(raw: Any, *, msk: bool, tls: bool | None = None) -> AccessPlan:
    """The plan for entries that passed `check_access`. For Amazon MSK, `tls` is settled later,
    by the broker string chosen (`esm.sources.kafka.msk.choose_brokers`)."""
    plan = AccessPlan()
    ignored = []
    for entry in _entries(raw):
        kind, uri = entry.get("Type"), entry.get("URI")
        if kind in VPC_TYPES:
            ignored.append(f"{kind}={uri}")
        elif kind == ROOT_CA:
            plan = replace(plan, root_ca_secret=uri)
        elif kind in _AUTH_OF:
            auth = SCRAM_SHA_512 if (msk and kind == BASIC_AUTH) else _AUTH_OF[kind]
            plan = replace(plan, auth=auth, auth_type=kind, auth_secret=uri)
    if tls is None:
        tls = plan.auth != NONE or plan.root_ca_secret is not None
    return replace(plan, tls=tls, ignored=tuple(ignored))


def secret_kinds(plan: AccessPlan) -> list[tuple[str, str]]:
    """(URI, Type) of every secret the plan needs."""
    wanted = []
    if plan.auth_secret and plan.auth_type in SECRET_FIELDS:
        wanted.append((plan.auth_secret, plan.auth_type))
    if plan.root_ca_secret:
        wanted.append((plan.root_ca_secret, ROOT_CA))
    return wanted


def client_options(plan: AccessPlan, secrets: Mapping[str, Mapping[str, str]],
                   token_provider: Any = None) -> dict[str, Any]:
    """aiokafka's connection keywords for `plan`; `secrets` maps each needed URI to its fields."""
    options: dict[str, Any] = {"security_protocol": plan.security_protocol}
    if plan.tls:
        root = secrets[plan.root_ca_secret]["certificate"] if plan.root_ca_secret else None
        client = secrets[plan.auth_secret] if plan.auth == MTLS and plan.auth_secret else None
        options["ssl_context"] = ssl_context(root, client, secret=plan.auth_secret)
    if plan.auth in (PLAIN, SCRAM_SHA_256, SCRAM_SHA_512):
        credentials = secrets[plan.auth_secret or ""]
        options.update(sasl_mechanism=plan.auth, sasl_plain_username=credentials["username"],
                       sasl_plain_password=credentials["password"])
    elif plan.auth == IAM:
        options.update(sasl_mechanism="OAUTHBEARER", sasl_oauth_token_provider=token_provider)
    return options


def ssl_context(root_ca: str | None, client: Mapping[str, str] | None, *, secret: str | None = None) -> ssl.SSLContext:
    """A verifying client context: system CAs plus `root_ca` (PEM); `client` holds a certificate
    chain and PKCS#8 key (PEM, the key optionally encrypted with `privateKeyPassword`)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH)  # CERT_REQUIRED, host names checked
    if root_ca:
        try:
            context.load_verify_locations(cadata=root_ca)
        except (ssl.SSLError, ValueError) as error:
            raise SourceUnavailable(f"the SERVER_ROOT_CA_CERTIFICATE secret is not a PEM certificate: {error}") from None
    if client:
        # The ssl module loads a certificate and key only from files: write them to a private
        # folder just long enough to load them.
        with tempfile.TemporaryDirectory(prefix="esm-tls-") as folder:
            cert, key = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
            for name, text in ((cert, client["certificate"]), (key, client["privateKey"])):
                with open(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8") as out:
                    out.write(text)
            password = client.get("privateKeyPassword") or None
            try:
                context.load_cert_chain(cert, key, password=password)
            except (ssl.SSLError, ValueError) as error:
                raise SourceUnavailable(
                    f"CLIENT_CERTIFICATE_TLS_AUTH secret {secret}: the certificate and private key cannot be "
                    f"loaded ({error.__class__.__name__}: {error}); they must be PEM, the key PKCS#8, and "
                    "privateKeyPassword must open an encrypted key") from None
    return context


def ignored_note(plan: AccessPlan) -> str | None:
    """The log line for accepted-and-ignored VPC entries, if any."""
    if not plan.ignored:
        return None
    return ("ignoring " + ", ".join(plan.ignored) + ": VPC settings only mean something inside AWS; "
            "esm reaches the brokers through its host's own network")


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
    return {e["URI"] for e in _entries(raw) if e.get("URI") and (e.get("Type") in SECRET_FIELDS)}


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
    from esm.schemas.config import schema_registry_config  # esm.schemas builds on this module

    registry = schema_registry_config(request)
    if registry is not None:
        used |= secret_uris(registry[1].get("AccessConfigs"))
    for uri in extension.secrets:
        if uri not in used:
            problems.append(Problem(f"esm.secrets.{uri}", "is not the URI of any secret in SourceAccessConfigurations"
                                    " (nor in esm.on_failure_kafka or the SchemaRegistryConfig's AccessConfigs)"))
    return problems
