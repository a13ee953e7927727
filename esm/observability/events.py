"""Named events: each thing worth telling an operator is one call that logs it and counts it together.

docs/design.md ("every metric is a named event"): a source or the engine says what happened
(`events.polling_failed("ReceiveMessage", error)`), never which Prometheus family and label tuple
it lands in. `Events` binds one mapping's `MappingMetrics` to a logger adapter (the mapping's, or
a unit's via `for_log`); each method bumps its behaviour §6 metric and writes one log line at the
event's level, carrying the adapter's context plus `event=<name>` so a log search and a metric
agree. Readings (gauges: pollers, lag, iterator age) are set here too, without a log line, so no
caller touches `metrics.metrics.<family>.labels(*labels)`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, replace
from typing import Any

from esm.observability.metrics import MappingMetrics

# Kafka: one event poller unit serves up to this many pollers (as AWS bills provisioned mode).
POLLERS_PER_UNIT = 10


@dataclass(frozen=True)
class Events:
    """One mapping's named events, logged through `log` (its context fields travel with each line)."""

    metrics: MappingMetrics
    log: logging.LoggerAdapter

    def for_log(self, log: logging.LoggerAdapter) -> Events:
        """The same mapping's events, logged with another adapter (a unit's: mapping + unit)."""
        return replace(self, log=log)

    def _emit(self, level: int, event: str, message: str, *args: Any) -> None:
        # Through the adapter's logger with its extra merged by hand: LoggerAdapter.process would
        # replace our `event` field with the adapter's context (Python < 3.13).
        logger = self.log.logger
        if logger.isEnabledFor(level):
            logger.log(level, message, *args, extra={**(self.log.extra or {}), "event": event})

    # -- reading the source --------------------------------------------------------------------
    def records_polled(self, count: int, size: int = 0) -> None:
        """Records read from the source (PolledEventCount) and their bytes (EventPollerThroughputInBytes)."""
        self.metrics.polled.inc(count)
        if size:
            self.metrics.metrics.poller_throughput.labels(*self.metrics.labels).inc(size)
        self._emit(logging.DEBUG, "RecordsPolled", "polled %d record(s), %d bytes", count, size)

    def records_filtered(self, count: int) -> None:
        """Records removed by FilterCriteria (FilteredOutEventCount): settled without an invoke."""
        if count:
            self.metrics.filtered_out.inc(count)
            self._emit(logging.DEBUG, "RecordsFiltered", "%d record(s) filtered out", count)

    def polling_failed(self, what: str, error: object, retry_in: float | None = None) -> None:
        """A read from the source failed (PollingErrorCount); `what` names the call or the unit."""
        self.metrics.polling_errors.inc()
        if retry_in is None:
            self._emit(logging.WARNING, "PollingFailed", "polling %s failed: %s", what, error)
        else:
            self._emit(logging.WARNING, "PollingFailed", "polling %s failed: %s; retrying in %.1fs",
                       what, error, retry_in)

    def record_malformed(self, where: str, error: object) -> None:
        """A record that could not be decoded: kept and passed on as it is, never dropped silently."""
        self.metrics.malformed_records.inc()
        self._emit(logging.WARNING, "RecordMalformed", "record at %s could not be decoded: %s", where, error)

    def schema_registry_failed(self, registry: str, error: object) -> None:
        """The schema registry could not answer (SchemaRegistryErrorCount)."""
        self.metrics.schema_registry_errors.inc()
        self._emit(logging.WARNING, "SchemaRegistryFailed", "schema registry %s failed: %s", registry, error)

    # -- invoking the function -----------------------------------------------------------------
    def batch_invoked(self, count: int, seconds: float, outcome: str) -> None:
        """A batch reached the function (InvokedEventCount, the invoke duration and batch size)."""
        self.metrics.invoked.inc(count)
        self.metrics.observe_invoke(seconds, outcome, count)
        self._emit(logging.DEBUG, "BatchInvoked", "invoked with %d record(s) in %.3fs: %s", count, seconds, outcome)

    def invoke_throttled(self, count: int, reason: object, retry_in: float | None) -> None:
        """The function could not be invoked (throttled, unavailable): InvokeErrorCount; retried (never
        counted as a retry), or with `retry_in` None given back to the source (their time ran out)."""
        self.metrics.invoke_errors.inc()
        if self.metrics.invoke_throttles is not None:
            self.metrics.invoke_throttles.inc()
        if retry_in is None:
            self._emit(logging.WARNING, "InvokeThrottled", "function unavailable (%s); %d record(s) return to the "
                       "source", reason, count)
        else:
            self._emit(logging.INFO, "InvokeThrottled", "function unavailable (%s) for %d record(s); retrying in "
                       "%.2fs", reason, count, retry_in)

    def invoke_failed(self, count: int, error: object) -> None:
        """The whole batch failed (InvokeErrorCount once, FailedInvokeEventCount per record)."""
        self.metrics.invoke_errors.inc()
        self.metrics.failed_invoke.inc(count)
        self._emit(logging.WARNING, "InvokeFailed", "invoke with %d record(s) failed: %s", count, error)

    def items_failed(self, count: int) -> None:
        """The function reported these records failed (batchItemFailures): FailedInvokeEventCount."""
        if count:
            self.metrics.failed_invoke.inc(count)
            self._emit(logging.INFO, "ItemsFailed", "the function reported %d record(s) failed", count)

    # -- settling ------------------------------------------------------------------------------
    def records_deleted(self, count: int) -> None:
        """SQS messages deleted after processing (DeletedEventCount)."""
        self.metrics.deleted.inc(count)
        self._emit(logging.DEBUG, "RecordsDeleted", "deleted %d message(s)", count)

    def offsets_committed(self, where: str, delta: int) -> None:
        """A Kafka commit moved the group's offset forward by `delta` (CommittedEventCount)."""
        self.metrics.committed.inc(max(0, delta))
        self._emit(logging.DEBUG, "OffsetsCommitted", "committed %s (+%d)", where, max(0, delta))

    def commit_failed(self, where: str, error: object, count: int = 1) -> None:
        """A checkpoint, commit or delete did not land (CommitErrorCount, `count` entries)."""
        self.metrics.commit_errors.inc(count)
        self._emit(logging.WARNING, "CommitFailed", "commit of %s failed: %s", where, error)

    # -- records that cannot be processed ------------------------------------------------------
    def records_dropped(self, count: int, condition: str, where: str) -> None:
        """Records given up without an on-failure destination (DroppedEventCount): an error, they are gone."""
        self.metrics.dropped.inc(count)
        self._emit(logging.ERROR, "RecordsDropped", "%s: dropped %d record(s) at %s (no on-failure destination)",
                   condition, count, where)

    def destination_delivered(self, count: int, condition: str, where: str, destination: str) -> None:
        """Records sent to the on-failure destination (OnFailureDestinationDeliveredEventCount)."""
        self.metrics.destination_delivered.inc(count)
        self._emit(logging.WARNING, "DestinationDelivered", "%s: %d record(s) at %s sent to %s",
                   condition, count, where, destination)

    def destination_delivery_failed(self, destination: str, function: str, error: object) -> None:
        """A delivery to the on-failure destination failed: counted per mapping
        (OnFailureDestinationDeliveryErrorCount) and per function (DestinationDeliveryFailures)."""
        self.metrics.destination_errors.inc()
        self.metrics.metrics.destination_delivery_failures.labels(function).inc()
        self._emit(logging.WARNING, "DestinationDeliveryFailed", "delivery to %s failed: %s", destination, error)

    # -- readings (gauges: no log line) --------------------------------------------------------
    def pollers(self, pollers: int, *, units: bool = False, share: float | None = None) -> None:
        """Active pollers (ProvisionedPollers); `units` also sets EventPollerUnit (Kafka) to the
        pollers' own units, `share` to a part of units a poller group shares (behaviour §7)."""
        self.metrics.metrics.provisioned_pollers.labels(*self.metrics.labels).set(pollers)
        if share is not None:
            self.metrics.metrics.event_poller_units.labels(*self.metrics.labels).set(share)
        elif units:
            self.metrics.metrics.event_poller_units.labels(*self.metrics.labels).set(-(-pollers // POLLERS_PER_UNIT))

    def poller_group(self, group: str, pollers: int, units: int) -> None:
        """A Kafka poller group's pollers and the event poller units they share (behaviour §7)."""
        self.metrics.metrics.poller_group_pollers.labels(group).set(pollers)
        self.metrics.metrics.poller_group_units.labels(group).set(units)

    def iterator_age(self, shard: str, milliseconds: float) -> None:
        """IteratorAge of a shard's last invoked batch (also the mapping's oldest record age)."""
        self.metrics.iterator_age(shard, milliseconds)
        self.metrics.record_age(shard, milliseconds / 1000)

    def oldest_record_age(self, unit: str, seconds: float) -> None:
        """How old the oldest record of `unit` waiting to be processed is (esm_oldest_record_age_seconds,
        the largest over the mapping's units): a source without IteratorAge (SQS, Kafka) reports it."""
        self.metrics.record_age(unit, max(0.0, seconds))

    def partition_lag(self, topic: str, partition: int, lag: int) -> None:
        """OffsetLag of one partition."""
        self.metrics.offset_lag(topic, partition, lag)

    def partition_gone(self, topic: str, partition: int) -> None:
        """A partition left this member: its OffsetLag series goes with it."""
        with contextlib.suppress(KeyError):  # never reported
            self.metrics.metrics.offset_lag.remove(*self.metrics.labels, topic, str(partition))

    def total_lag(self, lags: list[int]) -> None:
        """MaxOffsetLag and SumOffsetLag over this member's partitions."""
        self.metrics.metrics.max_offset_lag.labels(*self.metrics.labels).set(max(lags, default=0))
        self.metrics.metrics.sum_offset_lag.labels(*self.metrics.labels).set(sum(lags))
