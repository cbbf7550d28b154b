"""The studio's metric names in plain words: a one-line meaning shown next to each name, and its
formula in a tooltip (an HTML ``title``: hover the dotted name).

:func:`term` writes a name with its tooltip (for summaries and tables in Markdown);
:func:`explain` writes the names with their meanings, one line each, for the notes under a result.
"""

from __future__ import annotations

import html

GLOSSARY: dict[str, tuple[str, str]] = {  # name → (plain meaning, formula)
    "feature L1": (
        "how different two clips look to the model: the average gap between their encoder "
        "features (0 = identical; lower is better for an error)",
        "mean over steps, tokens and channels of |ŝ − s|: ŝ the world model's predicted "
        "features, s the encoder's features of the real frames",
    ),
    "transfer shift": (
        "how much the source's actions changed the target: the gap between the target driven by "
        "the source's actions and by its own (0 = the actions changed nothing)",
        "feature L1 between rollout(target, z_source) and rollout(target, z_target)",
    ),
    "camera motion": (
        "how far the whole picture moves per frame, in model pixels: the source's motion beside "
        "the transfer's (cos: 1 = the same directions, × = how much of the source's speed the "
        "transfer kept; both only where the source moves ≥ 0.5 px)",
        "mean over the predicted frames of |d_t|, d_t the phase-correlation shift between frames "
        "t and t+1 (lam_core.eval.motion.step_shifts); cos = mean cos(d_transfer, d_source), "
        "× = Σ|d_transfer| / Σ|d_source|",
    ),
    "ratio": (
        "how well the actions survive the trip A → B → A: the cycled error over the direct "
        "one (1 = nothing lost)",
        "feature L1(A cycled, A) / feature L1(A direct, A)",
    ),
    "Δxy of eq. 3": (
        "how far the plan's total move is from the move that reaches the goal, in action "
        "units (0 = the right total move; 1 unit = 6 px)",
        "Δxy = ‖Σ_t a_plan,t − Σ_t a_true,t‖₁ over the H planned actions (paper eq. 3)",
    ),
    "ATE": (
        "average trajectory error: how far, on average, the planned path strays from the true "
        "path to the goal (map px; 0 = the same path)",
        "ATE = sqrt(mean_k ‖p_k − g_k‖²), both paths moved to start at the origin",
    ),
    "RPE": (
        "relative pose error: how different each step's move is from the true step's, seen "
        "from where the step starts (map px per step)",
        "RPE = mean_k ‖R(−θ_k)(p_k+1 − p_k) − R(−θ*_k)(g_k+1 − g_k)‖",
    ),
    "planning cost": (
        "how far the world model's last predicted frame is from the goal frame, in the "
        "encoder's features: what the planner minimises (lower = the model expects to be closer)",
        "‖s_goal − ŝ_H‖₂: s_goal the goal frame's features, ŝ_H the features predicted after the "
        "H planned actions",
    ),
    "tracking error": (
        "how far the world model's magenta cross is from the real one after the same actions, "
        "in pixels (0 = the model moved the arm exactly as the world did)",
        "‖track(model frame) − track(real frame)‖₂ per step, track = the weighted centroid of "
        "the magenta pixels (lam_core.eval.agents.track_effector)",
    ),
    "pose error": (
        "how far the world model's camera is from the real one after the same actions: its "
        "position in map pixels (a full forward step is 5 px) and its heading in degrees",
        "the pose whose view of the map best matches each model frame "
        "(lam_core.eval.poses.track_poses) against the real pose: ‖xy_model − xy_real‖₂ and "
        "|θ_model − θ_real|",
    ),
    "frame error": (
        "how different the world model's view is from the real one after the same actions "
        "(0 = identical; 255 = opposite colours)",
        "mean over pixels and channels of |model − real|, in grey levels 0–255",
    ),
}


def term(name: str) -> str:
    """``name`` with its formula as a tooltip (HTML, for Markdown); the name alone when it is not
    in :data:`GLOSSARY`."""
    if name not in GLOSSARY:
        return html.escape(name)
    formula = html.escape(GLOSSARY[name][1], quote=True)
    return f'<abbr class="term" title="{formula}">{html.escape(name)}</abbr>'


def meaning(name: str) -> str:
    """The plain-language meaning of ``name`` (empty when it has none)."""
    return GLOSSARY.get(name, ("", ""))[0]


def explain(*names: str) -> str:
    """One Markdown line per name: the name (formula in its tooltip) and its meaning."""
    return "  \n".join(f"{term(n)}: {meaning(n)}." for n in names)
