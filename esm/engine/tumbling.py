"""Tumbling windows for stream sources (behaviour §2, "Tumbling window"; AWS "stateful Kinesis processing").

With TumblingWindowInSeconds = N, a shard's records fall into windows aligned on their approximate
arrival time ([k*N, (k+1)*N)). Every invoke carries one window's records plus `window`, the
`state` the function returned last time (starting at {}), `shardId`, `eventSourceARN`,
`isFinalInvokeForWindow` and `isWindowTerminatedEarly`. The function must answer with a `state`
(a response without one is a failed invoke). When the window closes — a record of a later window
arrives, the window's end has passed while the shard is idle, or the shard ends — a final invoke
with no records and `isFinalInvokeForWindow: true` hands over the accumulated state; if the state
grows beyond 1 MB the window is closed early (`isWindowTerminatedEarly: true`).

esm decision: the checkpoint moves when a window's final invoke succeeded, so a restart replays the
whole open window with fresh state instead of continuing from a state that was lost with the process.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson

from esm.core.results import FunctionError, InvokeResult, Succeeded

MAX_STATE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Window:
    start: float
    end: float

    def iso(self) -> dict[str, str]:
        return {"start": _iso(self.start), "end": _iso(self.end)}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def window_of(arrival_epoch: float, seconds: int) -> Window:
    start = math.floor(arrival_epoch / seconds) * seconds
    return Window(float(start), float(start + seconds))


@dataclass
class WindowState:
    """The open window of one shard and the state the function carries through it."""

    window: Window | None = None
    state: Any = field(default_factory=dict)
    terminated_early: bool = False

    def payload(self, events: list[dict[str, Any]], *, shard_id: str, stream_arn: str, final: bool) -> bytes:
        assert self.window is not None
        return orjson.dumps({
            "Records": events,
            "window": self.window.iso(),
            "state": self.state,
            "shardId": shard_id,
            "eventSourceARN": stream_arn,
            "isFinalInvokeForWindow": final,
            "isWindowTerminatedEarly": final and self.terminated_early,
        })

    def take_state(self, result: InvokeResult) -> InvokeResult:
        """Keep the returned state; a successful answer without `state` is a failed invoke (behaviour §2)."""
        if not isinstance(result, Succeeded):
            return result
        body = result.body
        if not isinstance(body, dict) or "state" not in body:
            return FunctionError("InvalidStateResponse", "a tumbling-window response must contain `state`",
                                 duration=result.duration)
        self.state = body["state"] if body["state"] is not None else {}
        if len(orjson.dumps(self.state)) > MAX_STATE_BYTES:
            self.terminated_early = True
        return result

    def reset(self, window: Window | None) -> None:
        self.window = window
        self.state = {}
        self.terminated_early = False
