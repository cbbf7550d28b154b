"""One writer per run folder (train/runlock.py): a second training into the same folder is refused
while the first runs, and a killed holder leaves nothing that blocks a resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from train import lam
from train.config import load_job_config
from train.runlock import LOCK_NAME, RunFolderBusyError, lock_run_dir, release_run_dir

ROOT = Path(__file__).resolve().parent.parent
HOLD = "import sys, time; from train.runlock import lock_run_dir; lock_run_dir(sys.argv[1]); " \
       "print('locked', flush=True); time.sleep(60)"

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="flock: POSIX only"),
    pytest.mark.usefixtures("fresh_accelerate_state"),  # tests/conftest.py
]


def holder(folder: Path) -> subprocess.Popen:
    """Another process holding the folder's lock (until killed)."""
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_writer_is_refused_and_a_killed_one_blocks_nothing(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    proc = holder(run)
    try:
        with pytest.raises(RunFolderBusyError, match=rf"another training \(pid {proc.pid}\)"):
            lock_run_dir(run)
        job = load_job_config(ROOT / "train" / "configs" / "tiny_pixel_lam.yaml",
                              [f"train.output_dir={run}", "train.steps=1", "train.eval_every=0"])
        with pytest.raises(RunFolderBusyError, match=r"give this run another train\.output_dir"):
            lam.train(job)
        assert not (run / "final").exists() and not (run / "checkpoints").exists()
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert (run / LOCK_NAME).is_file()  # stale file, no lock: the kernel dropped it
    lock_run_dir(run)
    lock_run_dir(run)  # again in the same process (a run retried after an error): allowed
    release_run_dir(run)


def test_a_training_releases_its_folder(tmp_path):
    run = tmp_path / "run"
    job = load_job_config(ROOT / "train" / "configs" / "tiny_pixel_lam.yaml",
                          [f"train.output_dir={run}", "train.steps=1", "train.eval_every=0"])
    lam.train(job)
    proc = holder(run)  # another process can take it: the finished run let it go
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
