"""Credentials for a Confluent schema registry, from the secrets `SchemaRegistryConfig.AccessConfigs`
names, in the formats Lambda documents:

- BASIC_AUTH: `{"username": ..., "password": ...}` (for Confluent Cloud, the API key and secret);
- CLIENT_CERTIFICATE_TLS_AUTH: `{"certificate": PEM chain, "privateKey": PEM, "privateKeyPassword"?}`;
- SERVER_ROOT_CA_CERTIFICATE: `{"certificate": PEM}`, trusted beside the system's CAs.

Secrets are read as the Kafka connection's are (`esm.security.secrets.SecretSource`: Secrets
Manager, or the mapping's `esm.secrets` outside AWS), and the TLS context is built the same way
(`esm.security.kafka_auth.ssl_context`). A secret that cannot be read or lacks a field is
`RegistryUnavailable`, retried like an unreachable registry, with a message naming the secret.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from ssl import SSLContext
from typing import Any, Mapping

from esm.aws import AwsClients
from esm.errors import SourceUnavailable
from esm.config.schema_registry import BASIC_AUTH, CLIENT_CERTIFICATE_TLS_AUTH, SERVER_ROOT_CA_CERTIFICATE
from esm.schemas.registry import RegistryUnavailable
from esm.security.kafka_auth import ssl_context
from esm.security.secrets import SecretSource


@dataclass(frozen=True)
class Access:
    authorization: str | None = None  # the Authorization header (HTTP basic auth)
    ssl: SSLContext | None = None  # None: aiohttp's default verification


def basic_authorization(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


async def load_access(clients: AwsClients, access: tuple[tuple[str, str], ...],
                      overrides: Mapping[str, Any] | None = None) -> Access:
    secrets = SecretSource(clients, overrides)
    authorization = root_ca = None
    client: Mapping[str, str] | None = None
    client_secret = None
    try:
        for kind, uri in access:
            fields = await secrets.read(uri, kind)
            if kind == BASIC_AUTH:
                authorization = basic_authorization(fields["username"], fields["password"])
            elif kind == CLIENT_CERTIFICATE_TLS_AUTH:
                client, client_secret = fields, uri
            elif kind == SERVER_ROOT_CA_CERTIFICATE:
                root_ca = fields["certificate"]
        context = ssl_context(root_ca, client, secret=client_secret) if root_ca or client else None
    except SourceUnavailable as error:
        raise RegistryUnavailable(f"schema registry access: {error}") from None
    return Access(authorization=authorization, ssl=context)
