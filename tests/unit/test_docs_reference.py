"""docs/reference.md is what the code's schema says (esm.config.reference): the page fails this
test as soon as a key, a limit, an enum or a handling note changes in the code or in botocore's
model of the Lambda API without the page being regenerated."""

from __future__ import annotations

import difflib
from pathlib import Path

from esm.config.loading import EXTENSION_KEYS, FUNCTION_KEYS, TOP_LEVEL_KEYS
from esm.config.reference import render

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference.md"
REGENERATE = "python -m esm.config.reference > docs/reference.md"


def stale_lines(page: str, current: str) -> list[str]:
    """The page's lines that differ from what the code says now ('-' page, '+' code)."""
    return [line for line in difflib.unified_diff(page.splitlines(), current.splitlines(), lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_the_reference_page_is_current() -> None:
    stale = stale_lines(PAGE.read_text(), render())
    assert not stale, f"docs/reference.md is stale; run `{REGENERATE}`:\n" + "\n".join(stale)


def test_a_stale_field_is_caught() -> None:
    """A page that still says BatchSize goes to 10000 after the model changed (here: the page
    edited the other way) is reported with the field's own line."""
    current = render()
    stale_page = current.replace("| `BatchSize` | integer | min 1; max 10000 |", "| `BatchSize` | integer | min 1; max 100 |")
    assert stale_page != current
    stale = stale_lines(stale_page, current)
    assert stale == ["-| `BatchSize` | integer | min 1; max 100 | honoured |",
                     "+| `BatchSize` | integer | min 1; max 10000 | honoured |"]


def test_every_key_the_loader_accepts_is_on_the_page() -> None:
    page = PAGE.read_text()
    for key in TOP_LEVEL_KEYS + FUNCTION_KEYS + EXTENSION_KEYS:
        assert f"| `{key}` |" in page, key
