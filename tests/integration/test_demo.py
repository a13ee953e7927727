"""The README's demo (issue 4.8, 13.7): moto's SQS in-process -> a filter -> an in-process handler, with metrics."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ORDERS = range(1, 21)
PAID = {i for i in ORDERS if i % 3}  # the demo's paid orders; the others are open and filtered out
HANDLER_LINE = re.compile(r"^  handler: (\d+) orders?: paid ([^;]+?)(?:; failed (.+) \(SQS hands it out again\))?$")


def deliveries(out: str) -> list[tuple[int, int, str]]:
    """(order, receive count, "paid" | "failed") for each record the handler saw, from its lines:
    one whole line per invoke (a line two invokes printed into would not parse)."""
    seen: list[tuple[int, int, str]] = []
    for line in out.splitlines():
        if not line.startswith("  handler:"):
            continue
        match = HANDLER_LINE.match(line)
        assert match, f"not one whole handler line: {line!r}"
        count, paid, failed = match.groups()
        batch = [(outcome, name) for outcome, names in (("paid", paid), ("failed", failed or ""))
                 for name in names.split(", ") if name and name != "none"]
        assert len(batch) == int(count), line
        for outcome, name in batch:
            named = re.fullmatch(r"(\d+)(?: \(receive #(\d+)\))?", name)
            assert named, f"not one whole handler line: {line!r}"
            seen.append((int(named[1]), int(named[2] or 1), outcome))
    return seen


def counts(out: str) -> dict[str, int]:
    return {key: int(n) for key, n in re.findall(r"^  (polled|filtered|invoked|failed|deleted)\s+(\d+)$", out, re.M)}


def test_demo_runs_and_reports_what_happened():
    """README quick start: the demo filters the open orders, processes every paid one, retries one
    partial failure (order 13), empties the queue, and its counters agree with what the handler saw.
    SQS delivers at least once: on a machine slower than the queue's visibility timeout any message
    may come again, so the counts follow the deliveries instead of being fixed (behaviour §9.6, §6)."""
    result = subprocess.run([sys.executable, "examples/demo/run.py"], cwd=ROOT, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "metrics at http://127.0.0.1:" in out and "the queue is empty" in out, out
    seen = deliveries(out)
    assert {order for order, _, outcome in seen if outcome == "paid"} == PAID, out
    assert [(order, receive) for order, receive, outcome in seen if outcome == "failed"] == [(13, 1)], out
    assert all(receive >= 2 for order, receive, outcome in seen if order == 13 and outcome == "paid"), out
    assert {order for order, _, _ in seen} <= PAID, out  # the filter kept every open order away
    n = counts(out)
    assert n["invoked"] == len(seen), out  # every event that invoked the function reached the handler
    assert n["failed"] == 1, out  # the one partial batch failure
    assert n["polled"] == n["filtered"] + n["invoked"], out
    assert n["filtered"] >= len(ORDERS) - len(PAID), out  # each open order at least once
    # Deleted: each of the 20 messages once, plus any duplicate delivery that was deleted too; never a
    # delivery that failed.
    assert len(ORDERS) <= n["deleted"] <= n["polled"] - n["failed"], out
    if n["polled"] > len(ORDERS) + 1:  # SQS handed something out again: the demo says why
        assert "SQS delivers at least once" in out, out


def test_demo_says_what_is_still_in_flight_when_its_wait_runs_out():
    """Issue 13.7: the demo says "the queue is empty" only when it is; when its wait runs out (here after
    1 s without progress, before SQS hands out the failed order 13 again) it names what is still waiting
    or in flight and exits non-zero."""
    env = {**os.environ, "ESM_DEMO_WAIT": "1"}
    result = subprocess.run([sys.executable, "examples/demo/run.py"], cwd=ROOT, capture_output=True, text=True,
                            timeout=240, env=env)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr
    assert "the queue is empty" not in out
    gave_up = re.search(r"gave up after 1 s in which nothing moved\. Still in the queue: (\d+) message\(s\) waiting "
                        r"and (\d+) in flight \(received, not yet deleted\); paid orders not yet processed: ([\d, ]+)\.",
                        out)
    assert gave_up, out
    assert int(gave_up.group(1)) + int(gave_up.group(2)) >= 1
    assert "13" in gave_up.group(3).split(", ")


def test_demo_still_shows_order_13_retried_when_the_machine_stalls():
    """Issue 13.7: on a slow run (as the first one right after the install) the demo still shows the retried
    order 13 succeeding: a stall of the whole process longer than the demo's wait (and than the queue's
    visibility timeout) does not use the wait up, because only time in which the demo saw nothing move counts."""
    env = {**os.environ, "ESM_DEMO_WAIT": "3", "PYTHONUNBUFFERED": "1"}
    demo = subprocess.Popen([sys.executable, "examples/demo/run.py"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if "failed 13 " in line:
                demo.send_signal(signal.SIGSTOP)  # the machine stalls, everything in the process with it
                time.sleep(6)
                demo.send_signal(signal.SIGCONT)
                break
        rest, _ = demo.communicate(timeout=240)
    finally:
        if demo.poll() is None:
            demo.kill()
    out = "".join(lines) + rest
    assert demo.returncode == 0, out
    seen = deliveries(out)
    assert (13, 1, "failed") in seen and "the queue is empty" in out
    retried = [receive for order, receive, outcome in seen if order == 13 and outcome == "paid"]
    assert retried and all(n >= 2 for n in retried), out  # the success is the retry's
    n = counts(out)
    assert n["filtered"] >= 6 and n["deleted"] >= 20, out
    if n["invoked"] > 15:  # the stall outlasted the visibility timeout: duplicates, and the demo says so
        assert "reached the function more than once" in out, out
