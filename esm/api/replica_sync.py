"""What the mapping store holds, applied to this replica: the API's mappings at start-up, and what
other replicas created, changed or deleted since.

Replicas sharing a DynamoDB store each run every mapping (the sources share the work) and poll the
store every `SYNC_INTERVAL` seconds. Every stored change is conditional on the revision it was
based on (esm.api.manager), so a document here is either new, newer than this replica's, or gone.
A stored mapping this configuration cannot run (its function was removed from `functions:`) is
listed Disabled with the reason, said once per stored version, so it can still be fixed or deleted.
A change of Tags alone is applied without a restart. This module owns the stored document's
fields (esm.checkpoints.mappings keeps them); a mapping's Tags are part of its stored request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from types import MappingProxyType
from typing import Any, Awaitable, Callable

from esm.api.entry import Entry
from esm.api.lifecycle import Lifecycle
from esm.api.protocol import ApiError
from esm.checkpoints.base import StoreUnavailable
from esm.checkpoints.mappings import MappingStore
from esm.config.settings import Extension, FunctionTarget, MappingSettings

log = logging.getLogger("esm.api")

SYNC_INTERVAL = 2.0

Build = Callable[[dict[str, Any], str], MappingSettings]  # a stored request -> settings, or ApiError


def stored_document(entry: Entry, settings: MappingSettings | None = None) -> dict[str, Any]:
    """The document the mapping store keeps for `entry` (with `settings`, when they are changing)."""
    settings = settings or entry.settings
    return {"UUID": entry.uuid, "Request": dict(settings.request), "LastModified": entry.last_modified,
            "Created": entry.created, "StateTransitionReason": entry.reason, "Revision": entry.revision}


class ReplicaSync:
    def __init__(self, store: MappingStore, lifecycle: Lifecycle, build: Build):
        self.store = store
        self.lifecycle = lifecycle
        self.build = build
        self._invalid: dict[str, str] = {}  # stored mappings this configuration cannot run: uuid -> why

    async def load(self) -> None:
        """Start every mapping the store holds (those made through the API before a restart)."""
        for document in (await self.store.load()).values():
            if document is not None:  # an unreadable one was reported by the store
                self._apply_new(document)

    async def sync(self) -> None:
        """Apply what other replicas stored since the last look (the caller holds the change lock)."""
        documents = await self.store.load()
        entries = self.lifecycle.entries
        for uuid, document in documents.items():
            entry = entries.get(uuid)
            if document is None:  # unreadable (reported by the store): left as it runs, not deleted
                continue
            if entry is None:
                self._apply_new(document)
            elif entry.origin == "api" and document.get("Revision", 0) > entry.revision and not entry.transition:
                log.info("mapping %s changed by another replica", uuid, extra={"mapping": entry.settings.name})
                settings = self._validated(document["Request"], uuid)
                if settings is None:
                    continue
                if _untagged(settings.request) == _untagged(entry.settings.request):
                    # Only its Tags changed: nothing to restart.
                    entry.settings, entry.revision = settings, document["Revision"]
                else:
                    self.lifecycle.change(entry, settings, document)
        for uuid, entry in list(entries.items()):
            if entry.origin == "api" and uuid not in documents and entry.transition != "Deleting":
                log.info("mapping %s deleted by another replica", uuid, extra={"mapping": entry.settings.name})
                self.lifecycle.delete(entry)

    def _apply_new(self, document: dict[str, Any]) -> None:
        uuid = document["UUID"]
        settings = self._validated(document["Request"], uuid)
        runnable = settings is not None
        if settings is None:
            # Still listed (Disabled, with the reason), so it can be fixed by an update or deleted.
            settings = _unrunnable(document["Request"], uuid)
        entry = Entry(settings, "api", last_modified=document.get("LastModified", time.time()),
                      created=document.get("Created", time.time()), reason=document.get("StateTransitionReason"),
                      revision=document.get("Revision", 1))
        self.lifecycle.entries[uuid] = entry
        if runnable:
            self.lifecycle.start(entry, "Creating")
        else:
            entry.problem = entry.reason = f"PROBLEM: {self._invalid[uuid]}"

    def _validated(self, request: dict[str, Any], uuid: str) -> MappingSettings | None:
        try:
            return self.build(dict(request), uuid)
        except ApiError as error:
            # Said once per stored version, not at every poll of the store.
            if self._invalid.get(uuid) != error.message:
                self._invalid[uuid] = error.message
                log.error("stored mapping %s is not valid with this configuration (a function removed from "
                          "functions:?), not running it: %s", uuid, error.message)
            return None


async def sync_forever(sync: Callable[[], Awaitable[None]], stop: asyncio.Event) -> None:
    """Run `sync` every SYNC_INTERVAL until `stop`. Only the store being out of reach is retried
    (said once, and once more when it answers again); anything else is a fault retrying cannot fix
    and ends the loop with its error."""
    unavailable = False
    while not stop.is_set():
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), SYNC_INTERVAL)
        if stop.is_set():
            return
        try:
            await sync()
        except StoreUnavailable as error:
            if not unavailable:
                log.warning("cannot read the mapping store, retrying every %.0fs: %s", SYNC_INTERVAL, error)
            unavailable = True
            continue
        if unavailable:
            log.info("the mapping store answers again")
            unavailable = False


def _untagged(request: Any) -> dict[str, Any]:
    return {key: value for key, value in request.items() if key != "Tags"}


def _unrunnable(request: dict[str, Any], uuid: str) -> MappingSettings:
    """A stored mapping this configuration cannot run, as far as the API needs to show it."""
    return MappingSettings(index=0, uuid=uuid, name=uuid, source="", function=FunctionTarget(str(request.get(
        "FunctionName", ""))), request=MappingProxyType(dict(request)), extension=Extension(),
        source_id=str(request.get("EventSourceArn") or ""))
