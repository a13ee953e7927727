"""`esm status`: a running daemon's /metrics and /readyz read into a table, one row per mapping.

The URL is the daemon's metrics endpoint (`http://127.0.0.1:9090/metrics`, the default) or just its
base (`http://host:9090`). The table shows each mapping by name with its source, state, readiness
and function, the behaviour §6 record counts, the errors, and how far behind it is (Kinesis and DynamoDB iterator age,
Kafka offset lag). A cell is `-` where the metric does not exist for that source (behaviour §6's table),
so a `0` always means "counted, none". Mappings with errors get a line each under the table,
and so does every readiness check that is failing, with its reason, and every mapping its source
stopped (Lambda's StateTransitionReason code, then what the source saw: behaviour §9.11).
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

from esm import registry
from esm.descriptor import StatusColumns

# Counter families (without `_total`), by the short key the table uses.
COUNTERS = {
    "polled": "esm_polled_events",
    "filtered": "esm_filtered_out_events",
    "invoked": "esm_invoked_events",
    "failed": "esm_failed_invoke_events",
    "deleted": "esm_deleted_events",
    "committed": "esm_committed_events",
    "on_failure": "esm_on_failure_destination_delivered_events",
    "dropped": "esm_dropped_events",
}
# The ErrorCount group plus undecodable records, in the words the detail lines use.
ERRORS = {
    "esm_polling_errors": "polling",
    "esm_invoke_errors": "invoke",
    "esm_on_failure_destination_delivery_errors": "on-failure delivery",
    "esm_schema_registry_errors": "schema registry",
    "esm_commit_errors": "commit/delete",
    "esm_malformed_records": "malformed records",
}
# The counts only some sources have (behaviour §6): a source's descriptor says which are its own;
# the others print as `-`.
PER_SOURCE = frozenset({"deleted", "committed", "on_failure", "dropped"})

HEADER = ("MAPPING", "SOURCE", "STATE", "READY", "FUNCTION", "POLLED", "FILTERED", "INVOKED", "FAILED",
          "ACKED", "ON-FAILURE", "DROPPED", "ERRORS", "LAG")
NUMERIC_FROM = HEADER.index("POLLED")


@dataclass
class MappingRow:
    uuid: str
    source: str = ""
    name: str = ""
    function: str = ""
    state: str = "?"
    counts: dict[str, float] = field(default_factory=dict)
    errors: dict[str, float] = field(default_factory=dict)
    iterator_age_ms: float | None = None
    offset_lag: float | None = None
    stopped: str | None = None  # the StateTransitionReason code of a mapping its source stopped

    @property
    def columns(self) -> StatusColumns:
        """The source's status columns; a source this esm does not know has none of its own."""
        descriptor = registry.find_descriptor(self.source)
        return StatusColumns() if descriptor is None else descriptor.status

    def count(self, key: str) -> str:
        if key in PER_SOURCE and key not in self.columns.counts:
            return "-"
        return f"{int(self.counts.get(key, 0)):,}"

    @property
    def acked(self) -> str:
        """Records acknowledged at the source: SQS deletes, Kafka commits (stream checkpoints are not counted)."""
        key = self.columns.acked
        return "-" if key is None else self.count(key)

    @property
    def lag(self) -> str:
        """How far behind: milliseconds for shard streams (iterator age), records for Kafka (offset lag)."""
        lag = self.columns.lag
        if lag == "iterator_age":
            return "-" if self.iterator_age_ms is None else _duration(self.iterator_age_ms)
        if lag == "offset_lag":
            return "-" if self.offset_lag is None else f"{int(self.offset_lag):,}"
        return "-"


def read_rows(text: str) -> list[MappingRow]:
    """Prometheus text from esm's /metrics -> one row per mapping, ordered by name."""
    rows: dict[str, MappingRow] = {}

    def row(labels: dict[str, str]) -> MappingRow:
        found = rows.setdefault(labels["mapping"], MappingRow(uuid=labels["mapping"]))
        found.source = found.source or labels.get("source", "")
        return found

    counter_keys = {family: key for key, family in COUNTERS.items()}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if "mapping" not in labels:
                continue
            if family.name == "esm_mapping_info":
                r = row(labels)
                r.name, r.function = labels.get("name", ""), labels.get("function", "")
            elif family.name == "esm_mapping_state":
                if sample.value == 1:
                    row(labels).state = labels.get("state", "?")
            elif family.name in counter_keys and sample.name.endswith("_total"):
                r = row(labels)
                key = counter_keys[family.name]
                r.counts[key] = r.counts.get(key, 0) + sample.value
            elif family.name in ERRORS and sample.name.endswith("_total"):
                r = row(labels)
                r.errors[family.name] = r.errors.get(family.name, 0) + sample.value
            elif family.name == "esm_mapping_stopped":
                if sample.value == 1:
                    row(labels).stopped = labels.get("reason", "?")
            elif family.name == "esm_iterator_age_milliseconds":
                r = row(labels)
                r.iterator_age_ms = max(r.iterator_age_ms or 0.0, sample.value)
            elif family.name == "esm_max_offset_lag":
                r = row(labels)
                r.offset_lag = max(r.offset_lag or 0.0, sample.value)
    for r in rows.values():
        r.name = r.name or r.uuid
    return sorted(rows.values(), key=lambda r: (r.name, r.uuid))


