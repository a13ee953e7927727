"""The schema cache: each writer schema fetched and compiled once, looked up by id per record.

Schema ids name immutable schemas (a Confluent id, a Glue schema version UUID), so a found schema
stays until the cache is full and it is the least recently used. A schema the registry does not
have is remembered only briefly (`negative_ttl`), so a burst of records naming it costs one
lookup, yet a schema registered a moment later is found soon after. Failures to reach the
registry are never cached. `resolve(ids)` fetches every unknown id of a batch at most once, and
concurrent callers asking for the same id share one fetch. A Protobuf schema (with the files it
imports) is compiled in a worker thread: compiling `.proto` text runs protoc, which must not hold
up the event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Awaitable, Callable, Iterable

from esm.schemas.formats import PROTOBUF, Codec, SchemaUnusable, compile_schema
from esm.schemas.registry import RegistrySchema, RegistryUnavailable, SchemaNotFound

DEFAULT_MAX_ENTRIES = 1000
DEFAULT_NEGATIVE_TTL = 5.0
FETCH_CONCURRENCY = 8


@dataclass(frozen=True)
class Resolved:
    """A schema id's state: `codec`, or why there is none (`missing`, `unusable`, `unavailable`)."""

    codec: Codec | None = None
    missing: str | None = None  # the registry has no such schema
    unusable: str | None = None  # it has one that cannot be decoded with
    unavailable: str | None = None  # the registry could not be asked


class SchemaCache:
    def __init__(self, fetch: Callable[[str], Awaitable[RegistrySchema]], *,
                 max_entries: int = DEFAULT_MAX_ENTRIES, negative_ttl: float = DEFAULT_NEGATIVE_TTL,
                 clock: Callable[[], float] = time.monotonic, framing: str = "confluent"):
        self._fetch = fetch
        self.framing = framing  # the registry kind: whose Protobuf message-index format payloads carry
        self.max_entries = max_entries
        self.negative_ttl = negative_ttl
        self._clock = clock
        self._found: OrderedDict[str, Resolved] = OrderedDict()  # codec or unusable: immutable
        self._missing: dict[str, tuple[float, Resolved]] = {}  # id -> (expires at, entry)
        self._inflight: dict[str, asyncio.Future[Resolved]] = {}

    def __len__(self) -> int:
        return len(self._found)

    def cached(self, schema_id: str) -> Resolved | None:
        entry = self._found.get(schema_id)
        if entry is not None:
            self._found.move_to_end(schema_id)
            return entry
        missing = self._missing.get(schema_id)
        if missing is not None:
            if missing[0] > self._clock():
                return missing[1]
            del self._missing[schema_id]
        return None

    async def resolve(self, schema_ids: Iterable[str]) -> dict[str, Resolved]:
        """Every id's state; unknown ids are fetched concurrently (a few at a time), each once."""
        out: dict[str, Resolved] = {}
        wanted: list[str] = []
        for schema_id in dict.fromkeys(schema_ids):
            entry = self.cached(schema_id)
            if entry is not None:
                out[schema_id] = entry
            else:
                wanted.append(schema_id)
        if wanted:
            gate = asyncio.Semaphore(FETCH_CONCURRENCY)

            async def one(schema_id: str) -> None:
                async with gate:
                    out[schema_id] = await self.get(schema_id)

            await asyncio.gather(*(one(schema_id) for schema_id in wanted))
        return out

    async def get(self, schema_id: str) -> Resolved:
        entry = self.cached(schema_id)
        if entry is not None:
            return entry
        pending = self._inflight.get(schema_id)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[Resolved] = asyncio.get_running_loop().create_future()
        self._inflight[schema_id] = future
        try:
            entry = await self._load(schema_id)
            future.set_result(entry)
            return entry
        except asyncio.CancelledError:
            future.cancel()  # the waiters must not hang
            raise
        except Exception as error:
            future.set_exception(error)
            future.exception()  # retrieved here, so a future nobody else awaits logs nothing
            raise
        finally:
            del self._inflight[schema_id]

    async def _load(self, schema_id: str) -> Resolved:
        try:
            entry = Resolved(codec=await self._compile(await self._fetch(schema_id)))
        except SchemaNotFound as error:
            entry = Resolved(missing=str(error) or f"schema {schema_id} not found")
            self._missing[schema_id] = (self._clock() + self.negative_ttl, entry)
            return entry
        except RegistryUnavailable as error:
            return Resolved(unavailable=str(error) or "schema registry unavailable")
        except SchemaUnusable as error:  # the schema, or the registry's answer (a reference cycle)
            entry = Resolved(unusable=f"schema {schema_id}: {error}")
        self._found[schema_id] = entry
        while len(self._found) > self.max_entries:
            self._found.popitem(last=False)
        return entry

    async def _compile(self, schema: RegistrySchema) -> Codec:
        if schema.data_format.upper() != PROTOBUF:
            return compile_schema(schema.data_format, schema.definition)
        return await asyncio.to_thread(compile_schema, schema.data_format, schema.definition,
                                       references=dict(schema.references), framing=self.framing)
