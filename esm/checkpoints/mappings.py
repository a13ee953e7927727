"""Where event source mappings made through the control API (esm.api) live between restarts.

They sit beside the checkpoints, in the checkpoint store the daemon already opened (the store
`checkpoints:` names), on that store's own connection or client: a table `api_mappings` in the
SQLite file (one process), or one item of the DynamoDB checkpoint table (replicas). Each mapping is
one JSON document keyed by its UUID (`esm.api.replica_sync` owns its fields); the store reads only its
`UUID`, `Request` and `Revision`, to refuse a document it cannot hand on and to make every change
conditional: `put` writes only while the stored revision is still the one the caller's change was
based on, else raises `RevisionConflict`, so two replicas changing one mapping at once cannot both
win (and diverge). The DynamoDB item (`lease_key = "esm:api-mappings"`, which no lease key can
equal: those are `<uuid>#<unit>`) keeps every mapping in one map attribute
(`mappings.<uuid> = {document, revision}`), so a replica learns every other replica's changes with
one consistent GetItem per poll instead of a scan of the lease table. One DynamoDB item holds at
most 400 KB: a few hundred mappings.

A stored document that does not read (not JSON, no UUID, Request or Revision) is reported once in
the log and handed on as None: neither run nor taken for deleted.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
from typing import Any, Protocol

from botocore.exceptions import ClientError

from esm.errors import EsmError

log = logging.getLogger("esm.api")

DIRECTORY_KEY = "esm:api-mappings"

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_mappings (
    uuid       TEXT PRIMARY KEY,
    document   TEXT NOT NULL,
    updated_at REAL NOT NULL
) WITHOUT ROWID
"""

# uuid -> the document, or None for one stored but unreadable (already reported in the log).
Documents = dict[str, "dict[str, Any] | None"]


class RevisionConflict(EsmError):
    """The stored mapping is no longer at the revision the change was based on (or, for a new one,
    already exists): another request or replica changed it first."""


class MappingStore(Protocol):
    """Documents by UUID; `shared` says whether other processes write to it too."""

    shared: bool

    async def open(self) -> None: ...

    async def load(self) -> Documents: ...

    async def get(self, uuid: str) -> dict[str, Any] | None: ...

    async def put(self, uuid: str, document: dict[str, Any], *, expected: int | None) -> None:
        """Store `document` if the stored revision is `expected` (None: if there is none yet);
        otherwise raise RevisionConflict and leave the store alone."""
        ...

    async def delete(self, uuid: str) -> None: ...


def mapping_store_for(checkpoints: Any) -> MappingStore:
    """The mapping store kept in `checkpoints`, an open esm.checkpoints store."""
    from esm.checkpoints.dynamodb import DynamoDbCheckpointStore
    from esm.checkpoints.sqlite import SqliteCheckpointStore

    if isinstance(checkpoints, DynamoDbCheckpointStore):
        return DynamoDbMappingStore(checkpoints)
    if isinstance(checkpoints, SqliteCheckpointStore):
        return SqliteMappingStore(checkpoints)
    raise TypeError(f"the control API keeps its mappings in the checkpoint store; got {checkpoints!r}")


class _Reader:
    """Reads stored text into documents, reporting each unreadable one once."""

    def __init__(self) -> None:
        self._reported: dict[str, str] = {}

    def read(self, uuid: str, text: Any) -> dict[str, Any] | None:
        try:
            document = json.loads(text)
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            if document.get("UUID") != uuid:
                raise ValueError(f"its UUID is {document.get('UUID')!r}")
            if not isinstance(document.get("Request"), dict):
                raise ValueError("Request is not an object")
            if type(document.get("Revision")) is not int:
                raise ValueError("Revision is not an integer")
        except (TypeError, ValueError, RecursionError) as error:
            why = str(error)
            if self._reported.get(uuid) != why:
                self._reported[uuid] = why
                log.error("stored mapping %s cannot be read, not running it (fix or delete it in the store): %s",
                          uuid, why)
            return None
        self._reported.pop(uuid, None)
        return document


def _text(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True)


