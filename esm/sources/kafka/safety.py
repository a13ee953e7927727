"""The Kafka source's safety check (esm.safety): infinite retries with nowhere to keep what fails
stop a partition for good (behaviour §7)."""

from __future__ import annotations

from typing import Any, Callable

from esm.config.settings import MappingSettings


def infinite_retries(mapping: MappingSettings, facts: Any) -> tuple[str, str, str] | None:
    destination = ((mapping.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    if int(mapping.get("MaximumRetryAttempts", -1)) != -1 or destination:
        return None
    return ("MaximumRetryAttempts is -1 (infinite) and there is no on-failure destination: one record the "
            "function always fails on stops its partition for good",
            "bound the retries and keep what fails in an on-failure destination",
            "set DestinationConfig.OnFailure (retries then stop after 10), or MaximumRetryAttempts")


RULES: dict[str, Callable[[MappingSettings, Any], "tuple[str, str, str] | None"]] = {
    "kafka-infinite-retries": infinite_retries,
}
