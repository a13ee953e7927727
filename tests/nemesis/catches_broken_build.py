"""The checker catches a deliberately broken build: a short nemesis run whose replicas run
`checkpoint-early` (tests/nemesis/broken.py) must fail, on checkpoints past unfinished records of
every checkpointing source. A run of its own (its own backends, about five minutes), so it is
collected only when named (the name does not start with `test_`):

    scripts/test tests/nemesis/catches_broken_build.py

or by hand: `scripts/nemesis --minutes 1.5 --seed 3 --broken checkpoint-early` (exit 1, report in
build/nemesis/seed-3-broken-checkpoint-early/).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKPOINTING = ("kinesis", "dynamodb", "kafka")  # SQS has no checkpoints: a delete is per message


def test_the_checker_fails_a_build_that_checkpoints_before_records_finish(tmp_path: Path):
    """behaviour §9.6: no checkpoint or commit passes an unfinished record. A build that counts a
    record finished once read breaks it; the run must exit 1, name the seed and the replay command,
    and report checkpoint violations on each stream and on Kafka."""
    workdir = tmp_path / "nemesis"
    done = subprocess.run([str(ROOT / "scripts" / "nemesis"), "--minutes", "1.5", "--seed", "3",
                           "--broken", "checkpoint-early", "--workdir", str(workdir)],
                          cwd=ROOT, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "FAILED (seed 3; replay: scripts/nemesis --minutes 1.5 --seed 3 --broken checkpoint-early)" in done.stdout
    report = json.loads((workdir / "report.json").read_text())
    assert report["broken"] == "checkpoint-early"
    by_source = {s["source"]: s for s in report["sources"]}
    for source in CHECKPOINTING:
        row = by_source[source]
        assert row["checkpoint_violations"] > 0, row
        assert any("checkpoints past unfinished records" in p for p in row["problems"]), row["problems"]
