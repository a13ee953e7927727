"""AWS clients the way every SDK builds them, with the config's `aws:` block on top.

Region, credentials and endpoints come from the standard chain (AWS_REGION, AWS_ENDPOINT_URL_<SERVICE>,
profiles, instance roles) — botocore reads them itself. `aws.region` and `aws.endpoints` override;
otherwise a client for a resource defaults to the region in that resource's ARN.
"""

from __future__ import annotations

import contextlib
from typing import Any, AsyncIterator

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession, get_session

from esm.config.settings import AwsSettings

# Retries are ours to decide (backoff on throttles, no retry on function errors); botocore's
# standard mode still absorbs transient network faults on control calls.
DEFAULT_CONFIG = AioConfig(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=100)


class AwsClients:
    """One aiobotocore session for the process; clients are async context managers."""

    def __init__(self, settings: AwsSettings, session: AioSession | None = None):
        self.settings = settings
        self.session = session or get_session()

    def region_for(self, arn_region: str | None = None) -> str | None:
        return self.settings.region or arn_region or self.session.get_config_variable("region") or None

    @contextlib.asynccontextmanager
    async def client(self, service: str, region: str | None = None, **config: Any) -> AsyncIterator[Any]:
        kwargs: dict[str, Any] = {"region_name": self.region_for(region) or "us-east-1"}
        endpoint = self.settings.endpoint_for(service)
        if endpoint:
            kwargs["endpoint_url"] = endpoint
        merged = DEFAULT_CONFIG.merge(AioConfig(**config)) if config else DEFAULT_CONFIG
        async with self.session.create_client(service, config=merged, **kwargs) as client:
            yield client
