"""Named events count their behaviour §6 metric and log one line with the mapping's context, together.

docs/design.md "every metric is a named event": for each event, the metric it names moves by the
amount the event says, under this mapping's labels only, and one log record carries the event's
name, the adapter's context (mapping, unit) and the event's level.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

import pytest

from esm.observability.events import Events
from esm.observability.logs import JsonFormatter
from esm.observability.metrics import Metrics

LABELS = {"mapping": "uuid-1", "source": "kafka"}
OTHER = {"mapping": "uuid-2", "source": "kafka"}


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


def _events(metrics: Metrics) -> Events:
    metrics.for_mapping(OTHER["mapping"], OTHER["source"])  # a neighbour whose series must not move
    log = logging.LoggerAdapter(logging.getLogger("esm.test.events"), {"mapping": "orders"})
    return Events(metrics.for_mapping(LABELS["mapping"], LABELS["source"]), log)


def _value(metrics: Metrics, name: str, labels: dict[str, str]) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# event call -> (event name, log level, {series: expected increase})
CASES: list[tuple[Callable[[Events], Any], str, int, dict[str, float]]] = [
    (lambda e: e.records_polled(3, size=120), "RecordsPolled", logging.DEBUG,
     {"esm_polled_events_total": 3, "esm_event_poller_throughput_bytes_total": 120}),
    (lambda e: e.records_filtered(2), "RecordsFiltered", logging.DEBUG, {"esm_filtered_out_events_total": 2}),
    (lambda e: e.polling_failed("orders-0", OSError("reset"), retry_in=1.5), "PollingFailed", logging.WARNING,
     {"esm_polling_errors_total": 1}),
    (lambda e: e.record_malformed("orders-0@7", ValueError("bad avro")), "RecordMalformed", logging.WARNING,
     {"esm_malformed_records_total": 1}),
    (lambda e: e.schema_registry_failed("http://registry", OSError("down")), "SchemaRegistryFailed",
     logging.WARNING, {"esm_schema_registry_errors_total": 1}),
    (lambda e: e.batch_invoked(4, 0.25, "Success"), "BatchInvoked", logging.DEBUG,
     {"esm_invoked_events_total": 4, "esm_batch_size_records_count": 1, "esm_batch_size_records_sum": 4}),
    (lambda e: e.invoke_failed(5, "timeout"), "InvokeFailed", logging.WARNING,
     {"esm_invoke_errors_total": 1, "esm_failed_invoke_events_total": 5}),
    (lambda e: e.items_failed(2), "ItemsFailed", logging.INFO, {"esm_failed_invoke_events_total": 2}),
    (lambda e: e.records_deleted(6), "RecordsDeleted", logging.DEBUG, {"esm_deleted_events_total": 6}),
    (lambda e: e.offsets_committed("orders-0@10", 4), "OffsetsCommitted", logging.DEBUG,
     {"esm_committed_events_total": 4}),
    (lambda e: e.commit_failed("orders-0@10", "rebalance", count=3), "CommitFailed", logging.WARNING,
     {"esm_commit_errors_total": 3}),
    (lambda e: e.records_dropped(2, "RetryAttemptsExhausted", "orders-0@3..4"), "RecordsDropped", logging.ERROR,
     {"esm_dropped_events_total": 2}),
    (lambda e: e.destination_delivered(2, "RecordAgeExceeded", "orders-0@3..4", "kafka://dlq"),
     "DestinationDelivered", logging.WARNING, {"esm_on_failure_destination_delivered_events_total": 2}),
    (lambda e: e.destination_delivery_failed("arn:aws:sqs:us-east-1:1:dlq", "fn", "throttled"),
     "DestinationDeliveryFailed", logging.WARNING, {"esm_on_failure_destination_delivery_errors_total": 1}),
]


@pytest.mark.parametrize("emit, name, level, increases", CASES, ids=[c[1] for c in CASES])
def test_an_event_counts_its_metric_and_logs_with_context(
    metrics: Metrics, caplog: pytest.LogCaptureFixture, emit: Callable[[Events], Any], name: str, level: int,
    increases: dict[str, float],
) -> None:
    """behaviour §6 metrics: the event's series move by the event's amount for this mapping only, and
    the same call logs once, at the event's level, with the mapping and the event's name."""
    events = _events(metrics)
    before = {series: _value(metrics, series, LABELS) for series in increases}
    others = {series: _value(metrics, series, OTHER) for series in increases}
    caplog.set_level(logging.DEBUG, logger="esm.test.events")

    emit(events)

    assert {s: _value(metrics, s, LABELS) - before[s] for s in increases} == increases
    assert {s: _value(metrics, s, OTHER) for s in increases} == others
    [record] = [r for r in caplog.records if r.name == "esm.test.events"]
    assert (record.levelno, getattr(record, "event", None), getattr(record, "mapping", None)) == (
        level, name, "orders")


def test_a_destination_delivery_failure_is_also_counted_per_function(metrics: Metrics) -> None:
    """behaviour §6 DestinationDeliveryFailures is per function, besides the mapping's error count."""
    _events(metrics).destination_delivery_failed("arn:aws:sqs:us-east-1:1:dlq", "billing", "throttled")
    assert _value(metrics, "esm_destination_delivery_failures_total", {"function": "billing"}) == 1


