"""Plotly figures of the studio: latents over time, step errors, planning costs, losses, UMAP.

Every function takes plain numbers (numpy arrays, lists, dicts) and returns a
``plotly.graph_objects.Figure`` with one shared look (:func:`_style`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

PALETTE = (
    "#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2",
    "#B279A2", "#EECA3B", "#9D755D", "#FF9DA6", "#BAB0AC",
)


def _style(fig: go.Figure, title: str, height: int = 300, **layout) -> go.Figure:
    """The studio's look: white template, compact margins, legend top right (the title is top
    left); ``layout`` overrides."""
    base = {
        "title": {"text": title, "x": 0.01, "font": {"size": 14}},
        "template": "plotly_white",
        "height": height,
        "margin": {"l": 50, "r": 16, "t": 40, "b": 40},
        "legend": {"orientation": "h", "x": 1, "y": 1.02, "xanchor": "right", "yanchor": "bottom"},
    }
    fig.update_layout(**{**base, **layout})
    return fig


def empty_figure(message: str, height: int = 260) -> go.Figure:
    """A blank figure that says ``message`` (instead of an empty plot area)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _style(fig, "", height)


def latents_figure(latents: np.ndarray, first_step: int = 0, title: str = "") -> go.Figure:
    """Latent actions ``(H, D_z)`` over time: a heatmap (x: transition, y: dimension) above the
    per-step L2 norm."""
    from plotly.subplots import make_subplots

    z = np.asarray(latents, dtype=np.float32)
    steps = np.arange(first_step, first_step + len(z))
    limit = float(np.abs(z).max()) if z.size else 1.0
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.05
    )
    fig.add_trace(
        go.Heatmap(
            z=z.T, x=steps, y=np.arange(z.shape[1]), colorscale="RdBu", zmid=0, zmin=-limit,
            zmax=limit, colorbar={"title": "z", "thickness": 10, "len": 0.7, "y": 0.64},
            hovertemplate="step %{x}<br>dim %{y}<br>z = %{z:.3f}<extra></extra>",
        ),
        row=1, col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=steps, y=np.linalg.norm(z, axis=1), mode="lines+markers", name="‖z‖",
            line={"color": "#333", "width": 2},
            hovertemplate="step %{x}<br>‖z‖ = %{y:.3f}<extra></extra>",
        ),
        row=2, col=1,
    )
    fig.update_yaxes(title_text="dimension", row=1, col=1)
    fig.update_yaxes(title_text="‖z‖", row=2, col=1)
    fig.update_xaxes(title_text="transition (model step)", dtick=1, row=2, col=1)
    return _style(
        fig,
        title or f"source latent actions ({z.shape[0]} steps × {z.shape[1]} dims)",
        height=330,
        showlegend=False,
    )


def step_errors_figure(
    series: Mapping[str, Sequence[float]],
    title: str,
    first_step: int = 1,
    cut: int | None = None,
    y_title: str = "error (feature L1)",
    height: int = 300,
    x_title: str = "predicted step",
) -> go.Figure:
    """Lines of per-step errors (one per entry of ``series``), with a dashed line at ``cut``."""
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        values = np.asarray(values, dtype=np.float64)
        fig.add_trace(
            go.Scatter(
                x=np.arange(first_step, first_step + len(values)),
                y=values,
                mode="lines+markers",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)], "width": 2},
            )
        )
    if cut is not None:
        fig.add_vline(x=cut, line_dash="dash", line_color="#888", annotation_text=f"cut at {cut}")
    return _style(
        fig,
        title,
        height,
        xaxis={"title": x_title, "dtick": 1},
        yaxis={"title": y_title, "rangemode": "tozero"},
    )


def cost_figure(
    best: Sequence[float],
    elite_mean: Sequence[float] | None = None,
    title: str = "planning cost per iteration",
) -> go.Figure:
    """The planner's cost per iteration: the best sampled sequence's and the elites' mean."""
    series = {"best sequence": best}
    if elite_mean is not None:
        series["elites (mean)"] = elite_mean
    fig = go.Figure()
    for i, (name, values) in enumerate(series.items()):
        fig.add_trace(
            go.Scatter(
                x=np.arange(1, len(values) + 1),
                y=np.asarray(values, dtype=np.float64),
                mode="lines+markers",
                name=name,
                line={"color": PALETTE[i]},
            )
        )
    return _style(
        fig,
        title,
        xaxis={"title": "iteration", "dtick": 1},
        yaxis={"title": "planning cost (to the goal)"},  # ‖s_goal − ŝ_H‖₂: studio.glossary
    )


