"""How many batches an ActiveMQ mapping keeps in flight (behaviour §7, §9.11): Lambda runs up to
five concurrent consumers per Amazon MQ for ActiveMQ mapping; `ScalingConfig.MaximumConcurrency`
(or the function target's own cap, when lower) sets another number, held fixed
(esm.core.contract.FixedScaling): a broker pushes messages to its consumers."""

from __future__ import annotations

from typing import Any, Mapping

LAMBDA_ACTIVEMQ_CONSUMERS = 5


def concurrency_ceiling(request: Mapping[str, Any] | None) -> int:
    """The consumers one mapping runs: ScalingConfig.MaximumConcurrency, else Lambda's five."""
    if request is None:
        return LAMBDA_ACTIVEMQ_CONSUMERS
    return (request.get("ScalingConfig") or {}).get("MaximumConcurrency") or LAMBDA_ACTIVEMQ_CONSUMERS
