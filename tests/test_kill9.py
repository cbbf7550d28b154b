"""A real ``kill -9`` of a two-process training (``ACCELERATE_USE_CPU=1 accelerate launch
--multi_gpu``): killed once while a checkpoint is being written and once after one was written,
``--resume latest`` continues from the last complete checkpoint and logs the losses of the
uninterrupted run, step for step; half-written checkpoints are never picked and are removed on
resume. Plus fast in-process checks of the same rules (which checkpoint ``latest`` is, what is
removed, a metrics line cut short). docs/RELIABILITY.md gives the measured numbers.

The launcher and its two workers are killed together: torch's elastic agent starts each worker in
its own session, so SIGKILL to the launcher's process group alone would leave both workers
training (measured); the test sends SIGKILL to every process group of the tree at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from accelerate.state import AcceleratorState, GradientState

from train.common import TRAINER_STATE, Trainer
from train.config import load_job_config

from .helpers import free_port
from .pausing_lam import SAVE_PAUSE_ENV

ROOT = Path(__file__).resolve().parents[1]
TINY_LAM = ROOT / "train" / "configs" / "tiny_lam.yaml"
PROCESSES = 2
# noisy latents: the resumed run must restore each rank's random state exactly
ARGS = ("train.steps=12", "train.save_every=3", "train.eval_every=0", "train.keep_last=2",
        "lam.regularizer.kind=noisy")


def launch(run: Path, *extra: str, pause: str = "") -> subprocess.Popen:
    """``accelerate launch`` of train/lam.py (:mod:`tests.pausing_lam`: with a pause before the
    checkpoint that ``pause`` names is made final) on ``PROCESSES`` CPU processes, in a new
    session."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1",
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT), "TMPDIR": str(run.parent),
           SAVE_PAUSE_ENV: pause}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
           "--num_processes", str(PROCESSES), "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", str(free_port()),
           str(ROOT / "tests" / "pausing_lam.py"), "--config", str(TINY_LAM),
           f"train.output_dir={run}", *ARGS, *extra]
    log = (run.parent / f"{run.name}.log").open("a")
    return subprocess.Popen(cmd, cwd=run.parent, env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def log_of(run: Path) -> str:
    return (run.parent / f"{run.name}.log").read_text()


def finish(proc: subprocess.Popen, run: Path, timeout: float = 240) -> None:
    assert proc.wait(timeout) == 0, log_of(run)[-4000:]


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, run: Path,
             timeout: float = 240) -> None:
    end = time.time() + timeout
    while not condition():
        assert proc.poll() is None, f"the run ended before the kill:\n{log_of(run)[-4000:]}"
        assert time.time() < end, f"timed out:\n{log_of(run)[-4000:]}"
        time.sleep(0.05)


def kill_9(proc: subprocess.Popen) -> None:
    """SIGKILL the launcher and its workers (each its own process group) at once."""
    tree = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children(recursive=True)]
    groups = set()
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            groups.add(os.getpgid(p.pid))
    for group in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    proc.wait(30)
    _, alive = psutil.wait_procs(tree, timeout=30)
    assert not alive, alive


def logged(run: Path, key: str = "loss") -> dict[int, float]:
    lines = []
    for ln in (run / "metrics.jsonl").read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # a line cut short by the kill
            lines.append(json.loads(ln))
    return {d["step"]: d[key] for d in lines if key in d}


def checkpoints(run: Path) -> list[str]:
    return sorted(p.name for p in (run / "checkpoints").iterdir())


