"""The Control tab: drive a world model with real actions through its controller, or plan with
CEM (handlers in :mod:`studio.control`).

The tab has its own checkpoint box: the studio's default model (the flagship) has no controller,
so the tab opens on the first shipped pipeline whose config names one, and follows the box above
the tabs whenever the checkpoint chosen there has a controller. The checkpoint and the world
follow each other: a controller is trained in one world (:func:`studio.driving.controller_world`).

The keyboard's arrow keys press the arrow buttons (:data:`ARROW_KEYS`, installed by
:func:`studio.app.launch`) while the tab is shown and the focus is not in a text box.
"""

from __future__ import annotations

import gradio as gr

from studio import control
from studio.glossary import explain
from studio.tabs import CAPTIONED, MODEL

# ← → ↑ ↓ click the visible #control-left/right/up/down buttons, unless the key is meant for
# something else: a text box, a slider, a dropdown or radio, the code box, a video, a modifier,
# a held key (one action per press), or a hidden tab (the buttons are then not rendered visible).
ARROW_KEYS = """() => {
  const KEYS = {ArrowLeft: 'left', ArrowRight: 'right', ArrowUp: 'up', ArrowDown: 'down'};
  const BUSY = 'input, textarea, select, [contenteditable=""], [contenteditable="true"], ' +
    '[role="slider"], [role="combobox"], [role="listbox"], [role="radio"], .cm-editor, video';
  const visible = (el) => el.checkVisibility ? el.checkVisibility() : el.offsetParent !== null;
  document.addEventListener('keydown', (event) => {
    const name = KEYS[event.key];
    if (!name || event.defaultPrevented || event.repeat) return;
    if (event.altKey || event.ctrlKey || event.metaKey || event.shiftKey) return;
    if (event.target instanceof Element && event.target.closest(BUSY)) return;
    const found = document.getElementById('control-' + name);
    const button = found && (found.tagName === 'BUTTON' ? found : found.querySelector('button'));
    if (!button || button.disabled || !visible(button)) return;
    event.preventDefault();  // no page scroll
    button.click();
  });
}"""


