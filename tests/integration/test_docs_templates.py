"""docs/templates.md's walk-through (`examples/sam/`), run as printed against the local backends:
`esm validate --template`, `esm run --template ... --create-resources`, `send.py` and `esm status`
are read out of the page's `bash` blocks and run by bash in a folder holding a copy of `examples/`
(so the run's `./esm-state` checkpoints are the test's own). What they print must be what the page
says: the table of mappings, the resources created, the handlers' lines, the record on the
on-failure queue and the counts `esm status` shows.

What the test changes in the page's text, and nothing else: `.venv/bin/` is the test's own
environment (the install and `scripts/backends` lines, which the test's fixtures have done, are
checked and skipped); the template's `Stage` parameter is a fresh one (the page's
`--parameter-overrides Stage=...`, with `send.py --stage`), so a run never meets an earlier run's
queue, stream or table on the shared backends; the metrics address is a free port (the run gets it
from a `--config` file holding only `metrics:`, and `esm status` from `--url`), so the test never
competes for 9090.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Callable

import boto3
import pytest

from tests.support.ports import free_port
from tests.support.processes import stop_group

pytestmark = pytest.mark.backends

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "templates.md"
BIN = Path(sys.executable).parent
SETUP = ("python3 -m venv .venv", 'eval "$(scripts/backends start)"')


def walk_through() -> list[tuple[str, str]]:
    """(language, text) of each fenced block under the page's walk-through heading."""
    section = PAGE.read_text().split("### Walk-through: `examples/sam/`", 1)[1]
    section = re.split(r"\n##+ ", section, maxsplit=1)[0]
    return re.findall(r"```(\w*)\n(.*?)```", section, re.S)


def columns(line: str) -> list[str]:
    """A table row's cells: columns are two or more spaces apart (a cell has single spaces)."""
    return re.split(r"\s{2,}", line.strip())


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.2)


def ready(url: str) -> bool:
    with contextlib.suppress(OSError, urllib.error.URLError):
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status == 200
    return False


def wait_for_failure(queue: str) -> str:
    """send.py's last step with no deadline of its own: the first on-failure document, as it prints it."""
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName=queue)["QueueUrl"]
    found: list[dict] = []
    wait_for(lambda: bool(found.extend(sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", []))
                          or found), "a record on the on-failure queue")
    info = json.loads(found[0]["Body"])["KinesisBatchInfo"]
    return (f"on-failure queue: {info['batchSize']} record(s) at {info['shardId']} "
            f"{info['startSequenceNumber']} (the click without a page)")


def status_rows(out: str) -> dict[str, dict[str, str]]:
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("MAPPING"))
    names = lines[header].split()
    rows = {}
    for line in lines[header + 1:]:
        cells = line.split()
        if len(cells) != len(names):
            break
        rows[cells[0]] = dict(zip(names, cells))
    return rows


