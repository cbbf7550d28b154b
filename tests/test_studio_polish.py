"""Small things a user sees: readable loss-axis ticks, the header's wording, metric names with
their meaning and formula, the page scripts and the CSS that keeps buttons off captions.
(How they look in a browser: tests/test_app_browser.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from studio import glossary, plots
from studio.models import describe, plural

from .helpers import tiny_pipeline


def test_loss_axis_is_linear_for_a_small_range_and_labelled_in_full_when_log():
    steps = np.arange(1, 200)
    narrow = plots.loss_figure({"a": (steps, 0.06 + 0.02 * np.sin(steps))})
    assert narrow.layout.yaxis.type == "linear"
    wide = plots.loss_figure({"a": (steps, 3.0 * steps**-0.9), "b": (steps, 2.0 / steps)})
    assert wide.layout.yaxis.type == "log"
    assert wide.layout.yaxis.tickformat  # every tick in full, not Plotly's bare digits
    assert plots.loss_axis([0.0, 1.0, 100.0])["type"] == "linear"  # a log axis cannot show 0
    assert plots.loss_axis([])["type"] == "linear"
    assert plots.loss_axis([None, float("nan"), 0.01, 1.0])["type"] == "log"


def test_header_pluralises_and_writes_the_latent_size_without_an_underscore():
    assert (plural(1, "frame"), plural(2, "frame")) == ("1 frame", "2 frames")
    pipe = tiny_pipeline()
    line = describe(pipe, "tiny")
    assert plural(pipe.tubelet, "frame") + " per step" in line
    assert "D<sub>z</sub>" in line and "D_z" not in line
    lam = pipe.lam.cfg
    lam.latent_grid, lam.global_latent = 4, True  # the header says how the latent is laid out
    d = lam.regularizer.latent_dim
    assert f"{17 * d} dimensions: a 4 × 4 grid of {d} and a global latent of {d}" in describe(
        pipe, "tiny")


@pytest.mark.parametrize(
    "name", ["feature L1", "transfer shift", "ATE", "RPE", "Δxy of eq. 3", "planning cost"]
)
def test_each_metric_has_a_meaning_and_a_formula_tooltip(name):
    meaning, formula = glossary.GLOSSARY[name]
    assert len(meaning) > 40 and formula
    term = glossary.term(name)
    assert term.startswith("<abbr") and 'title="' in term and name in term
    assert meaning in glossary.explain(name)
    assert "‖s_goal − ŝ_H‖₂" in glossary.GLOSSARY["planning cost"][1]  # the cost axis's formula
    assert glossary.term("not a metric") == "not a metric"


def test_page_scripts_and_css():
    from studio import app, tabs, tabs_control

    assert tabs.CLICK_BRIDGE in app.SCRIPTS and tabs_control.ARROW_KEYS in app.SCRIPTS
    assert app.SCRIPTS.startswith("() => {")
    for key in ("ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown", "control-"):
        assert key in tabs_control.ARROW_KEYS
    assert ".captioned-video" in app.CSS and 'input[role="combobox"]' in app.CSS
    assert "#latent-files" in app.CSS


def test_captioned_videos_and_glossaries_are_in_the_tabs():
    from studio.app import build_app

    demo = build_app(None)
    blocks = list(demo.blocks.values())
    captioned = {b.elem_id for b in blocks if "captioned-video" in (b.elem_classes or [])}
    assert {"transfer-output", "cycle-output", "control-plan-output"} <= captioned
    texts = " ".join(
        str(getattr(b, "value", "")) for b in blocks if b.get_block_name() == "markdown"
    )
    for name in ("feature L1", "transfer shift", "ratio", "ATE", "RPE", "tracking error"):
        assert glossary.meaning(name) in texts
    ids = {b.elem_id for b in blocks}
    assert {"control-plan-stop", "control-success-run", "control-tracking"} <= ids
