"""One writer per run folder: an exclusive lock on ``<run_dir>/.lock`` held while a training runs.

Two trainings pointed at the same ``train.output_dir`` would interleave their checkpoints and
``metrics.jsonl``; the second one is refused at its start with a message naming the folder and
the process that holds it. The lock is an advisory ``flock`` on a file descriptor, so the kernel
drops it when the holder exits, however it exits (``kill -9`` included): a stale ``.lock`` file
never blocks a resume. Where ``fcntl`` does not exist (Windows) nothing is locked.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

LOCK_NAME = ".lock"
_HELD: dict[Path, int] = {}  # folder -> descriptor, for the locks this process holds


class RunFolderBusyError(RuntimeError):
    """Another process is training into the run folder."""


def lock_run_dir(run_dir: Path) -> None:
    """Take the run folder's lock for this process (again, if this process held it already: a
    run retried in the same process after an error).

    Raises:
        RunFolderBusyError: another process holds it.
    """
    if fcntl is None:
        return
    run_dir = Path(run_dir).resolve()
    release_run_dir(run_dir)
    fd = os.open(run_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunFolderBusyError(
            f"{run_dir}: another training (pid {holder}) is writing to this folder; wait for it "
            "to end, or give this run another train.output_dir"
        ) from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _HELD[run_dir] = fd


def release_run_dir(run_dir: Path) -> None:
    """Drop this process's lock on the folder, if it holds one."""
    fd = _HELD.pop(Path(run_dir).resolve(), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor releases the flock
