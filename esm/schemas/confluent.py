"""A client of the Confluent Schema Registry REST API (self-managed or Confluent Cloud), over aiohttp.

esm asks one thing: `GET {SchemaRegistryURI}/schemas/ids/{id}`, which answers
`{"schema": "<text>", "schemaType": "AVRO"|"JSON"|"PROTOBUF"}` (no `schemaType` means AVRO).
A 404 (error code 40403, "Schema not found") is `SchemaNotFound`; no connection, a timeout, a 5xx,
a 401/403 or a 429 is `RegistryUnavailable`. Credentials come from `esm.schemas.access`, read
once, at the first lookup.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import aiohttp
import orjson

from esm.schemas.access import Access
from esm.schemas.registry import RegistrySchema, RegistryUnavailable, SchemaNotFound

REQUEST_TIMEOUT = 10.0
ACCEPT = "application/vnd.schemaregistry.v1+json, application/vnd.schemaregistry+json, application/json"


class ConfluentRegistry:
    kind = "confluent"

    def __init__(self, url: str, access: Callable[[], Awaitable[Access]] | None = None, *,
                 timeout: float = REQUEST_TIMEOUT):
        self.url = url.rstrip("/")
        self._load_access = access
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()

    async def _open(self) -> aiohttp.ClientSession:
        async with self._lock:
            if self._session is None:
                access = await self._load_access() if self._load_access else Access()
                connector = aiohttp.TCPConnector(ssl=access.ssl if access.ssl is not None else True)
                headers = {"Accept": ACCEPT}
                if access.authorization:
                    headers["Authorization"] = access.authorization
                self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout, headers=headers)
            return self._session

    async def fetch(self, schema_id: str) -> RegistrySchema:
        session = await self._open()
        url = f"{self.url}/schemas/ids/{schema_id}"
        try:
            async with session.get(url) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise RegistryUnavailable(f"GET {url} failed: {error!r}") from error
        answer = _json(body)
        if status == 404:
            raise SchemaNotFound(f"schema {schema_id} not found in {self.url} "
                                 f"({answer.get('message') or 'HTTP 404'})")
        if status != 200:
            raise RegistryUnavailable(f"GET {url} answered HTTP {status}: {answer.get('message') or body[:200]!r}")
        definition = answer.get("schema")
        if not isinstance(definition, str):
            raise RegistryUnavailable(f"GET {url} answered without a schema: {body[:200]!r}")
        return RegistrySchema(schema_id, str(answer.get("schemaType") or "AVRO").upper(), definition)

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def _json(body: bytes) -> dict[str, Any]:
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}
