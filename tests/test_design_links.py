"""Every anchor into docs/DESIGN.md that code or docs point at names one of its headings."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUFFIXES = {".py", ".md", ".sh", ".yaml", ".toml"}
SKIP = {".venv", "runs", "assets", ".git"}


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading: lower case, punctuation dropped, spaces → hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_design_anchors_resolve():
    design = (ROOT / "docs" / "DESIGN.md").read_text()
    anchors = {slug(m) for m in re.findall(r"^#{1,6} (.+)$", design, re.M)}
    files = [p for p in ROOT.rglob("*") if p.is_file() and not SKIP & set(p.relative_to(ROOT).parts)
             and (p.suffix in SUFFIXES or p.name == "Makefile")]
    broken = []
    for path in files:
        for anchor in re.findall(r"DESIGN\.md#([\w-]+)", path.read_text(errors="ignore")):
            if anchor not in anchors:
                broken.append(f"{path.relative_to(ROOT)}: #{anchor}")
    assert not broken, broken
    assert len(anchors) >= 20
