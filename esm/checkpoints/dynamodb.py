"""The shared checkpoint store: one DynamoDB table of leases and checkpoints, for many replicas.

One item per (mapping, unit), keyed `lease_key = "<mapping>#<unit>"`, holding `mapping`, `unit`,
the lease (`owner`, `counter`, `expires_at`) and the checkpoint (`checkpoint`, `shard_end`). This
is the Kinesis Client Library's model with two deliberate differences:

- **Fencing.** `counter` is bumped on every change of hands, never on a heartbeat. Every change of
  hands is a compare-and-set on the `counter` the taker read (plus "still expired" for a take,
  "still the victim's" for a steal), so two replicas racing for one unit cannot both win; renew,
  release and a leased `put` are conditional on `owner` = holder AND `counter` = the lease's, so
  a replica that lost a unit (even one that got it back later under a newer counter) can neither
  heartbeat it nor move its checkpoint: `put` raises LeaseLost. Because heartbeats leave the
  counter alone, the `Lease` a worker was handed stays valid for its `put`s however often the
  heartbeat task renews it.
- **Expiry.** The KCL decides a lease is expired when its counter has not moved for a lease
  duration of the *observer's* clock, which needs a heartbeat bump; here the holder writes an
  epoch deadline (`expires_at`) and others compare it with their own clock. That asks replica
  clocks to agree to well within a lease duration (NTP does), and in exchange it lets tests pass
  `now` explicitly instead of sleeping.

Which units to take is decided by `esm.checkpoints.balance` from one consistent read of the
mapping's items (BatchGetItem on the given units, not a table scan).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any, Awaitable, Callable, Iterable, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from esm.aws import AwsClients
from esm.checkpoints.balance import Holding, plan_acquire
from esm.checkpoints.base import DEFAULT_LEASE_DURATION, Checkpoint, Lease, StoreUnavailable
from esm.core.backoff import STORE_BACKOFF
from esm.errors import LeaseLost

log = logging.getLogger("esm.checkpoints")

T = TypeVar("T")

KEY = "lease_key"
# Every attribute goes through a placeholder: `owner`, `counter` and friends are too close to
# DynamoDB's reserved words to trust bare.
NAMES = {
    "#k": KEY,
    "#m": "mapping",
    "#u": "unit",
    "#o": "owner",
    "#c": "counter",
    "#e": "expires_at",
    "#p": "checkpoint",
    "#s": "shard_end",
}
BATCH_GET_LIMIT = 100
# Conditional writes in flight at once per call (acquire of many units, renew of many leases).
PARALLEL_WRITES = 16


def lease_key(mapping_uuid: str, unit: str) -> str:
    return f"{mapping_uuid}#{unit}"


def _names(expression: str) -> dict[str, str]:
    return {name: attr for name, attr in NAMES.items() if name in expression}


def _number(seconds: float) -> str:
    # Milliseconds are plenty for deadlines, and fixed notation is what DynamoDB's N accepts.
    return f"{seconds:.3f}"


def _conditional_failed(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class _Item:
    """The lease part of one item as read."""

    __slots__ = ("owner", "counter", "expires_at")

    def __init__(self, raw: dict[str, Any]):
        self.owner: str | None = raw["owner"]["S"] if "owner" in raw else None
        self.counter: int | None = int(raw["counter"]["N"]) if "counter" in raw else None
        self.expires_at: float = float(raw["expires_at"]["N"]) if "expires_at" in raw else 0.0


class DynamoDbCheckpointStore:
    def __init__(
        self,
        table: str,
        clients: AwsClients,
        *,
        lease_duration: float = DEFAULT_LEASE_DURATION,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        create_table: bool = True,
    ):
        self.table = table
        self.clients = clients
        self.lease_duration = lease_duration
        self.clock = clock
        self.rng = rng or random.Random()
        self.create_table = create_table
        self._stack: contextlib.AsyncExitStack | None = None
        self._client: Any = None

    # ------------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        if self._stack is not None:
            return
        stack = contextlib.AsyncExitStack()
        try:
            self._client = await stack.enter_async_context(self.clients.client("dynamodb"))
            await self._call(self._ensure_table)
        except BaseException:
            self._client = None
            await stack.aclose()
            raise
        self._stack = stack

    async def close(self) -> None:
        stack, self._stack = self._stack, None
        self._client = None
        if stack is not None:
            await stack.aclose()

    async def _ensure_table(self) -> None:
        try:
            await self._client.describe_table(TableName=self.table)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException" or not self.create_table:
                raise
            try:
                await self._client.create_table(
                    TableName=self.table,
                    AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
                    KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}],
                    BillingMode="PAY_PER_REQUEST",
                )
                log.info("created checkpoint table %s", self.table)
            except ClientError as create_error:
                # Another replica created it first.
                if create_error.response.get("Error", {}).get("Code") != "ResourceInUseException":
                    raise
        waiter = self._client.get_waiter("table_exists")
        await waiter.wait(TableName=self.table, WaiterConfig={"Delay": 1, "MaxAttempts": 120})

    async def _call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run one DynamoDB call, turning service and transport failures into StoreUnavailable
        (a lost condition is the caller's to interpret, so ConditionalCheckFailed passes through)."""
        if self._client is None:
            raise RuntimeError("checkpoint store is not open")
        try:
            return await fn(*args, **kwargs)
        except ClientError as error:
            if _conditional_failed(error):
                raise
            raise StoreUnavailable(f"DynamoDB table {self.table}: {error}") from error
        except BotoCoreError as error:
            raise StoreUnavailable(f"DynamoDB table {self.table}: {error}") from error

    async def call(self, operation: str, **kwargs: Any) -> Any:
        """One DynamoDB `operation` on this table through `_call` (the control API's mapping
        store, esm.checkpoints.mappings, keeps one item here on this client)."""
        if self._client is None:
            raise RuntimeError("checkpoint store is not open")
        return await self._call(getattr(self._client, operation), TableName=self.table, **kwargs)

    async def _update(self, key: str, update: str, values: dict[str, Any], condition: str | None = None) -> bool:
        """One UpdateItem; False when `condition` did not hold."""
        kwargs: dict[str, Any] = {
            "TableName": self.table,
            "Key": {KEY: {"S": key}},
            "UpdateExpression": update,
            "ExpressionAttributeNames": _names(update + " " + (condition or "")),
            "ExpressionAttributeValues": values,
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            await self._call(self._client.update_item, **kwargs)
        except ClientError as error:
            if not _conditional_failed(error):  # _call already wrapped every other error
                raise
            return False
        return True

    # ------------------------------------------------------------------ checkpoints

    async def get(self, mapping_uuid: str, unit: str) -> Checkpoint | None:
        answer = await self._call(
            self._client.get_item,
            TableName=self.table,
            Key={KEY: {"S": lease_key(mapping_uuid, unit)}},
            ConsistentRead=True,
            ProjectionExpression="#p, #s",
            ExpressionAttributeNames={"#p": "checkpoint", "#s": "shard_end"},
        )
        item = answer.get("Item")
        if not item or "checkpoint" not in item:
            return None
        return Checkpoint(item["checkpoint"]["S"], bool(item.get("shard_end", {}).get("BOOL", False)))

    async def put(
        self,
        mapping_uuid: str,
        unit: str,
        position: str,
        *,
        shard_end: bool = False,
        lease: Lease | None = None,
    ) -> None:
        values: dict[str, Any] = {
            ":m": {"S": mapping_uuid},
            ":u": {"S": unit},
            ":p": {"S": position},
            ":s": {"BOOL": shard_end},
        }
        condition = None
        if lease is not None:
            if (lease.mapping_uuid, lease.unit) != (mapping_uuid, unit):
                raise LeaseLost(f"lease on {lease.mapping_uuid}/{lease.unit} does not cover {mapping_uuid}/{unit}")
            condition = "#o = :me AND #c = :c"
            values[":me"] = {"S": lease.owner}
            values[":c"] = {"N": str(lease.counter)}
        written = await self._update(
            lease_key(mapping_uuid, unit), "SET #m = :m, #u = :u, #p = :p, #s = :s", values, condition
        )
        if not written and lease is not None:
            raise LeaseLost(f"lease on {mapping_uuid}/{unit} is no longer held by {lease.owner} (counter {lease.counter})")

    # ------------------------------------------------------------------ leases

    async def _read_leases(self, mapping_uuid: str, units: list[str]) -> dict[str, _Item]:
        found: dict[str, _Item] = {}
        for start in range(0, len(units), BATCH_GET_LIMIT):
            keys: list[dict[str, Any]] = [
                {KEY: {"S": lease_key(mapping_uuid, unit)}} for unit in units[start : start + BATCH_GET_LIMIT]
            ]
            request: dict[str, Any] = {
                self.table: {
                    "Keys": keys,
                    "ConsistentRead": True,
                    "ProjectionExpression": "#u, #o, #c, #e",
                    "ExpressionAttributeNames": {"#u": "unit", "#o": "owner", "#c": "counter", "#e": "expires_at"},
                }
            }
            attempt = 0
            while request:
                answer = await self._call(self._client.batch_get_item, RequestItems=request)
                for raw in answer.get("Responses", {}).get(self.table, []):
                    found[raw["unit"]["S"]] = _Item(raw)
                request = answer.get("UnprocessedKeys") or {}
                if request:  # throttled: back off before asking for the rest
                    attempt += 1
                    await asyncio.sleep(STORE_BACKOFF.delay(attempt))
        return found

    async def acquire(
        self, mapping_uuid: str, units: list[str], owner: str, now: float | None = None
    ) -> list[Lease]:
        now = self.clock() if now is None else now
        units = list(dict.fromkeys(units))
        items = await self._read_leases(mapping_uuid, units)
        holdings = {unit: Holding(item.owner, item.expires_at) for unit, item in items.items()}
        plan = plan_acquire(units, holdings, owner, now, self.rng)

        async def take(unit: str, victim: str | None) -> Lease | None:
            item = items.get(unit)
            seen = None if item is None else item.counter
            counter = (seen or 0) + 1
            expires_at = round(now + self.lease_duration, 3)
            values: dict[str, Any] = {
                ":me": {"S": owner},
                ":new": {"N": str(counter)},
                ":exp": {"N": _number(expires_at)},
                ":m": {"S": mapping_uuid},
                ":u": {"S": unit},
            }
            # Compare-and-set on what was read: whoever changes the item first wins the unit.
            if seen is None:
                condition = "attribute_not_exists(#c)"
            elif victim is None:
                condition = "#c = :seen AND (attribute_not_exists(#o) OR #e <= :now)"
                values[":seen"] = {"N": str(seen)}
                values[":now"] = {"N": _number(now)}
            else:
                condition = "#c = :seen AND #o = :victim"
                values[":seen"] = {"N": str(seen)}
                values[":victim"] = {"S": victim}
            won = await self._update(
                lease_key(mapping_uuid, unit),
                "SET #o = :me, #c = :new, #e = :exp, #m = :m, #u = :u",
                values,
                condition,
            )
            if not won:
                log.debug("lost the race for %s", unit, extra={"mapping": mapping_uuid, "unit": unit})
                return None
            if victim is not None:
                log.info("took lease from %s to rebalance (share %d of %d owners)", victim, plan.target,
                         plan.owners, extra={"mapping": mapping_uuid, "unit": unit})
            elif item is not None and item.owner not in (None, owner):
                log.info("took over expired lease of %s", item.owner, extra={"mapping": mapping_uuid, "unit": unit})
            return Lease(unit, owner, counter, expires_at, mapping_uuid)

        wanted = [(unit, None) for unit in plan.take]
        if plan.steal is not None:
            wanted.append((plan.steal, plan.victim))
        results = await self._bounded((take(unit, victim) for unit, victim in wanted))
        return [lease for lease in results if lease is not None]

    async def renew(self, leases: list[Lease], now: float | None = None) -> list[Lease]:
        now = self.clock() if now is None else now
        expires_at = round(now + self.lease_duration, 3)

        async def one(lease: Lease) -> Lease | None:
            held = await self._update(
                lease_key(lease.mapping_uuid, lease.unit),
                "SET #e = :exp",
                {":exp": {"N": _number(expires_at)}, ":me": {"S": lease.owner}, ":c": {"N": str(lease.counter)}},
                "#o = :me AND #c = :c",
            )
            if not held:
                log.info("lease lost to another owner", extra={"mapping": lease.mapping_uuid, "unit": lease.unit})
                return None
            return Lease(lease.unit, lease.owner, lease.counter, expires_at, lease.mapping_uuid)

        results = await self._bounded(one(lease) for lease in leases)
        return [lease for lease in results if lease is not None]

    async def release(self, lease: Lease) -> None:
        await self._update(
            lease_key(lease.mapping_uuid, lease.unit),
            "REMOVE #o SET #e = :zero",
            {":zero": {"N": "0"}, ":me": {"S": lease.owner}, ":c": {"N": str(lease.counter)}},
            "#o = :me AND #c = :c",
        )

    async def _bounded(self, calls: Iterable[Awaitable[T]]) -> list[T]:
        """Await `calls` at most PARALLEL_WRITES at a time; the first failure is raised after all
        have finished, so no write is left running unowned."""
        gate = asyncio.Semaphore(PARALLEL_WRITES)

        async def gated(call: Awaitable[T]) -> T:
            async with gate:
                return await call

        results = await asyncio.gather(*(gated(call) for call in calls), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return results  # type: ignore[return-value]
