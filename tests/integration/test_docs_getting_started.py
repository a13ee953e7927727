"""docs/getting-started.md's local part, run as printed: its `bash` blocks after the install one
(start moto's SQS, write the handler and config, validate, run, send, look) run in one shell, and
what they print must be what the page shows. The page's promise is "a new reader gets a running
`esm run` against a local queue"; a change that breaks a step or its output fails here.

What the test changes in the page's text, and nothing else: the two ports (free ones instead of
4599 and 9095, so the test never competes for them), and the folder (the test's own instead of
`/tmp/gs`, made by the install block the test skips: esm is installed already). The shell starts
without the test's AWS endpoint variables, as a reader's would.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.ports import free_port

PAGE = Path(__file__).resolve().parents[2] / "docs" / "getting-started.md"
BIN = Path(sys.executable).parent
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ", re.M)


def local_blocks() -> list[tuple[str, str]]:
    """(language, text) of each fenced block in the page's "1. Locally" section."""
    section = PAGE.read_text().split("## 1. Locally", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```(\w*)\n(.*?)```", section, re.S)


def test_the_local_walk_through_prints_what_the_page_shows(tmp_path: Path) -> None:
    blocks = local_blocks()
    scripts = [text for language, text in blocks if language == "bash"]
    shown = [text for language, text in blocks if language == ""]
    assert len(scripts) == 4 and len(shown) == 3, blocks
    assert "pip install" in scripts[0]
    moto, metrics = free_port(), free_port()

    def local(text: str) -> str:
        return text.replace("4599", str(moto)).replace("9095", str(metrics))

    def as_page(text: str) -> str:
        return text.replace(f"127.0.0.1:{moto}", "127.0.0.1:4599").replace(f"127.0.0.1:{metrics}", "127.0.0.1:9095")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ESM_"))}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    (tmp_path / "walk.sh").write_text("set -e\n" + "\n".join(local(text) for text in scripts[1:]))
    process = subprocess.Popen(["bash", "walk.sh"], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        out, _ = process.communicate(timeout=240)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # moto_server, which the page leaves running
        if process.poll() is None:
            process.wait()
    out = as_page(out)
    assert process.returncode == 0, out
    validated, status, log = shown
    assert validated in out, out
    assert status in out, out
    # run.log, printed last: the same lines, times aside
    assert STAMP.sub("", out.rsplit(status, 1)[1]).strip() == STAMP.sub("", log).strip(), out
