"""The shipped assets match their manifest (a silently changed checkpoint or clip is caught)."""

import hashlib
import json
from pathlib import Path

import pytest

ASSETS = Path(__file__).resolve().parent.parent / "assets"
MANIFEST = ASSETS / "manifest.json"
BUDGET_BYTES = 48_000_000  # the shipped models and clips (every byte stays in the history)


def _manifest() -> dict:
    if not MANIFEST.is_file():
        pytest.fail(f"{MANIFEST} is missing: run python train/recipes/manifest.py")
    return json.loads(MANIFEST.read_text())


def test_every_file_matches_its_hash_and_size():
    for entry in _manifest()["files"]:
        path = ASSETS / entry["file"]
        assert path.is_file(), f"{entry['file']} is in the manifest but missing"
        data = path.read_bytes()
        assert len(data) == entry["size"], f"{entry['file']}: size changed"
        assert hashlib.sha256(data).hexdigest() == entry["sha256"], f"{entry['file']}: changed"
        assert entry["command"], f"{entry['file']}: no command recorded"


def test_no_unlisted_files_and_within_budget():
    listed = {e["file"] for e in _manifest()["files"]}
    present = {str(p.relative_to(ASSETS)) for p in ASSETS.rglob("*")
               if p.is_file() and p != MANIFEST}
    assert present == listed, f"not in the manifest: {sorted(present - listed)}"
    assert sum(e["size"] for e in _manifest()["files"]) <= BUDGET_BYTES


@pytest.mark.parametrize(
    "name", sorted(p.parent.name for p in (ASSETS / "checkpoints").glob("*/config.json"))
)
def test_shipped_checkpoints_load_from_any_working_directory(name, tmp_path, monkeypatch):
    from lam_core import LatentActionPipeline

    monkeypatch.chdir(tmp_path)  # "assets/..." resolves against the package, not the cwd
    pipe = LatentActionPipeline.from_pretrained(f"assets/checkpoints/{name}")
    assert pipe.encoder is not None and pipe.lam is not None and pipe.decoder is not None