def readiness_by_mapping(report: dict[str, object] | None) -> dict[str, list[str]]:
    """/readyz's checks (`<mapping name>/source`, `<mapping name>/target`, `startup`) -> what is
    failing, keyed by mapping name (or by the check's own name)."""
    failing: dict[str, list[str]] = {}
    checks = report.get("checks") if isinstance(report, dict) else None
    if not isinstance(checks, dict):
        return failing
    for check, result in checks.items():
        name, _, part = str(check).rpartition("/")
        problems = failing.setdefault(name or part, [])
        if isinstance(result, dict) and not result.get("ready"):
            detail = str(result.get("detail") or "not ready")
            problems.append(f"{part}: {detail}" if name else detail)
    return failing


def render(rows: list[MappingRow], readiness: dict[str, object] | None) -> str:
    checks = readiness_by_mapping(readiness)
    table = [list(HEADER)]
    for r in rows:
        if readiness is None:
            ready = "?"
        elif r.state == "Disabled":
            ready = "-"
        else:
            ready = "no" if checks.get(r.name) else "yes"
        errors = sum(r.errors.values())
        table.append([r.name, r.source, r.state, ready, r.function or "?",
                      r.count("polled"), r.count("filtered"), r.count("invoked"), r.count("failed"),
                      r.acked, r.count("on_failure"), r.count("dropped"), f"{int(errors):,}", r.lag])
    widths = [max(len(line[i]) for line in table) for i in range(len(HEADER))]
    lines = []
    for line in table:
        cells = [cell.rjust(w) if i >= NUMERIC_FROM else cell.ljust(w)
                 for i, (cell, w) in enumerate(zip(line, widths))]
        lines.append("  ".join(cells).rstrip())
    if not rows:
        lines.append("(no mappings reported yet)")
    for r in rows:
        detail = [f"{int(v):,} {ERRORS[k]}" for k, v in r.errors.items() if v]
        if detail:
            lines.append(f"errors   {r.name}: " + ", ".join(detail))
    for r in rows:
        if r.stopped:
            lines.append(f"stopped  {r.name}: {_stopped_detail(readiness, r.name) or r.stopped}")
    for name, problems in sorted(checks.items()):
        for problem in problems:
            lines.append(f"waiting  {name}: {problem}")
    return "\n".join(lines)


def _stopped_detail(report: dict[str, object] | None, name: str) -> str | None:
    """What /readyz says of a stopped mapping's source (`stopped: CODE: detail`), without `stopped: `."""
    checks = report.get("checks") if isinstance(report, dict) else None
    check = checks.get(f"{name}/source") if isinstance(checks, dict) else None
    detail = str(check.get("detail") or "") if isinstance(check, dict) else ""
    return detail.removeprefix("stopped: ") if detail.startswith("stopped: ") else None


def metrics_url(url: str) -> str:
    """A base URL (no path) means its /metrics."""
    parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
    if parts.path in ("", "/"):
        parts = parts._replace(path="/metrics")
    return urllib.parse.urlunsplit(parts)


def _readyz_url(metrics: str) -> str:
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(metrics)._replace(path="/readyz", query=""))


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:  # /readyz answers 503 with its report while not ready
        return error.code, error.read().decode()


def _readiness(url: str) -> dict[str, object] | None:
    try:
        status, body = _get(url)
        report = json.loads(body)
    except (urllib.error.URLError, OSError, ValueError):
        return None
    return report if status in (200, 503) and isinstance(report, dict) else None


def _duration(milliseconds: float) -> str:
    if milliseconds < 1000:
        return f"{milliseconds:.0f}ms"
    if milliseconds < 120_000:
        return f"{milliseconds / 1000:.1f}s"
    if milliseconds < 7_200_000:
        return f"{milliseconds / 60_000:.0f}m"
    return f"{milliseconds / 3_600_000:.1f}h"


def print_status(url: str) -> int:
    url = metrics_url(url)
    try:
        status, text = _get(url)
        if status != 200:
            raise OSError(f"HTTP {status}")
        rows = read_rows(text)
    except (urllib.error.URLError, OSError) as error:
        print(f"esm status: cannot read {url}: {error}", file=sys.stderr)
        return 1
    except ValueError as error:  # not Prometheus text
        print(f"esm status: {url} did not answer with Prometheus metrics: {error}", file=sys.stderr)
        return 1
    readiness = _readiness(_readyz_url(url))
    if readiness is None:
        summary = "readiness unknown (no /readyz)"
    elif readiness.get("ready"):
        summary = "ready"
    else:
        summary = "not ready"
    print(f"esm at {url}: {len(rows)} mapping(s), {summary}")
    print(render(rows, readiness))
    return 0
