"""Eight users at once (docs/RELIABILITY.md "Eight users at once").

The studio is served in this process on a free loopback port with a tiny random checkpoint (the
``studio`` fixture of ``test_app_e2e``). Eight ``gradio_client`` clients, one thread each, call
``/transfer`` and ``/cycle`` in turn on two real clips for ``$LAM_LOAD_SECONDS`` (default 60 s;
at most :data:`MAX_REQUESTS` requests in all). Every request must either return an mp4 or be
refused with Gradio's queue-full message; the process's resident memory (server and clients)
must not grow by more than :data:`RSS_GROWTH` after the warm-up; the studio's output folder must
stay within its bound (shrunk to :data:`OUTPUT_FILES` here, so that pruning runs under load); and
every file Gradio cached for the requests (uploads, copies of the outputs) must be gone once the
studio is closed. A one-line summary is printed (run with ``-s``).
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from studio import app as studio_app
from studio import handlers, media

from .test_app_e2e import SOURCE, TARGET, studio  # noqa: F401  (the served-studio fixture)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::Warning:gradio.queueing"),  # pandas 3 vs Gradio
]
gradio_client = pytest.importorskip("gradio_client")
httpx = pytest.importorskip("httpx")

USERS = 8
SECONDS = float(os.environ.get("LAM_LOAD_SECONDS", "60"))  # new requests start until then
MAX_REQUESTS = 400  # in all, whatever SECONDS says
REQUEST_TIMEOUT = 300.0  # seconds one request may take, queueing included
RSS_GROWTH = 1.5 * 2**30  # bytes the process may grow by from the end of the warm-up
OUTPUT_FILES = 16  # media.OUTPUTS.max_files during the test (OUTPUT_MAX_FILES is 256)
QUEUE_FULL = "queue is full"  # Gradio's message when the queue holds max_size events


def rss() -> int:
    """Resident memory of this process in bytes (Linux)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


