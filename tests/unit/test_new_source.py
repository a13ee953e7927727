"""A new source is its own package plus one registry line (docs/design.md "Layout", issue 20).

The proof: a throwaway source, `tiny`, written into a package of its own in the test's temporary
folder (its descriptor, its config rules, its source class on the queue contract) and one entry
added to `esm.registry.SOURCES`. Nothing else of esm changes, yet config validation (its ARNs, its
rules and defaults, its filter rule, its name in messages), `esm status` and the daemon (whose
queue runner gathers, filters, invokes and settles its records) all accept it.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import MappingProxyType

import pytest
from prometheus_client import generate_latest

from esm import registry
from esm.config.loading import parse_config
from esm.errors import ConfigError
from esm.observability.metrics import Metrics
from esm.observability.status import read_rows, render
from tests.support import recorder as rec
from tests.support.daemon import running_config

PACKAGE = {
    "__init__.py": '"""A throwaway event source: one package and one registry line."""\n',
    "descriptor.py": '''
        from esm.descriptor import JSON, DataField, SourceDescriptor, StatusColumns

        DESCRIPTOR = SourceDescriptor(
            kind="tiny",
            title="Tiny",
            source_class="tiny_source.source:TinySource",
            rules="tiny_source.rules:check",
            data=DataField(key="payload", encoding=JSON, json_patterns_only=True),
            arn_services=("tiny",),
            status=StatusColumns(counts=frozenset({"deleted"}), acked="deleted"),
        )
    ''',
    "rules.py": '''
        from esm.config.rules import STREAM_ONLY, MappingCheck, not_for

        def check(check: MappingCheck) -> None:
            not_for(check, STREAM_ONLY, "Tiny")
            batch = check.request.setdefault("BatchSize", 3)
            if isinstance(batch, int) and batch > 3:
                check.fail("BatchSize", f"must be at most 3 for Tiny event sources (got {batch})")
    ''',
    "source.py": '''
        """A FAKE service behind a real queue source: three records held in memory, handed out by
        the queue contract (esm.core.contract.QueueSource), so the engine's queue runner gathers,
        filters, invokes and settles them as it does SQS's."""

        import asyncio
        import json
        import time

        from esm.core.decide import Mode
        from esm.core.records import Disposition, Record

        RECORDS = [{"payload": {"n": 1}}, {"payload": {"n": 2}}, {"payload": {"n": 3}}]


        class TinyFormat:
            source_arn = None
            group_of = None

            def __init__(self, arn):
                self.source_arn = arn

            def payload(self, records):
                return json.dumps({"Records": self.events(records)}).encode()

            def events(self, records):
                return [r.event for r in records]

            def read_identifier(self, value):
                return value if isinstance(value, str) and value else None

            def arrival(self, record):
                return time.time()

            def keep(self, matcher, record):
                return matcher.matches(record.event)

            def where(self, unit, records):
                return ",".join(r.item_id for r in records)


        class OnePoller:
            target = 1

            def pollers(self, lanes):
                return lanes

            def polled(self, records): ...

            def poll_empty(self): ...

            def batch_done(self, *, full): ...

            def back_off(self): ...

            def tick(self):
                return self.target


        class TinySource:
            mode = Mode.QUEUE
            default_batch_size = 3
            account = None

            @staticmethod
            def concurrency_ceiling(request):
                return 10

            def __init__(self, mapping, settings, runtime, metrics, identity):
                self.format = TinyFormat(mapping.source_id)
                self.metrics = metrics
                self.waiting = [Record(event=e, item_id=f"r{i}", size=len(json.dumps(e)), arrived_at=time.monotonic(),
                                       token=i) for i, e in enumerate(RECORDS)]

            @property
            def hold_seconds(self):
                return 30.0

            def scaling(self, invoker_cap):
                return OnePoller()

            async def connect(self):
                pass

            async def receive(self, count, wait, in_flight, stopping):
                if not self.waiting:
                    await asyncio.sleep(min(wait or 1.0, 1.0))
                    return []
                taken, self.waiting = self.waiting[:count], self.waiting[count:]
                return taken

            async def settle(self, tokens):
                done = [t for t, d in tokens if d in (Disposition.SUCCEEDED, Disposition.FILTERED)]
                self.metrics.deleted.inc(len(done))

            async def close(self):
                pass
    ''',
}
ARN = "arn:aws:tiny:us-east-1:000000000000:thing/one"


@pytest.fixture
def tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    package = tmp_path / "tiny_source"
    package.mkdir()
    for name, text in PACKAGE.items():
        (package / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    # The one registry line.
    monkeypatch.setattr(registry, "SOURCES", MappingProxyType({**registry.SOURCES,
                                                               "tiny": "tiny_source.descriptor:DESCRIPTOR"}))
    yield package
    for name in [m for m in sys.modules if m == "tiny_source" or m.startswith("tiny_source.")]:
        del sys.modules[name]


def config(**mapping: object) -> str:
    return textwrap.dedent(f"""
        functions:
          recorder: {{handler: "tests.support.recorder:handle"}}
        event_source_mappings:
          - {{EventSourceArn: "{ARN}", FunctionName: recorder, {", ".join(f"{k}: {v}" for k, v in mapping.items())}}}
        metrics: {{listen: "127.0.0.1:0"}}
    """)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, base_dir=".")
    return [str(p) for p in caught.value.problems]


def test_config_validation_takes_the_new_sources_arns_rules_and_defaults(tiny: Path) -> None:
    """Its ARN names it, its rules fill its defaults and refuse what it refuses, and the shared
    rules (here: a JSON-only data field for filters) come from its descriptor."""
    [mapping] = parse_config(config(), base_dir=".").mappings
    assert (mapping.source, mapping.source_id, mapping.get("BatchSize")) == ("tiny", ARN, 3)
    assert problems(config(BatchSize=4, ParallelizationFactor=2)) == [
        "event_source_mappings[0].ParallelizationFactor: is not supported for Tiny event sources",
        "event_source_mappings[0].BatchSize: must be at most 3 for Tiny event sources (got 4)",
    ]
    assert problems(config(FilterCriteria='{Filters: [{Pattern: \'{"payload": ["x"]}\'}]}')) == [
        "event_source_mappings[0].FilterCriteria.Filters[0].Pattern: Invalid filter pattern definition. "
        '("payload" must be filtered with a JSON object pattern for tiny records)'
    ]
    other = config().replace(ARN, "arn:aws:ec2:us-east-1:000000000000:instance/i-1")
    assert problems(other) == ["event_source_mappings[0].EventSourceArn: 'ec2' is not an event source; "
                               "esm serves SQS, Kinesis, DynamoDB Streams, Kafka, Amazon MQ for RabbitMQ and Tiny"]


def test_status_shows_the_new_sources_columns(tiny: Path) -> None:
    """`esm status` reads the source's columns from its descriptor: ACKED is its deleted count,
    and the counts it does not have print `-`."""
    metrics = Metrics()
    metrics.for_mapping("u1", "tiny").deleted.inc(7)
    text = generate_latest(metrics.registry).decode()
    [row] = read_rows(text)
    assert (row.acked, row.count("dropped"), row.count("committed"), row.lag) == ("7", "-", "-", "-")
    assert "tiny" in render([row], None)


async def test_the_daemon_runs_the_new_source(tiny: Path) -> None:
    """The daemon builds the source its descriptor names and runs it on the engine's queue runner:
    the function receives the records its filters kept, and every record is settled."""
    recorder = rec.install(rec.Recorder())
    text = config(FilterCriteria='{Filters: [{Pattern: \'{"payload": {"n": [{"numeric": [">", 1]}]}}\'}]}')
    async with running_config(parse_config(text, base_dir=".")) as daemon:
        await recorder.wait_for(lambda r: len(r.records) >= 2)
        await daemon.wait_total("esm_deleted_events_total", 3)  # the filtered one is settled unseen (behaviour §5)
        await daemon.wait_total("esm_filtered_out_events_total", 1)
    assert recorder.records == [{"payload": {"n": 2}}, {"payload": {"n": 3}}]
