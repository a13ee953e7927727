"""A corpus of templates written the way public SAM/CloudFormation projects write them
(tests/corpus/): each one AWS would deploy, and each must pass `esm validate --template`
(behaviour §9.12). Each reproduces one or more of the causes issue 26 lists; the file's first
comment says which."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest

from esm.cli import main

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
# Functions esm cannot run in-process get a place, as a user would give one.
EXTRA_ARGS = {name: ["--functions-url", "http://127.0.0.1:9/{function}"]
              for name in ("msk-consumer.yaml", "self-managed-kafka.yaml")}


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """The corpus copied aside, with the .zip a `sam build` would have left beside a template."""
    copy = tmp_path / "corpus"
    shutil.copytree(CORPUS, copy)
    (copy / "build").mkdir()
    with zipfile.ZipFile(copy / "build" / "auditor.zip", "w") as archive:
        archive.write(copy / "src" / "consumer" / "app.py", "app.py")
    return copy


@pytest.mark.parametrize("name", sorted(p.name for p in CORPUS.glob("*.yaml") if p.name != "openapi.yaml"))
def test_corpus_template_validates(corpus, name, capsys):
    """Issue 26: a template AWS deploys is valid for esm (exit 0, every mapping listed)."""
    code = main(["validate", "--template", str(corpus / name), *EXTRA_ARGS.get(name, [])])
    output = capsys.readouterr()
    assert code == 0, output.out + output.err
    assert ": valid (" in output.out
