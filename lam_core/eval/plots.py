"""Figures of the evaluation report as one self-contained Plotly HTML file (matplotlib is not a
dependency of lam-studio and Plotly's static-image export needs kaleido, which is not either).

Each ``*_figure`` function takes the plain result data of the report (``report.json``'s
``pipelines`` mapping) and returns a ``plotly.graph_objects.Figure`` (or None when there is nothing
to draw), so the studio can show the same figures.
"""

from __future__ import annotations

from pathlib import Path

import plotly.graph_objects as go


def _results(pipelines: dict, key: str) -> dict[str, dict]:
    return {name: p[key] for name, p in pipelines.items() if isinstance(p.get(key), dict)}


def capacity_figure(pipelines: dict) -> go.Figure | None:
    """Fig. 4 style: rollout feature L1 per predicted step, one line per pipeline, and the
    copy-last-frame baseline (dashed)."""
    res = _results(pipelines, "capacity")
    if not res:
        return None
    fig = go.Figure()
    for name, r in res.items():
        steps = list(range(1, len(r["feature_l1_per_step"]) + 1))
        fig.add_trace(
            go.Scatter(x=steps, y=r["feature_l1_per_step"], mode="lines+markers", name=name)
        )
    first = next(iter(res.values()))
    fig.add_trace(
        go.Scatter(
            x=list(range(1, len(first["copy_feature_l1_per_step"]) + 1)),
            y=first["copy_feature_l1_per_step"],
            mode="lines",
            line={"dash": "dash"},
            name=f"copy last frame ({next(iter(res))})",
        )
    )
    fig.update_layout(
        title="Capacity (Fig. 4): rollout error with IDM latents",
        xaxis_title="predicted step",
        yaxis_title="feature L1",
    )
    return fig


def leakage_figure(pipelines: dict) -> go.Figure | None:
    """Table 1: mean one-step error per transition with and without the scene cut."""
    res = _results(pipelines, "leakage")
    if not res:
        return None
    fig = go.Figure()
    for name, r in res.items():
        for key, dash in (("errors", None), ("errors_cut", "dot")):
            errs = r[key]
            mean = [sum(col) / len(col) for col in zip(*errs)]
            fig.add_trace(
                go.Scatter(
                    y=mean,
                    x=list(range(1, len(mean) + 1)),
                    mode="lines+markers",
                    line={"dash": dash},
                    name=f"{name} {'with cut' if key == 'errors_cut' else ''}",
                )
            )
    fig.update_layout(
        title="Future leakage (Table 1): one-step error, cut at the middle step",
        xaxis_title="transition",
        yaxis_title="feature L1",
    )
    return fig


def sampling_figures(pipelines: dict) -> list[go.Figure]:
    """Fig. S1: joint UMAP of sampled and inferred latents, one figure per pipeline."""
    figs = []
    for name, r in _results(pipelines, "sampling").items():
        emb = r.get("embedding")
        if not emb:
            continue
        fig = go.Figure()
        for kind in ("inferred", "sampled"):
            idx = [i for i, k in enumerate(emb["kind"]) if k == kind]
            fig.add_trace(
                go.Scattergl(
                    x=[emb["x"][i] for i in idx],
                    y=[emb["y"][i] for i in idx],
                    mode="markers",
                    marker={"size": 4, "opacity": 0.6},
                    name=kind,
                    text=[f"clip {emb['clip'][i]} step {emb['step'][i]}" for i in idx],
                )
            )
        fig.update_layout(
            title=f"{name}: sampled vs inferred latents (UMAP); "
            f"k-NN two-sample accuracy {r['accuracy']:.2f} (0.5 = same)"
        )
        figs.append(fig)
    return figs


def planning_figure(pipelines: dict) -> go.Figure | None:
    """CEM's best cost per iteration, averaged over episodes, per pipeline and world."""
    fig, any_trace = go.Figure(), False
    for name, p in pipelines.items():
        for key in ("reach", "drive", "pusht"):
            r = p.get(f"planning_{key}")
            if not isinstance(r, dict):
                continue
            costs = r["best_costs"]
            mean = [sum(col) / len(col) for col in zip(*costs)]
            fig.add_trace(
                go.Scatter(
                    y=mean,
                    x=list(range(1, len(mean) + 1)),
                    mode="lines+markers",
                    name=f"{name} ({key})",
                )
            )
            any_trace = True
    if not any_trace:
        return None
    fig.update_layout(
        title="CEM: best cost per iteration (mean over episodes)",
        xaxis_title="iteration",
        yaxis_title="‖s_goal − ŝ_H‖₂",
    )
    return fig


def write_html(pipelines: dict, path: str | Path) -> Path | None:
    """Every figure into one HTML file (plotly.js embedded once: it opens offline)."""
    figs = [
        capacity_figure(pipelines),
        leakage_figure(pipelines),
        *sampling_figures(pipelines),
        planning_figure(pipelines),
    ]
    figs = [f for f in figs if f is not None]
    if not figs:
        return None
    parts = [f.to_html(full_html=False, include_plotlyjs=(i == 0)) for i, f in enumerate(figs)]
    path = Path(path)
    path.write_text(
        "<html><head><meta charset='utf-8'><title>lam-studio evaluation</title>"
        "</head><body>" + "\n".join(parts) + "</body></html>"
    )
    return path
