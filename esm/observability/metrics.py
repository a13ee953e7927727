"""Every metric of behaviour §6, as Prometheus metrics with `mapping` and `source` labels.

Metrics are always on (behaviour §9.8). `mapping` is the mapping's UUID (behaviour §9.9, the CloudWatch
dimension EventSourceMappingUUID); `esm_mapping_info` maps it to the mapping's name and function.
Each mapping gets a `MappingMetrics` with its label children bound once, so the per-record path
never looks labels up.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, disable_created_metrics
from prometheus_client.metrics import MetricWrapperBase

from esm.core.inflight import InFlightBytes

# `*_created` series double the scrape size and say nothing an operator needs.
disable_created_metrics()

LABELS = ("mapping", "source")
MAPPING_STATES = ("Creating", "Enabling", "Enabled", "Disabling", "Disabled", "Updating", "Deleting")

# behaviour §6 metric -> (prometheus name, help). Counters get `_total` appended by the client.
EVENT_COUNTS = {
    "polled": ("esm_polled_events", "PolledEventCount: events read successfully from the source"),
    "filtered_out": ("esm_filtered_out_events", "FilteredOutEventCount: events removed by filter criteria"),
    "invoked": ("esm_invoked_events", "InvokedEventCount: events that invoked the function, again on retries"),
    "failed_invoke": ("esm_failed_invoke_events",
                      "FailedInvokeEventCount: events whose invoke failed, including reported batch item failures"),
    "dropped": ("esm_dropped_events",
                "DroppedEventCount: events dropped for MaximumRecordAgeInSeconds or MaximumRetryAttempts "
                "without an on-failure destination"),
    "destination_delivered": ("esm_on_failure_destination_delivered_events",
                              "OnFailureDestinationDeliveredEventCount: events sent to the on-failure destination"),
    "deleted": ("esm_deleted_events", "DeletedEventCount: SQS messages deleted after processing"),
    "committed": ("esm_committed_events", "CommittedEventCount: sum of committed Kafka offset deltas"),
}
ERROR_COUNTS = {
    "polling_errors": ("esm_polling_errors", "PollingErrorCount: errors reading from the source"),
    "invoke_errors": ("esm_invoke_errors", "InvokeErrorCount: failed invokes (per batch)"),
    "destination_errors": ("esm_on_failure_destination_delivery_errors",
                           "OnFailureDestinationDeliveryErrorCount: failed deliveries to the on-failure destination"),
    "schema_registry_errors": ("esm_schema_registry_errors", "SchemaRegistryErrorCount: schema registry failures"),
    "commit_errors": ("esm_commit_errors", "CommitErrorCount: failed checkpoints, commits or deletes"),
    "malformed_records": ("esm_malformed_records", "Records that could not be decoded (kept, never dropped silently)"),
}


class Metrics:
    """The registry and every metric family esm exports."""

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.counters = {
            key: Counter(name, help_text, LABELS, registry=r)
            for key, (name, help_text) in {**EVENT_COUNTS, **ERROR_COUNTS}.items()
        }
        self.max_offset_lag = Gauge("esm_max_offset_lag", "MaxOffsetLag: largest (latest - committed) over partitions", LABELS, registry=r)
        self.sum_offset_lag = Gauge("esm_sum_offset_lag", "SumOffsetLag: sum of (latest - committed) over partitions", LABELS, registry=r)
        self.offset_lag = Gauge("esm_offset_lag", "OffsetLag: latest offset - committed offset, per partition",
                                LABELS + ("topic", "partition"), registry=r)
        self.iterator_age = Gauge("esm_iterator_age_milliseconds",
                                  "IteratorAge: ms from stream arrival of the last record in a batch to its invoke",
                                  LABELS + ("shard",), registry=r)
        self.invoke_throttles = Counter(
            "esm_invoke_throttles", "Invokes the function refused or could not take (429/503, TooManyRequests, "
            "unreachable): also counted in esm_invoke_errors_total", LABELS, registry=r)
        self.oldest_record_age = Gauge(
            "esm_oldest_record_age_seconds",
            "Age of the oldest record waiting, as last seen: SQS, the oldest message of the last receive that "
            "brought any (SentTimestamp); streams and Kafka, the largest IteratorAge over the mapping's units",
            LABELS, registry=r)
        self.provisioned_pollers = Gauge("esm_provisioned_pollers", "ProvisionedPollers: active pollers", LABELS, registry=r)
        self.event_poller_units = Gauge("esm_event_poller_units", "EventPollerUnit: poller units in use", LABELS, registry=r)
        # Kafka poller groups (PollerGroupName): the group's pollers and the event poller units they share.
        self.poller_group_pollers = Gauge("esm_poller_group_pollers",
                                          "Pollers held by the mappings of a Kafka poller group (PollerGroupName)",
                                          ("group",), registry=r)
        self.poller_group_units = Gauge("esm_poller_group_event_poller_units",
                                        "Event poller units a Kafka poller group's pollers share (10 pollers a unit)",
                                        ("group",), registry=r)
        self.poller_throughput = Counter("esm_event_poller_throughput_bytes",
                                         "EventPollerThroughputInBytes: bytes polled", LABELS, registry=r)
        self.destination_delivery_failures = Counter(
            "esm_destination_delivery_failures", "DestinationDeliveryFailures: per function", ("function",), registry=r)
        self.invoke_duration = Histogram(
            "esm_invoke_duration_seconds", "Time from sending a batch to the function to its answer",
            LABELS + ("outcome",), registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900))
        self.batch_size = Histogram(
            "esm_batch_size_records", "Records per invoked batch", LABELS, registry=r,
            buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000))
        self.in_flight_bytes = Gauge("esm_in_flight_bytes",
                                     "Bytes of records a mapping holds between reading and finishing them "
                                     "(capped by esm: max_in_flight_bytes)", LABELS, registry=r)
        self.in_flight_peak = Gauge("esm_in_flight_bytes_peak", "The most bytes esm_in_flight_bytes has held",
                                    LABELS, registry=r)
        self.in_flight_waits = Counter("esm_in_flight_waits", "Reads that waited for room under max_in_flight_bytes",
                                       LABELS, registry=r)
        # The process itself: resident memory, open file descriptors, CPU (process_* series), the loop.
        ProcessCollector(registry=r)
        self.loop_lag = Gauge("esm_event_loop_lag_seconds", "How late the event loop last woke a 0.5 s sleep",
                              registry=r)
        self.tasks = Gauge("esm_asyncio_tasks", "asyncio tasks alive in the daemon", registry=r)
        self.state = Gauge("esm_mapping_state", "1 for the mapping's current state (behaviour §0), 0 for the others",
                           LABELS + ("state",), registry=r)
        self.stopped = Gauge("esm_mapping_stopped", "1 when the mapping stopped on an error no retry mends; "
                             "`reason` is Lambda's StateTransitionReason code (behaviour §9.11)",
                             LABELS + ("reason",), registry=r)
        self.api_requests = Counter("esm_api_requests", "Control API requests (esm.api) by operation and HTTP status",
                                    ("operation", "status"), registry=r)
        self.config_warnings = Gauge(
            "esm_config_warnings", "1 for each safety check a mapping's settings fail (esm.safety: the "
            "check names AWS's advice and the fix in esm's warning log)", ("mapping", "check"), registry=r)
        self.info = Gauge("esm_mapping_info", "Always 1: a mapping's name, function and source id",
                          ("mapping", "source", "name", "function", "source_id"), registry=r)

    def forget_mapping(self, labels: tuple[str, str]) -> None:
        """Remove every series of the mapping with these (mapping, source) labels, in every family
        whose labels start with them (a mapping deleted through the control API leaves none behind)."""
        families = [*self.counters.values(), *(v for v in vars(self).values() if isinstance(v, MetricWrapperBase))]
        for family in families:
            # prometheus_client lists a family's children only through these (stable) attributes.
            if tuple(family._labelnames[:2]) != LABELS:  # noqa: SLF001
                continue
            with family._lock:  # noqa: SLF001
                keys = [key for key in family._metrics if key[:2] == labels]  # noqa: SLF001
            for key in keys:
                with contextlib.suppress(KeyError):
                    family.remove(*key)

    def for_mapping(self, uuid: str, source: str) -> "MappingMetrics":
        labels = (uuid, source)
        children = {key: counter.labels(*labels) for key, counter in self.counters.items()}
        # Touch every counter so a scrape shows 0 rather than nothing (behaviour §6: "empty poll emits 0").
        for child in children.values():
            child.inc(0)
        throttles = self.invoke_throttles.labels(*labels)
        throttles.inc(0)
        return MappingMetrics(metrics=self, labels=labels, **children, invoke_throttles=throttles)


@dataclass
class MappingMetrics:
    metrics: Metrics
    labels: tuple[str, str]
    polled: Counter
    filtered_out: Counter
    invoked: Counter
    failed_invoke: Counter
    dropped: Counter
    destination_delivered: Counter
    deleted: Counter
    committed: Counter
    polling_errors: Counter
    invoke_errors: Counter
    destination_errors: Counter
    schema_registry_errors: Counter
    commit_errors: Counter
    malformed_records: Counter
    # The outcome kind (esm.core.outcomes) of the last invoke: the control API's LastProcessingResult.
    last_outcome: str | None = None
    invoke_throttles: Counter | None = None
    # Each unit's latest record age (seconds): esm_oldest_record_age_seconds is their largest.
    record_ages: dict[str, float] = field(default_factory=dict)

    def set_state(self, state: str) -> None:
        for name in MAPPING_STATES:
            self.metrics.state.labels(*self.labels, name).set(1 if name == state else 0)

    # Labelled children looked up once: `labels()` costs more than the observation, once per invoke.
    _children: dict[Any, Any] = field(default_factory=dict)

    def _child(self, family: Any, *extra: str) -> Any:
        key = (id(family), extra)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*self.labels, *extra)
        return child

    def observe_invoke(self, seconds: float, outcome: str, records: int) -> None:
        self.last_outcome = outcome
        self._child(self.metrics.invoke_duration, outcome).observe(seconds)
        self._child(self.metrics.batch_size).observe(records)

    def in_flight(self, limit: int) -> InFlightBytes:
        """The mapping's in-flight bytes cap, reporting to its gauges."""
        waits = self.metrics.in_flight_waits.labels(*self.labels)
        waits.inc(0)
        return InFlightBytes(limit, gauge=self.metrics.in_flight_bytes.labels(*self.labels),
                             peak_gauge=self.metrics.in_flight_peak.labels(*self.labels), waits=waits)

    def iterator_age(self, shard: str, milliseconds: float) -> None:
        self.metrics.iterator_age.labels(*self.labels, shard).set(milliseconds)

    def record_age(self, unit: str, seconds: float) -> None:
        self.record_ages[unit] = seconds
        self._child(self.metrics.oldest_record_age).set(max(self.record_ages.values()))

    def offset_lag(self, topic: str, partition: int, lag: int) -> None:
        self.metrics.offset_lag.labels(*self.labels, topic, str(partition)).set(lag)
