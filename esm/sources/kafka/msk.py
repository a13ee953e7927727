"""Amazon MSK: a cluster ARN's bootstrap brokers, chosen as Lambda chooses them, and IAM tokens.

`bootstrap_brokers` asks the Kafka API (GetBootstrapBrokers) for the cluster's broker strings;
`choose_brokers` picks one the way Lambda documents ("How Lambda chooses a bootstrap broker"):
a client-certificate secret means the TLS brokers with mutual TLS, a SCRAM secret the SASL/SCRAM
brokers; without a secret, the strongest method the cluster has on: IAM, then TLS, then
plaintext. If that broker string is missing, the source is unavailable: like Lambda, esm never
falls back to a weaker kind. The VPC broker strings (private VPC connectivity) and public ones
are not used: esm connects to the cluster's own brokers.

`IamTokenProvider` signs SASL/OAUTHBEARER tokens with AWS's MSK IAM signer library
(`aws-msk-iam-sasl-signer-python`), using the credentials esm's own AWS session finds.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

import aiohttp
from aiokafka.abc import AbstractTokenProvider
from botocore.exceptions import BotoCoreError, ClientError

from esm.arns import parse_arn
from esm.aws import AwsClients
from esm.errors import SourceUnavailable
from esm.security.kafka_auth import IAM, MTLS, NONE, SCRAM_SHA_512, AccessPlan

PLAINTEXT_BROKERS = "BootstrapBrokerString"
TLS_BROKERS = "BootstrapBrokerStringTls"
SCRAM_BROKERS = "BootstrapBrokerStringSaslScram"
IAM_BROKERS = "BootstrapBrokerStringSaslIam"
TOKEN_REFRESH_MARGIN = 60.0  # seconds before a token's expiry when a new one is signed


async def bootstrap_brokers(clients: AwsClients, cluster_arn: str) -> dict[str, Any]:
    """GetBootstrapBrokers for `cluster_arn`, in the ARN's region."""
    arn = parse_arn(cluster_arn)
    try:
        async with clients.client("kafka", arn.region if arn else None) as kafka:
            return dict(await kafka.get_bootstrap_brokers(ClusterArn=cluster_arn))
    except ClientError as error:
        info = error.response.get("Error", {})
        raise SourceUnavailable(f"Amazon MSK cluster {cluster_arn}: GetBootstrapBrokers failed: "
                                f"{info.get('Code')}: {info.get('Message')}") from None
    except (BotoCoreError, aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
        raise SourceUnavailable(f"Amazon MSK cluster {cluster_arn}: the Kafka API is not reachable: {error}") from None


def choose_brokers(answer: dict[str, Any], plan: AccessPlan, cluster_arn: str) -> tuple[list[str], AccessPlan]:
    """The broker list for `plan` (Lambda's order when there is no secret) and the plan made
    definite: its authentication (IAM when chosen) and whether TLS is on."""
    if plan.auth == MTLS:
        field, why, plan = TLS_BROKERS, "mutual TLS (CLIENT_CERTIFICATE_TLS_AUTH)", replace(plan, tls=True)
    elif plan.auth == SCRAM_SHA_512:
        field, why, plan = SCRAM_BROKERS, f"SASL/SCRAM ({plan.auth_type})", replace(plan, tls=True)
    elif plan.auth == NONE and answer.get(IAM_BROKERS):
        field, why, plan = IAM_BROKERS, "IAM", replace(plan, auth=IAM, tls=True)
    elif plan.auth == NONE and answer.get(TLS_BROKERS):
        field, why, plan = TLS_BROKERS, "TLS without authentication", replace(plan, tls=True)
    elif plan.auth == NONE:
        field, why, plan = PLAINTEXT_BROKERS, "plaintext", replace(plan, tls=False)
    else:
        raise SourceUnavailable(f"Amazon MSK cluster {cluster_arn}: {plan.auth} is not an MSK authentication")
    servers = [s.strip() for s in str(answer.get(field) or "").split(",") if s.strip()]
    if not servers:
        raise SourceUnavailable(
            f"Amazon MSK cluster {cluster_arn} has no brokers for {why} (GetBootstrapBrokers gave no {field}); "
            "turn that authentication on for the cluster (Lambda does not fall back to a weaker one)")
    return servers, plan


class IamTokenProvider(AbstractTokenProvider):
    """SASL/OAUTHBEARER tokens for MSK IAM: a presigned `kafka-cluster:Connect` URL, signed with
    the AWS credentials of esm's session and reused until shortly before it expires."""

    def __init__(self, clients: AwsClients, region: str):
        self.clients = clients
        self.region = region
        self._token: str | None = None
        self._expires = 0.0  # epoch seconds
        self._lock = asyncio.Lock()

    async def token(self) -> str:
        async with self._lock:
            if self._token is None or time.time() > self._expires - TOKEN_REFRESH_MARGIN:
                self._token, self._expires = await self._sign()
            return self._token

    async def _sign(self) -> tuple[str, float]:
        from aws_msk_iam_sasl_signer import MSKAuthTokenProvider
        from botocore.credentials import CredentialProvider, Credentials

        found = await self.clients.session.get_credentials()
        if found is None:
            raise SourceUnavailable("MSK IAM authentication needs AWS credentials, and none were found "
                                    "(environment, profile, web identity or instance role)")
        frozen = await found.get_frozen_credentials()

        class Fixed(CredentialProvider):  # the signer takes credentials only through a provider
            METHOD = "esm-session"

            def load(self) -> Credentials:
                return Credentials(frozen.access_key, frozen.secret_key, frozen.token)

        token, expiry_ms = MSKAuthTokenProvider.generate_auth_token_from_credentials_provider(self.region, Fixed())
        return token, expiry_ms / 1000.0
