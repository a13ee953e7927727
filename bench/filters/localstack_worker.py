"""Times LocalStack's event pattern engine; run by bench/filters/run.py with a Python that has
``localstack-core`` installed (a bench-only virtual environment, never the project's).

Reads a JSON job from stdin: {"patterns": [...], "events_file": path, "limit": n}; the events
file holds one JSON event per line. Prints {"events_per_s": ..., "matched": ...} or {"error": ...}.
LocalStack's engine takes one pattern at a time, so the event is parsed once and every pattern is
evaluated against the parsed dict (its best case for several filters).
"""

from __future__ import annotations

import json
import sys
import time


def main() -> None:
    job = json.load(sys.stdin)
    try:
        from localstack.services.events.event_rule_engine import EventPatternCompiler, EventRuleEngine
    except Exception as error:  # noqa: BLE001 - report any import failure to the caller
        print(json.dumps({"error": f"cannot import LocalStack's engine: {error!r}"}))
        return
    compiler, engine = EventPatternCompiler(), EventRuleEngine()
    try:
        compiled = [compiler.compile_event_pattern(pattern) for pattern in job["patterns"]]
    except Exception as error:  # noqa: BLE001
        print(json.dumps({"error": f"LocalStack rejects a pattern: {error}"}))
        return
    with open(job["events_file"], encoding="utf-8") as handle:
        lines = [line for _, line in zip(range(job["limit"]), handle)]
    matched = 0
    start = time.perf_counter()
    for line in lines:
        event = json.loads(line)
        if any(engine.evaluate_pattern_on_event(pattern, event) for pattern in compiled):
            matched += 1
    elapsed = time.perf_counter() - start
    print(json.dumps({"events_per_s": len(lines) / elapsed, "matched": matched, "events": len(lines)}))


if __name__ == "__main__":
    main()
