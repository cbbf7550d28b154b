"""``train/lam.py`` whose main process sleeps before a chosen checkpoint is made final, so that
``tests/test_kill9.py`` can ``kill -9`` a run while that checkpoint is written: run it as
``accelerate launch tests/pausing_lam.py …`` with ``LAM_TEST_SAVE_PAUSE=<step>:<seconds>``. The
pause wraps :meth:`train.common.Trainer.publish_checkpoint` here, not in the training code.
"""

from __future__ import annotations

import os
import time

from train import lam
from train.common import Trainer

SAVE_PAUSE_ENV = "LAM_TEST_SAVE_PAUSE"


def pause_before_publishing() -> None:
    """Wrap ``Trainer.publish_checkpoint``: at the step ``LAM_TEST_SAVE_PAUSE`` names, sleep its
    seconds once ``.tmp-<step>/`` is complete, before it is renamed into place."""
    publish = Trainer.publish_checkpoint
    at, _, seconds = os.environ.get(SAVE_PAUSE_ENV, "").partition(":")

    def paused(self, tmp, step):
        if at.strip() == str(step):
            self.print(f"{SAVE_PAUSE_ENV}: checkpoint {step} written to .tmp-{step}, sleeping "
                       f"{seconds} s before renaming it")
            time.sleep(float(seconds))
        return publish(self, tmp, step)

    Trainer.publish_checkpoint = paused


if __name__ == "__main__":
    pause_before_publishing()
    lam.main()
