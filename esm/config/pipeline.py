"""A mapping's pipeline settings, read once from its validated request into a typed value.

The engine and the sources read these fields, never the raw CreateEventSourceMapping dict, so
each setting has one reading and one default (behaviour §1): batching (BatchSize, the window),
failure handling (retries, record age, bisect, partial batch responses), filters, the on-failure
target, lanes (ParallelizationFactor; for Kafka `esm.parallelization_factor`), tumbling windows
and the caps on memory and on pollers with a batch in flight.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from esm import registry
from esm.config.settings import MappingSettings


@dataclass(frozen=True)
class PipelineSettings:
    batch_size: int
    window: float
    max_retries: int
    max_age: float
    bisect: bool
    report_item_failures: bool
    filters: tuple[Any, ...]
    destination: str | None
    lanes: int
    tumbling_seconds: int
    max_in_flight_bytes: int
    max_pollers: int | None
    transform: str | None

    @classmethod
    def read(cls, mapping: MappingSettings, *, retry_cap_with_destination: int | None = None,
             default_batch_size: int = 100) -> "PipelineSettings":
        get = mapping.get
        destination = ((get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
        retries = int(get("MaximumRetryAttempts", -1))
        if retries == -1 and destination and retry_cap_with_destination is not None:
            retries = retry_cap_with_destination  # Kafka: 10 retries when a destination waits (behaviour §3)
        tumbling = int(get("TumblingWindowInSeconds", 0) or 0)
        if registry.descriptor(mapping.source).lanes_from_extension:  # Kafka: esm.parallelization_factor
            lanes = int(mapping.extension.raw.get("parallelization_factor", 1) or 1)
        else:
            lanes = int(get("ParallelizationFactor", 1) or 1)
        return cls(
            batch_size=int(get("BatchSize") or default_batch_size),
            window=mapping.batching_window,
            max_retries=retries,
            max_age=float(get("MaximumRecordAgeInSeconds", -1)),
            bisect=bool(get("BisectBatchOnFunctionError", False)),
            report_item_failures="ReportBatchItemFailures" in (get("FunctionResponseTypes") or []),
            filters=tuple(f["Pattern"] for f in (get("FilterCriteria") or {}).get("Filters") or []),
            destination=destination,
            # A tumbling window's state belongs to its unit: one lane when windows are on.
            lanes=1 if tumbling else lanes,
            tumbling_seconds=tumbling,
            max_in_flight_bytes=mapping.extension.max_in_flight_bytes,
            max_pollers=(get("ProvisionedPollerConfig") or {}).get("MaximumPollers"),
            transform=mapping.extension.transform,
        )
