"""Write ``assets/manifest.json``: every shipped file with its sha256, size and the command that
produced it. ``tests/test_assets.py`` checks the files against it, so a silently changed
checkpoint is caught. ``python train/recipes/manifest.py [--check]``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ASSETS = ROOT / "assets"
MANIFEST = ASSETS / "manifest.json"
COMMANDS = {
    "checkpoints": "bash train/recipes/pixel.sh",
    "clips": "python train/recipes/example_clips.py",
    "report": "python -m lam_core.eval.report --checkpoints assets/checkpoints --out assets/report",
}
# the grid flagship and its controllers (docs/RESULTS.md, "Objects move")
GRID_COMMAND = ("python train/lam.py --config train/configs/pixel_lam_cells.yaml, then "
                "train/controller.py on it; train/export.py in fp16")


# the deterministic baseline, from the grid flagship's world model (docs/RESULTS.md)
DETERMINISTIC_COMMAND = ("python train/lam.py --config train/configs/pixel_lam_cells.yaml "
                         "--init-from assets/checkpoints/pixel-grid lam.kind=deterministic "
                         "lam.latent_grid=1 lam.cell_modulation=false train.steps=600; "
                         "train/export.py in fp16")


def command(rel: Path) -> str:
    """How the shipped file ``rel`` (relative to assets/) was made."""
    folder = rel.parts[1] if rel.parts[0] == "checkpoints" and len(rel.parts) > 1 else ""
    if folder == "deterministic-grid":
        return DETERMINISTIC_COMMAND
    if folder.endswith("-grid"):
        return GRID_COMMAND
    return COMMANDS.get(rel.parts[0], "")


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build() -> dict:
    files = []
    for p in sorted(ASSETS.rglob("*")):
        if not p.is_file() or p == MANIFEST:
            continue
        rel = p.relative_to(ASSETS)
        files.append({"file": str(rel), "sha256": sha256(p), "size": p.stat().st_size,
                      "command": command(rel)})
    return {"total_bytes": sum(f["size"] for f in files), "files": files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="compare instead of writing")
    args = ap.parse_args()
    manifest = build()
    if args.check:
        old = json.loads(MANIFEST.read_text())
        ok = old["files"] == manifest["files"]
        print("manifest matches" if ok else "manifest differs from the files")
        sys.exit(0 if ok else 1)
    MANIFEST.write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"{len(manifest['files'])} files, {manifest['total_bytes'] / 1e6:.1f} MB → {MANIFEST}")


if __name__ == "__main__":
    main()
