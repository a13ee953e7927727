"""bench/filters: esm's compiled filter matcher against a plain reference interpreter.

    .venv/bin/python -m bench.filters.run [--events 100000] [--counts 1,5,20,100] [--kinds exact,prefix]
                                          [--event-kinds citylots,orders]
    python bench/filters/run.py ...        (same thing)

Events are generated, of two kinds: ``citylots`` (bench/filters/citylots.py: San Francisco
city-lot GeoJSON features, the shape event-ruler's own benchmark uses, about 0.5 KB) and
``orders`` (bench/filters/orders.py: EventBridge-style order events of 0.35 to 1 KB with nested
objects, an array of objects and arrays of numbers the filters never name). For each event kind,
each operator kind and 1, 5, 20 and 100 filters of that kind, in one run:

- ``json ev/s`` and ``json us``: events per second and microseconds per event through
  ``Matcher.matches_json`` (orjson parse included);
- ``us/ev``: microseconds per event through ``Matcher.matches`` (event already parsed);
- ``ref ev/s``: the reference interpreter kept with the tests (tests/unit/filtering), which parses
  and flattens the event again for every filter, on the first ``--ref-events`` events; ``x ref``
  is the speed-up of ``matches_json`` over it;
- ``ls ev/s``: LocalStack's Python engine, when a Python with ``localstack-core`` is found
  (``--localstack-python``, ``$ESM_BENCH_LOCALSTACK_PYTHON`` or /tmp/esm-bench-localstack);
  install it in a bench-only environment, never the project's (localstack-core 2026.3 needs
  four more packages to import its engine):
  ``python3 -m venv /tmp/esm-bench-localstack &&
  /tmp/esm-bench-localstack/bin/pip install localstack-core botocore boto3 rolo jsonpatch``.

With ``--event-ruler``, AWS's own engine (event-ruler 2.1.0, Java; bench/filters/eventruler.py
builds its harness with Maven) runs the same events and patterns in one warmed JVM, parse
included, one thread: ``er ev/s`` and ``esm/er`` (wall-clock), ``cpu esm/er`` (the same ratio
from each side's thread CPU time, steadier on a busy machine). Its timed passes and esm's ``matches_json``
passes take turns (best of ``--repeat`` each), and the set of events each matched must be the
same, event by event, or the bench stops. The comparison in docs/filters.md is

    .venv/bin/python -m bench.filters.run --events 20000 --counts 20 --kinds exact,prefix --event-ruler

The matched counts of all engines are compared on the events each ran. Prints a table and writes
bench/results/filters.json. Not part of the test suite; one core (the loop is single-threaded).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script: python bench/filters/run.py
    sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "unit" / "filtering"))

import orjson  # noqa: E402

from bench.filters.citylots import STREETS, features  # noqa: E402
from bench.filters.eventruler import VERSION as EVENT_RULER_VERSION  # noqa: E402
from bench.filters.eventruler import EventRuler  # noqa: E402
from bench.filters.orders import CITIES, orders  # noqa: E402
from esm.filtering import compile_filters  # noqa: E402
from filter_reference import reference_matches_json  # noqa: E402

PROPERTIES = ["MAPBLKLOT", "BLKLOT", "BLOCK_NUM", "LOT_NUM", "FROM_ST", "TO_ST", "STREET", "ST_TYPE", "ODD_EVEN"]
DEFAULT_LOCALSTACK = Path("/tmp/esm-bench-localstack/bin/python")


def _props(field: str, values: list[Any]) -> str:
    return json.dumps({"properties": {field: values}})


def _at(path: str, values: list[Any]) -> str:
    """A pattern naming the dotted ``path`` as nested objects."""
    pattern: Any = values
    for key in reversed(path.split(".")):
        pattern = {key: pattern}
    return json.dumps(pattern)


ORDER_FIELDS = ["orderId", "status", "customer", "items", "totals", "metrics", "client", "coupon", "gift"]


def make_order_patterns(kind: str, count: int) -> list[str]:
    """``count`` filters of one operator kind on the order events (bench/filters/orders.py)."""
    made: list[str] = []
    city, order_id = "detail.customer.address.city", "detail.orderId"
    for i in range(count):
        name = CITIES[i % len(CITIES)]
        if kind == "exact":
            made.append(_at(city, [name]))
        elif kind == "prefix":
            made.append(_at(order_id, [{"prefix": f"ord-{(i * 37) % 1000:03d}"}]))
        elif kind == "suffix":
            made.append(_at(order_id, [{"suffix": f"{i:02d}"}]))
        elif kind == "equals-ignore-case":
            made.append(_at(city, [{"equals-ignore-case": name.lower()}]))
        elif kind == "wildcard":
            made.append(_at(order_id, [{"wildcard": f"ord-{i % 100:02d}*{i % 7}"}]))
        elif kind == "numeric":
            made.append(_at("detail.totals.amount", [{"numeric": [">", i * 5, "<", i * 5 + 5]}]))
        elif kind == "anything-but":
            made.append(_at(city, [{"anything-but": [name]}]))
        elif kind == "exists":
            field = ORDER_FIELDS[i % len(ORDER_FIELDS)] if i < len(ORDER_FIELDS) else f"extra{i}"
            made.append(_at(f"detail.{field}", [{"exists": i % 2 == 0}]))
        elif kind == "cidr":
            made.append(_at("detail.client.ip", [{"cidr": f"10.{i}.0.0/16"}]))
        elif kind == "and-or":
            made.append(json.dumps({"detail": {"status": ["paid"], "$or": [
                {"customer": {"address": {"city": [name]}}}, {"orderId": [{"prefix": f"ord-{i:03d}"}]}]}}))
        else:
            raise ValueError(kind)
    return made


def make_patterns(kind: str, count: int, event_kind: str = "citylots") -> list[str]:
    """``count`` filters of one operator kind, each a separate pattern (a separate filter)."""
    if event_kind == "orders":
        return make_order_patterns(kind, count)
    streets = list(dict.fromkeys(STREETS))
    made: list[str] = []
    for i in range(count):
        street = streets[i % len(streets)]
        if kind == "exact":
            made.append(_props("STREET", [street]))
        elif kind == "prefix":
            made.append(_props("MAPBLKLOT", [{"prefix": f"{(i * 37) % 760:03d}"}]))
        elif kind == "suffix":
            made.append(_props("LOT_NUM", [{"suffix": f"{i:02d}"}]))
        elif kind == "equals-ignore-case":
            made.append(_props("STREET", [{"equals-ignore-case": street.lower()}]))
        elif kind == "wildcard":
            made.append(_props("MAPBLKLOT", [{"wildcard": f"{i % 100:02d}*{i % 7}"}]))
        elif kind == "numeric":
            low = -122.52 + i * 0.0017
            made.append(json.dumps({"geometry": {"coordinates": [{"numeric": [">", round(low, 4), "<", round(low + 0.0017, 4)]}]}}))
        elif kind == "anything-but":
            made.append(_props("STREET", [{"anything-but": [street]}]))
        elif kind == "exists":
            name = PROPERTIES[i % len(PROPERTIES)] if i < len(PROPERTIES) else f"EXTRA_{i}"
            made.append(_props(name, [{"exists": i % 2 == 0}]))
        elif kind == "cidr":
            made.append(_props("STREET", [{"cidr": f"10.{i}.0.0/16"}]))
        elif kind == "and-or":
            made.append(json.dumps({"properties": {"ODD_EVEN": ["E"], "$or": [{"STREET": [street]}, {"LOT_NUM": [f"{i:03d}"]}]}}))
        else:
            raise ValueError(kind)
    return made


EVENT_KINDS = {"citylots": features, "orders": orders}
KINDS = ["exact", "prefix", "suffix", "equals-ignore-case", "wildcard", "numeric", "anything-but", "exists", "cidr", "and-or"]


def timed(function: Callable[[], int], repeat: int = 1) -> tuple[float, int]:
    """The best time of ``repeat`` passes (other work on a shared machine only ever adds time)."""
    best = float("inf")
    result = 0
    for _ in range(repeat):
        gc.collect()
        gc.disable()
        try:
            start = time.perf_counter()
            result = function()
            best = min(best, time.perf_counter() - start)
        finally:
            gc.enable()
    return best, result


def run_localstack(python: Path, patterns: list[str], events_file: str, limit: int) -> dict[str, Any]:
    worker = Path(__file__).with_name("localstack_worker.py")
    job = json.dumps({"patterns": patterns, "events_file": events_file, "limit": limit})
    try:
        done = subprocess.run([str(python), str(worker)], input=job, capture_output=True, text=True, timeout=900)
    except (OSError, subprocess.TimeoutExpired) as error:
        return {"error": repr(error)}
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        return {"error": (done.stderr or done.stdout)[-300:]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events generated and matched (default 100000)")
    parser.add_argument("--ref-events", type=int, default=2_000, help="events given to the reference and LocalStack")
    parser.add_argument("--counts", default="1,5,20,100", help="numbers of filters (comma-separated)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="operator kinds (comma-separated)")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--repeat", type=int, default=3, help="passes per esm timing; the best one counts (default 3)")
    parser.add_argument("--localstack-python", default=os.environ.get("ESM_BENCH_LOCALSTACK_PYTHON", str(DEFAULT_LOCALSTACK)))
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "filters.json"))
    parser.add_argument("--event-kinds", default=",".join(EVENT_KINDS), help="event kinds (comma-separated): citylots, orders")
    parser.add_argument("--event-ruler", action="store_true",
                        help="also run AWS event-ruler (Java, needs java and mvn) and print esm/event-ruler")
    args = parser.parse_args(argv)
    counts = [int(part) for part in args.counts.split(",")]
    kinds = args.kinds.split(",")
    event_kinds = args.event_kinds.split(",")
    localstack = Path(args.localstack_python)
    has_localstack = localstack.exists()
    print(f"bench/filters: {args.events} events of each kind (esm: best of {args.repeat} passes), reference and "
          f"LocalStack on the first {min(args.ref_events, args.events)}; Python {platform.python_version()}; one core")
    if not has_localstack:
        print(f"LocalStack engine: not found at {localstack} (see the module docstring); column left empty")
    ruler = EventRuler() if args.event_ruler else None
    header = (f"{'events':<10}{'kind':<19}{'filters':>8}{'json ev/s':>12}{'json us':>8}{'us/ev':>8}{'matched':>9}"
              f"{'ref ev/s':>10}{'x ref':>8}{'ls ev/s':>10}{'x ls':>7}")
    if ruler is not None:
        header += f"{'er ev/s':>11}{'esm/er':>8}{'cpu esm/er':>11}{'same':>6}"
    rows: list[dict[str, Any]] = []
    sizes: dict[str, float] = {}
    for event_kind in event_kinds:
        events = list(EVENT_KINDS[event_kind](args.events, seed=args.seed))
        blobs = [orjson.dumps(event) for event in events]
        sizes[event_kind] = sum(map(len, blobs)) / len(blobs)
        ref_n = min(args.ref_events, len(blobs))
        events_file = tempfile.NamedTemporaryFile("wb", suffix=".jsonl", delete=False)
        with events_file:
            for blob in blobs[:ref_n]:
                events_file.write(blob + b"\n")
        print(f"\n{event_kind}: {min(map(len, blobs))} to {max(map(len, blobs))} bytes, {sizes[event_kind]:.0f} on average")
        print(header)
        print("-" * len(header))
        for kind in kinds:
            for count in counts:
                patterns = make_patterns(kind, count, event_kind)
                matcher = compile_filters(patterns)
                if ruler is None:
                    json_time, matched = timed(lambda: sum(1 for blob in blobs if matcher.matches_json(blob)), args.repeat)
                else:
                    case = f"{event_kind}-{kind}-{count}"
                    theirs = ruler.load(case, blobs, patterns)
                    ours = [matcher.matches_json(blob) for blob in blobs]
                    if ours != theirs:
                        first = next(i for i, (a, b) in enumerate(zip(ours, theirs)) if a != b)
                        raise SystemExit(
                            f"{case}: esm and event-ruler disagree on {sum(a != b for a, b in zip(ours, theirs))} events; "
                            f"first: event {first} (esm {ours[first]}, event-ruler {theirs[first]}): {blobs[first].decode()}")
                    # Turns: one event-ruler pass, one esm pass, ... (a busy shared machine slows both alike).
                    # Thread CPU time too: on a machine shared with other work, wall-clock time
                    # also counts the time either side waited for a core.
                    er_time = json_time = er_cpu = json_cpu = float("inf")
                    for _ in range(args.repeat):
                        wall, cpu = ruler.time(case)
                        er_time, er_cpu = min(er_time, wall), min(er_cpu, cpu)
                        gc.collect()
                        gc.disable()
                        try:
                            cpu_start, start = time.thread_time(), time.perf_counter()
                            matched = sum(1 for blob in blobs if matcher.matches_json(blob))
                            wall, cpu = time.perf_counter() - start, time.thread_time() - cpu_start
                        finally:
                            gc.enable()
                        json_time, json_cpu = min(json_time, wall), min(json_cpu, cpu)
                dict_time, matched_dicts = timed(lambda: sum(1 for event in events if matcher.matches(event)), args.repeat)
                assert matched == matched_dicts
                subset = blobs[:ref_n]
                ref_time, ref_matched = timed(lambda: sum(1 for blob in subset if reference_matches_json(patterns, blob)))
                own_on_subset = sum(1 for blob in subset if matcher.matches_json(blob))
                if own_on_subset != ref_matched:
                    raise SystemExit(f"{event_kind}/{kind}/{count}: esm matched {own_on_subset}, the reference {ref_matched}")
                row: dict[str, Any] = {
                    "event_kind": event_kind,
                    "kind": kind,
                    "filters": count,
                    "events": len(blobs),
                    "event_bytes": sizes[event_kind],
                    "matched": matched,
                    "matches_json_events_per_s": len(blobs) / json_time,
                    "matches_json_us_per_event": json_time / len(blobs) * 1e6,
                    "matches_us_per_event": dict_time / len(events) * 1e6,
                    "reference_events_per_s": ref_n / ref_time,
                }
                row["speedup_vs_reference"] = row["matches_json_events_per_s"] / row["reference_events_per_s"]
                if has_localstack:
                    outcome = run_localstack(localstack, patterns, events_file.name, ref_n)
                    if "error" in outcome:
                        row["localstack_error"] = outcome["error"]
                    else:
                        row["localstack_events_per_s"] = outcome["events_per_s"]
                        row["speedup_vs_localstack"] = row["matches_json_events_per_s"] / outcome["events_per_s"]
                        row["localstack_matched_agrees"] = outcome["matched"] == own_on_subset
                if ruler is not None:
                    row["event_ruler_events_per_s"] = len(blobs) / er_time
                    row["esm_vs_event_ruler"] = row["matches_json_events_per_s"] / row["event_ruler_events_per_s"]
                    row["esm_cpu_events_per_s"] = len(blobs) / json_cpu
                    row["event_ruler_cpu_events_per_s"] = len(blobs) / er_cpu
                    row["esm_vs_event_ruler_cpu"] = er_cpu / json_cpu
                    row["event_ruler_matches_identical"] = True  # checked above: the bench stops otherwise
                rows.append(row)
                ls = f"{row['localstack_events_per_s']:>10,.0f}{row['speedup_vs_localstack']:>6.0f}x" if "localstack_events_per_s" in row else (
                    f"{'error':>10}{'':>7}" if "localstack_error" in row else f"{'-':>10}{'':>7}")
                print(f"{event_kind:<10}{kind:<19}{count:>8}{row['matches_json_events_per_s']:>12,.0f}"
                      f"{row['matches_json_us_per_event']:>8.2f}{row['matches_us_per_event']:>8.2f}"
                      f"{matched:>9}{row['reference_events_per_s']:>10,.0f}{row['speedup_vs_reference']:>7.0f}x{ls}"
                      + (f"{row['event_ruler_events_per_s']:>11,.0f}{row['esm_vs_event_ruler']:>7.2f}x"
                         f"{row['esm_vs_event_ruler_cpu']:>10.2f}x{'yes':>6}" if ruler else ""),
                      flush=True)
        os.unlink(events_file.name)
    if ruler is not None:
        ruler.close()

    by_kind: dict[tuple[str, str], dict[int, dict[str, Any]]] = {}
    for row in rows:
        by_kind.setdefault((row["event_kind"], row["kind"]), {})[row["filters"]] = row
    summary: dict[str, dict[str, Any]] = {}
    print()
    for (event_kind, kind), per_count in by_kind.items():
        if 1 in per_count and max(per_count) != 1:
            top, one = per_count[max(per_count)], per_count[1]
            item = {
                "filters": top["filters"],
                "cost_ratio_max_vs_1": top["matches_us_per_event"] / one["matches_us_per_event"],
                "json_cost_ratio_max_vs_1": top["matches_json_us_per_event"] / one["matches_json_us_per_event"],
            }
            summary.setdefault(event_kind, {})[kind] = item
            print(f"{event_kind:<10}{kind:<19} {item['filters']} filters cost {item['cost_ratio_max_vs_1']:.2f}x one filter "
                  f"(parse excluded), {item['json_cost_ratio_max_vs_1']:.2f}x (parse included)")
    errors = {row.get("localstack_error") for row in rows if "localstack_error" in row}
    for error in errors:
        print(f"LocalStack: {error}")

    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({
        "benchmark": "filters",
        "command": " ".join([Path(sys.executable).name, "-m", "bench.filters.run", *(argv if argv is not None else sys.argv[1:])]),
        "python": platform.python_version(),
        "machine": platform.machine(),
        "events": args.events,
        "repeat": args.repeat,
        "event_bytes": sizes,
        "reference_events": min(args.ref_events, args.events),
        "localstack": str(localstack) if has_localstack else None,
        "event_ruler": f"event-ruler {EVENT_RULER_VERSION} (Java, one thread, warmed JIT)" if ruler else None,
        "rows": rows,
        "cost_ratio": summary,
    }, indent=2) + "\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