def test_a_unit_log_adds_its_context_to_the_same_mapping_metrics(
    metrics: Metrics, caplog: pytest.LogCaptureFixture,
) -> None:
    """for_log keeps the mapping's series and logs with the unit's context too (mapping + unit)."""
    events = _events(metrics)
    unit = events.for_log(logging.LoggerAdapter(events.log.logger, {"mapping": "orders", "unit": "orders-3"}))
    caplog.set_level(logging.DEBUG, logger="esm.test.events")
    unit.commit_failed("orders-3@9", "rebalance")
    assert _value(metrics, "esm_commit_errors_total", LABELS) == 1
    [record] = caplog.records
    assert (record.mapping, record.unit, record.event) == ("orders", "orders-3", "CommitFailed")
    assert '"event": "CommitFailed"' in JsonFormatter().format(record)


def test_counting_nothing_logs_nothing(metrics: Metrics, caplog: pytest.LogCaptureFixture) -> None:
    """An empty filter or no reported failures is not an event: no line, no change."""
    events = _events(metrics)
    caplog.set_level(logging.DEBUG, logger="esm.test.events")
    events.records_filtered(0)
    events.items_failed(0)
    assert caplog.records == []
    assert _value(metrics, "esm_filtered_out_events_total", LABELS) == 0


def test_readings_set_gauges_under_the_mapping_labels(metrics: Metrics) -> None:
    """ProvisionedPollers, EventPollerUnit, OffsetLag (per partition, removed with it), Max/SumOffsetLag
    and IteratorAge are set without the caller naming a label tuple."""
    events = _events(metrics)
    events.pollers(11, units=True)
    events.partition_lag("orders", 0, 5)
    events.partition_lag("orders", 1, 7)
    events.total_lag([5, 7])
    events.iterator_age("shardId-0", 1500.0)
    partition = {**LABELS, "topic": "orders", "partition": "1"}
    assert _value(metrics, "esm_provisioned_pollers", LABELS) == 11
    assert _value(metrics, "esm_event_poller_units", LABELS) == 2
    assert _value(metrics, "esm_offset_lag", partition) == 7
    assert (_value(metrics, "esm_max_offset_lag", LABELS), _value(metrics, "esm_sum_offset_lag", LABELS)) == (7, 12)
    assert _value(metrics, "esm_iterator_age_milliseconds", {**LABELS, "shard": "shardId-0"}) == 1500
    events.partition_gone("orders", 1)
    events.partition_gone("orders", 9)  # never reported: nothing to remove, no error
    assert metrics.registry.get_sample_value("esm_offset_lag", partition) is None
