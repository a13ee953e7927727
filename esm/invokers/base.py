"""The one interface every function target implements.

Every invoke ends in exactly one of Succeeded, FunctionError or InvocationError (behaviour §9.1).
Those result types are defined in `esm.core.results`, below both the invokers that make them and
the engine that judges them; they are named here too, beside the interface that returns them.
"""

from __future__ import annotations

from typing import Any, Protocol

from esm.core.results import LATEST, FunctionError, InvocationError, InvokeResult, Succeeded

__all__ = ["LATEST", "FunctionError", "InvocationError", "InvokeResult", "Invoker", "Succeeded"]


class Invoker(Protocol):
    """A function target. `payload` is the event (a JSON-able dict) as Lambda would send it."""

    name: str
    max_concurrency: int

    async def invoke(self, payload: Any, timeout: float | None = None) -> InvokeResult: ...

    async def close(self) -> None: ...
