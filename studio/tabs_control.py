"""The Control tab: drive a world model with real actions through its controller, or plan with
CEM (handlers in :mod:`studio.control`).

The tab has its own checkpoint box: the studio's default model (the flagship) has no controller,
so the tab opens on the first shipped pipeline whose config names one, and follows the box above
the tabs whenever the checkpoint chosen there has a controller.
"""

from __future__ import annotations

import gradio as gr

from studio import control
from studio.tabs import MODEL


def control_tab(
    demo: gr.Blocks, studio_checkpoint: gr.Dropdown, choices: list[str], default: str | None
) -> None:
    """Control: real actions through the controller, one world-model step each; CEM planning.

    Args:
        demo: the Blocks (the tab starts a rollout when the page loads).
        studio_checkpoint: the checkpoint box above the tabs; the tab follows it when the chosen
            checkpoint has a controller.
        choices: the checkpoint choices.
        default: the checkpoint the tab opens on (:func:`studio.control.control_checkpoint`):
            one with a controller, or None when there is none (the tab says so).
    """
    gr.Markdown(
        "Drive the world model with **real actions** through the checkpoint's controller "
        "(one world-model step per action) next to the real world receiving the same "
        "action, or let **CEM** plan towards the goal frame of the seed's episode.",
        elem_classes="small-note",
    )
    state = gr.State()
    start = control.start_world(default)
    labels = control.ACTION_LABELS[start]
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            checkpoint = gr.Dropdown(
                choices,
                value=default,
                allow_custom_value=True,
                label="checkpoint with a controller",
                elem_id="control-checkpoint",
            )
            world = gr.Radio(list(control.WORLDS), value=start, label="world")
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
            status = gr.Markdown()
            view = gr.Image(
                label="now", show_label=False, interactive=False, elem_id="control-view", height=300
            )
            strip = gr.Image(
                label="rollout so far (last 8 steps)",
                show_label=False,
                interactive=False,
                height=240,
            )
    outputs = [state, view, strip, status]
    reset_inputs = [checkpoint, world, seed]
    for event in (reset.click, world.change, seed.submit):
        event(control.control_reset, reset_inputs, outputs, api_visibility="private")
    world.change(control.action_sliders, world, [first, second], api_visibility="private")
    demo.load(control.control_start, reset_inputs, outputs, api_visibility="private")
    checkpoint.change(
        control.control_switch, reset_inputs, [world, *outputs], api_visibility="private"
    )
    studio_checkpoint.change(
        control.follow_checkpoint, studio_checkpoint, checkpoint, api_visibility="private"
    )
    step_inputs = [state, checkpoint, world, seed]
    apply.click(
        control.control_step,
        [*step_inputs, first, second],
        outputs,
        api_visibility="private",
        concurrency_id=MODEL,
    )
    for button in (up, down, left, right):
        button.click(
            lambda s, c, w, sd, b=button.value: control.control_step(
                s, c, w, sd, *control.arrow(w, b)
            ),
            step_inputs,
            outputs,
            api_visibility="private",
            concurrency_id=MODEL,
        )

    gr.Markdown(
        "### Plan towards a goal\nReach: the DROID protocol (H = 3 actions, K = 10 elites);"
        " drive: the RECON protocol (one action repeated over H = 8). Fewer samples or "
        "iterations plan faster."
    )
    with gr.Row():
        samples = gr.Slider(
            20, 600, value=300, step=20, label="N samples per iteration", elem_id="control-samples"
        )
        iterations = gr.Slider(
            1, 20, value=15, step=1, label="I iterations", elem_id="control-iterations"
        )
        plan = gr.Button("Plan", variant="primary", elem_id="control-plan", scale=0, min_width=140)
    with gr.Row():
        plan_video = gr.Video(
            elem_id="control-plan-output",
            label="goal | planned rollout (model) | plan replayed (real world)",
            show_label=False,
            interactive=False,
            autoplay=True,
            loop=True,
            height=300,
            scale=3,
        )
        with gr.Column(scale=2):
            plan_summary = gr.Markdown()
            cost = gr.Plot(label="CEM cost")
    with gr.Accordion("plan (JSON)", open=False):
        plan_numbers = gr.JSON(label="plan")
    plan.click(
        control.control_plan,
        [checkpoint, world, seed, samples, iterations],
        [plan_video, cost, plan_summary, plan_numbers],
        api_name="plan",
        concurrency_id=MODEL,
    )
