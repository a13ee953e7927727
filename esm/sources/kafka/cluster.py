"""How a Kafka mapping reaches its clusters: the source's, and an on-failure topic's in another one.

`source_cluster` turns a mapping into a `KafkaCluster` (bootstrap servers + aiokafka connection
keywords): the access plan from SourceAccessConfigurations (`esm.security.kafka_auth`), the
brokers (self-managed endpoints, or GetBootstrapBrokers for an Amazon MSK cluster ARN,
`esm.sources.kafka.msk`), the secrets' contents (`esm.security.secrets`) and, for IAM, a token
provider. `destination_cluster` does the same for `esm.on_failure_kafka`. Both run when the
source connects (secrets are read then, never at config time), and raise `SourceUnavailable`.

`why_unreachable` explains a failed bootstrap: aiokafka only says "Unable to bootstrap", so one
connection is tried by hand to learn whether TLS verification or SASL authentication failed.
"""

from __future__ import annotations

import asyncio
import ssl
from types import MappingProxyType
from typing import Any, Mapping

from aiokafka.conn import create_conn
from aiokafka.errors import KafkaError

from esm.arns import parse_arn
from esm.aws import AwsClients
from esm.config.settings import MappingSettings
from esm.destinations.kafka import KafkaCluster
from esm.security.kafka_auth import IAM, AccessPlan, client_options, plan_access, secret_kinds
from esm.security.secrets import SecretSource
from esm.sources.kafka.msk import IamTokenProvider, bootstrap_brokers, choose_brokers

PROBE_TIMEOUT = 15.0
_CONNECTION_KEYS = ("security_protocol", "ssl_context", "sasl_mechanism", "sasl_plain_username",
                    "sasl_plain_password", "sasl_oauth_token_provider")


async def source_cluster(mapping: MappingSettings, clients: AwsClients) -> tuple[KafkaCluster, AccessPlan]:
    """The source's cluster and the access plan it was built from."""
    msk = "SelfManagedEventSource" not in mapping.request
    plan = plan_access(mapping.get("SourceAccessConfigurations"), msk=msk, tls=mapping.extension.kafka_tls)
    if msk:
        servers, plan = choose_brokers(await bootstrap_brokers(clients, mapping.source_id), plan, mapping.source_id)
        arn = parse_arn(mapping.source_id)
        region = arn.region if arn else ""
    else:
        servers = list((mapping.get("SelfManagedEventSource") or {}).get("Endpoints", {})
                       .get("KAFKA_BOOTSTRAP_SERVERS") or [])
        region = ""
    options = await _options(plan, SecretSource(clients, mapping.extension.secrets), clients,
                             region or clients.region_for() or "us-east-1")
    return KafkaCluster(tuple(servers), MappingProxyType(options)), plan


async def destination_cluster(mapping: MappingSettings, clients: AwsClients) -> KafkaCluster | None:
    """The cluster of `esm.on_failure_kafka`, if the mapping names one."""
    spec = mapping.extension.on_failure_kafka
    if not spec:
        return None
    plan = plan_access(spec.get("SourceAccessConfigurations"), msk=False, tls=spec.get("tls"))
    options = await _options(plan, SecretSource(clients, mapping.extension.secrets), clients,
                             clients.region_for() or "us-east-1")
    return KafkaCluster(tuple(spec["bootstrap_servers"]), MappingProxyType(options))


async def _options(plan: AccessPlan, secrets: SecretSource, clients: AwsClients, region: str) -> dict[str, Any]:
    contents = {uri: await secrets.read(uri, kind) for uri, kind in secret_kinds(plan)}
    provider = IamTokenProvider(clients, region) if plan.auth == IAM else None
    return client_options(plan, contents, provider)


async def why_unreachable(cluster: KafkaCluster) -> str | None:
    """Connect to each bootstrap server once with the cluster's settings; the first failure, said
    plainly (a certificate that is not trusted, credentials refused, nothing listening)."""
    options: Mapping[str, Any] = {k: v for k, v in cluster.options.items() if k in _CONNECTION_KEYS}
    for server in cluster.bootstrap_servers:
        host, _, port = server.rpartition(":")
        try:
            conn = await asyncio.wait_for(
                create_conn(host.strip("[]"), int(port), client_id="esm-probe",
                            request_timeout_ms=int(PROBE_TIMEOUT * 1000), **options), PROBE_TIMEOUT)
        except ssl.SSLCertVerificationError as error:
            return (f"{server}: the broker's TLS certificate is not trusted ({error.verify_message}); give its CA "
                    "as SERVER_ROOT_CA_CERTIFICATE")
        except (KafkaError, OSError, asyncio.TimeoutError, ValueError) as error:
            return f"{server}: {type(error).__name__}: {error}"
        conn.close()
    return None
