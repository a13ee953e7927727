"""What one invoke returns: exactly one of Succeeded, FunctionError or InvocationError (behaviour §9.1).

Succeeded may carry a partial batch response; FunctionError means the function ran and failed;
InvocationError means it could not be invoked (throttled or unreachable: retried with backoff,
never counted against MaximumRetryAttempts). Invokers produce these values and the engine judges
them (`esm.core.outcomes`), so they live below both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
