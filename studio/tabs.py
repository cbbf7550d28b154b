"""The Transfer, Leakage, Latent space and Training tabs as Gradio components wired to the handler
modules (the Control tab, which has its own checkpoint box, is in :mod:`studio.tabs_control`).

Each ``*_tab`` function is called inside a ``gr.Tab`` of :func:`studio.app.build_app`. Output
videos carry their captions in the frames, so their Gradio labels are hidden (the label box would
cover the captions).
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from studio import handlers, latent, models, training
from studio.glossary import explain

MODEL = "model"  # one concurrency group for every event that runs a model: the queue's limit
# (studio.app.CONCURRENCY) then bounds them together, not per event (Gradio's default)

# Gradio's Plot has no select event (only change), so a click on a Plotly point is bridged in the
# browser: the point's customdata (its index) goes into the "point index" box, then "Show point".
CLICK_BRIDGE = """() => {
  const attach = () => {
    const plot = document.querySelector('#latent-plot .js-plotly-plot');
    if (!plot || plot.__lamClick || typeof plot.on !== 'function') return;
    plot.__lamClick = true;
    plot.on('plotly_click', (event) => {
      const point = event.points && event.points[0];
      const input = document.querySelector('#latent-index input');
      if (!point || point.customdata === undefined || !input) return;
      input.value = String(point.customdata);
      input.dispatchEvent(new Event('input', {bubbles: true}));
      setTimeout(() => document.querySelector('#latent-show').click(), 100);
    });
  };
  setInterval(attach, 700);
}"""


def pair_inputs(prefix: str, names: tuple[str, str]) -> tuple[gr.Video, gr.Video, gr.Column]:
    """Two uploads side by side with the example pairs below them; returns both videos and the
    (open) settings column on their right, for the tab to fill."""
    with gr.Row():
        with gr.Column(scale=3):
            with gr.Row(equal_height=True):
                first = gr.Video(
                    label=names[0], sources=["upload"], elem_id=f"{prefix}-source", height=220
                )
                second = gr.Video(
                    label=names[1], sources=["upload"], elem_id=f"{prefix}-target", height=220
                )
            pairs = handlers.example_pairs()
            if pairs:
                gr.Examples(
                    [list(p) for p in pairs], inputs=[first, second], examples_per_page=8,
                    label="example pairs (assets/clips/): click one",
                    example_labels=[" → ".join(Path(c).stem for c in p) for p in pairs],
                )
            with gr.Row():
                seed = gr.Number(0, label="or a held-out MiniWild pair: seed", precision=0)
                load = gr.Button("Load MiniWild pair", size="md", min_width=160)
        settings = gr.Column(scale=1, min_width=260)
    load.click(handlers.miniwild_pair, seed, [first, second], api_visibility="private")
    return first, second, settings


CAPTIONED = "captioned-video"  # a video whose frames carry captions: its buttons sit above it


def captioned_video(label: str, height: int, **options) -> gr.Video:
    """An output video whose frames carry their own captions (no label of its own; it plays on
    a loop)."""
    return gr.Video(label=label, show_label=False, elem_classes=CAPTIONED, interactive=False,
                    autoplay=True, loop=True, height=height, **options)


def _results(
    video_label: str, name: str, table_label: str, plot_label: str, terms: tuple[str, ...] = ()
) -> tuple[gr.Video, gr.Dataframe, gr.Plot, gr.JSON, gr.Markdown]:
    """The output block of a pair handler: the captioned video (``#{name}-output``), the notes
    under it (``#{name}-notes``: how the uploads were sampled or cut), the metric table beside a
    plot with the metrics' meanings (``terms``, :mod:`studio.glossary`) under it, and the numbers
    as the API returns them."""
    video = captioned_video(video_label, 320, elem_id=f"{name}-output")
    notes = gr.Markdown(elem_id=f"{name}-notes", elem_classes="small-note")
    with gr.Row():
        table = gr.Dataframe(
            headers=["metric", "value", "meaning"],
            label=table_label,
            interactive=False,
            wrap=True,
            column_widths=["22%", "14%", "64%"],
            scale=2,
        )
        plot = gr.Plot(label=plot_label, scale=3)
    if terms:
        gr.Markdown(explain(*terms), elem_id=f"{name}-terms", elem_classes="small-note")
    with gr.Accordion("numbers as the API returns them (JSON)", open=False):
        numbers = gr.JSON(label=name)
    return video, table, plot, numbers, notes


def transfer_tab(checkpoint: gr.Dropdown) -> None:
    """Transfer: two uploads → source | target | transferred video, errors, latents; Cycle."""
    gr.Markdown(
        "Replay the **source**'s latent actions on the **target**: the target keeps its "
        "first *context* steps, then moves as the source did. The last two panels are the "
        "target under its own actions and the difference (×4): what the source's actions changed.",
        elem_classes="small-note",
    )
    trained = gr.Markdown(models.trained_on(checkpoint.value), elem_id="transfer-trained-on")
    checkpoint.change(models.trained_on, checkpoint, trained, api_visibility="private")
    source, target, settings = pair_inputs(
        "transfer", ("source (whose actions)", "target (whose scene)")
    )
    with settings:
        context = gr.Slider(
            1, 8, value=1, step=1, label="context steps", info="real target steps kept"
        )
        steps = gr.Slider(
            0, 31, value=0, step=1, label="predicted steps", info="0 = as many as both clips allow"
        )
        run = gr.Button("Transfer", variant="primary", elem_id="transfer-run", size="lg")
        cycle_run = gr.Button("Cycle A → B → A", elem_id="cycle-run")
    video, table, latents_plot, numbers, notes = _results(
        "source | target | target + source's actions | target + own actions | change",
        "transfer", "errors", "latent actions over time", ("feature L1", "transfer shift"),
    )
    done = run.click(
        handlers.transfer,
        [source, target, checkpoint, context, steps],
        [video, numbers],
        api_name="transfer",
        concurrency_id=MODEL,
    )
    done.success(
        handlers.transfer_details, numbers, [table, latents_plot], api_visibility="private"
    )
    done.success(handlers.result_notes, numbers, notes, api_visibility="private")
    with gr.Accordion("the same transfer at the model's resolution (64 px)", open=False):
        model_out = gr.Video(label="model resolution", interactive=False,
                             elem_id="transfer-model-output", height=220)
    done.success(handlers.model_video, numbers, model_out, api_name="transfer_model_video")

    gr.Markdown(
        "### Cycle A → B → A\nInfer A's actions, apply them to B, re-infer them from the "
        "transferred B, apply those to A. A ratio near 1 means the actions survived the "
        "trip (paper Table 2: ×1.03–×1.34)."
    )
    cycle_video, cycle_table, cycle_plot, cycle_numbers, cycle_notes = _results(
        "A | A direct | B with A's actions | A cycled", "cycle", "cycle", "per-step error",
        ("feature L1", "ratio"),
    )
    done = cycle_run.click(
        handlers.cycle,
        [source, target, checkpoint, context],
        [cycle_video, cycle_numbers],
        api_name="cycle",
        concurrency_id=MODEL,
    )
    done.success(
        handlers.cycle_details, cycle_numbers, [cycle_table, cycle_plot], api_visibility="private"
    )
    done.success(handlers.result_notes, cycle_numbers, cycle_notes, api_visibility="private")
    with gr.Accordion("the same cycle at the model's resolution (64 px)", open=False):
        cycle_model_out = gr.Video(label="model resolution", interactive=False,
                                   elem_id="cycle-model-output", height=220)
    done.success(handlers.model_video, cycle_numbers, cycle_model_out,
                 api_name="cycle_model_video")


def leakage_tab(checkpoint: gr.Dropdown, choices: list[str]) -> None:
    """Leakage: two clips and a cut → stitched video, error curves with and without the cut, and
    the same for a baseline (the shipped deterministic model when there is one)."""
    gr.Markdown(
        "Stitch the end of clip **B** onto clip **A** at a cut step. If the latent action "
        "could carry the whole next frame (future leakage), the world model would predict "
        "the cut as well as any other step; a good model's error jumps there (paper "
        "Table 1).",
        elem_classes="small-note",
    )
    a, b, settings = pair_inputs("leakage", ("clip A", "clip B"))
    with settings:
        cut = gr.Slider(0, 31, value=0, step=1, label="cut step", info="0 = the middle step")
        baseline = gr.Dropdown(
            ["", *choices], value=models.default_baseline(choices) or "", allow_custom_value=True,
            label="baseline (same clips and cut)", elem_id="leakage-baseline",
            info="a deterministic model sees no latent, so nothing can leak through it",
        )
        run = gr.Button("Measure leakage", variant="primary", elem_id="leakage-run", size="lg")
    with gr.Row():
        video = captioned_video("stitched | A", 300, scale=2)
        with gr.Column(scale=3):
            summary = gr.Markdown()
            plot = gr.Plot(label="one-step error")
            gr.Markdown(explain("feature L1"), elem_classes="small-note")
    with gr.Accordion("numbers (JSON)", open=False):
        numbers = gr.JSON(label="leakage")
    run.click(
        handlers.leakage,
        [a, b, checkpoint, cut, baseline],
        [video, plot, summary, numbers],
        api_name="leakage",
        concurrency_id=MODEL,
    )


def latent_tab(checkpoint: gr.Dropdown, choices: list[str]) -> None:
    """Latent space: UMAP of inferred vs sampled latents per checkpoint, a point's frame pair."""
    gr.Markdown(
        "Latent actions **inferred** by the IDM from clips against latents **sampled** "
        "without a video (prior, SGLD or codebook: paper App. B), embedded together with "
        "UMAP. Where the two clouds separate, sampled latents are actions the model never "
        "saw.",
        elem_classes="small-note",
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            picked = gr.Dropdown(
                choices,
                value=choices[:1],
                multiselect=True,
                allow_custom_value=True,
                label="checkpoints",
            )
            source = gr.Radio(list(latent.SOURCES), value=latent.SOURCES[0], label="inferred from")
            files = gr.File(
                label="clips (for 'uploaded clips')",
                file_count="multiple",
                file_types=["video"],
                height=150,
                elem_id="latent-files",
            )
            clips = gr.Slider(4, 64, value=16, step=4, label="held-out clips")
            run = gr.Button("Embed", variant="primary", elem_id="latent-run")
            summary = gr.Markdown()
        with gr.Column(scale=3):
            plot = gr.Plot(label="UMAP of latent actions", elem_id="latent-plot")
            with gr.Row():
                index = gr.Number(
                    0,
                    label="point index",
                    info="hover a point to read its index; clicking a point fills it in",
                    precision=0,
                    elem_id="latent-index",
                    scale=1,
                )
                show = gr.Button("Show point", scale=0, min_width=120, elem_id="latent-show")
            with gr.Row():
                pair = gr.Image(
                    label="the point's frame pair (t, t+1)",
                    show_label=False,
                    interactive=False,
                    height=220,
                    scale=2,
                    elem_id="latent-pair",
                )
                info = gr.Markdown()
    state = gr.State()
    run.click(
        latent.latent_space,
        [picked, source, files, clips],
        [plot, summary, state],
        api_visibility="private",
        concurrency_id=MODEL,
    )
    for event in (show.click, index.submit):
        event(latent.point_pair, [state, index], [pair, info, plot], api_visibility="private")
    checkpoint.change(
        lambda c, p: p if p else [c], [checkpoint, picked], picked, api_visibility="private"
    )


def training_tab(demo: gr.Blocks) -> None:
    """Training: runs and their curves (the shipped models' own among them), the launch command
    of a recipe, a background CPU run."""
    gr.Markdown(
        "Runs under the folder below and the shipped models' own training curves "
        "(`shipped: …`, from their `metrics.jsonl` in `assets/checkpoints/`).",
        elem_classes="small-note",
    )
    with gr.Row():
        folder = gr.Textbox("runs", label="runs folder", scale=3)
        refresh = gr.Button("Refresh", scale=0, min_width=120)
    runs_status = gr.Markdown()
    table = gr.Dataframe(
        headers=training.RUN_COLUMNS, label="runs", interactive=False, max_height=240
    )
    with gr.Row():
        picked = gr.Dropdown([], multiselect=True, label="runs to plot", scale=3)
        key = gr.Dropdown(["loss"], value="loss", label="metric", scale=1)
    curve = gr.Plot(label="training curves")
    for event in (refresh.click, folder.submit, demo.load):
        event(
            training.list_runs, folder, [table, picked, key, runs_status], api_visibility="private"
        ).then(training.curves, [folder, picked, key], curve, api_visibility="private")
    for event in (picked.change, key.change):
        event(training.curves, [folder, picked, key], curve, api_visibility="private")

    gr.Markdown(
        "### Launch a recipe\nThe exact `accelerate launch` command (copy it with the "
        "button). Several CPU processes need `ACCELERATE_USE_CPU=1 … --multi_gpu`: "
        "`--cpu --num_processes 2` silently starts one."
    )
    recipes = training.recipes()
    default = training.default_recipe(recipes)
    with gr.Row():
        recipe = gr.Dropdown(
            recipes,
            value=default,
            label="recipe",
            allow_custom_value=True,
            scale=2,
        )
        mode = gr.Radio(list(training.MODES), value=training.MODES[0], label="where", scale=2)
        processes = gr.Number(2, label="N processes", precision=0, minimum=1, scale=1)
    overrides = gr.Textbox(label="overrides (key=value …)", placeholder="train.steps=200")
    command = gr.Code(
        training.launch_command(default, training.MODES[0]),
        language="shell",
        label="command",
        elem_id="train-command",
    )
    for component in (recipe, mode, processes, overrides):
        component.change(
            training.launch_command,
            [recipe, mode, processes, overrides],
            command,
            api_visibility="private",
        )
    with gr.Accordion("run it here on one CPU process (background)", open=False):
        with gr.Row():
            name = gr.Textbox(label="run name (default: recipe + time)", scale=3)
            start = gr.Button("Start", variant="primary", scale=0, min_width=100)
            stop = gr.Button("Stop", variant="stop", scale=0, min_width=100)
        run_status = gr.Markdown()
        live = gr.Plot(label="live loss")
        log = gr.Code(label="log (last lines)", language=None, lines=8)
        timer = gr.Timer(2.0, active=False)
    start.click(
        training.start_run,
        [recipe, folder, name, overrides],
        [run_status, timer],
        api_visibility="private",
    )
    stop.click(training.stop_run, None, run_status, api_visibility="private")
    timer.tick(training.poll_run, None, [live, log, run_status, timer], api_visibility="private")