def test_the_sam_walk_through_runs_as_printed(backends: dict[str, str], tmp_path: Path) -> None:
    """The page's promise, step by step: validate and run list the three mappings as shown;
    --create-resources makes the five resources; the paid order, three clicks and the new account
    reach their handlers once each; the click without a page alone reaches clicks-failures;
    `esm status` counts what the page says; SIGTERM stops the run with exit 0."""
    blocks = walk_through()
    scripts = [text for language, text in blocks if language == "bash"]
    shown = [text for language, text in blocks if language == ""]
    assert len(scripts) == 2 and len(shown) == 1, blocks
    first = [line for line in scripts[0].splitlines() if line.strip()]
    assert [line.startswith(SETUP) for line in first[:2]] == [True, True], first
    validate, run = first[2:]
    assert "esm validate --template examples/sam/template.yaml" in validate
    assert run.split("#")[0].split() == [".venv/bin/esm", "run", "--template", "examples/sam/template.yaml",
                                         "--create-resources"]
    send, status = [line for line in scripts[1].splitlines() if line.strip()]
    assert "examples/sam/send.py" in send and status.split("#")[0].split() == [".venv/bin/esm", "status"]

    stage, port = f"d{uuid.uuid4().hex[:8]}", free_port()
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / "esm.yaml").write_text(f'metrics: {{listen: "127.0.0.1:{port}"}}\n')
    env = dict(os.environ, PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}")
    env.pop("PYTHONUNBUFFERED", None)  # as a user's shell has it: the handlers' prints must show anyway

    def local(line: str) -> str:
        line = line.replace(".venv/bin/", f"{BIN}/")
        line = line.replace("--create-resources", f"--create-resources --parameter-overrides Stage={stage} --config esm.yaml")
        line = line.replace("examples/sam/send.py", f"examples/sam/send.py --stage {stage}")
        return line.replace("esm status", f"esm status --url http://127.0.0.1:{port}/metrics")

    def bash(line: str) -> str:
        done = subprocess.run(["bash", "-ec", local(line)], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    page = [columns(line) for line in shown[0].strip().splitlines()]
    # validate is offline: as printed, with the template's default Stage (dev)
    validated = bash(validate)
    assert [columns(line) for line in validated.splitlines() if columns(line)[0] in {r[0] for r in page[:4]}] == page[:4], validated
    expected = [columns(line) for line in shown[0].replace("-dev", f"-{stage}").strip().splitlines()]
    table, created = expected[:4], expected[4]

    log = tmp_path / "run.log"
    with log.open("w") as out:
        daemon = subprocess.Popen(["bash", "-ec", local(run)], cwd=tmp_path, env=env, stdout=out,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: ready(f"http://127.0.0.1:{port}/readyz") or daemon.poll() is not None, "esm run ready")
        assert daemon.poll() is None, log.read_text()
        printed = [columns(line) for line in log.read_text().splitlines()]
        assert printed[:4] == table and " ".join(printed[4]) == " ".join(created), log.read_text()

        sent = bash(send)
        if "nothing on the on-failure queue yet" in sent:
            # send.py watches the queue for 30 s; on a starved machine the record may come later: the
            # test then reads the queue as send.py does (the page's claim is about what arrives)
            sent = wait_for_failure(f"clicks-failures-{stage}")
        assert re.search(r"on-failure queue: 1 record\(s\) at shardId-\S+ \d+ \(the click without a page\)", sent), sent
        handled = [f"[{stage}] order 1 paid: 30", f"[{stage}] click on home", f"[{stage}] click on cart",
                   f"[{stage}] click on checkout", f"[{stage}] new account acct-"]
        try:
            wait_for(lambda: all(line in log.read_text() for line in handled), "the handlers' lines")
        except AssertionError:
            missing = [line for line in handled if line not in log.read_text()]
            raise AssertionError(f"the handlers' lines {missing} are not in esm run's output:\n{log.read_text()}") from None
        rows = status_rows(bash(status))
        orders, clicks, accounts = rows["OrdersFunctionPaid"], rows["ClicksFunctionClicks"], rows["AccountsFunctionNewAccounts"]
        # the page's counts; the order without an id may already be back (30 s), then once more each
        assert (orders["FILTERED"], clicks["ON-FAILURE"]) == ("1", "1"), rows
        assert int(orders["POLLED"]) == int(orders["INVOKED"]) + 1 and int(orders["INVOKED"]) == int(orders["FAILED"]) + 1, rows
        assert (int(orders["POLLED"]), int(orders["FAILED"])) in {(3, 1), (4, 2), (5, 3)}, rows
        assert (accounts["INVOKED"], accounts["FILTERED"]) == ("1", "1"), rows
    finally:
        stop_group(daemon)
    text = log.read_text()
    assert daemon.returncode == 0, text
    assert text.count(f"[{stage}] new account acct-") == 1, text  # its update is a MODIFY, filtered out
    assert text.count(f"[{stage}] order 1 paid: 30") == 1, text
    assert (tmp_path / "esm-state" / "checkpoints.db").exists()  # where the page says positions land


def test_validate_names_a_bad_property_at_its_place_in_the_template(tmp_path: Path) -> None:
    """The page's `esm validate --template` error form: the resource's logical id and the SAM
    event's property path, exit 2."""
    done = subprocess.run([str(BIN / "esm"), "validate", "--template", "examples/sam/template.yaml",
                           "--parameter-overrides", "OrdersBatchSize=0"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2, done.stdout + done.stderr
    documented = re.search(r"`(OrdersFunction\.Properties\.Events\.Paid\.Properties\.BatchSize): \.\.\.`",
                           PAGE.read_text())
    assert documented, "the page no longer shows the error path this test checks"
    assert f"{documented.group(1)}: must be at least 1" in done.stdout + done.stderr
