"""Positions nobody owns: checkpoints and Kafka groups that belong to no configured mapping.

A mapping's checkpoints (and a Kafka mapping's default consumer group) are keyed by its UUID,
which is `uuid5` of its name (by default `<source>-><function>`), or `esm.uuid` when set. Renaming
a mapping, or changing its FunctionName, therefore gives it a new UUID: the old positions stay in
the store and the mapping starts again at its StartingPosition (with LATEST, the records in
between are never read). Nothing in the store can tell a rename from a mapping deleted on purpose,
so esm does not guess; it says so, at start (the daemon logs each finding as a warning) and in
`esm validate --positions`:

- every mapping UUID with positions in the checkpoint store, or every esm-named Kafka group with
  committed offsets on a configured topic, that no configured (or control API) mapping owns:
  "orphaned positions for ..., did you rename?";
- every configured mapping with no position of its own whose source has orphaned positions: it
  would start from StartingPosition, and the finding says which `esm.uuid` keeps the old ones.

So that a finding can name the source and the old name, the daemon records each checkpointed
mapping's name and source beside the checkpoints (`record_identities`): a table
`mapping_identities` in the SQLite file, an item `esm:identity#<uuid>` in the DynamoDB table
(neither is a checkpoint row, so nothing that reads checkpoints sees them). Stores written before
that existed still report their orphans, without a source.
"""

from __future__ import annotations

import asyncio
import logging
import re
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from esm import registry
from esm.config.settings import MappingSettings

log = logging.getLogger("esm.positions")

IDENTITY_PREFIX = "esm:identity#"  # no lease key (`<uuid>#<unit>`) starts so
IDENTITY_SCHEMA = """
CREATE TABLE IF NOT EXISTS mapping_identities (
    uuid      TEXT PRIMARY KEY,
    name      TEXT NOT NULL,
    source_id TEXT NOT NULL
) WITHOUT ROWID
"""
API_DIRECTORY_KEY = "esm:api-mappings"  # esm.checkpoints.mappings.DIRECTORY_KEY
KAFKA_CHECK_TIMEOUT = 5.0  # seconds; an unreachable cluster is the supervisor's to report, not this check's
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@dataclass(frozen=True)
class StoredPositions:
    """What the store holds for one mapping UUID: its positions, and its name and source if recorded."""

    uuid: str
    units: int
    name: str | None = None
    source_id: str | None = None

    def describe(self) -> str:
        if self.source_id:
            return f"mapping {self.uuid} ('{self.name}', {self.source_id}: {self.units} position(s))"
        return f"mapping {self.uuid} ({self.units} position(s), source not recorded)"


@dataclass(frozen=True)
class KafkaGroup:
    """A consumer group named like an esm mapping UUID with offsets committed on `topic`."""

    group: str
    topic: str
    servers: str


@dataclass(frozen=True)
class Finding:
    message: str


# -- reading the stores ----------------------------------------------------------------------------

async def stored_positions(store: Any) -> tuple[dict[str, StoredPositions], set[str]]:
    """Every mapping UUID with positions in `store`, and the UUIDs of the control API's stored mappings."""
    units, identities, api = await _read_store(store)
    found = {uuid: StoredPositions(uuid, count, *identities.get(uuid, (None, None)))
             for uuid, count in units.items()}
    return found, api


Read = tuple[dict[str, int], dict[str, tuple[str, str]], set[str]]  # units per uuid, (name, source), API uuids


