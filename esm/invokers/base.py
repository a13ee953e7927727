"""The one interface every function target implements, and the three outcomes of an invoke.

SPEC 9.1: every invoke ends in exactly one of Succeeded (possibly carrying a partial batch
response), FunctionError (the function ran and failed) or InvocationError (throttled or
unreachable: retried with backoff, never counted against MaximumRetryAttempts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

# The version that ran, as Lambda's Invoke response names it (X-Amz-Executed-Version); every target
# that is not a published Lambda version or alias runs the unpublished one.
LATEST = "$LATEST"


@dataclass(frozen=True)
class Succeeded:
    """The function returned. `body` is the parsed JSON response (None for an empty one)."""

    body: Any
    duration: float = 0.0
    executed_version: str = LATEST


@dataclass(frozen=True)
class FunctionError:
    """The function ran and failed: an exception, a timeout, a crashed runtime, an error body."""

    error_type: str
    message: str
    duration: float = 0.0
    status: int | None = None
    executed_version: str = LATEST


@dataclass(frozen=True)
class InvocationError:
    """The function could not be invoked (throttle, unavailable, refused). Retriable."""

    reason: str
    status: int | None = None
    retry_after: float | None = None
    duration: float = 0.0


InvokeResult = Succeeded | FunctionError | InvocationError


class Invoker(Protocol):
    """A function target. `payload` is the event (a JSON-able dict) as Lambda would send it."""

    name: str
    max_concurrency: int

    async def invoke(self, payload: Any, timeout: float | None = None) -> InvokeResult: ...

    async def close(self) -> None: ...
