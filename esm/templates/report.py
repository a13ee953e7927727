"""The start-up table of `esm run --template` and the listing of `esm validate --template` (issue 16.4)."""

from __future__ import annotations

from esm.templates.build import LoadedTemplate

COLUMNS = (("MAPPING", "mapping"), ("FUNCTION", "function"), ("SOURCE", "source"), ("SETTINGS", "settings"),
           ("RUNS", "runs"))


def table(loaded: LoadedTemplate) -> str:
    rows = [[header for header, _ in COLUMNS]] + [[str(getattr(row, key)) for _, key in COLUMNS] for row in loaded.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    if loaded.created:
        lines.append("created: " + ", ".join(loaded.created))
    lines.extend(f"warning: {problem}" for problem in loaded.skipped)
    return "\n".join(lines)
