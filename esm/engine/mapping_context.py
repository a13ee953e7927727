"""`MappingContext`: what every unit and lane of one mapping shares (settings, filters, the invoke
path, dead letters, the in-flight cap).

Built once per mapping from its PipelineSettings and its source's RecordFormat, so no source or
lane reads a setting, compiles a filter or builds a destination of its own. It is typed by the
format it holds: a stream mapping's is a StreamRecordFormat (lanes, pre-failures, on-failure
documents), a queue mapping's a QueueRecordFormat; only a stream gives records up, so only a
stream mapping's has dead letters.
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Generic, Hashable, TypeVar

from esm.config.pipeline import PipelineSettings
from esm.core.decide import FailureRules, Mode
from esm.engine.dead_letter import DeadLetters
from esm.engine.invoke import InvokePath
from esm.filtering import compile_filters
from esm.invokers.base import Invoker
from esm.observability.events import Events
from esm.observability.metrics import MappingMetrics
from esm.core.records import Record
from esm.core.contract import RecordFormat

F = TypeVar("F", bound=RecordFormat)


class MappingContext(Generic[F]):
    def __init__(self, *, settings: PipelineSettings, format: F, invoker: Invoker, destination: Any,
                 metrics: MappingMetrics, function_name: str, log: logging.LoggerAdapter, mode: Mode = Mode.STREAM,
                 group_of: Callable[[Record], Hashable] | None = None,
                 on_throttle: Callable[[], None] | None = None, slots: Any = None):
        self.settings = settings
        self.format = format
        self.invoker = invoker
        self.metrics = metrics
        self.log = log
        self.events = Events(metrics, log)
        self.matcher = compile_filters(list(settings.filters))
        self.rules = FailureRules(mode=mode, max_retries=settings.max_retries, max_age=settings.max_age,
                                  bisect=settings.bisect, report_item_failures=settings.report_item_failures,
                                  group_of=group_of)
        self.invoke_path = InvokePath(events=self.events, log=log, report_item_failures=settings.report_item_failures,
                                      read_identifier=format.read_identifier, on_throttle=on_throttle)
        # Only a stream gives records up (behaviour §4): a queue's failures go back to the queue. A
        # stream mapping's format is a StreamRecordFormat, which the mode cannot tell the type checker.
        self.dead_letters = DeadLetters(
            destination=destination, format=format, events=self.events,  # type: ignore[arg-type]
            function_name=function_name) if mode is Mode.STREAM else None
        self.in_flight = metrics.in_flight(settings.max_in_flight_bytes)
        # The source's in-flight limiter, if it sizes one (Kafka's provisioned pollers, behaviour §7):
        # every batch passes `async with slots` before its invoke.
        self.slots = slots

    def keep(self, records: list[Record]) -> tuple[list[Record], list[Record]]:
        """(kept, filtered out) by the mapping's filters (behaviour §5), counted."""
        self.events.records_polled(len(records))
        if self.matcher.is_match_all:
            return records, []
        kept: list[Record] = []
        dropped: list[Record] = []
        keep = self.format.keep
        for record in records:
            (kept if keep(self.matcher, record) else dropped).append(record)
        self.events.records_filtered(len(dropped))
        return kept, dropped
