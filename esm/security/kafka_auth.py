"""Kafka connection security as connected: an access plan from SourceAccessConfigurations, and
aiokafka's connection keywords from a plan plus its secrets.

What the configuration may say is checked before (`esm.config.kafka_access`); here valid entries
become an `AccessPlan` (`plan_access`): SASL runs over TLS (Lambda has no SASL_PLAINTEXT unless
`esm: {kafka_tls: false}` says so, outside AWS), `SERVER_ROOT_CA_CERTIFICATE` alone means TLS without
authentication, nothing at all means PLAINTEXT, and Amazon MSK's `BASIC_AUTH` can only mean
SCRAM-SHA-512 (for MSK without a secret, the broker string chosen settles TLS and IAM:
`esm.sources.kafka.msk`). `client_options` turns a plan plus the secrets' contents into aiokafka's
keywords. TLS always verifies the broker's certificate and host name, against the system's CAs
plus the root CA, if given; there is no switch to turn verification off. Nothing here does network I/O.
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass, replace
from typing import Any, Mapping

from esm.config.kafka_access import (
    BASIC_AUTH,
    CLIENT_CERTIFICATE,
    IAM_AUTH,
    ROOT_CA,
    SCRAM_256,
    SCRAM_512,
    SECRET_FIELDS,
    VPC_TYPES,
    access_entries,
)
from esm.errors import SourceUnavailable

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


def plan_access(raw: Any, *, msk: bool, tls: bool | None = None) -> AccessPlan:
    """The plan for entries that passed `check_access`. For Amazon MSK, `tls` is settled later,
    by the broker string chosen (`esm.sources.kafka.msk.choose_brokers`)."""
    plan = AccessPlan()
    ignored = []
    for entry in access_entries(raw):
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
