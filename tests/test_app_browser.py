"""The studio in a real browser: Playwright (Python) drives Debian's Chromium (``apt-get install
chromium``; Playwright downloads no browser).

Uploads two real clips on the Transfer tab, clicks Transfer (then Cycle) and waits for each
output ``<video>`` to be playable (readyState 4); drives the Control tab with two arrow buttons
and one arrow key of the keyboard (the page script clicks the button), checks the tracking table,
runs a quick CEM plan, then switches the world to drive (the checkpoint follows: the drive
controller, or a refusal when there is none); embeds latents on the Latent space tab and clicks
the most isolated point of the Plotly figure (the click bridge fills in the point index and shows
its frame pair). On the Compare tab, picks an example pair and compares the default checkpoints
(the shipped pixel-noisy and pixel-grid): a playable video and a numbers line per model, the
frame sheet.
Screenshots of each tab go to ``$LAM_SCREENSHOT_DIR`` (default: the test's tmp_path).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from studio.handlers import example_pairs

from .test_app_e2e import SOURCE, TARGET, studio  # noqa: F401  (the served-studio fixture)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.filterwarnings("ignore::Warning:gradio.queueing"),
    pytest.mark.filterwarnings("ignore:n_jobs value:UserWarning"),  # UMAP, seeded
]

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
VIDEO_READY = """(selector) => {
    const v = document.querySelector(selector);
    return v !== null && v.readyState === 4;
}"""
LONELY_POINT = """() => {  // page coordinates and customdata of the point farthest from any other
    // (a click lands on it and on nothing else, whatever the embedding looks like)
    const gd = document.querySelector('#latent-plot .js-plotly-plot');
    const layout = gd._fullLayout, box = gd.getBoundingClientRect(), points = [];
    for (const trace of gd._fullData) {
        const xa = layout[trace.xaxis.replace('x', 'xaxis')];
        const ya = layout[trace.yaxis.replace('y', 'yaxis')];
        trace.x.forEach((x, i) => points.push([box.left + xa._offset + xa.l2p(x),
                                               box.top + ya._offset + ya.l2p(trace.y[i]),
                                               trace.customdata[i]]));
    }
    let best = points[0], gap = -1;
    for (const p of points) {
        let near = Infinity;
        for (const q of points)
            if (q !== p) near = Math.min(near, Math.hypot(p[0] - q[0], p[1] - q[1]));
        if (near > gap) { gap = near; best = p; }
    }
    return best;
}"""


DRIVEN_OR_REFUSED = """() => {  // the drive controller chosen, or the status says why not
    const box = document.querySelector('#control-checkpoint input');
    const status = document.querySelector('#control-status');
    return (box && box.value.endsWith('controller-drive')
            && status && status.innerText.includes('drive: an egocentric camera'))
        || (status !== null && status.innerText.includes('cannot drive the drive world'));
}"""


@pytest.fixture
def page(tmp_path):
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"Chromium is absent ({CHROMIUM}): apt-get install -y chromium chromium-driver")
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        try:
            yield browser.new_page(viewport={"width": 1280, "height": 900})
        finally:
            browser.close()


@pytest.fixture
def screenshots(tmp_path) -> Path:
    folder = Path(os.environ.get("LAM_SCREENSHOT_DIR") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_transfer_control_and_latent_space_in_chromium(studio, page, screenshots):  # noqa: F811
    page.goto(studio.url)
    page.set_input_files("#transfer-source input[type=file]", str(SOURCE))
    page.set_input_files("#transfer-target input[type=file]", str(TARGET))
    page.wait_for_selector("#transfer-source video", timeout=30_000)
    page.wait_for_selector("#transfer-target video", timeout=30_000)
    page.click("#transfer-run")
    page.wait_for_function(VIDEO_READY, arg="#transfer-output video", timeout=60_000)
    page.locator("text=transfer shift >> visible=true").first.wait_for(timeout=30_000)  # table
    page.click("#cycle-run")
    page.wait_for_function(VIDEO_READY, arg="#cycle-output video", timeout=60_000)
    page.locator("text=cycled error >> visible=true").first.wait_for(timeout=30_000)
    page.wait_for_timeout(500)  # let the plots settle
    page.screenshot(path=str(screenshots / "studio-transfer.png"), full_page=True)
    assert (screenshots / "studio-transfer.png").stat().st_size > 10_000

    page.get_by_role("tab", name="Control").click()
    page.click("#control-reset")
    page.wait_for_selector("#control-view img", timeout=30_000)
    for step, arrow in enumerate(("right", "down"), start=1):
        page.click(f"#control-{arrow}")
        page.locator(f"text=Step {step}/ >> visible=true").wait_for(timeout=30_000)
    page.keyboard.press("ArrowRight")  # the keyboard drives too (the focus is on a button)
    page.locator("text=Step 3/ >> visible=true").wait_for(timeout=30_000)
    assert "dx = +1.00, dy = +0.00" in page.inner_text("#control-status")
    page.locator("#control-tracking-summary >> text=after 3 action(s)").wait_for(timeout=30_000)
    page.locator("#control-tracking >> text=(+0.00, +1.00)").wait_for(timeout=30_000)  # step 2
    for slider, value in (("samples", "40"), ("iterations", "3")):  # a quick plan
        page.fill(f"#control-{slider} input[type=number]", value)
        page.press(f"#control-{slider} input[type=number]", "Enter")
    page.click("#control-plan")
    page.wait_for_function(VIDEO_READY, arg="#control-plan-output video", timeout=60_000)
    page.locator("text=N=40, I=3 >> visible=true").wait_for(timeout=30_000)
    page.screenshot(path=str(screenshots / "studio-control.png"), full_page=True)

    page.locator("#control-world").get_by_label("drive").check()  # the checkpoint follows
    page.wait_for_function(DRIVEN_OR_REFUSED, timeout=30_000)

    page.get_by_role("tab", name="Latent space").click()
    page.click("#latent-run")  # the first UMAP fit of a process compiles (~20-50 s)
    page.wait_for_selector("#latent-plot .js-plotly-plot", timeout=180_000)
    page.wait_for_timeout(1000)
    x, y, index = page.evaluate(LONELY_POINT)
    page.mouse.move(x, y)
    page.mouse.click(x, y)
    page.locator(f"text=point {index}: >> visible=true").wait_for(timeout=30_000)
    assert page.input_value("#latent-index input") == str(index)
    page.wait_for_selector("#latent-pair img", timeout=30_000)
    page.screenshot(path=str(screenshots / "studio-latent.png"), full_page=True)


COMPARE_PAIR = "movers-2 → movers-3"  # an example pair (assets/clips/) where the models differ


def test_compare_tab_in_chromium(studio, page, screenshots):  # noqa: F811
    if COMPARE_PAIR not in {" → ".join(Path(c).stem for c in p) for p in example_pairs()}:
        pytest.skip(f"the example pair {COMPARE_PAIR} is not in assets/clips/")
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(studio.url)
    page.get_by_role("tab", name="Compare").click()
    page.locator(f"text={COMPARE_PAIR} >> visible=true").first.click()
    page.wait_for_selector("#compare-source video", timeout=30_000)
    page.wait_for_selector("#compare-target video", timeout=30_000)
    page.click("#compare-run")
    for i in range(2):  # the two default checkpoints
        page.wait_for_function(VIDEO_READY, arg=f"#compare-video-{i} video", timeout=120_000)
        page.locator(f"#compare-line-{i} >> text=camera motion").wait_for(timeout=30_000)
    assert not page.locator("#compare-video-2").is_visible()  # no third model, no third column
    page.wait_for_selector("#compare-sheet img", timeout=30_000)
    page.wait_for_timeout(500)
    page.screenshot(path=str(screenshots / "studio-compare.png"), full_page=True)
    assert (screenshots / "studio-compare.png").stat().st_size > 10_000
