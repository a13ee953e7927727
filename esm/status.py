"""`esm status`: a running daemon's /metrics read into a readable table, one row per mapping."""

from __future__ import annotations

import sys
import urllib.error
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

COLUMNS = (
    ("state", "esm_mapping_state"),
    ("polled", "esm_polled_events"),
    ("filtered", "esm_filtered_out_events"),
    ("invoked", "esm_invoked_events"),
    ("failed", "esm_failed_invoke_events"),
    ("deleted", "esm_deleted_events"),
    ("committed", "esm_committed_events"),
    ("dead-lettered", "esm_on_failure_destination_delivered_events"),
    ("dropped", "esm_dropped_events"),
)


def read_rows(text: str) -> dict[tuple[str, str], dict[str, str]]:
    rows: dict[tuple[str, str], dict[str, str]] = {}
    names: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if "mapping" not in labels:
                continue
            key = (labels["mapping"], labels.get("source", ""))
            row = rows.setdefault(key, {})
            if family.name == "esm_mapping_info":
                names[labels["mapping"]] = labels.get("name", "")
            elif family.name == "esm_mapping_state":
                if sample.value == 1:
                    row["state"] = labels["state"]
            else:
                for column, metric in COLUMNS:
                    if family.name == metric and sample.name.endswith("_total"):
                        row[column] = str(int(float(row.get(column, 0)) + sample.value))
    for (mapping, _), row in rows.items():
        row["name"] = names.get(mapping, mapping)
    return rows


def print_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError) as error:
        print(f"esm status: cannot read {url}: {error}", file=sys.stderr)
        return 1
    rows = read_rows(text)
    header = ["mapping", "source"] + [c for c, _ in COLUMNS]
    table = [header] + [[row.get("name", m), s] + [row.get(c, "0" if c != "state" else "?") for c, _ in COLUMNS]
                        for (m, s), row in sorted(rows.items())]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    for r in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(r, widths)))
    if not rows:
        print("(no mappings reported yet)")
    return 0
