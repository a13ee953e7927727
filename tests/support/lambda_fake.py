"""A FAKE of two Lambda API calls, for what no server here provides: a function whose Invoke
answers with a published version in `X-Amz-Executed-Version` (the Runtime Interface Emulator and
moto only ever run `$LATEST`), and GetFunctionConfiguration naming that function's role.

- `POST /2015-03-31/functions/{name}/invocations`: records the event, then answers as the real
  API does for an unhandled error: status 200, `X-Amz-Function-Error: Unhandled`, an error body,
  and `X-Amz-Executed-Version: <version>`;
- `GET /2015-03-31/functions/{name}/configuration`: `{"FunctionName", "FunctionArn", "Role",
  "Version"}` as the real API shapes them.

`FakeLambda` runs in the test's event loop on 127.0.0.1 and a free port; its `url` is an endpoint
for `aws.endpoints.lambda`.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any, AsyncIterator

from aiohttp import web

from tests.support.fake_server import LoopbackApi


class FakeLambda(LoopbackApi):
    def __init__(self, *, version: str, role: str):
        self.version = version
        self.role = role
        self.events: list[dict[str, Any]] = []
        self.configuration_reads = 0

    async def _invoke(self, request: web.Request) -> web.Response:
        self.events.append(json.loads(await request.read()))
        body = {"errorMessage": "declined", "errorType": "RuntimeError"}
        return web.json_response(body, headers={"X-Amz-Function-Error": "Unhandled",
                                                "X-Amz-Executed-Version": self.version})

    async def _configuration(self, request: web.Request) -> web.Response:
        self.configuration_reads += 1
        name = request.match_info["name"]
        return web.json_response({"FunctionName": name.split(":")[-1], "FunctionArn": name, "Role": self.role,
                                  "Version": "$LATEST"})

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2015-03-31/functions/{name}/invocations", self._invoke)
        app.router.add_get("/2015-03-31/functions/{name}/configuration", self._configuration)


@contextlib.asynccontextmanager
async def fake_lambda(**kwargs: Any) -> AsyncIterator[FakeLambda]:
    fake = await FakeLambda(**kwargs).start()
    try:
        yield fake
    finally:
        await fake.stop()
