"""The README's quick tour runs as written (on the shipped checkpoint and clips)."""

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_quick_tour_runs(capsys):
    text = (ROOT / "README.md").read_text()
    tour = text[text.index("## A quick tour") :]
    code = re.search(r"```python\n(.*?)```", tour, re.S).group(1)
    cwd = os.getcwd()
    os.chdir(ROOT)  # the tour uses repository-relative paths, as a user in a fresh clone would
    try:
        exec(compile(code, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    out = capsys.readouterr().out.split("\n")
    assert out[0].startswith("(24, 64, 64, 3)")  # 24 frames: the whole example clip
