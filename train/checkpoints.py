"""Checkpoints of a run (docs/RELIABILITY.md): written to ``checkpoints/.tmp-<step>/``, completed
with ``trainer_state.json`` and renamed into place; ``checkpoints/last`` names the latest.
``--resume latest`` takes the last complete one (never a ``.tmp-*`` folder or one without
``trainer_state.json``, which it removes), so a run killed at any moment resumes with the losses
of an uninterrupted one. :class:`train.common.Trainer` is a :class:`CheckpointedRun`.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from accelerate import Accelerator

from train.job import RunConfig

TRAINER_STATE = "trainer_state.json"


class CheckpointedRun:
    """The checkpoints of a run folder, over an ``Accelerator`` (its ``save_state``); the main
    process writes, every rank waits.

    Attributes (set by the subclass):
        accelerator: the run's ``Accelerator``.
        run_dir: the run folder.
        run: the ``train`` section (``keep_last``).
        name: the job's name, kept in ``trainer_state.json``.
    """

    accelerator: Accelerator
    run_dir: Path
    run: RunConfig
    name: str

    @property
    def is_main(self) -> bool:
        return self.accelerator.is_main_process

    def print(self, *args: Any) -> None:
        self.accelerator.print(*args, flush=True)

    @property
    def checkpoint_dir(self) -> Path:
        return self.run_dir / "checkpoints"

    @staticmethod
    def is_complete(path: Path) -> bool:
        """A checkpoint folder that was renamed into place (``trainer_state.json`` is written
        last, before the rename)."""
        return path.name.isdigit() and (path / TRAINER_STATE).is_file()

    def complete_checkpoints(self) -> list[Path]:
        """The complete ``checkpoints/<step>`` folders, by step."""
        if not self.checkpoint_dir.is_dir():
            return []
        found = [p for p in self.checkpoint_dir.iterdir() if self.is_complete(p)]
        return sorted(found, key=lambda p: int(p.name))

    def find_checkpoint(self, resume: str) -> Path:
        """``latest`` (the checkpoint ``checkpoints/last`` names, else the highest complete
        one), a step number, or a folder.

        Raises:
            FileNotFoundError: no complete checkpoint where one was asked for.
        """
        if resume == "latest":
            pointer = self.checkpoint_dir / "last"
            named = pointer.read_text().strip() if pointer.is_file() else ""
            path = self.checkpoint_dir / named if named.isdigit() else None
            if path is None or not self.is_complete(path):
                complete = self.complete_checkpoints()  # killed before the pointer moved
                if not complete:
                    raise FileNotFoundError(f"{pointer}: missing; no complete checkpoint to resume "
                                            f"from in {self.checkpoint_dir}")
                path = complete[-1]
                if named:
                    self.print(f"{pointer} names {named}, which is incomplete or gone; resuming "
                               f"from {path.name}, the last complete checkpoint")
        elif resume.isdigit():
            path = self.checkpoint_dir / str(int(resume))
        else:
            path = Path(resume)
        if not (path / TRAINER_STATE).is_file():
            raise FileNotFoundError(f"{path / TRAINER_STATE}: missing; {path} is not a complete "
                                    "checkpoint of train/*.py")
        return path

    def last_good_checkpoint(self) -> str:
        """The checkpoint ``--resume latest`` would take, in words (for error messages)."""
        try:
            return f"the last good checkpoint is {self.find_checkpoint('latest')}"
        except FileNotFoundError:
            return f"no checkpoint was written yet in {self.checkpoint_dir}"

    def clean_checkpoints(self) -> list[str]:
        """Remove what a killed run left half-written: ``.tmp-*`` folders, ``.last.tmp`` and
        numbered folders without ``trainer_state.json`` (main process; returns their names)."""
        removed = []
        self.accelerator.wait_for_everyone()  # every rank has found its checkpoint
        if self.is_main and self.checkpoint_dir.is_dir():
            for p in sorted(self.checkpoint_dir.iterdir()):
                half = p.name.startswith(".tmp-") or p.name == ".last.tmp" or (
                    p.name.isdigit() and not self.is_complete(p))
                if half:
                    if p.is_dir():
                        shutil.rmtree(p, ignore_errors=True)
                    else:
                        p.unlink(missing_ok=True)
                    removed.append(p.name)
            if removed:
                self.print(f"removed half-written checkpoints in {self.checkpoint_dir}: "
                           f"{', '.join(removed)}")
        self.accelerator.wait_for_everyone()
        return removed

    def save_checkpoint(self, step: int) -> Path:
        """``accelerator.save_state`` into ``checkpoints/.tmp-<step>``, renamed to
        ``checkpoints/<step>`` when complete; updates ``last`` and keeps the last ``keep_last``.

        ``trainer_state.json`` is written last, so a folder without it is incomplete; a kill at
        any moment leaves either a ``.tmp-*`` folder (ignored and removed on resume) or a complete
        checkpoint (:meth:`publish_checkpoint`).
        """
        acc, final = self.accelerator, self.checkpoint_dir / str(step)
        tmp = self.checkpoint_dir / f".tmp-{step}"
        if self.is_main:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp))
        acc.wait_for_everyone()
        if self.is_main:
            state = {"step": step, "num_processes": acc.num_processes, "job": self.name}
            (tmp / TRAINER_STATE).write_text(json.dumps(state) + "\n")
            self.publish_checkpoint(tmp, step)
        acc.wait_for_everyone()
        return final

    def publish_checkpoint(self, tmp: Path, step: int) -> Path:
        """Main process: make the complete checkpoint in ``tmp`` the one of ``step`` (rename it),
        point ``last`` at it (atomically) and keep the last ``keep_last``."""
        final = self.checkpoint_dir / str(step)
        shutil.rmtree(final, ignore_errors=True)
        tmp.rename(final)
        pointer_tmp = self.checkpoint_dir / ".last.tmp"
        pointer_tmp.write_text(f"{step}\n")
        os.replace(pointer_tmp, self.checkpoint_dir / "last")
        steps = sorted(int(p.name) for p in self.checkpoint_dir.iterdir() if p.name.isdigit())
        for old in steps[: -self.run.keep_last]:
            shutil.rmtree(self.checkpoint_dir / str(old), ignore_errors=True)
        return final
