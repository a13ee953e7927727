"""The README's demo (issue 4.8): moto's SQS in-process -> a filter -> an in-process handler, with metrics."""

import re
import subprocess
import sys
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
