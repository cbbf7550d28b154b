"""The studio's Gradio Blocks (docs/DESIGN.md#studio) and its command line
(docs/DESIGN.md#entry-points).

``python app.py [--checkpoint DIR_OR_HUB_ID] [--host 127.0.0.1] [--port 7860] [--share]``.
Tabs: Transfer (with Cycle), Compare, Leakage, Latent space, Control, Training. Public API
endpoints: ``transfer`` and ``cycle`` (two videos in → video + numbers out, see
:mod:`studio.handlers`), ``compare`` (two videos and 2-4 checkpoints in → frame sheet + numbers
out, see :mod:`studio.compare`).
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import sys

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr
import torch

from studio import control, latent, tabs, tabs_compare, tabs_control
from studio.media import MAX_FRAMES, MAX_SECONDS
from studio.models import PIPELINES, checkpoint_choices, describe

MAX_FILE_SIZE = "200mb"
CONCURRENCY = 2
DELETE_CACHE = (1800, 3600)  # every 30 min, files older than an hour
THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="amber", neutral_hue="slate")
CSS = """
.gradio-container {max-width: 1280px !important; margin: auto;}
#header h1 {margin-bottom: 0.2em;}
#header p {color: var(--body-text-color-subdued); margin-top: 0;}
.arrows button {min-width: 56px; font-size: 1.3em;}
.small-note {font-size: 0.9em; color: var(--body-text-color-subdued);}
/* videos whose frames carry captions: their download/share buttons sit in a strip above the
   video, not over the last panel's caption */