@dataclass
class Cache:
    """Gradio's cache folder for this module, and the files in it before the first request."""

    folder: Path
    before: set[Path] = field(default_factory=set)

    def files(self) -> set[Path]:
        return {p for p in self.folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Iterator[Cache]:
    """A Gradio cache (``GRADIO_TEMP_DIR``) of this module's own. Set up before ``studio`` and so
    torn down after it: the files the requests left in it must be gone once the studio closed."""
    cache = Cache(tmp_path_factory.mktemp("gradio-cache"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADIO_TEMP_DIR", str(cache.folder))
        yield cache
    left = sorted(str(p.relative_to(cache.folder)) for p in cache.files() - cache.before)
    assert not left, f"{len(left)} cached file(s) left after the studio closed: {left[:5]}"


def running() -> int:
    """How many threads are inside the studio's transfer or cycle handler now."""
    codes = {handlers.transfer.__code__, handlers.cycle.__code__}
    count = 0
    for frame in sys._current_frames().values():
        while frame is not None and frame.f_code not in codes:
            frame = frame.f_back
        count += frame is not None
    return count


@dataclass
class Sampler:
    """Peak resident memory and peak size of the studio's output folder, sampled in a thread."""

    period: float = 0.1
    peak_rss: int = 0
    peak_outputs: int = 0
    peak_running: int = 0  # transfer/cycle handlers running at once
    samples: list[int] = field(default_factory=list)  # RSS, one per period
    _stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(rss())
            self.peak_rss = max(self.peak_rss, self.samples[-1])
            self.peak_outputs = max(self.peak_outputs, len(media.OUTPUTS.files()))
            self.peak_running = max(self.peak_running, running())
            self._stop.wait(self.period)

    def quarters(self) -> list[int]:
        """The peak RSS of each quarter of the run (a leak climbs, a working set levels off)."""
        return [int(max(part)) for part in np.array_split(self.samples, 4) if len(part)]

    def __enter__(self) -> Sampler:
        self._thread = threading.Thread(target=self.run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Outcome:
    api: str
    seconds: float
    error: str = ""  # "" when the request returned an mp4
    queue_full: bool = False


def call(client, api: str, checkpoint: str):
    """Start one request the way test_app_e2e makes it."""
    from gradio_client import handle_file

    inputs = [handle_file(str(SOURCE)), handle_file(str(TARGET))]
    if api == "/cycle":
        inputs += [checkpoint, 1]
    return client.submit(*inputs, api_name=api)


def check(result, http) -> None:
    """An mp4 that exists in Gradio's cache and that the studio serves, with a positive frame
    count. The client does not download it (gradio_client 2.7 leaves one empty folder in the
    system's temp folder per download; docs/RELIABILITY.md): the test fetches it as a browser
    does."""
    video, numbers = result
    path = Path(video["path"])
    assert path.suffix == ".mp4" and path.is_file(), video
    response = http.get(video["url"])
    assert response.status_code == 200 and response.content[4:8] == b"ftyp", video["url"]
    assert numbers["frames"] > 0, numbers


def user(index: int, served, deadline: float, budget, outcomes: list) -> None:
    """One user: /transfer, /cycle, /transfer, ... (odd users start with /cycle) until the
    deadline or until the shared request budget is spent."""
    from gradio_client import Client

    client = Client(served.url, verbose=False, download_files=False)
    http = httpx.Client(timeout=60)
    try:
        apis = itertools.cycle(["/transfer", "/cycle"][:: 1 if index % 2 == 0 else -1])
        for api in apis:
            if time.monotonic() >= deadline or next(budget) >= MAX_REQUESTS:
                return
            start = time.monotonic()
            try:
                check(call(client, api, served.checkpoint).result(timeout=REQUEST_TIMEOUT), http)
                outcome = Outcome(api, time.monotonic() - start)
            except Exception as e:  # every failure is recorded; the test sorts them
                message = f"{type(e).__name__}: {e}".strip()
                queue_full = QUEUE_FULL in message.lower()
                outcome = Outcome(api, time.monotonic() - start, message[:300], queue_full)
            outcomes.append(outcome)
    finally:
        http.close()
        client.close()


def test_eight_users_at_once(cache, studio, monkeypatch):  # noqa: F811
    from gradio_client import Client

    monkeypatch.setattr(media.OUTPUTS, "max_files", OUTPUT_FILES)
    cache.before = cache.files()
    warm, http = Client(studio.url, verbose=False, download_files=False), httpx.Client(timeout=60)
    try:  # loads the checkpoint and warms every code path once
        for api in ("/transfer", "/cycle"):
            check(call(warm, api, studio.checkpoint).result(timeout=REQUEST_TIMEOUT), http)
    finally:
        http.close()
        warm.close()
    baseline = rss()

    outcomes: list[Outcome] = []
    budget = itertools.count()  # next() is atomic under the GIL
    started = time.monotonic()
    deadline = started + SECONDS
    with Sampler() as sampler:
        threads = [
            threading.Thread(target=user, args=(i, studio, deadline, budget, outcomes), daemon=True)
            for i in range(USERS)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=max(1.0, deadline - time.monotonic()) + REQUEST_TIMEOUT + 30)
        hung = sum(thread.is_alive() for thread in threads)
    wall, end, cached = time.monotonic() - started, rss(), cache.files()

    ok = [o for o in outcomes if not o.error]
    full = [o for o in outcomes if o.queue_full]
    other = [o for o in outcomes if o.error and not o.queue_full]
    latency = np.array([o.seconds for o in ok]) if ok else np.zeros(1)
    gib = 2.0**30
    print(
        f"\nload: {USERS} users, {wall:.0f} s, {len(outcomes)} requests "
        f"({sum(o.api == '/transfer' for o in ok)} transfer + {sum(o.api == '/cycle' for o in ok)}"
        f" cycle ok), {len(full) + len(other)} failed ({len(full)} queue full), latency p50 "
        f"{np.percentile(latency, 50):.1f} s p95 {np.percentile(latency, 95):.1f} s max "
        f"{latency.max():.1f} s, {len(ok) / wall:.2f} req/s, RSS {baseline / gib:.2f} GiB after "
        f"warm-up, peak {sampler.peak_rss / gib:.2f} GiB (by quarter "
        f"{'/'.join(f'{q / gib:.2f}' for q in sampler.quarters())}), end {end / gib:.2f} GiB, "
        f"handlers at once {sampler.peak_running}, outputs peak {sampler.peak_outputs} (bound "
        f"{OUTPUT_FILES}), Gradio cache {len(cached)} files "
        f"{sum(p.stat().st_size for p in cached) / 2**20:.0f} MiB"
    )

    assert hung == 0, f"{hung} user thread(s) still waiting on a request"
    assert not other, f"{len(other)} request(s) failed otherwise than queue-full: {other[:3]}"
    assert len(ok) >= USERS, f"only {len(ok)} request(s) succeeded in {wall:.0f} s"
    growth = sampler.peak_rss - baseline
    assert growth < RSS_GROWTH, f"RSS grew by {growth / gib:.2f} GiB under load"
    # every model-running event shares one concurrency group (studio.tabs.MODEL), and OutputDir
    # prunes and creates a file under one lock: both bounds hold exactly
    assert sampler.peak_running <= studio_app.CONCURRENCY, sampler.peak_running
    assert sampler.peak_outputs <= OUTPUT_FILES, sampler.peak_outputs
    assert len(media.OUTPUTS.files()) <= OUTPUT_FILES
