"""The README's demo (issue 4.8, 13.7): moto's SQS in-process -> a filter -> an in-process handler, with metrics."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_demo_runs_and_reports_what_happened():
    """README quick start: the demo filters 6 open orders, retries one partial failure, empties the queue."""
    result = subprocess.run([sys.executable, "examples/demo/run.py"], cwd=ROOT, capture_output=True, text=True,
                            timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "metrics at http://127.0.0.1:" in out
    assert "order 13 failed" in out and "order 13 paid" in out
    counts = dict(re.findall(r"^  (polled|filtered|invoked|failed|deleted)\s+(\d+)$", out, re.M))
    assert counts == {"polled": "21", "filtered": "6", "invoked": "15", "failed": "1", "deleted": "20"}, out


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
            if "order 13 failed" in line:
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
    assert "order 13 failed" in out and "the queue is empty" in out
    retried = re.findall(r"order 13 paid +[\d.]+ \(receive #(\d+)\)", out)
    assert retried and all(int(n) >= 2 for n in retried), out  # the success is the retry's
    counts = dict(re.findall(r"^  (polled|filtered|invoked|failed|deleted)\s+(\d+)$", out, re.M))
    assert counts["filtered"] == "6" and int(counts["deleted"]) >= 20, out
    if int(counts["invoked"]) > 15:  # the stall outlasted the visibility timeout: duplicates, and the demo says so
        assert "reached the function more than once" in out, out
