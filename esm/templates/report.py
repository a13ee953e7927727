"""The start-up table of `esm run --template` and the listing of `esm validate --template` (issue 16.4).

`table()` is for people (text logs, `esm validate`); `log()` says the same as one log record per
line, for `--log-format json`, where a table would be the only lines that are not JSON.
"""

from __future__ import annotations

import logging

from esm.templates.build import LoadedTemplate

COLUMNS = (("MAPPING", "mapping"), ("FUNCTION", "function"), ("SOURCE", "source"), ("SETTINGS", "settings"),
           ("RUNS", "runs"))


def table(loaded: LoadedTemplate) -> str:
    rows = [[header for header, _ in COLUMNS]] + [[str(getattr(row, key)) for _, key in COLUMNS] for row in loaded.rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    if loaded.created:
        lines.append("created (or already there): " + ", ".join(loaded.created))
    lines.extend(f"warning: {problem}" for problem in loaded.skipped)
    return "\n".join(lines)


def log(loaded: LoadedTemplate, logger: logging.Logger) -> None:
    for row in loaded.rows:
        logger.info("template mapping %s: %s (%s) runs %s", row.mapping, row.source, row.settings, row.runs,
                    extra={"mapping": row.mapping, "function": row.function, "source": row.source})
    if loaded.created:
        logger.info("created (or already there): %s", ", ".join(loaded.created))
    for problem in loaded.skipped:
        logger.warning("%s", problem)
