"""FakeMqApi: Amazon MQ's DescribeBroker as moto answers it, with the broker's endpoints rewritten.

A FAKE, named so on purpose: moto serves Amazon MQ brokers (CreateBroker, DescribeBroker), but the
endpoints it lists name hosts that do not exist (`amqps://b-….mq.us-east-1.amazonaws.com:5671`).
A mapping made through the control API carries no `esm.broker`, so esm finds the broker the way
Lambda does, with DescribeBroker; this server passes each `GET /v1/brokers/{id}` on to moto
(headers and all) and answers moto's own document, with `brokerInstances[].endpoints` replaced by
the URIs a test chose for that broker (the real test broker's). Every other request is a 404.
Point esm's `aws: {endpoints: {mq: fake.url}}` at it. It records the broker ids it was asked for.
"""

from __future__ import annotations

import json
import os

import aiohttp
from aiohttp import web

from tests.support.fake_server import LoopbackApi


class FakeMqApi(LoopbackApi):
    """DescribeBroker for brokers moto knows; `endpoints[broker_id]` = the URIs to answer instead of moto's."""

    def __init__(self) -> None:
        self.endpoints: dict[str, list[str]] = {}
        self.asked: list[str] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/v1/brokers/{broker_id}", self._describe_broker)

    async def _describe_broker(self, request: web.Request) -> web.Response:
        broker_id = request.match_info["broker_id"]
        self.asked.append(broker_id)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host", "content-length")}
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{os.environ['ESM_AWS_ENDPOINT']}/v1/brokers/{broker_id}",
                                   headers=headers) as answer:
                status, body = answer.status, await answer.read()
                kept = {k: v for k, v in answer.headers.items() if k.lower().startswith("x-amz")}
        if status != 200 or broker_id not in self.endpoints:
            return web.Response(status=status, body=body, headers=kept, content_type="application/json")
        document = json.loads(body)
        for instance in document.get("brokerInstances") or []:
            instance["endpoints"] = list(self.endpoints[broker_id])
        return web.json_response(document, status=status, headers=kept)