class SqliteMappingStore:
    """A table in the checkpoint file, on the checkpoint store's connection and thread."""

    shared = False

    def __init__(self, checkpoints: Any):
        self.checkpoints = checkpoints  # an open esm.checkpoints.sqlite.SqliteCheckpointStore
        self._reader = _Reader()

    async def open(self) -> None:
        await self.checkpoints.execute(lambda db: db.execute(SCHEMA))

    async def load(self) -> Documents:
        rows = await self.checkpoints.execute(lambda db: db.execute("SELECT uuid, document FROM api_mappings").fetchall())
        return {uuid: self._reader.read(uuid, text) for uuid, text in rows}

    async def get(self, uuid: str) -> dict[str, Any] | None:
        row = await self.checkpoints.execute(lambda db: db.execute(
            "SELECT document FROM api_mappings WHERE uuid = ?", (uuid,)).fetchone())
        return None if row is None else self._reader.read(uuid, row[0])

    async def put(self, uuid: str, document: dict[str, Any], *, expected: int | None) -> None:
        text, now = _text(document), time.time()

        def write(db: sqlite3.Connection) -> int:
            if expected is None:
                return db.execute("INSERT OR IGNORE INTO api_mappings (uuid, document, updated_at) VALUES (?, ?, ?)",
                                  (uuid, text, now)).rowcount
            # One statement, so the check and the write are one step for any other connection too.
            return db.execute("UPDATE api_mappings SET document = ?, updated_at = ? "
                              "WHERE uuid = ? AND json_extract(document, '$.Revision') = ?",
                              (text, now, uuid, expected)).rowcount

        if await self.checkpoints.execute(write) != 1:
            raise RevisionConflict(f"mapping {uuid} is no longer at revision {expected}")

    async def delete(self, uuid: str) -> None:
        await self.checkpoints.execute(lambda db: db.execute("DELETE FROM api_mappings WHERE uuid = ?", (uuid,)))


class DynamoDbMappingStore:
    """One item of the checkpoint table, through the checkpoint store's client."""

    shared = True

    def __init__(self, checkpoints: Any):
        self.checkpoints = checkpoints  # an open esm.checkpoints.dynamodb.DynamoDbCheckpointStore
        self._reader = _Reader()

    async def open(self) -> None:
        """The checkpoint store found or created the table; the item appears with the first put."""

    async def _call(self, operation: str, **kwargs: Any) -> Any:
        return await self.checkpoints.call(operation, Key={"lease_key": {"S": DIRECTORY_KEY}}, **kwargs)

    def _document(self, uuid: str, value: dict[str, Any]) -> dict[str, Any] | None:
        return self._reader.read(uuid, value.get("M", {}).get("document", {}).get("S"))

    async def load(self) -> Documents:
        answer = await self._call("get_item", ConsistentRead=True)
        members = answer.get("Item", {}).get("mappings", {}).get("M", {})
        return {uuid: self._document(uuid, value) for uuid, value in members.items()}

    async def get(self, uuid: str) -> dict[str, Any] | None:
        answer = await self._call("get_item", ConsistentRead=True, ProjectionExpression="#ms.#id",
                                  ExpressionAttributeNames={"#ms": "mappings", "#id": uuid})
        value = answer.get("Item", {}).get("mappings", {}).get("M", {}).get(uuid)
        return None if value is None else self._document(uuid, value)

    async def put(self, uuid: str, document: dict[str, Any], *, expected: int | None) -> None:
        names = {"#ms": "mappings", "#id": uuid}
        values: dict[str, Any] = {":m": {"M": {"document": {"S": _text(document)},
                                               "revision": {"N": str(document["Revision"])}}}}
        if expected is None:
            # A map member can only be set once the map exists: make it first (a no-op after that).
            await self._call("update_item", UpdateExpression="SET #ms = if_not_exists(#ms, :empty)",
                             ExpressionAttributeNames={"#ms": "mappings"},
                             ExpressionAttributeValues={":empty": {"M": {}}})
            condition = "attribute_not_exists(#ms.#id)"
        else:
            condition = "#ms.#id.#rv = :expected"
            names["#rv"] = "revision"
            values[":expected"] = {"N": str(expected)}
        try:
            await self._call("update_item", UpdateExpression="SET #ms.#id = :m", ConditionExpression=condition,
                             ExpressionAttributeNames=names, ExpressionAttributeValues=values)
        except ClientError as error:  # the checkpoint store's _call passes only a failed condition through
            raise RevisionConflict(f"mapping {uuid} is no longer at revision {expected}") from error

    async def delete(self, uuid: str) -> None:
        await self._call("update_item", UpdateExpression="REMOVE #ms.#id",
                         ExpressionAttributeNames={"#ms": "mappings", "#id": uuid})
