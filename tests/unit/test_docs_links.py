"""Every relative link in the README and docs/ points at a file that exists, and every page in
docs/ is reachable from the README's table or another page (the README split into pages must not
leave dangling links or orphaned pages)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)\s]+)\)")


def pages() -> list[Path]:
    return [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]


def targets(page: Path) -> list[tuple[str, Path]]:
    found = []
    for link in LINK.findall(page.read_text()):
        if link.startswith(("http://", "https://", "#", "mailto:")):
            continue
        found.append((link, (page.parent / link.split("#", 1)[0]).resolve()))
    return found


def test_relative_links_resolve() -> None:
    broken = [f"{page.relative_to(ROOT)}: {link}" for page in pages() for link, target in targets(page)
              if not target.exists()]
    assert not broken, "\n".join(broken)


def test_every_docs_page_is_linked() -> None:
    linked = {target for page in pages() for _, target in targets(page)}
    orphans = [p.relative_to(ROOT).as_posix() for p in sorted((ROOT / "docs").rglob("*.md")) if p.resolve() not in linked]
    assert not orphans, orphans
