"""The Compare tab: one transfer through 2 to 4 checkpoints side by side (handlers in
:mod:`studio.compare`), called inside a ``gr.Tab`` of :func:`studio.app.build_app`.

The same inputs as the Transfer tab (:func:`studio.tabs.pair_inputs`), its own multiselect of
checkpoints (the header's checkpoint box is not used here), one column per model (its video and
its numbers) and the frame sheet under them.
"""

from __future__ import annotations

import gradio as gr

from studio import compare, handlers
from studio.glossary import explain
from studio.tabs import MODEL, captioned_video, pair_inputs


def compare_tab(choices: list[str]) -> None:
    """Compare: two uploads and 2-4 checkpoints → each model's transfer, numbers, a frame sheet."""
    options = compare.comparable(choices)
    gr.Markdown(
        "Replay the **source**'s latent actions on the **target** with several checkpoints at "
        "once: how models with different latents move the same scene (paper Fig. S4). Pick "
        f"{compare.MIN_MODELS} to {compare.MAX_MODELS} checkpoints below (the checkpoint box "
        "above is not used here); each transfer runs as on the Transfer tab.",
        elem_classes="small-note",
    )
    source, target, settings = pair_inputs(
        "compare", ("source (whose actions)", "target (whose scene)")
    )
    with settings:
        models = gr.Dropdown(
            list(zip(compare.short_names(options), options)),
            value=compare.default_models(options),
            multiselect=True,
            allow_custom_value=True,
            label=f"checkpoints ({compare.MIN_MODELS} to {compare.MAX_MODELS})",
            info="latent action models with a decoder; or type a folder / hub id",
            elem_id="compare-models",
        )
        context = gr.Slider(
            1, 8, value=1, step=1, label="context steps", info="real target steps kept"
        )
        steps = gr.Slider(
            0, 31, value=0, step=1, label="predicted steps", info="0 = as many as both clips allow"
        )
        run = gr.Button("Compare", variant="primary", elem_id="compare-run", size="lg")
    columns, videos, lines = [], [], []
    with gr.Row(equal_height=False):
        for i in range(compare.MAX_MODELS):
            with gr.Column(visible=False, min_width=220) as column:
                videos.append(captioned_video(f"model {i + 1}", 300,
                                              elem_id=f"compare-video-{i}"))
                lines.append(gr.Markdown(elem_id=f"compare-line-{i}", elem_classes="small-note"))
            columns.append(column)
    gr.Markdown("**Frame sheet**: the same frames of the source, the target and each transfer.",
                elem_classes="small-note")
    sheet = gr.Image(  # the rows' captions are in the image: no label box over the first one
        label="frame sheet",
        show_label=False,
        type="filepath",
        interactive=False,
        elem_id="compare-sheet",
    )
    notes = gr.Markdown(elem_id="compare-notes", elem_classes="small-note")
    gr.Markdown(
        explain("transfer shift", "camera motion"), elem_id="compare-terms",
        elem_classes="small-note",
    )
    with gr.Accordion("numbers as the API returns them (JSON)", open=False):
        numbers = gr.JSON(label="compare")
    done = run.click(
        compare.compare,
        [source, target, models, context, steps],
        [sheet, numbers],
        api_name="compare",
        concurrency_id=MODEL,
    )
    done.success(compare.compare_videos, numbers, videos, api_name="compare_videos")
    done.success(compare.model_slots, numbers, [*columns, *lines], api_visibility="private")
    done.success(handlers.result_notes, numbers, notes, api_visibility="private")