async def _read_store(store: Any) -> Read:
    kind = type(store).__name__
    if kind == "SqliteCheckpointStore":
        def read(conn: sqlite3.Connection) -> Read:
            units = dict(conn.execute("SELECT mapping, count(*) FROM checkpoints GROUP BY mapping").fetchall())
            conn.execute(IDENTITY_SCHEMA)
            identities = {row[0]: (row[1], row[2]) for row in conn.execute("SELECT * FROM mapping_identities")}
            try:
                api = {row[0] for row in conn.execute("SELECT uuid FROM api_mappings")}
            except sqlite3.OperationalError:  # no control API ever stored a mapping here
                api = set()
            return units, identities, api
        return await store.execute(read)
    if kind == "DynamoDbCheckpointStore":
        units: dict[str, int] = {}
        identities: dict[str, tuple[str, str]] = {}
        api: set[str] = set()
        start: dict[str, Any] | None = None
        while True:
            page = await store.call("scan", ConsistentRead=True, **({"ExclusiveStartKey": start} if start else {}))
            for item in page.get("Items", []):
                key = item.get("lease_key", {}).get("S", "")
                if key == API_DIRECTORY_KEY:
                    api.update(item.get("mappings", {}).get("M", {}))
                elif key.startswith(IDENTITY_PREFIX):
                    identities[key[len(IDENTITY_PREFIX):]] = (item["name"]["S"], item["source_id"]["S"])
                elif "mapping" in item and "checkpoint" in item:
                    units[item["mapping"]["S"]] = units.get(item["mapping"]["S"], 0) + 1
            start = page.get("LastEvaluatedKey")
            if not start:
                return units, identities, api
    raise TypeError(f"cannot list the positions of a {kind}")


async def record_identities(store: Any, mappings: Iterable[MappingSettings]) -> None:
    """Write each checkpointed mapping's name and source beside the checkpoints (see the module doc)."""
    rows = [(m.uuid, m.name, m.source_id) for m in mappings if registry.descriptor(m.source).checkpoints]
    kind = type(store).__name__
    if kind == "SqliteCheckpointStore":
        def write(conn: sqlite3.Connection) -> None:
            conn.execute(IDENTITY_SCHEMA)
            with conn:
                conn.executemany("INSERT OR REPLACE INTO mapping_identities VALUES (?, ?, ?)", rows)
        await store.execute(write)
    elif kind == "DynamoDbCheckpointStore":
        for uuid, name, source_id in rows:
            await store.call("put_item", Item={"lease_key": {"S": IDENTITY_PREFIX + uuid},
                                               "name": {"S": name}, "source_id": {"S": source_id}})


async def kafka_groups(mappings: Sequence[MappingSettings], clients: Any) -> list[KafkaGroup]:
    """Groups named like esm's default (a UUID), or as a configured mapping names its own, with offsets
    on the configured Kafka mappings' topics."""
    from aiokafka.admin import AIOKafkaAdminClient

    from esm.sources.kafka.cluster import source_cluster

    found: list[KafkaGroup] = []
    seen: set[str] = set()
    for mapping in mappings:
        if not registry.descriptor(mapping.source).unique_group_keys:  # positions in a consumer group
            continue
        cluster, _ = await source_cluster(mapping, clients)
        if cluster.servers in seen:
            continue
        seen.add(cluster.servers)
        topics = {(m.get("Topics") or [""])[0] for m in mappings if m.source == mapping.source}
        configured = {_group_of(m) for m in mappings if m.source == mapping.source}
        admin = AIOKafkaAdminClient(bootstrap_servers=list(cluster.bootstrap_servers), **_admin_options(cluster))
        await admin.start()
        try:
            for group, _protocol in await admin.list_consumer_groups():
                if not (UUID.match(group) or group in configured):
                    continue
                offsets = await admin.list_consumer_group_offsets(group)
                for topic in sorted({tp.topic for tp in offsets} & topics):
                    found.append(KafkaGroup(group, topic, cluster.servers))
        finally:
            await admin.close()
    return found


def _admin_options(cluster: Any) -> dict[str, Any]:
    allowed = ("security_protocol", "ssl_context", "sasl_mechanism", "sasl_plain_username",
               "sasl_plain_password", "sasl_oauth_token_provider")
    return {key: value for key, value in dict(cluster.options).items() if key in allowed}


# -- judging ---------------------------------------------------------------------------------------