@pytest.mark.slow
def test_kill_9_twice_then_resume_gives_the_uninterrupted_losses(tmp_path):
    started = time.time()
    full = tmp_path / "full"
    reference = launch(full)  # the uninterrupted run
    finish(reference, full)

    cut = tmp_path / "cut"
    ckpt = cut / "checkpoints"
    # (b) killed while checkpoint 6 is being written: its state is complete in .tmp-6, the
    # pause (tests/pausing_lam.py) comes before the rename
    proc = launch(cut, pause="6:300")
    wait_for(lambda: (ckpt / ".tmp-6" / TRAINER_STATE).is_file(), proc, cut)
    kill_9(proc)
    assert (ckpt / "last").read_text().strip() == "3"
    assert checkpoints(cut) == [".tmp-6", "3", "last"]

    # resume from 3, the last complete checkpoint; (a) killed after checkpoint 9 was written,
    # while training steps 10-12 (the pause holds checkpoint 12 back so the run cannot finish)
    proc = launch(cut, "--resume", "latest", pause="12:300")
    wait_for(lambda: max(logged(cut), default=0) >= 10, proc, cut)
    kill_9(proc)
    print(f"(a) killed after step {max(logged(cut))} was logged; "
          f"checkpoints left: {checkpoints(cut)}")
    assert (ckpt / "last").read_text().strip() == "9"
    assert not (ckpt / ".tmp-6").exists()  # removed on resume
    assert "removed half-written checkpoints" in log_of(cut) and ".tmp-6" in log_of(cut)
    assert f"resumed from {ckpt / '3'} at step 3" in log_of(cut)

    proc = launch(cut, "--resume", "latest")
    finish(proc, cut)
    assert f"resumed from {ckpt / '9'} at step 9" in log_of(cut)
    assert checkpoints(cut) == ["12", "9", "last"] and (cut / "final" / "config.json").is_file()
    want, got = logged(full), logged(cut)
    assert sorted(want) == sorted(got) == list(range(1, 13))
    for step in want:  # the steps replayed after each kill included
        assert got[step] == pytest.approx(want[step], abs=1e-6, rel=0), step
    state = json.loads((ckpt / "12" / TRAINER_STATE).read_text())
    assert state["num_processes"] == PROCESSES
    print(f"kill -9 test: {time.time() - started:.1f} s")


# ---------------------------------------------------------------- the rules, in-process
@pytest.fixture
def trainer(tmp_path):
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    job = load_job_config(TINY_LAM, [f"train.output_dir={tmp_path / 'run'}"])
    yield Trainer(job, "lam")
    AcceleratorState._reset_state(True)
    GradientState._reset_state()


def fake_checkpoint(trainer: Trainer, step: int, complete: bool = True) -> Path:
    path = trainer.checkpoint_dir / str(step)
    path.mkdir(parents=True)
    (path / "model.safetensors").write_bytes(b"")
    if complete:
        (path / TRAINER_STATE).write_text(json.dumps({"step": step}))
    return path


def test_latest_is_the_last_complete_checkpoint(trainer):
    with pytest.raises(FileNotFoundError, match="no complete checkpoint to resume from"):
        trainer.find_checkpoint("latest")
    three, six = fake_checkpoint(trainer, 3), fake_checkpoint(trainer, 6)
    fake_checkpoint(trainer, 9, complete=False)  # e.g. a kill while an old one was deleted
    (trainer.checkpoint_dir / ".tmp-12").mkdir()
    (trainer.checkpoint_dir / ".tmp-12" / TRAINER_STATE).write_text("{}")  # never picked
    # killed between the rename of 6 and the update of the pointer: no pointer yet
    assert trainer.find_checkpoint("latest") == six
    (trainer.checkpoint_dir / "last").write_text("3\n")
    assert trainer.find_checkpoint("latest") == three  # the pointer wins when it is complete
    (trainer.checkpoint_dir / "last").write_text("9\n")
    assert trainer.find_checkpoint("latest") == six  # ... and is ignored when it is not
    with pytest.raises(FileNotFoundError, match=r"9/trainer_state\.json: missing"):
        trainer.find_checkpoint("9")
    (trainer.checkpoint_dir / ".last.tmp").write_text("12\n")
    assert sorted(trainer.clean_checkpoints()) == [".last.tmp", ".tmp-12", "9"]
    assert checkpoints(trainer.run_dir) == ["3", "6", "last"]
    assert trainer.last_good_checkpoint() == f"the last good checkpoint is {six}"


def test_a_metrics_line_cut_short_by_a_kill_is_dropped(trainer):
    lines = [json.dumps({"step": s, "loss": 1.0 / s}) for s in range(1, 6)]
    trainer.metrics_path.write_text("\n".join(lines) + '\n{"step": 6, "lo')
    trainer._truncate_metrics(3)
    assert trainer.metrics_path.read_text() == "".join(ln + "\n" for ln in lines[:3])
