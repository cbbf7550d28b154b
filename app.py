"""lam-studio's web app: ``python app.py [--checkpoint DIR_OR_HUB_ID] [--host 127.0.0.1]
[--port 7860] [--share]`` (docs/DESIGN.md#entry-points). The studio itself lives in
:mod:`studio`."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported
# before torch is imported: idle OpenMP threads sleep instead of spinning, so requests side by side
# (and other work on a shared machine) keep their cores (docs/PERFORMANCE.md measured a transfer's
# model step at 0.9-1.3 s with it and 8.5-32 s without, under load)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from studio.app import main

if __name__ == "__main__":
    main()
