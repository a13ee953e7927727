"""Where event source mappings made through the control API (esm.api) live between restarts.

They sit beside the checkpoints, in the store `checkpoints:` names: a table `api_mappings` in the
SQLite file (one process), or one item of the DynamoDB checkpoint table (replicas). Each mapping is
one JSON document keyed by its UUID (`esm.api.manager` owns its fields); the store never reads
inside it. The DynamoDB item (`lease_key = "esm:api-mappings"`, which no lease key can equal: those
are `<uuid>#<unit>`) keeps every document in one map attribute, so a replica learns every other
replica's changes with one consistent GetItem per poll instead of a scan of the lease table. One
DynamoDB item holds at most 400 KB: a few hundred mappings.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Protocol, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from esm.aws import AwsClients
from esm.checkpoints.base import StoreUnavailable
from esm.settings import CheckpointSettings

T = TypeVar("T")

DIRECTORY_KEY = "esm:api-mappings"

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_mappings (
    uuid       TEXT PRIMARY KEY,
    document   TEXT NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID
"""


class MappingStore(Protocol):
    """Documents by UUID; `shared` says whether other processes write to it too."""

    shared: bool

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def load(self) -> dict[str, dict[str, Any]]: ...

    async def put(self, uuid: str, document: dict[str, Any]) -> None: ...

    async def delete(self, uuid: str) -> None: ...


def make_mapping_store(settings: CheckpointSettings, clients: AwsClients) -> MappingStore:
    if settings.dynamodb_table:
        return DynamoDbMappingStore(settings.dynamodb_table, clients)
    if settings.sqlite:
        return SqliteMappingStore(settings.sqlite)
    raise ValueError("checkpoints: one of sqlite, dynamodb must be set")


class SqliteMappingStore:
    """A table in the checkpoint file, on its own connection and thread (the checkpoint store's
    connection is not shared: WAL mode lets both work on one file)."""

    shared = False

    def __init__(self, path: str):
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None

    async def open(self) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="esm-api-store")
            self._conn = await self._run(self._connect)

    def _connect(self) -> sqlite3.Connection:
        if self.path != ":memory:" and not self.path.startswith("file:"):
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, uri=self.path.startswith("file:"),
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute(SCHEMA)
        return conn

    async def close(self) -> None:
        if self._executor is None:
            return
        conn, self._conn = self._conn, None
        try:
            if conn is not None:
                await self._run(conn.close)
        finally:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError("mapping store is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError("mapping store is not open")
        return self._conn

    async def load(self) -> dict[str, dict[str, Any]]:
        rows = await self._run(lambda: self._db().execute("SELECT uuid, document FROM api_mappings").fetchall())
        return {uuid: json.loads(document) for uuid, document in rows}

    async def put(self, uuid: str, document: dict[str, Any]) -> None:
        text = json.dumps(document, sort_keys=True)
        await self._run(lambda: self._db().execute(
            "INSERT INTO api_mappings (uuid, document, updated_at) VALUES (?, ?, ?) "
            "ON CONFLICT (uuid) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at",
            (uuid, text, time.time())))

    async def delete(self, uuid: str) -> None:
        await self._run(lambda: self._db().execute("DELETE FROM api_mappings WHERE uuid = ?", (uuid,)))


class DynamoDbMappingStore:
    """One item of the checkpoint table; the table is created by the checkpoint store's rules
    (on demand, hash key `lease_key`) when this store opens first."""

    shared = True

    def __init__(self, table: str, clients: AwsClients):
        self.table = table
        self.clients = clients
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    async def open(self) -> None:
        if self._stack is not None:
            return
        # The checkpoint store knows how to find or create the table; borrow it for that alone.
        from esm.checkpoints.dynamodb import DynamoDbCheckpointStore

        table = DynamoDbCheckpointStore(self.table, self.clients)
        await table.open()
        await table.close()
        stack = contextlib.AsyncExitStack()
        self._client = await stack.enter_async_context(self.clients.client("dynamodb"))
        self._stack = stack

    async def close(self) -> None:
        stack, self._stack = self._stack, None
        self._client = None
        if stack is not None:
            await stack.aclose()

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        if self._client is None:
            raise RuntimeError("mapping store is not open")
        try:
            return await getattr(self._client, operation)(TableName=self.table, **kwargs)
        except (ClientError, BotoCoreError) as error:
            raise StoreUnavailable(f"DynamoDB table {self.table}: {error}") from error

    async def load(self) -> dict[str, dict[str, Any]]:
        answer = await self._call("get_item", Key={"lease_key": {"S": DIRECTORY_KEY}}, ConsistentRead=True)
        documents = answer.get("Item", {}).get("mappings", {}).get("M", {})
        return {uuid: json.loads(value["S"]) for uuid, value in documents.items()}

    async def put(self, uuid: str, document: dict[str, Any]) -> None:
        # A map member can only be set once the map exists: make it first (a no-op after that).
        await self._call("update_item", Key={"lease_key": {"S": DIRECTORY_KEY}},
                         UpdateExpression="SET #ms = if_not_exists(#ms, :empty)",
                         ExpressionAttributeNames={"#ms": "mappings"}, ExpressionAttributeValues={":empty": {"M": {}}})
        await self._call("update_item", Key={"lease_key": {"S": DIRECTORY_KEY}},
                         UpdateExpression="SET #ms.#id = :doc",
                         ExpressionAttributeNames={"#ms": "mappings", "#id": uuid},
                         ExpressionAttributeValues={":doc": {"S": json.dumps(document, sort_keys=True)}})

    async def delete(self, uuid: str) -> None:
        await self._call("update_item", Key={"lease_key": {"S": DIRECTORY_KEY}},
                         UpdateExpression="REMOVE #ms.#id",
                         ExpressionAttributeNames={"#ms": "mappings", "#id": uuid})
