"""A FAKE Confluent Schema Registry for tests: no real one installs here (Confluent's is not on Maven
Central, Karapace is not on PyPI; DESIGN.md), so this serves the slice of its REST API that esm
and the tests use, with the real API's shapes:

- `GET /schemas/ids/{id}` -> `{"schema": text}` plus `"schemaType"` for JSON/PROTOBUF (AVRO omits it),
  or 404 `{"error_code": 40403, "message": "Schema {id} not found"}`;
- `POST /subjects/{subject}/versions` with `{"schema": text, "schemaType"?}` -> `{"id": n}` (the same
  id for the same schema text, as the real registry does);
- HTTP basic auth when `users` is given (401 `{"error_code": 401, ...}` otherwise);
- `down = True` answers every request with 503 (a registry outage); `requests` counts
  `GET /schemas/ids/{id}` calls per id, so tests can check lookups are batched and cached;
- HTTPS when given an `ssl.SSLContext` (one that requires client certificates serves mTLS).

`FakeConfluentRegistry` runs in the test's event loop on 127.0.0.1 and a free port.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ssl
from collections import Counter
from typing import Any, AsyncIterator

from aiohttp import web

from tests.support.fake_server import LoopbackApi


class FakeConfluentRegistry(LoopbackApi):
    """A fake of the Confluent Schema Registry REST API (see the module docstring)."""

    def __init__(self, users: dict[str, str] | None = None, first_id: int = 1,
                 tls: ssl.SSLContext | None = None):
        self.users = users or {}
        self.tls = tls
        self.schemas: dict[int, dict[str, Any]] = {}
        self.next_id = first_id
        self.down = False
        self.requests: Counter[str] = Counter()

    def register(self, schema: str, schema_type: str = "AVRO", subject: str = "test-value") -> int:
        """Store a schema directly (as a producer's serializer would via the API); returns its id."""
        for schema_id, entry in self.schemas.items():
            if entry["schema"] == schema and entry["schemaType"] == schema_type:
                return schema_id
        schema_id = self.next_id
        self.next_id += 1
        self.schemas[schema_id] = {"schema": schema, "schemaType": schema_type, "subject": subject}
        return schema_id

    # -- the HTTP side --------------------------------------------------------------------------
    def _refused(self, request: web.Request) -> web.Response | None:
        if self.down:
            return web.json_response({"error_code": 50003, "message": "fake registry is down"}, status=503)
        if not self.users:
            return None
        header = request.headers.get("Authorization", "")
        if header.startswith("Basic "):
            with contextlib.suppress(binascii.Error, UnicodeDecodeError, ValueError):
                user, _, password = base64.b64decode(header[6:]).decode().partition(":")
                if self.users.get(user) == password:
                    return None
        return web.json_response({"error_code": 401, "message": "Unauthorized"}, status=401)

    async def _get_by_id(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        raw = request.match_info["id"]
        self.requests[raw] += 1
        entry = self.schemas.get(int(raw)) if raw.isdigit() else None
        if entry is None:
            return web.json_response({"error_code": 40403, "message": f"Schema {raw} not found"}, status=404)
        body: dict[str, Any] = {"schema": entry["schema"]}
        if entry["schemaType"] != "AVRO":
            body["schemaType"] = entry["schemaType"]
        return web.json_response(body, content_type="application/vnd.schemaregistry.v1+json")

    async def _post_version(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        body = await request.json()
        schema_id = self.register(body["schema"], body.get("schemaType", "AVRO"), request.match_info["subject"])
        return web.json_response({"id": schema_id}, content_type="application/vnd.schemaregistry.v1+json")

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/schemas/ids/{id}", self._get_by_id)
        app.router.add_post("/subjects/{subject}/versions", self._post_version)


@contextlib.asynccontextmanager
async def fake_confluent_registry(**kwargs: Any) -> AsyncIterator[FakeConfluentRegistry]:
    registry = await FakeConfluentRegistry(**kwargs).start()
    try:
        yield registry
    finally:
        await registry.stop()
