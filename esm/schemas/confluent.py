"""A client of the Confluent Schema Registry REST API (self-managed or Confluent Cloud), over aiohttp.

esm asks `GET {SchemaRegistryURI}/schemas/ids/{id}`, which answers `{"schema": "<text>",
"schemaType": "AVRO"|"JSON"|"PROTOBUF", "references"?: [...]}` (no `schemaType` means AVRO).
A Protobuf schema's `references` name the files it imports (`{"name": "<import path>", "subject",
"version"}`); each is fetched with `GET /subjects/{subject}/versions/{version}`, whose own
references are followed in turn, each subject version once. References that lead back to
themselves are `SchemaUnusable`; one the registry does not have is `SchemaNotFound`, naming it.
A 404 (error code 40403, "Schema not found") is `SchemaNotFound`; no connection, a timeout, a 5xx,
a 401/403 or a 429 is `RegistryUnavailable`. Credentials come from `esm.schemas.access`, read
once, at the first lookup.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable
from urllib.parse import quote

import aiohttp
import orjson

from esm.schemas.access import Access
from esm.schemas.errors import SchemaUnusable
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
        answer = await self._get(f"/schemas/ids/{schema_id}", f"schema {schema_id}")
        data_format = str(answer.get("schemaType") or "AVRO").upper()
        references: dict[str, str] = {}
        if data_format == "PROTOBUF":
            await self._follow(answer, (), references, schema_id)
        return RegistrySchema(schema_id, data_format, answer["schema"], tuple(references.items()))

    async def _follow(self, answer: dict[str, Any], path: tuple[tuple[str, str], ...], found: dict[str, str],
                      schema_id: str) -> None:
        """Every file `answer` imports, transitively, into `found` (import name -> definition)."""
        for reference in answer.get("references") or ():
            name, subject, version = reference.get("name"), reference.get("subject"), reference.get("version")
            if not (name and subject and version is not None):
                raise SchemaUnusable(f"a reference without name, subject or version: {reference!r}")
            if (subject, str(version)) in path:
                chain = " -> ".join(f"{s} v{v}" for s, v in path + ((subject, str(version)),))
                raise SchemaUnusable(f"its references form a cycle: {chain}")
            if name in found:
                continue  # imported twice (a diamond): fetched once
            try:
                imported = await self._get(f"/subjects/{quote(str(subject), safe='')}/versions/{version}",
                                           f"subject {subject} version {version}")
            except SchemaNotFound as error:
                raise SchemaNotFound(f"schema {schema_id} imports {name} (subject {subject} version "
                                     f"{version}), which the registry does not have: {error}") from None
            await self._follow(imported, path + ((subject, str(version)),), found, schema_id)
            found[name] = imported["schema"]

    async def _get(self, path: str, what: str) -> dict[str, Any]:
        """The registry's JSON answer holding a `schema`; SchemaNotFound on a 404."""
        session = await self._open()
        url = f"{self.url}{path}"
        try:
            async with session.get(url) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as error:
            raise RegistryUnavailable(f"GET {url} failed: {error!r}") from error
        answer = _json(body)
        if status == 404:
            raise SchemaNotFound(f"{what} not found in {self.url} ({answer.get('message') or 'HTTP 404'})")
        if status != 200:
            raise RegistryUnavailable(f"GET {url} answered HTTP {status}: {answer.get('message') or body[:200]!r}")
        if not isinstance(answer.get("schema"), str):
            raise RegistryUnavailable(f"GET {url} answered without a schema: {body[:200]!r}")
        return answer

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