def findings(mappings: Sequence[MappingSettings], stored: dict[str, StoredPositions], api: set[str],
             groups: Sequence[KafkaGroup] = ()) -> list[Finding]:
    """Orphaned positions, and mappings that would start over beside them (see the module doc)."""
    owned = {m.uuid for m in mappings} | api
    out: list[Finding] = []
    orphans = [s for uuid, s in sorted(stored.items()) if uuid not in owned]
    for orphan in orphans:
        out.append(Finding(f"orphaned positions for {orphan.describe()}: no configured mapping has this "
                           f"identity; did you rename? set esm: {{uuid: {orphan.uuid}}} on the mapping that "
                           "should keep them"))
    for mapping in mappings:
        if not registry.descriptor(mapping.source).checkpoints or mapping.uuid in stored:
            continue
        same = [o for o in orphans if o.source_id == mapping.source_id]
        unknown = [o for o in orphans if o.source_id is None]
        if same or unknown:
            candidates = ", ".join(o.uuid for o in same or unknown)
            out.append(Finding(
                f"mapping '{mapping.name}' ({mapping.uuid}) has no position and will start from "
                f"StartingPosition {mapping.get('StartingPosition') or 'LATEST'} although orphaned positions "
                f"{'for the same source' if same else 'of an unrecorded source'} exist ({candidates}); "
                "to resume from them instead, set esm: {uuid: <one of those>}"))
    kafka = [m for m in mappings if registry.descriptor(m.source).unique_group_keys]
    groups_in_use = {_group_of(m) for m in kafka} | api
    for group in groups:
        if group.group in groups_in_use:
            continue
        out.append(Finding(f"orphaned positions for Kafka group {group.group} (topic {group.topic} on "
                           f"{group.servers}): no configured mapping uses this group; did you rename? set "
                           f"esm: {{uuid: {group.group}}} (or ConsumerGroupId) on the mapping that should keep it"))
        for mapping in kafka:
            committed = {g.group for g in groups if g.topic == group.topic}
            if (mapping.get("Topics") or [""])[0] == group.topic and _group_of(mapping) not in committed:
                out.append(Finding(
                    f"mapping '{mapping.name}' ({mapping.uuid}) starts a new consumer group {_group_of(mapping)} "
                    f"at StartingPosition {mapping.get('StartingPosition') or 'LATEST'} although group "
                    f"{group.group} has offsets on topic {group.topic}"))
    return out


def _group_of(mapping: MappingSettings) -> str:
    for key in registry.descriptor(mapping.source).unique_group_keys:
        group = (mapping.get(key) or {}).get("ConsumerGroupId")
        if group:
            return str(group)
    return mapping.uuid


async def check(mappings: Sequence[MappingSettings], store: Any | None, clients: Any) -> list[Finding]:
    """Read the store and the Kafka clusters and judge; a part that cannot be read is a finding too."""
    stored: dict[str, StoredPositions] = {}
    api: set[str] = set()
    out: list[Finding] = []
    if store is not None:
        try:
            stored, api = await stored_positions(store)
        except Exception as error:  # a check must not keep esm from starting
            out.append(Finding(f"could not list the checkpoint store's positions: {error!r}"))
    groups: list[KafkaGroup] = []
    try:
        groups = await asyncio.wait_for(kafka_groups(mappings, clients), KAFKA_CHECK_TIMEOUT)
    except Exception as error:
        out.append(Finding(f"could not list the Kafka clusters' consumer groups: {error!r}"))
    return findings(mappings, stored, api, groups) + out


async def report_at_start(mappings: Sequence[MappingSettings], store: Any | None, clients: Any) -> list[Finding]:
    """The daemon's start: log every finding as a warning, then record the mappings' identities."""
    found = await check(mappings, store, clients)
    for finding in found:
        log.warning("%s", finding.message, extra={"event": "orphaned_positions"})
    if store is not None:
        try:
            await record_identities(store, [m for m in mappings if m.enabled])
        except Exception as error:  # the store's own outage is reported by the mappings that need it
            log.warning("could not record the mappings' identities in the checkpoint store: %r", error)
    return found
