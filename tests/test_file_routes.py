"""Files stay private (docs/RELIABILITY.md "Files stay private").

The studio is served in this process on a free loopback port. Gradio 6 serves files under
``/gradio_api/file=<path>`` (and the older ``/gradio_api/file/<path>``): only its upload folder and
cache, ``allowed_paths`` (none here) and static paths (none). The tests ask it for files outside
those (path traversal, absolute paths, the repository's README, the shipped assets, the studio's
own output folder, a symlink inside the upload folder pointing outside, a URL) and get a refusal,
while the video the studio returned for a transfer is served. An API call that names a file
outside the upload folder as its input is refused before the handler runs, and a bad upload's
message reaches the client as the handler's ``gr.Error``. The command line binds 127.0.0.1 and
warns about ``--share`` and other hosts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest

from lam_core.pipeline import REPO_ROOT
from lam_core.video import write_video
from studio import app as studio_app
from studio import media

from .helpers import free_port, tiny_pipeline

pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")  # pandas 3 vs Gradio
gradio_client = pytest.importorskip("gradio_client")
httpx = pytest.importorskip("httpx")


@dataclass
class Served:
    url: str  # ends with "/"
    uploads: Path  # Gradio's upload folder and cache (GRADIO_TEMP_DIR)
    clip: str
    text: str
    checkpoint: str


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[Served]:
    folder = tmp_path_factory.mktemp("routes")
    checkpoint = folder / "tiny"
    tiny_pipeline().save_pretrained(checkpoint)
    frames = np.random.default_rng(0).integers(0, 255, (8, 40, 48, 3), dtype=np.uint8)
    clip = str(write_video(folder / "clip.mp4", frames, 4.0))
    text = folder / "notes.mp4"
    text.write_text("this is a text file, not a video\n" * 20)
    demo = studio_app.build_app(str(checkpoint))
    app, url, _ = studio_app.launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield Served(url, Path(app.uploaded_file_dir).resolve(), clip, str(text), str(checkpoint))
    finally:
        demo.close()


def get(served: Served, route: str) -> httpx.Response:
    """GET ``route`` (already URL-encoded where it needs to be) without normalising ``..``."""
    with httpx.Client(timeout=30) as client:
        request = client.build_request("GET", served.url + route)
        return client.send(request)


def file_route(path: str | Path, encode: bool = True) -> str:
    return "gradio_api/file=" + (quote(str(path), safe="") if encode else str(path))


def test_a_file_the_studio_returned_is_served_and_others_are_refused(served):
    client = gradio_client.Client(served.url, verbose=False, download_files=False)
    video, numbers = client.predict(
        gradio_client.handle_file(served.clip), gradio_client.handle_file(served.clip),
        api_name="/transfer",
    )
    assert numbers["frames"] == 8
    response = get(served, video["url"].split(served.url, 1)[1])
    assert response.status_code == 200 and response.content[4:8] == b"ftyp"  # an mp4
    assert Path(video["path"]).resolve().is_relative_to(served.uploads)

    outside = {
        "traversal, encoded": file_route("../../../../../../etc/passwd"),
        "traversal, raw": file_route("../../../../../../etc/passwd", encode=False),
        "traversal from the upload folder": file_route(f"{served.uploads}/../../../etc/passwd"),
        "absolute /etc/passwd": file_route("/etc/passwd"),
        "the repository's README": file_route(REPO_ROOT / "README.md"),
        "a shipped asset (examples go through the cache)": file_route(
            REPO_ROOT / "assets" / "clips" / "miniwild-0.mp4"
        ),
        "the studio's output folder (only Gradio's copy is served)": file_route(
            media.OUTPUTS.files()[-1]
        ),
        "a test clip in a temporary folder": file_route(served.clip),
        "the older /file/ route": "gradio_api/file/etc/passwd",
        "a URL on this machine": file_route(f"{served.url}gradio_api/info"),
    }
    links = served.uploads / "links-test"
    links.mkdir(exist_ok=True)
    for name, destination in (("readme.md", REPO_ROOT / "README.md"), ("etc", Path("/etc"))):
        (links / name).unlink(missing_ok=True)
        (links / name).symlink_to(destination)
    outside["a symlink in the upload folder to the README"] = file_route(links / "readme.md")
    outside["a symlink in the upload folder to /etc"] = file_route(links / "etc" / "passwd")
    for case, route in outside.items():
        response = get(served, route)
        assert response.status_code in (403, 404), (case, response.status_code)
        body = response.content  # a refusal, never the file (403 echoes the path asked for)
        assert b"root:" not in body and b"# lam-studio" not in body and b"ftyp" not in body, case
        print(f"{case}: {response.status_code} {body[:80]!r}")  # docs/RELIABILITY.md, with -s


def test_an_input_outside_the_upload_folder_is_refused(served):
    """The API takes a file input by path; a path that was not uploaded never reaches the
    handler."""
    inputs = [{"path": "/etc/passwd", "meta": {"_type": "gradio.FileData"}}] * 2
    inputs += [served.checkpoint, 1, 0]  # checkpoint, context, steps
    with httpx.Client(timeout=60) as client:
        start = client.post(served.url + "gradio_api/call/transfer", json={"data": inputs})
        assert start.status_code == 200
        events = client.get(served.url + f"gradio_api/call/transfer/{start.json()['event_id']}")
    assert "event: error" in events.text and "root:" not in events.text
    assert "passwd: not a readable video" not in events.text  # the handler never saw it
    assert "not enough input values" not in events.text  # refused for the path, not the count


def test_a_bad_upload_reaches_the_client_as_the_handlers_message(served):
    client = gradio_client.Client(served.url, verbose=False)
    with pytest.raises(gradio_client.exceptions.AppError) as info:
        client.predict(
            gradio_client.handle_file(served.text), gradio_client.handle_file(served.clip),
            api_name="/transfer",
        )
    assert "source: notes.mp4: not a readable video" in str(info.value)
    assert "a text file" in str(info.value)


# ---------------------------------------------------------------------------------- command line
def test_the_command_line_binds_loopback_and_warns_about_exposure(monkeypatch, capsys):
    args = studio_app.parse_args([])
    assert (args.host, args.share) == ("127.0.0.1", False)
    for host in ("127.0.0.1", "::1", "localhost"):
        assert studio_app.exposure_warnings(host, False) == []
    assert "--host 0.0.0.0" in studio_app.exposure_warnings("0.0.0.0", False)[0]
    assert "--share" in studio_app.exposure_warnings("127.0.0.1", True)[0]
    assert len(studio_app.exposure_warnings("my-box.local", True)) == 2

    served = {}

    class Demo:  # records what launch passes to Gradio
        def queue(self, **kwargs):
            served["queue"] = kwargs

        def launch(self, **kwargs):
            served.update(kwargs)

    studio_app.launch(Demo())
    assert served["server_name"] == "127.0.0.1" and served["share"] is False
    assert served["queue"]["max_size"] > 0 and "allowed_paths" not in served

    monkeypatch.setattr(studio_app, "build_app", lambda checkpoint: Demo())
    monkeypatch.setattr(studio_app.torch, "set_num_threads", lambda n: None)
    studio_app.main(["--share", "--no-umap-warmup"])
    err = capsys.readouterr().err
    assert "WARNING: --share: a public gradio.live link" in err and served["share"] is True
    studio_app.main(["--no-umap-warmup"])
    assert "WARNING" not in capsys.readouterr().err