LOG_ABOVE = 10.0  # max / min of the plotted values above which the y axis is logarithmic


def loss_axis(values: Sequence[float]) -> dict:
    """The y axis of training curves: linear when the values span less than :data:`LOG_ABOVE`
    (or any is ≤ 0), else logarithmic with every tick labelled in full (``0.05``, ``0.2``, ``3``)
    instead of Plotly's bare digits between decades (``3, 2, 0.1, 9, 8…``)."""
    v = np.asarray([x for x in values if x is not None], dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size == 0 or v.min() <= 0 or v.max() / v.min() < LOG_ABOVE:
        return {"type": "linear"}
    return {"type": "log", "tickformat": ".2~r"}  # 0.03, 0.2, 150: decimals, ≤ 2 digits


def loss_figure(
    runs: Mapping[str, tuple[Sequence[float], Sequence[float]]], key: str = "loss"
) -> go.Figure:
    """Training curves: ``{run: (steps, values)}`` on a y axis that reads well
    (:func:`loss_axis`)."""
    if not runs:
        return empty_figure("no runs with a metrics.jsonl selected")
    fig = go.Figure()
    for i, (name, (steps, values)) in enumerate(runs.items()):
        fig.add_trace(
            go.Scatter(
                x=list(steps),
                y=list(values),
                mode="lines",
                name=name,
                line={"color": PALETTE[i % len(PALETTE)]},
            )
        )
    return _style(
        fig,
        f"{key} per step",
        height=340,
        xaxis={"title": "step"},
        yaxis={"title": key, **loss_axis([y for _, values in runs.values() for y in values])},
    )


KIND_STYLE = {  # kind → colour, symbol
    "inferred": ("#4C78A8", "circle"),
    "sampled": ("#F58518", "x"),
}
WEBGL_ABOVE = 2000  # points; below it SVG scatter (works where WebGL does not, e.g. headless)


def umap_figure(panels: Sequence[Mapping], highlight: int | None = None) -> go.Figure:
    """Side-by-side 2-D embeddings of latents, one panel per checkpoint (paper Fig. S1).

    Args:
        panels: each ``{"title", "x", "y", "kind", "index", "hover"}`` with per-point lists;
            ``kind`` is ``"inferred"`` or ``"sampled"``, ``index`` the studio-wide point index
            (kept as ``customdata`` so that a click can name the point).
        highlight: a point index to ring.
    """
    from plotly.subplots import make_subplots

    total = sum(len(p["x"]) for p in panels)
    scatter = go.Scattergl if total > WEBGL_ABOVE else go.Scatter
    fig = make_subplots(
        rows=1,
        cols=max(len(panels), 1),
        horizontal_spacing=0.06,
        subplot_titles=[p["title"] for p in panels],
    )
    for col, panel in enumerate(panels, start=1):
        kind = np.asarray(panel["kind"])
        for name, (color, symbol) in KIND_STYLE.items():
            idx = np.flatnonzero(kind == name)
            fig.add_trace(
                scatter(
                    x=np.asarray(panel["x"])[idx], y=np.asarray(panel["y"])[idx],
                    mode="markers", name=name, legendgroup=name, showlegend=col == 1,
                    customdata=np.asarray(panel["index"])[idx],
                    text=np.asarray(panel["hover"], dtype=object)[idx],
                    hovertemplate="%{text}<extra></extra>",
                    marker={"size": 6, "opacity": 0.7, "color": color, "symbol": symbol},
                ),
                row=1, col=col,
            )
        if highlight is not None and highlight in set(panel["index"]):
            i = list(panel["index"]).index(highlight)
            fig.add_trace(
                scatter(
                    x=[panel["x"][i]], y=[panel["y"][i]], mode="markers", showlegend=False,
                    hoverinfo="skip",
                    marker={"size": 18, "color": "rgba(0,0,0,0)",
                            "line": {"color": "#111", "width": 2.5}},
                ),
                row=1, col=col,
            )
    fig.update_xaxes(showticklabels=False, zeroline=False)
    fig.update_yaxes(showticklabels=False, zeroline=False)
    return _style(
        fig,
        "",
        height=480,
        margin={"l": 20, "r": 20, "t": 40, "b": 40},
        legend={"orientation": "h", "y": -0.05, "x": 0},
    )