def control_tab(
    demo: gr.Blocks, studio_checkpoint: gr.Dropdown, choices: list[str], default: str | None
) -> None:
    """Control: real actions through the controller, one world-model step each, with the tracking
    error per step; CEM planning with progress, a Stop button and a success rate over seeds.

    Args:
        demo: the Blocks (the tab starts a rollout when the page loads).
        studio_checkpoint: the checkpoint box above the tabs; the tab follows it when the chosen
            checkpoint has a controller.
        choices: the checkpoint choices (switching the world picks the one trained there).
        default: the checkpoint the tab opens on (:func:`studio.driving.control_checkpoint`):
            one with a controller, or None when there is none (the tab says so).
    """
    gr.Markdown(
        "Drive the world model with **real actions** through the checkpoint's controller "
        "(one world-model step per action) next to the real world receiving the same "
        "action, or let a **planner** (iCEM, CEM, MPPI or gradient descent) plan towards the goal "
        "frame of the seed's episode. "
        "Keyboard: **← → ↑ ↓** add an action (when the focus is not in a text box). "
        "A controller is trained in one world: switching the world switches the checkpoint.",
        elem_classes="small-note",
    )
    state = gr.State()
    start = control.start_world(default)
    labels = control.ACTION_LABELS[start]
    with gr.Row():
        with gr.Column(scale=1, min_width=300):
            checkpoint = gr.Dropdown(
                choices,
                value=default,
                allow_custom_value=True,
                label="checkpoint with a controller",
                elem_id="control-checkpoint",
            )
            world = gr.Radio(
                list(control.WORLDS), value=start, label="world", elem_id="control-world"
            )
            seed = gr.Number(0, label="start frame (seed)", precision=0)
            reset = gr.Button("Reset", elem_id="control-reset")
            with gr.Row(elem_classes="arrows"):
                gr.HTML("")
                up = gr.Button("↑", elem_id="control-up")
                gr.HTML("")
            with gr.Row(elem_classes="arrows"):
                left = gr.Button("←", elem_id="control-left")
                down = gr.Button("↓", elem_id="control-down")
                right = gr.Button("→", elem_id="control-right")
            first = gr.Slider(-1, 1, value=0.5, step=0.05, label=f"action[0]: {labels[0]}")
            second = gr.Slider(-1, 1, value=0.0, step=0.05, label=f"action[1]: {labels[1]}")
            apply = gr.Button("Apply this action", variant="primary", elem_id="control-apply")
        with gr.Column(scale=3):
            status = gr.Markdown(elem_id="control-status")
            view = gr.Image(
                label="now", show_label=False, interactive=False, elem_id="control-view", height=300
            )
            strip = gr.Image(
                label="rollout so far (last 8 steps)",
                show_label=False,
                interactive=False,
                height=240,
            )
            tracking_summary = gr.Markdown(elem_id="control-tracking-summary")
            with gr.Row():
                tracking = gr.Dataframe(
                    headers=control.TRACK_HEADERS[start],
                    label="tracking error per step (world model vs real world)",
                    interactive=False,
                    wrap=True,
                    max_height=260,
                    elem_id="control-tracking",
                    scale=4,
                )
                tracking_plot = gr.Plot(label="tracking error", scale=3)
            gr.Markdown(explain("tracking error", "frame error"), elem_classes="small-note")
    outputs = [state, view, strip, status]
    tracked = [tracking, tracking_plot, tracking_summary]
    reset_inputs = [checkpoint, world, seed]

    def then_track(event) -> None:
        event.then(control.control_tracking, state, tracked, api_visibility="private")

    for event in (reset.click, seed.submit):
        then_track(event(control.control_reset, reset_inputs, outputs, api_visibility="private"))
    then_track(
        world.input(  # the user's choice; the checkpoint follows (control_switch on its change)
            lambda c, w, s: control.control_world(c, w, s, choices),
            reset_inputs,
            [checkpoint, *outputs],
            api_visibility="private",
        )
    )
    world.change(control.action_sliders, world, [first, second], api_visibility="private")
    then_track(demo.load(control.control_start, reset_inputs, outputs, api_visibility="private"))
    then_track(
        checkpoint.change(
            control.control_switch, reset_inputs, [world, *outputs], api_visibility="private"
        )
    )
    studio_checkpoint.change(
        control.follow_checkpoint, studio_checkpoint, checkpoint, api_visibility="private"
    )
    step_inputs = [state, checkpoint, world, seed]
    then_track(
        apply.click(
            control.control_step,
            [*step_inputs, first, second],
            outputs,
            api_visibility="private",
            concurrency_id=MODEL,
        )
    )
    for button in (up, down, left, right):
        then_track(
            button.click(
                lambda s, c, w, sd, b=button.value: control.control_step(
                    s, c, w, sd, *control.arrow(w, b)
                ),
                step_inputs,
                outputs,
                api_visibility="private",
                concurrency_id=MODEL,
            )
        )

    samples0, iterations0 = control.PLAN_DEFAULTS[start]
    gr.Markdown(
        "### Plan towards a goal\nReach: the DROID protocol (H = 3 actions, K = 10 elites);"
        " drive: the RECON protocol (one action repeated over H = 8). The defaults plan in a "
        "few seconds on a CPU (the paper's N = 300, I = 15 takes ~10× longer); **Stop** ends a "
        "plan early."
    )
    with gr.Row():
        samples = gr.Slider(
            20, 600, value=samples0, step=20, label="N samples per iteration",
            info="candidate action sequences scored each iteration (more: slower, finer)",
            elem_id="control-samples",
        )
        iterations = gr.Slider(
            1, 20, value=iterations0, step=1, label="I iterations",
            info="rounds of refitting the sampling distribution to the best K",
            elem_id="control-iterations",
        )
        solver = gr.Dropdown(
            list(control.SOLVER_NAMES), value=control.DEFAULT_SOLVER, label="solver",
            info="iCEM: CEM with coloured noise and kept elites; MPPI: a weighted average of "
            "samples; gradient: descent on the actions through the world model",
            elem_id="control-solver", scale=1,
        )
        with gr.Column(scale=0, min_width=140):
            plan = gr.Button("Plan", variant="primary", elem_id="control-plan")
            stop = gr.Button("Stop", variant="stop", elem_id="control-plan-stop")
    world.change(control.plan_defaults, world, [samples, iterations], api_visibility="private")
    with gr.Row():
        plan_video = gr.Video(
            elem_id="control-plan-output",
            elem_classes=CAPTIONED,
            label="goal | planned rollout (model) | plan replayed (real world)",
            show_label=False,
            interactive=False,
            autoplay=True,
            loop=True,
            height=300,
            scale=3,
        )
        with gr.Column(scale=2):
            plan_summary = gr.Markdown(elem_id="control-plan-summary")
            cost = gr.Plot(label="planning cost")
            gr.Markdown(
                explain("planning cost", "Δxy of eq. 3", "ATE", "RPE"), elem_classes="small-note"
            )
    with gr.Row():
        check = gr.Button(
            f"Success over {control.SUCCESS_SEEDS} seeds",
            elem_id="control-success-run",
            scale=0,
            min_width=200,
        )
        success = gr.Markdown(
            f"Plans the next {control.SUCCESS_SEEDS} seeds with these settings and counts how "
            "often the plan ends closer to the goal than it started (computed once, then "
            "cached).",
            elem_id="control-success",
            elem_classes="small-note",
        )
    with gr.Accordion("plan (JSON)", open=False):
        plan_numbers = gr.JSON(label="plan")
    planning = plan.click(
        control.control_plan,
        [checkpoint, world, seed, samples, iterations, solver],
        [plan_video, cost, plan_summary, plan_numbers],
        api_name="plan",
        concurrency_id=MODEL,
    )
    checking = check.click(
        control.plan_success,
        [checkpoint, world, seed, samples, iterations, solver],
        success,
        api_visibility="private",
        concurrency_id=MODEL,
    )
    stop.click(control.plan_stop, None, None, cancels=[planning, checking], queue=False)
