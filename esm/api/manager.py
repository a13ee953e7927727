"""The run-time set of event source mappings: {UUID: supervisor}, and how each one changes.

The daemon hands the manager the supervisors it built from the config file; the control API asks
it to create, update, disable, enable and delete mappings of its own, which it keeps in the
mapping store (esm.checkpoints.mappings) so they survive restarts. Every change follows SPEC 0:

- create: Creating -> Enabled (or Disabled), in the background; the API answers at once (202);
- disable: Disabling -> Disabled: polling stops, in-flight batches finish and settle, gathered
  records go back (the source's own `stop`), checkpoints and commits stay where they are;
- enable: Enabling -> Enabled: a new supervisor resumes from those checkpoints;
- update: Updating -> the prior state: the old supervisor drains as above, one with the new
  settings starts, so the new settings apply from the next batch and no record is lost;
- delete: Deleting -> gone: drained like a disable, then forgotten (checkpoints are left alone).

Mappings of the config file are listed and readable, never changed here. Replicas sharing a
DynamoDB store each run every mapping (the sources share the work) and poll the store every
`SYNC_INTERVAL` seconds to apply what other replicas changed. Every stored change is conditional
on the revision it was based on: of two replicas changing one mapping at once, one wins and the
other answers ResourceConflictException. Transitional states are local to a replica: each reports
its own supervisor's progress.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import logging
import time
import uuid as uuids
from types import MappingProxyType
from dataclasses import dataclass, field
from typing import Any

from esm.api.protocol import ApiError
from esm.arns import parse_arn
from esm.checkpoints.base import StoreUnavailable
from esm.checkpoints.mappings import MappingStore, RevisionConflict
from esm.config.loading import build_mapping
from esm.config.settings import Extension, FunctionTarget, MappingSettings
from esm.errors import ConfigError
from esm.identity import DEFAULT_ACCOUNT, function_arn, function_name
from esm.invokers.base import Invoker
from esm.observability.health import Readiness
from esm.observability.metrics import Metrics
from esm.core.outcomes import PARTIAL, SUCCESS
from esm.runtime import Runtime
from esm.supervisor import MappingSupervisor

log = logging.getLogger("esm.api")

SYNC_INTERVAL = 2.0
TRANSITIONAL = ("Creating", "Enabling", "Disabling", "Updating", "Deleting")
USER_INITIATED = "USER_INITIATED"
DEFAULT_REGION = "us-east-1"


@dataclass
class Entry:
    """One mapping as the API sees it; `supervisor` is None while the mapping is disabled."""

    settings: MappingSettings
    origin: str  # "config" | "api"
    supervisor: MappingSupervisor | None = None
    task: asyncio.Task[None] | None = None  # start + run of an API mapping's supervisor
    transition: str | None = None  # overrides the supervisor's state while a change is applied
    last_modified: float = field(default_factory=time.time)
    created: float = field(default_factory=time.time)
    reason: str = USER_INITIATED
    revision: int = 0
    problem: str | None = None
    # LastProcessingResult of the supervisors this mapping had before its current one.
    last_result: str = "No records processed"

    @property
    def uuid(self) -> str:
        return self.settings.uuid

    @property
    def state(self) -> str:
        if self.transition:
            return self.transition
        if self.supervisor is not None:
            return self.supervisor.state
        return "Disabled"


class MappingManager:
    def __init__(self, functions: dict[str, FunctionTarget], runtime: Runtime, invokers: dict[str, Invoker],
                 metrics: Metrics, store: MappingStore, *, shutdown_timeout: float, base_dir: str = "."):
        self.functions = functions
        self.runtime = runtime
        self.invokers = invokers
        self.metrics = metrics
        self.store = store
        self.shutdown_timeout = shutdown_timeout
        self.base_dir = base_dir
        self.entries: dict[str, Entry] = {}
        self._lock = asyncio.Lock()  # one change at a time: check, persist, apply
        self._background: set[asyncio.Task[None]] = set()
        self._invalid: dict[str, str] = {}  # stored mappings this configuration cannot run: uuid -> why
        self._closing = False  # once set, no change starts a supervisor
        # API mappings do not gate /readyz: a mapping whose queue does not exist yet must not take
        # the replica (and with it the API that could fix the mapping) out of its Service.
        self._readiness = Readiness()

    # ------------------------------------------------------------------ start-up and shutdown

    def adopt(self, supervisors: list[MappingSupervisor]) -> None:
        """The config file's mappings, run by the daemon itself."""
        for supervisor in supervisors:
            self.entries[supervisor.mapping.uuid] = Entry(supervisor.mapping, "config", supervisor, created=0.0)

    async def load(self) -> None:
        """Start every mapping the store holds (those made through the API before a restart)."""
        for document in (await self.store.load()).values():
            if document is not None:  # an unreadable one was reported by the store
                self._apply_stored(document)

    async def sync_forever(self, stop: asyncio.Event) -> None:
        """Replicas: apply creates, updates and deletes other replicas stored. Only the store being
        out of reach is retried (said once, and once more when it answers again); anything else is
        a fault retrying cannot fix and ends the loop with its error."""
        unavailable = False
        while not stop.is_set():
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), SYNC_INTERVAL)
            if stop.is_set():
                return
            try:
                await self.sync()
            except StoreUnavailable as error:
                if not unavailable:
                    log.warning("cannot read the mapping store, retrying every %.0fs: %s", SYNC_INTERVAL, error)
                unavailable = True
                continue
            if unavailable:
                log.info("the mapping store answers again")
                unavailable = False

    async def sync(self) -> None:
        if self._closing:  # shutting down: nothing new starts, nothing is drained twice
            return
        async with self._lock:  # read under the lock: a snapshot older than a local create would delete it
            documents = await self.store.load()
            for uuid, document in documents.items():
                entry = self.entries.get(uuid)
                if document is None:  # unreadable (reported by the store): left as it runs, not deleted
                    continue
                if entry is None:
                    self._apply_stored(document)
                elif entry.origin == "api" and document.get("Revision", 0) > entry.revision and not entry.transition:
                    log.info("mapping %s changed by another replica", uuid, extra={"mapping": entry.settings.name})
                    settings = self._validated(document["Request"], uuid)
                    if settings is not None:
                        self._change(entry, settings, document)
            for uuid, entry in list(self.entries.items()):
                if entry.origin == "api" and uuid not in documents and entry.transition != "Deleting":
                    log.info("mapping %s deleted by another replica", uuid, extra={"mapping": entry.settings.name})
                    self._delete(entry)

    async def close(self) -> None:
        """Shutdown: every API mapping drains, then closes, all within one shutdown timeout.

        Changes under way finish their drain first (from now on none starts a supervisor), then
        the remaining mappings drain in what is left of the same deadline."""
        self._closing = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.shutdown_timeout
        while self._background:  # again if a request or sync under way when closing began spawned one
            _, late = await asyncio.wait(set(self._background), timeout=max(0.0, deadline - loop.time()))
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        entries = [e for e in self.entries.values() if e.origin == "api"]
        left = max(0.0, deadline - loop.time())
        await asyncio.gather(*(self._drain(e, final_state=None, timeout=left) for e in entries),
                             return_exceptions=True)

    # ------------------------------------------------------------------ the operations

    def get(self, uuid: str) -> Entry:
        entry = self.entries.get(uuid)
        if entry is None:
            raise ApiError("ResourceNotFoundException",
                           f"The resource you requested does not exist: event source mapping {uuid}")
        return entry

    def list(self, function: str | None, source_arn: str | None) -> list[Entry]:
        key = None
        if function is not None:
            key = self._function_key(function)
        entries = sorted(self.entries.values(), key=lambda e: (e.created, e.uuid))
        return [e for e in entries if (key is None or e.settings.function.name == key)
                and (source_arn is None or e.settings.get("EventSourceArn") == source_arn)]

    async def create(self, request: dict[str, Any]) -> Entry:
        async with self._lock:
            request = dict(request)
            request["FunctionName"] = self._function_key(request.get("FunctionName"))
            new_uuid = str(uuids.uuid4())
            settings = self._build(request, new_uuid)
            self._refuse_duplicate(settings, None)
            entry = Entry(settings, "api", revision=1)
            await self.store.put(new_uuid, self._document(entry), expected=None)
            self.entries[new_uuid] = entry
            self._start(entry, "Creating")
            if entry.supervisor is None:  # created disabled: Creating (as answered), then Disabled
                entry.transition = "Creating"
                self._spawn(self._created(entry), f"{settings.name}/creating")
            log.info("mapping %s created through the API: %s -> %s", new_uuid, settings.source_id,
                     settings.function.name, extra={"mapping": settings.name})
            return entry

    async def update(self, uuid: str, changes: dict[str, Any]) -> Entry:
        async with self._lock:
            entry = self._changeable(uuid)
            request = {**entry.settings.request, **{k: v for k, v in changes.items() if k != "UUID"}}
            request["FunctionName"] = self._function_key(request.get("FunctionName"))
            settings = self._build(request, uuid)
            self._refuse_duplicate(settings, uuid)
            # The change is based on the revision this replica last saw: stored only if no other
            # request or replica changed the mapping since (else both would run their own version).
            document = {**self._document(entry, settings), "Revision": entry.revision + 1,
                        "LastModified": time.time(), "StateTransitionReason": USER_INITIATED}
            try:
                await self.store.put(uuid, document, expected=entry.revision)
            except RevisionConflict:
                if await self.store.get(uuid) is None:
                    raise ApiError("ResourceNotFoundException", f"Event source mapping {uuid} was deleted.") from None
                raise ApiError("ResourceConflictException",
                               f"The event source mapping {uuid} was changed by another request at the same time; "
                               "get it again and retry the update.") from None
            self._change(entry, settings, document)
            return entry

    async def delete(self, uuid: str) -> Entry:
        async with self._lock:
            entry = self._changeable(uuid, deleting=True)
            await self.store.delete(uuid)
            self._delete(entry)
            return entry

    # ------------------------------------------------------------------ checks

    def _function_key(self, name: Any) -> str:
        """`FunctionName` as a key of `functions:`: the key itself, or the function name or ARN a
        `lambda:` target gives, or an ARN whose function name is a key."""
        if not isinstance(name, str) or not name:
            raise ApiError("InvalidParameterValueException", "FunctionName is required.")
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
        raise ApiError("ResourceNotFoundException",
                       f"Function not found: {name} (esm knows the functions: {', '.join(self.functions)})")

    def _build(self, request: dict[str, Any], uuid: str) -> MappingSettings:
        try:
            settings = build_mapping(request, dict(self.functions), base_dir=self.base_dir)
        except ConfigError as error:
            count = len(error.problems)
            raise ApiError("InvalidParameterValueException",
                           f"{count} validation error{'s' if count != 1 else ''} detected: "
                           + "; ".join(str(p) for p in error.problems)) from None
        label = f"{settings.source_id}->{settings.function.name}"
        return _with_uuid(settings, uuid, label)

    def _validated(self, request: dict[str, Any], uuid: str) -> MappingSettings | None:
        try:
            return self._build(dict(request), uuid)
        except ApiError as error:
            # Said once per stored version, not at every poll of the store.
            if self._invalid.get(uuid) != error.message:
                self._invalid[uuid] = error.message
                log.error("stored mapping %s is not valid with this configuration (a function removed from "
                          "functions:?), not running it: %s", uuid, error.message)
            return None

    def _refuse_duplicate(self, settings: MappingSettings, own_uuid: str | None) -> None:
        for other in self.entries.values():
            if other.uuid != own_uuid and other.settings.source_id == settings.source_id \
                    and other.settings.function.name == settings.function.name:
                raise ApiError("ResourceConflictException",
                               f"An event source mapping with event source ({settings.source_id}) and function "
                               f"({settings.function.name}) already exists. Please update or delete the existing "
                               f"mapping with UUID {other.uuid}")

    def _changeable(self, uuid: str, *, deleting: bool = False) -> Entry:
        entry = self.get(uuid)
        if entry.origin == "config":
            raise ApiError("ResourceConflictException",
                           f"The event source mapping {uuid} ({entry.settings.name}) is declared in the config file; "
                           "change it there and restart esm.")
        state = entry.state
        # A mapping stuck in Creating (its queue does not exist yet) may still be deleted.
        if state in TRANSITIONAL and not (deleting and state == "Creating"):
            raise ApiError("ResourceConflictException",
                           f"The operation cannot be performed at this time. The event source mapping {uuid} "
                           f"is in state {state}; try again once the change is done.")
        return entry

    # ------------------------------------------------------------------ applying changes

    def _apply_stored(self, document: dict[str, Any]) -> None:
        uuid = document["UUID"]
        settings = self._validated(document["Request"], uuid)
        runnable = settings is not None
        if settings is None:
            # Still listed (Disabled, with the reason), so it can be fixed by an update or deleted.
            settings = _unrunnable(document["Request"], uuid)
        entry = Entry(settings, "api", last_modified=document.get("LastModified", time.time()),
                      created=document.get("Created", time.time()), reason=document.get("StateTransitionReason",
                                                                                          USER_INITIATED),
                      revision=document.get("Revision", 1))
        self.entries[uuid] = entry
        if runnable:
            self._start(entry, "Creating")
        else:
            entry.problem = entry.reason = f"PROBLEM: {self._invalid[uuid]}"

    def _document(self, entry: Entry, settings: MappingSettings | None = None) -> dict[str, Any]:
        settings = settings or entry.settings
        return {"UUID": entry.uuid, "Request": dict(settings.request), "LastModified": entry.last_modified,
                "Created": entry.created, "StateTransitionReason": entry.reason, "Revision": entry.revision}

    def _start(self, entry: Entry, initial_state: str) -> None:
        """A new supervisor for `entry` (or none if disabled), started and run in the background;
        none at all once shutting down (a change that finishes its drain then leaves it stopped)."""
        if self._closing:
            entry.supervisor = None
            return
        if not entry.settings.enabled:
            entry.supervisor = None
            settings = entry.settings  # no supervisor to report it: esm_mapping_state and _info say so here
            self.metrics.for_mapping(settings.uuid, settings.source).set_state("Disabled")
            self.metrics.info.labels(settings.uuid, settings.source, settings.name, settings.function.name,
                                     settings.source_id).set(1)
            return
        supervisor = MappingSupervisor(entry.settings, self.runtime, self.invokers[entry.settings.function.name],
                                       self.metrics, self._readiness, initial_state=initial_state)
        entry.supervisor = supervisor
        entry.problem = None
        entry.task = asyncio.create_task(self._run(entry, supervisor), name=f"{entry.settings.name}/api-run")

    async def _run(self, entry: Entry, supervisor: MappingSupervisor) -> None:
        try:
            await supervisor.start()
            await supervisor.run()
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - one mapping failing must not stop the others
            log.exception("mapping %s stopped: %s", entry.uuid, error, extra={"mapping": entry.settings.name})
            entry.problem = f"PROBLEM: {error}"
            entry.reason = f"PROBLEM: {error}"
            if entry.supervisor is supervisor:
                supervisor.set_state("Disabled")

    @staticmethod
    async def _created(entry: Entry) -> None:
        entry.transition = None

    def _change(self, entry: Entry, settings: MappingSettings, document: dict[str, Any]) -> None:
        was_enabled = entry.supervisor is not None
        transition = ("Disabling" if was_enabled and not settings.enabled else
                      "Enabling" if settings.enabled and not was_enabled else "Updating")
        entry.transition = transition
        entry.revision = document.get("Revision", entry.revision)
        entry.last_modified = document.get("LastModified", entry.last_modified)
        entry.reason = USER_INITIATED
        entry.problem = None
        entry.settings = settings  # what the API reports at once; the old supervisor keeps its own

        async def apply() -> None:
            try:
                await self._drain(entry, final_state=None)
                self._start(entry, transition)
            finally:
                entry.transition = None

        self._spawn(apply(), f"{settings.name}/{transition.lower()}")

    def _delete(self, entry: Entry) -> None:
        entry.transition = "Deleting"

        async def apply() -> None:
            try:
                await self._drain(entry, final_state="Deleting")
            finally:
                self.entries.pop(entry.uuid, None)
                self._forget_metrics(entry.settings)
                log.info("mapping %s deleted", entry.uuid, extra={"mapping": entry.settings.name})

        self._spawn(apply(), f"{entry.settings.name}/deleting")

    async def _drain(self, entry: Entry, final_state: str | None, timeout: float | None = None) -> None:
        """Stop the supervisor: in-flight batches finish and settle within `timeout` (by default
        the shutdown timeout)."""
        timeout = self.shutdown_timeout if timeout is None else timeout
        supervisor, task = entry.supervisor, entry.task
        entry.task = None
        if supervisor is None:
            return
        if task is not None:
            if supervisor.state in TRANSITIONAL:
                task.cancel()  # still connecting: nothing was read, nothing is in flight
            else:
                supervisor.stop()
            done, late = await asyncio.wait({task}, timeout=timeout)
            if late:
                log.warning("mapping %s: in-flight batches did not finish in %.0fs, cancelled (their records "
                            "are not acknowledged and come back)", entry.uuid, timeout)
                task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        await supervisor.close()
        entry.last_result = self._last_result(entry)
        entry.supervisor = None
        if final_state:
            supervisor.set_state(final_state)

    def _spawn(self, coroutine: Any, name: str) -> None:
        task = asyncio.create_task(coroutine, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _forget_metrics(self, settings: MappingSettings) -> None:
        self.metrics.forget_mapping((settings.uuid, settings.source))

    # ------------------------------------------------------------------ what the API answers

    def configuration(self, entry: Entry) -> dict[str, Any]:
        """The mapping as EventSourceMappingConfiguration (esm.api.protocol.render keeps the
        members the model declares)."""
        settings = entry.settings
        arn = parse_arn(settings.source_id) if settings.source_id.startswith("arn:") else None
        region = (arn.region if arn else "") or self.runtime.clients.region_for() or DEFAULT_REGION
        account = (arn.account if arn else "") or DEFAULT_ACCOUNT
        return {
            **settings.request,
            "UUID": entry.uuid,
            "FunctionArn": function_arn(settings.function, region, account),  # SPEC 9.9
            "EventSourceMappingArn": f"arn:aws:lambda:{region}:{account}:event-source-mapping:{entry.uuid}",
            "State": entry.state,
            "StateTransitionReason": entry.reason,
            "LastModified": entry.last_modified,
            "LastProcessingResult": entry.problem or self._last_result(entry),
        }

    @staticmethod
    def _last_result(entry: Entry) -> str:
        outcome = entry.supervisor.metrics.last_outcome if entry.supervisor is not None else None
        if outcome is None:
            return entry.last_result
        return "OK" if outcome in (SUCCESS, PARTIAL) else "PROBLEM: Function call failed"


def _unrunnable(request: dict[str, Any], uuid: str) -> MappingSettings:
    """A stored mapping this configuration cannot run, as far as the API needs to show it."""
    return MappingSettings(index=0, uuid=uuid, name=uuid, source="", function=FunctionTarget(str(request.get(
        "FunctionName", ""))), request=MappingProxyType(dict(request)), extension=Extension(),
        source_id=str(request.get("EventSourceArn") or ""))


def _with_uuid(settings: MappingSettings, uuid: str, name: str) -> MappingSettings:
    return dataclasses.replace(settings, uuid=uuid, name=name)


def encode_marker(entry: Entry) -> str:
    # repr() of a float reads back exactly: the next page starts right after this entry.
    return base64.urlsafe_b64encode(f"{entry.created!r}/{entry.uuid}".encode()).decode()


def decode_marker(marker: str) -> tuple[float, str]:
    try:
        created, _, uuid = base64.urlsafe_b64decode(marker.encode()).decode().partition("/")
        return float(created), uuid
    except (ValueError, UnicodeDecodeError):
        raise ApiError("InvalidParameterValueException", f"Invalid Marker: {marker!r}") from None

