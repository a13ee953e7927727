"""`esm version` prints the version and the version policy, and docs/versioning.md shows exactly
that output (the page and the command cannot drift apart)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from esm.cli import main

ROOT = Path(__file__).resolve().parents[2]


def test_esm_version_prints_the_version_and_the_policy(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["version"]) == 0
    first, policy = capsys.readouterr().out.splitlines()
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert first == f"esm {version}"
    for promise in ("patch releases fix bugs only", "a minor release only adds", "stored state", "CHANGELOG.md"):
        assert promise in policy


def test_the_versioning_page_shows_the_commands_output(capsys: pytest.CaptureFixture[str]) -> None:
    main(["version"])
    out = capsys.readouterr().out
    page = (ROOT / "docs" / "versioning.md").read_text()
    assert f"$ esm version\n{out}```" in page


def test_license_and_changelog_ship_with_the_source() -> None:
    """pyproject says Apache-2.0; the file says so too."""
    assert "Apache License\n                           Version 2.0" in (ROOT / "LICENSE").read_text()
    assert "## 0.1.0" in (ROOT / "CHANGELOG.md").read_text()
