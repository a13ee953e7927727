"""The checker catches a deliberately broken build: a short nemesis run whose replicas run one of
the breaks of tests/nemesis/broken.py must fail, on the rule that break breaks. Each case is a
nemesis run of its own (its own backends, about seven minutes), so this file is collected only
when named (its name does not start with `test_`):

    scripts/test tests/nemesis/catches_broken_build.py                    # both breaks
    scripts/test tests/nemesis/catches_broken_build.py -k checkpoints    # one

or by hand: `scripts/nemesis --minutes 1.5 --seed 3 --broken checkpoint-early` (exit 1, report in
build/nemesis/seed-3-broken-checkpoint-early/).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTING = ("kinesis", "dynamodb", "kafka")  # SQS has no checkpoints: a delete is per message


def broken_run(tmp_path: Path, broken: str) -> dict[str, Any]:
    """`scripts/nemesis --minutes 1.5 --seed 3 --broken NAME`: it must fail, naming the seed and the
    replay command; returns its report.json."""
    workdir = tmp_path / "nemesis"
    done = subprocess.run([str(ROOT / "scripts" / "nemesis"), "--minutes", "1.5", "--seed", "3",
                           "--broken", broken, "--workdir", str(workdir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert f"FAILED (seed 3; replay: scripts/nemesis --minutes 1.5 --seed 3 --broken {broken})" in done.stdout
    report = json.loads((workdir / "report.json").read_text())
    assert report["broken"] == broken
    return report


def test_the_checker_fails_a_build_that_checkpoints_before_records_finish(tmp_path: Path):
    """behaviour §9.6: no checkpoint or commit passes an unfinished record. A build that counts a
    record finished once read breaks it: checkpoint violations on each stream and on Kafka."""
    by_source = {s["source"]: s for s in broken_run(tmp_path, "checkpoint-early")["sources"]}
    for source in CHECKPOINTING:
        row = by_source[source]
        assert row["checkpoint_violations"] > 0, row
        assert any("checkpoints past unfinished records" in p for p in row["problems"]), row["problems"]


def test_the_checker_fails_a_build_that_skips_failed_records(tmp_path: Path):
    """behaviour §3, §9.6: a record a partial batch response reported is retried or dead-lettered,
    never dropped. A build that settles it as processed loses records, and the report names them."""
    sources = broken_run(tmp_path, "skip-failed")["sources"]
    assert sum(s["lost"] for s in sources) > 0, sources
    for row in sources:
        if row["lost"]:
            assert any(p.startswith(f"{row['lost']} lost, first: ") for p in row["problems"]), row["problems"]
