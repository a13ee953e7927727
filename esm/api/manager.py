"""The control API's mappings: {UUID: entry}, and the operations the API asks for.

The daemon hands the manager the supervisors it built from the config file; the control API asks
it to create, update, disable, enable and delete mappings of its own, which it keeps in the
mapping store (esm.checkpoints.mappings) so they survive restarts. This module decides what may
change (the request is valid, names a known function, is no duplicate, its source exists, and the
mapping is the API's and not in the middle of a change) and stores it; then:

- esm.api.lifecycle runs the change through the mapping's states (behaviour §0);
- esm.api.replica_sync applies what the store holds: at start-up, and what other replicas changed;
- esm.api.rendering says what the API answers.

Mappings of the config file are listed and readable, never changed here. Every stored change is
conditional on the revision it was based on: of two replicas changing one mapping at once, one
wins and the other answers ResourceConflictException. One change at a time per replica: check,
store and apply run under one lock, and so does applying other replicas' changes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid as uuids
from types import MappingProxyType
from typing import Any

from esm import registry
from esm.api import answers, replica_sync
from esm.api.entry import TRANSITIONAL, Entry
from esm.api.lifecycle import Lifecycle
from esm.api.protocol import ApiError
from esm.api.replica_sync import ReplicaSync, stored_document
from esm.checkpoints.mappings import MappingStore, RevisionConflict
from esm.config.loading import build_mapping
from esm.config.settings import FunctionTarget, MappingSettings
from esm.config.rules import poller_group_problems
from esm.errors import ConfigError, Problem
from esm.identity import function_name
from esm.invokers.base import Invoker
from esm.observability.metrics import Metrics
from esm.runtime import Runtime
from esm.supervisor import MappingSupervisor

log = logging.getLogger("esm.api")

SOURCE_CHECK_TIMEOUT = 5.0  # seconds create waits for the source's service to say whether it exists


class MappingManager:
    def __init__(self, functions: dict[str, FunctionTarget], runtime: Runtime, invokers: dict[str, Invoker],
                 metrics: Metrics, store: MappingStore, *, shutdown_timeout: float, base_dir: str = "."):
        self.functions = functions
        self.store = store
        self.base_dir = base_dir
        self.lifecycle = Lifecycle(runtime, invokers, metrics, shutdown_timeout=shutdown_timeout)
        self.replicas = ReplicaSync(store, self.lifecycle, self._build)
        self._lock = asyncio.Lock()  # one change at a time: check, persist, apply

    @property
    def entries(self) -> dict[str, Entry]:
        return self.lifecycle.entries

    # ------------------------------------------------------------------ start-up, replicas, shutdown

    def adopt(self, supervisors: list[MappingSupervisor]) -> None:
        """The config file's mappings, run by the daemon itself."""
        for supervisor in supervisors:
            self.entries[supervisor.mapping.uuid] = Entry(supervisor.mapping, "config", supervisor, created=0.0)

    async def load(self) -> None:
        """Start every mapping the store holds (those made through the API before a restart)."""
        await self.replicas.load()

    async def sync(self) -> None:
        """Apply what other replicas stored (esm.api.replica_sync)."""
        if self.lifecycle.closing:  # shutting down: nothing new starts, nothing is drained twice
            return
        async with self._lock:  # read under the lock: a snapshot older than a local create would delete it
            await self.replicas.sync()

    async def sync_forever(self, stop: asyncio.Event) -> None:
        """Replicas: `sync` every few seconds until `stop` (esm.api.replica_sync.sync_forever)."""
        await replica_sync.sync_forever(self.sync, stop)

    async def close(self) -> None:
        """Shutdown: every API mapping drains and closes within one shutdown timeout."""
        await self.lifecycle.close()

    # ------------------------------------------------------------------ the operations

    def get(self, uuid: str) -> Entry:
        entry = self.entries.get(uuid)
        if entry is None:
            raise answers.not_found()
        return entry

    def list(self, function: str | None, source_arn: str | None) -> list[Entry]:
        key = None
        if function is not None:
            try:
                key = self._function_key(function)
            except ApiError:  # AWS lists no mapping for a function it does not know: an empty page
                return []
        entries = sorted(self.entries.values(), key=lambda e: (e.created, e.uuid))
        return [e for e in entries if (key is None or e.settings.function.name == key)
                and (source_arn is None or e.settings.get("EventSourceArn") == source_arn)]

    async def create(self, request: dict[str, Any]) -> Entry:
        async with self._lock:
            new_uuid = str(uuids.uuid4())
            settings = self._build(self._with_function_key(request), new_uuid)
            self._refuse_duplicate(settings, None)
            self._refuse_overfull_poller_group(settings, None)
            await self._refuse_missing_source(settings)
            entry = Entry(settings, "api", revision=1)
            await self.store.put(new_uuid, stored_document(entry), expected=None)
            self.lifecycle.create(entry)
            log.info("mapping %s created through the API: %s -> %s", new_uuid, settings.source_id,
                     settings.function.name, extra={"mapping": settings.name})
            return entry

    async def update(self, uuid: str, changes: dict[str, Any]) -> Entry:
        async with self._lock:
            entry = self._changeable(uuid)
            request = {**entry.settings.request, **{k: v for k, v in changes.items() if k != "UUID"}}
            settings = self._build(self._with_function_key(request), uuid)
            self._refuse_duplicate(settings, uuid)
            self._refuse_overfull_poller_group(settings, uuid)
            document = {**stored_document(entry, settings), "Revision": entry.revision + 1,
                        "LastModified": time.time(), "StateTransitionReason": None}
            await self._store(entry, document)
            self.lifecycle.change(entry, settings, document)
            return entry

    async def tag(self, arn: str, tags: dict[str, str] | None = None, remove: list[str] | None = None) -> None:
        """TagResource (`tags`) or UntagResource (`remove`): the mapping's Tags change in the store
        (shared with the other replicas); the mapping keeps running as it is."""
        async with self._lock:
            entry = self._editable(self.tagged(arn).uuid)
            current = dict(entry.settings.request.get("Tags") or {})
            current.update(tags or {})
            for key in remove or ():
                current.pop(key, None)
            request = {**entry.settings.request, "Tags": current}
            settings = dataclasses.replace(entry.settings, request=MappingProxyType(request))
            document = {**stored_document(entry, settings), "Revision": entry.revision + 1}
            await self._store(entry, document)
            entry.settings, entry.revision = settings, document["Revision"]

    def tagged(self, arn: str) -> Entry:
        """The mapping an event source mapping ARN names (TagResource, UntagResource, ListTags)."""
        uuid = _mapping_uuid(arn)
        if uuid is None:
            raise ApiError(answers.INVALID, answers.NOT_A_MAPPING.format(arn=arn))
        return self.get(uuid)

    async def _store(self, entry: Entry, document: dict[str, Any]) -> None:
        """Store a change based on the revision this replica last saw: only if no other request or
        replica changed the mapping since (else both would run their own version)."""
        try:
            await self.store.put(entry.uuid, document, expected=entry.revision)
        except RevisionConflict:
            if await self.store.get(entry.uuid) is None:
                raise answers.not_found() from None
            raise ApiError("ResourceConflictException", answers.CHANGED_MEANWHILE.format(uuid=entry.uuid)) from None

    async def delete(self, uuid: str) -> Entry:
        async with self._lock:
            entry = self._changeable(uuid, deleting=True)
            await self.store.delete(uuid)
            self.lifecycle.delete(entry)
            return entry

    # ------------------------------------------------------------------ checks

    def _with_function_key(self, request: dict[str, Any]) -> dict[str, Any]:
        """`request` naming its function by its key of `functions:`. AWS checks the source before
        the function: for an unknown function the request is first checked with a known one, so a
        refused source is answered as such, else "Function does not exist"."""
        request = dict(request)
        try:
            request["FunctionName"] = self._function_key(request.get("FunctionName"))
        except ApiError:
            if self.functions:
                self._build({**request, "FunctionName": next(iter(self.functions))}, "")
            raise
        return request

    def _function_key(self, name: Any) -> str:
        """`FunctionName` as a key of `functions:`: the key itself, or the function name or ARN a
        `lambda:` target gives, or an ARN whose function name is a key; `:$LATEST` is the
        function itself."""
        if not isinstance(name, str) or not name:
            raise ApiError(answers.INVALID, answers.FUNCTION_NOT_FOUND)
        name = name.removesuffix(":$LATEST")
        if name in self.functions:
            return name
        parts = name.split(":")
        partial = len(parts) >= 3 and parts[1] == "function"  # <account>:function:<name>
        short = function_name(FunctionTarget("", lambda_arn="arn:aws:lambda::" + name if partial else name))
        if short in self.functions:
            return short
        for key, target in self.functions.items():
            if target.lambda_arn and (target.lambda_arn in (name, short) or function_name(target) == short):
                return key
        raise ApiError(answers.INVALID, answers.FUNCTION_NOT_FOUND)

    def _build(self, request: dict[str, Any], uuid: str) -> MappingSettings:
        try:
            settings = build_mapping(request, dict(self.functions), base_dir=self.base_dir)
        except ConfigError as error:
            raise answers.refused(error.problems) from None
        label = f"{settings.source_id}->{settings.function.name}"
        return _with_uuid(settings, uuid, label)

    def _refuse_duplicate(self, settings: MappingSettings, own_uuid: str | None) -> None:
        for other in self.entries.values():
            if other.uuid != own_uuid and other.settings.source_id == settings.source_id \
                    and other.settings.function.name == settings.function.name:
                text = registry.descriptor(settings.source).answers.duplicate
                raise ApiError("ResourceConflictException", text.format(
                    source=settings.get("EventSourceArn") or ",".join(_servers(settings.request)),
                    function=settings.function.name, function_arn=settings.function.lambda_arn or settings.function.name,
                    topics=",".join(settings.request.get("Topics") or []), uuid=other.uuid))

    def _refuse_overfull_poller_group(self, settings: MappingSettings, own_uuid: str | None) -> None:
        """A poller group holds at most 100 mappings and 2,000 MaximumPollers (behaviour §7)."""
        others = [(e.uuid, dict(e.settings.request)) for e in self.entries.values() if e.uuid != own_uuid]
        found = poller_group_problems([*others, ("request", dict(settings.request))])
        mine = [Problem(path.removeprefix("request."), reason) for path, reason in found if path.startswith("request.")]
        if mine:
            raise answers.refused(mine)

    async def _refuse_missing_source(self, settings: MappingSettings) -> None:
        """AWS refuses a mapping of a queue, stream or cluster that does not exist; one that does
        not answer (not missing) is created and its state tells why it waits (behaviour §10)."""
        answers_of = registry.descriptor(settings.source).answers
        arn = settings.get("EventSourceArn")
        runtime = self.lifecycle.runtime
        if not (answers_of.exists and arn and runtime is not None):
            return
        try:
            found = await asyncio.wait_for(registry.import_path(answers_of.exists)(runtime.clients, arn),
                                           SOURCE_CHECK_TIMEOUT)
        except asyncio.TimeoutError:
            found = None
        if found is False:
            raise ApiError(answers.INVALID, answers_of.missing.format(arn=arn))

    def _editable(self, uuid: str) -> Entry:
        """A mapping of the API's (those of the config file are read-only here)."""
        entry = self.get(uuid)
        if entry.origin == "config":
            raise ApiError("ResourceConflictException",
                           answers.READ_ONLY.format(uuid=uuid, name=entry.settings.name))
        return entry

    def _changeable(self, uuid: str, *, deleting: bool = False) -> Entry:
        entry = self._editable(uuid)
        state = entry.state
        # A mapping stuck in Creating (its source does not answer yet) may still be deleted.
        if state in TRANSITIONAL and not (deleting and state == "Creating"):
            raise answers.in_use(deleting)
        return entry


def _servers(request: Any) -> list[str]:
    return list((request.get("SelfManagedEventSource") or {}).get("Endpoints", {}).get("KAFKA_BOOTSTRAP_SERVERS") or [])


def _mapping_uuid(arn: str) -> str | None:
    """The UUID an event source mapping ARN names, or None for any other ARN."""
    parts = arn.split(":")
    if len(parts) == 7 and parts[0] == "arn" and parts[2] == "lambda" and parts[5] == "event-source-mapping":
        return parts[6]
    return None


def _with_uuid(settings: MappingSettings, uuid: str, name: str) -> MappingSettings:
    return dataclasses.replace(settings, uuid=uuid, name=name)
