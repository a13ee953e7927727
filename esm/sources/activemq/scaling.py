"""How many batches an ActiveMQ mapping keeps in flight (behaviour §7, §9.11): Lambda runs up to
five concurrent consumers per Amazon MQ for ActiveMQ mapping; `ScalingConfig.MaximumConcurrency`
(or the function target's own cap, when lower) sets another number. The target is fixed: a
broker pushes messages to its consumers, so there is no poll rate to learn from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

LAMBDA_ACTIVEMQ_CONSUMERS = 5


def concurrency_ceiling(request: Mapping[str, Any] | None) -> int:
    """The consumers one mapping runs: ScalingConfig.MaximumConcurrency, else Lambda's five."""
    if request is None:
        return LAMBDA_ACTIVEMQ_CONSUMERS
    return (request.get("ScalingConfig") or {}).get("MaximumConcurrency") or LAMBDA_ACTIVEMQ_CONSUMERS


@dataclass
class FixedConsumers:
    """esm.core.contract.ScalingPolicy with a constant target: `target` pollers, each one batch."""

    target: int

    def pollers(self, lanes: int) -> int:
        return lanes

    def polled(self, records: int) -> None: ...

    def poll_empty(self) -> None: ...

    def batch_done(self, *, full: bool) -> None: ...

    def back_off(self) -> None: ...

    def tick(self) -> int:
        return self.target
