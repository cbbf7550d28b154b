"""lam-studio's web app: ``python app.py [--checkpoint DIR_OR_HUB_ID] [--host 127.0.0.1]
[--port 7860] [--share]`` (DESIGN.md §8). The studio itself lives in :mod:`studio`."""

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

from studio.app import main

if __name__ == "__main__":
    main()