.captioned-video .wrap:not(.default) {padding-top: 30px; box-sizing: border-box;}
/* a long checkpoint name ends in an ellipsis before the dropdown's arrow, not under it */
.block input[role="combobox"] {padding-right: 30px; text-overflow: ellipsis;}
/* the upload icon below the file box's floating label, not behind it */
#latent-files .upload-container {padding-top: 34px; box-sizing: border-box;}
/* metric names with their formula in a tooltip (studio.glossary) */
abbr.term {cursor: help; text-decoration: underline dotted;}
"""
HEADER = f"""
# lam-studio
Latent action world models, learned from unlabeled video ("Learning Latent Action World Models In
The Wild", Garrido et al.). An inverse dynamics model infers a **latent action** between two
frames; a world model predicts the next frame from it. Transfer the actions of one video onto
another (with one checkpoint, or several side by side), measure future leakage and cycle
consistency, compare inferred with sampled latents, drive a world model with real actions through
a controller, and follow training runs. Uploads are
read at the model's frame rate and capped at {MAX_SECONDS:g} s / {MAX_FRAMES} frames.
"""


def run_all(*scripts: str) -> str:
    """One page-load script (``launch(js=...)`` takes one function) calling each of ``scripts``
    (each a ``() => {...}`` function)."""
    return "() => {\n" + "\n".join(f"  ({s})();" for s in scripts) + "\n}"


SCRIPTS = run_all(tabs.CLICK_BRIDGE, tabs_control.ARROW_KEYS)

NO_CHECKPOINT = (
    "⚠ no checkpoint in `assets/checkpoints/` yet: type a pipeline folder or hub id, or start "
    "the studio with `python app.py --checkpoint DIR_OR_HUB_ID`"
)


def checkpoint_info(name: str | None) -> str:
    """A line about the chosen checkpoint, or what is wrong with it."""
    if not name:
        return NO_CHECKPOINT
    try:
        return describe(PIPELINES.get(name), str(name))
    except Exception as e:  # shown in the header, never raised
        return f"⚠ {e}"


def build_app(checkpoint: str | None = None) -> gr.Blocks:
    """The studio's Blocks; ``checkpoint`` (a folder or hub id) is listed first and chosen, else
    the flagship (:func:`studio.models.default_checkpoint`). The Control tab opens on
    ``checkpoint`` if it has a controller, else on the first shipped checkpoint that has one."""
    choices = checkpoint_choices(checkpoint)
    default = choices[0] if choices else None
    with gr.Blocks(title="lam-studio", delete_cache=DELETE_CACHE) as demo:
        with gr.Row(equal_height=True):
            gr.Markdown(HEADER, elem_id="header")
        with gr.Row():
            chosen = gr.Dropdown(
                choices,
                value=default,
                allow_custom_value=True,
                scale=2,
                label="checkpoint (a shipped one, or type a folder / hub id)",
                elem_id="checkpoint",
            )
            info = gr.Markdown(NO_CHECKPOINT, elem_classes="small-note")
        for event in (chosen.change, demo.load):  # opening a checkpoint waits for the page
            event(checkpoint_info, chosen, info, api_visibility="private")
        with gr.Tabs():
            with gr.Tab("Transfer", id="transfer"):
                tabs.transfer_tab(chosen)
            with gr.Tab("Compare", id="compare"):
                tabs_compare.compare_tab(choices)
            with gr.Tab("Leakage", id="leakage"):
                tabs.leakage_tab(chosen, choices)
            with gr.Tab("Latent space", id="latent"):
                tabs.latent_tab(chosen, choices)
            with gr.Tab("Control", id="control"):
                driven = control.control_checkpoint(choices, checkpoint)
                tabs_control.control_tab(demo, chosen, choices, driven)
            with gr.Tab("Training", id="training"):
                tabs.training_tab(demo)
    return demo


def launch(
    demo: gr.Blocks, host: str = "127.0.0.1", port: int | None = 7860, share: bool = False, **kwargs
):
    """Queue (bounded concurrency) and serve ``demo``; returns ``(app, local_url, share_url)``."""
    demo.queue(default_concurrency_limit=CONCURRENCY, max_size=64)
    return demo.launch(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=MAX_FILE_SIZE,
        theme=THEME,
        css=CSS,
        js=SCRIPTS,
        footer_links=["api", "settings"],
        **kwargs,
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line of ``python app.py`` (docs/DESIGN.md#entry-points)."""
    parser = argparse.ArgumentParser(description="lam-studio: the web app (docs/DESIGN.md#studio)")
    parser.add_argument(
        "--checkpoint",
        help="pipeline folder or hub id (default: the shipped checkpoints in assets/checkpoints/)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface (default: loopback only; another one exposes the studio, with a warning)",
    )
    parser.add_argument("--port", type=int, default=7860)
    parser.add_argument(
        "--share",
        action="store_true",
        help="a public Gradio link (needs the internet; off by default; prints a warning)",
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads per request (default 1: requests run side by side, and batch-1 "
        "inference of the small models gains little from more)",
    )
    parser.add_argument(
        "--no-umap-warmup",
        action="store_true",
        help="skip compiling UMAP in the background at start-up",
    )
    return parser.parse_args(argv)


def exposure_warnings(host: str, share: bool) -> list[str]:
    """What serving on ``host`` (and a share link) exposes, one warning each; none on loopback.

    The studio has no login: whoever reaches it can run every action of every tab (transfers,
    opening any folder of this machine as a checkpoint, starting a training run) and fetch the
    uploads and results in its cache by URL."""
    warnings = []
    if not _loopback(host):
        warnings.append(
            f"--host {host}: the studio listens beyond this machine, with no login: anyone who "
            "can reach this port can use every tab (open any folder here as a checkpoint, start "
            "training runs) and fetch uploads and results by URL. Use 127.0.0.1 (the default) "
            "unless this network is yours."
        )
    if share:
        warnings.append(
            "--share: a public gradio.live link (it needs the internet): anyone with the link can "
            "use every tab on this machine (open any folder here as a checkpoint, start training "
            "runs) and fetch uploads and results by URL. Share it only with people you trust and "
            "stop the studio when done."
        )
    return warnings


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name other than localhost
        return False


def main(argv: list[str] | None = None) -> None:
    """``python app.py``: warn about what a non-loopback host or a share link exposes, warm UMAP in
    the background, build the Blocks, serve."""
    args = parse_args(argv)
    for warning in exposure_warnings(args.host, args.share):
        print(f"* lam-studio: WARNING: {warning}", file=sys.stderr, flush=True)
    torch.set_num_threads(max(1, args.threads))
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("* lam-studio: %(message)s"))
    logging.getLogger("studio").addHandler(handler)
    logging.getLogger("studio").setLevel(logging.INFO)
    if not args.no_umap_warmup:
        latent.warm_umap_in_background()
    launch(build_app(args.checkpoint), args.host, args.port, args.share)
