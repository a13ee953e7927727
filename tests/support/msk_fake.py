"""FakeMskApi: a stand-in for the one Amazon MSK API call moto does not serve, GetBootstrapBrokers.

A FAKE, named so on purpose: moto 5.2.5 serves MSK clusters (CreateCluster, DescribeCluster,
ListClusters) but answers GetBootstrapBrokers with a 500. This small aiohttp server answers
`GET /v1/clusters/{clusterArn}/bootstrap-brokers` in the Kafka API's REST-JSON shape, with broker
strings a test chose (the real test broker's listeners), for clusters that exist in moto (checked
with ListClusters, so an unknown ARN gets MSK's 404 NotFoundException). Every other request is a
404. Point esm's `aws: {endpoints: {kafka: fake.url}}` at it. It records the requests it saw.
"""

from __future__ import annotations

import os
from typing import Any

from aiobotocore.session import get_session
from aiohttp import web

from tests.support.fake_server import LoopbackApi

# GetBootstrapBrokers' response members and their JSON names (the Kafka API's model).
JSON_NAMES = {
    "BootstrapBrokerString": "bootstrapBrokerString",
    "BootstrapBrokerStringTls": "bootstrapBrokerStringTls",
    "BootstrapBrokerStringSaslScram": "bootstrapBrokerStringSaslScram",
    "BootstrapBrokerStringSaslIam": "bootstrapBrokerStringSaslIam",
}


class FakeMskApi(LoopbackApi):
    """GetBootstrapBrokers for clusters moto knows; `brokers[arn]` = {BootstrapBrokerString...: "h:p,..."}."""

    def __init__(self) -> None:
        self.brokers: dict[str, dict[str, str]] = {}
        self.requests: list[dict[str, Any]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/clusters/{arn:.+}/bootstrap-brokers", self._bootstrap_brokers)

    async def close(self) -> None:
        await self.stop()

    async def _bootstrap_brokers(self, request: web.Request) -> web.Response:
        arn = request.match_info["arn"]
        self.requests.append({"arn": arn, "authorization": request.headers.get("Authorization", "")})
        if arn not in await _moto_clusters(arn) or arn not in self.brokers:
            return web.json_response({"message": f"Cluster {arn} not found"}, status=404,
                                     headers={"x-amzn-ErrorType": "NotFoundException"})
        return web.json_response({JSON_NAMES[k]: v for k, v in self.brokers[arn].items()})


async def _moto_clusters(arn: str) -> set[str]:
    region = arn.split(":")[3] or "us-east-1"
    async with get_session().create_client("kafka", region_name=region,
                                           endpoint_url=os.environ["ESM_AWS_ENDPOINT"]) as kafka:
        listed = await kafka.list_clusters()
    return {c["ClusterArn"] for c in listed.get("ClusterInfoList", [])}
