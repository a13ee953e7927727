"""What a schema registry client answers, shared by the Confluent and AWS Glue clients.

`fetch(schema_id)` returns the writer schema (`RegistrySchema`) or raises an error, and the error
decides a record's fate:
- `SchemaNotFound`: the registry answered and has no such schema. The records that name it go to
  the on-failure destination as SCHEMA_NOT_FOUND (behaviour §4/§5).
- `SchemaUnusable` (esm.schemas.formats): it has one that cannot be used, such as references that
  form a cycle. The records go to the on-failure destination as DESERIALIZATION_ERROR.
- `RegistryUnavailable`: no answer (unreachable, timeout, 5xx, throttled, credentials refused).
  Nothing is known about the records, so they are not dead-lettered: the source reads them again
  after a back-off (esm decision, README "Kafka schema registry").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class SchemaNotFound(LookupError):
    """The registry has no schema with this id."""


class RegistryUnavailable(ConnectionError):
    """The registry could not be asked (or refused to answer); retry later."""


@dataclass(frozen=True)
class RegistrySchema:
    schema_id: str
    data_format: str  # AVRO | JSON | PROTOBUF
    definition: str
    # What the schema imports, fetched through the registry: (import name, definition), each file once.
    references: tuple[tuple[str, str], ...] = ()


class RegistryClient(Protocol):
    kind: str  # "confluent" | "glue": which wire framing its producers write

    async def fetch(self, schema_id: str) -> RegistrySchema: ...

    async def close(self) -> None: ...
