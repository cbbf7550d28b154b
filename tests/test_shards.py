"""WebDataset shards and streamed, mixed training data (lam_core/data/shards.py, streams.py,
train/shards.py, train/sources/): pack → read round trip, disjoint readers (ranks × workers),
epoch coverage, per-source weights, exact resume, file:// and pipe: URLs, clear errors, training
on shards (resumed exactly) and two real processes reading disjoint shards. Tiny clips only."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from accelerate.state import AcceleratorState, GradientState

from lam_core import ConfigError
from lam_core.data.miniwild import MiniWildConfig, generate_clip
from lam_core.data.shards import ShardError, ShardWriter, decode_frames, shard_samples
from lam_core.data.streams import ClipStream, MapSource, ShardSource, buffer_order
from lam_core.video import read_video, write_video
from train import lam
from train import shards as shards_cli
from train.config import load_job_config

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "train" / "configs"


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")  # tests/conftest.py


@pytest.fixture(scope="module")
def packed(tmp_path_factory):
    """3 MiniWild videos (20 frames at 8 fps, 48 px) + one garbage file, packed into 12 clips of
    4 frames at 4 fps, 32 px, one every 2 frames, 2 clips per shard."""
    root = tmp_path_factory.mktemp("packed")
    for i in range(3):
        clip = generate_clip(i, MiniWildConfig(num_frames=20, size=48, fps=8.0))
        write_video(root / "videos" / f"clip{i}.mp4", clip.frames, 8.0)
    (root / "videos" / "broken.mp4").write_bytes(b"not a video")
    result = shards_cli.pack(root / "videos", root / "shards", clips_per_shard=2, num_frames=4,
                             fps=4.0, size=32, stride=2, progress=False)
    return root, result


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """40 clips of 8 random 32 px frames, 5 per shard (8 shards), keyed 0…39."""
    out = tmp_path_factory.mktemp("synthetic") / "shards"
    rng = np.random.default_rng(0)
    with ShardWriter(out, clips_per_shard=5) as writer:
        for i in range(40):
            writer.add(rng.integers(0, 256, (8, 32, 32, 3), dtype=np.uint8), {"i": i})
        writer.close(clip={"num_frames": 8, "fps": 4.0, "size": 32, "frames": "npy"})
    return f"{out}/shard-{{000000..000007}}.tar"


def keys_of(items, n: int) -> list[str]:
    return [next(items)["key"] for _ in range(n)]


def clip_number(key: str) -> int:
    return int(key.rsplit("/", 1)[-1])


# ---------------------------------------------------------------- packing
def test_pack_round_trip_gives_the_frames_read_video_gives(packed):
    root, result = packed
    assert (result["clips"], result["shards"], result["files"]) == (12, 6, 4)
    assert [s["file"] for s in result["skipped"]] == ["broken.mp4"]
    index = json.loads((root / "shards" / "index.json").read_text())
    assert index["count"] == 12 and index["clip"] == {"num_frames": 4, "fps": 4.0, "size": 32,
                                                      "frames": "npy"}
    assert index["source"]["skipped"][0]["file"] == "broken.mp4"
    seen = []
    for url, count in ShardSource(result["pattern"]).shards:
        for _, sample in shard_samples(url, count):
            meta = json.loads(sample["json"])
            frames = decode_frames(sample)
            want = read_video(root / "videos" / meta["source"], fps=4.0, size=32,
                              start=meta["start"], max_frames=4).frames
            assert frames.dtype == np.uint8 and np.array_equal(frames, want)
            seen.append((meta["source"], meta["start"]))
    assert seen == [(f"clip{i}.mp4", s) for i in range(3) for s in (0.0, 0.5, 1.0, 1.5)]


def test_pack_stores_the_frozen_encoders_features(tmp_path, packed):
    from lam_core import get_preset
    from lam_core.checkpoint import build_component, save_component
    from train.data import encode

    torch.manual_seed(0)
    encoder = build_component("encoder", get_preset("tiny").encoder).eval()
    save_component(encoder, tmp_path / "encoder")
    root, _ = packed
    result = shards_cli.pack(root / "videos", tmp_path / "shards", features=tmp_path / "encoder",
                             num_frames=4, fps=4.0, size=32, progress=False)
    index = json.loads((tmp_path / "shards" / "index.json").read_text())
    assert index["features"]["dtype"] == "float16" and index["features"]["shape"] == [2, 16, 48]
    source = ShardSource(result["pattern"], features=True)
    url, count = source.shards[0]
    _, sample = next(shard_samples(url, count))
    stored = np.load(__import__("io").BytesIO(sample["features.npy"]))
    video = torch.from_numpy(decode_frames(sample)).permute(0, 3, 1, 2).float()[None] / 255
    want = encode(encoder, video)[0].to(torch.float16).numpy()
    assert stored.dtype == np.float16 and np.array_equal(stored, want)
    item = next(source.items(0, 1))
    assert item["features"].shape == (2, 16, 48) and item["features"].dtype == torch.float32


def test_pack_errors_are_clear(tmp_path, packed, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ShardError, match="no video files"):
        shards_cli.pack(tmp_path / "empty", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.tmp-*"))
    root, _ = packed
    with pytest.raises(FileExistsError, match="already exists"):
        shards_cli.pack(root / "videos", root / "shards", progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.mp4").write_bytes(b"junk")
    with pytest.raises(SystemExit, match=r"pack: .*no clip could be cut from 1 file"):
        shards_cli.main(["pack", "--videos", str(tmp_path / "bad"), "--out",
                         str(tmp_path / "out2")])


def test_mp4_frames_are_close_and_much_smaller(tmp_path):
    frames = generate_clip(0, MiniWildConfig(num_frames=8, size=32)).frames
    for fmt in ("npy", "mp4"):
        with ShardWriter(tmp_path / fmt, frames_format=fmt) as writer:
            writer.add(frames, {"fps": 4.0})
            writer.close()
    samples = {fmt: next(shard_samples(str(tmp_path / fmt / "shard-000000.tar"), 1))[1]
               for fmt in ("npy", "mp4")}
    assert len(samples["mp4"]["frames.mp4"]) < len(samples["npy"]["frames.npy"]) / 3
    sample = samples["mp4"]
    decoded = decode_frames(sample)
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 8  # lossy h264, crf 18


@pytest.mark.slow
def test_packing_with_worker_processes_writes_the_same_shards(tmp_path, packed):
    root, _ = packed
    for workers in (0, 1):
        shards_cli.pack(root / "videos", tmp_path / f"w{workers}", clips_per_shard=5,
                        num_frames=4, fps=4.0, size=32, stride=3, workers=workers,
                        progress=False)
    names = sorted(p.name for p in (tmp_path / "w0").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "w1").iterdir())
    assert all((tmp_path / "w0" / n).read_bytes() == (tmp_path / "w1" / n).read_bytes()
               for n in names if n.endswith(".tar"))


# ---------------------------------------------------------------- splitting and shuffling
@pytest.mark.parametrize("world,workers", [(1, 1), (2, 1), (2, 2), (3, 1), (2, 4), (4, 3)])
def test_an_epoch_is_every_clip_once_split_over_ranks_and_workers(synthetic, world, workers):
    # 8 shards: (2, 4) and (4, 3) have more readers than shards, so the split is by clip
    source = ShardSource(synthetic, seed=3, shuffle_buffer=4)
    readers = world * workers
    for epoch in (0, 1):
        got = []
        for rank in range(world):
            for worker in range(workers):
                reader = rank + world * worker
                start = sum(source.epoch_size(e, reader, readers) for e in range(epoch))
                n = source.epoch_size(epoch, reader, readers)
                got += [clip_number(k) for k in keys_of(source.items(reader, readers, start), n)]
        assert sorted(got) == list(range(40))  # every clip exactly once, by exactly one reader


def test_map_source_epochs_are_disjoint_and_complete():
    source = MapSource([{"video": torch.zeros(1)} for _ in range(10)], seed=1, name="m")
    # 3 readers × 4 items are stream positions 0…11, of which 0…9 are the first epoch
    by_position = {j * 3 + r: k for r in range(3)
                   for j, k in enumerate(keys_of(source.items(r, 3), 4))}
    assert sorted(by_position[p] for p in range(10)) == sorted(f"m:{i}" for i in range(10))


def test_shuffle_differs_by_epoch_and_the_buffer_stays_bounded(synthetic):
    source = ShardSource(synthetic, seed=0, shuffle_buffer=6)
    epoch0 = keys_of(source.items(0, 1), 40)
    epoch1 = keys_of(source.items(0, 1, 40), 40)
    assert sorted(map(clip_number, epoch0)) == sorted(map(clip_number, epoch1)) == list(range(40))
    assert epoch0 != epoch1
    order = buffer_order(1000, 16, np.random.default_rng(0))
    assert sorted(order) == list(range(1000))
    assert all(order[t] < t + 16 for t in range(1000))  # never more than 16 clips held


# ---------------------------------------------------------------- weights and resume
def _mixture(synthetic, seed=0):
    small = [{"video": torch.full((8, 3, 16, 16), float(i))} for i in range(7)]
    sources = [MapSource(small, seed, 0, "a"), ShardSource(synthetic, seed=seed, shuffle_buffer=8),
               MapSource(small, seed, 2, "c")]
    return ClipStream(sources, [2.0, 1.0, 1.0], seed=seed, size=32, with_keys=True)


def test_batches_follow_the_weights_on_every_rank():
    data = [{"video": torch.zeros(8, 3, 4, 4)}] * 5
    stream = ClipStream([MapSource(data, 0, s, str(s)) for s in range(3)], [2, 1, 1], seed=0,
                        size=4, with_keys=True)
    for rank in (0, 1):
        stream.configure(rank=rank, world=2, batch_size=16)
        items = stream.rank_items(workers=2)
        counts = Counter(next(items)["key"].split(":")[0] for _ in range(200 * 16))
        shares = np.array([counts[str(s)] for s in range(3)]) / (200 * 16)
        # binomial sd ≤ 0.009 over 3200 draws: 0.03 is > 3 sd
        assert np.abs(shares - [0.5, 0.25, 0.25]).max() < 0.03, shares


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_the_stream_after_a_resume_continues_the_uninterrupted_one(synthetic, workers):
    stream = _mixture(synthetic)
    stream.configure(rank=1, world=2, batch_size=4)
    full = keys_of(stream.rank_items(workers), 4 * 30)  # 120 items: past an epoch of each source
    for k in (1, 7, 13):
        stream.configure(rank=1, world=2, batch_size=4, start_batch=k)
        assert keys_of(stream.rank_items(workers), 4 * (30 - k)) == full[4 * k:]


def test_a_dataloader_with_workers_yields_what_rank_items_computes(synthetic):
    stream = _mixture(synthetic)
    for start in (0, 3):
        stream.configure(rank=0, world=1, batch_size=3, start_batch=start)
        want = keys_of(stream.rank_items(2), 3 * 8)
        loader = torch.utils.data.DataLoader(stream, batch_size=3, num_workers=2)
        got = []
        for batch, _ in zip(loader, range(8)):
            assert batch["video"].shape == (3, 8, 3, 32, 32)  # the small source resized
            got += batch["key"]
        assert got == want


# ---------------------------------------------------------------- URLs and damaged shards
def test_file_and_pipe_urls_read_the_same_clips(synthetic):
    folder = synthetic.rsplit("/", 1)[0]
    want = keys_of(ShardSource(synthetic, seed=2).items(0, 1), 40)
    via_file = ShardSource(f"file://{synthetic}", seed=2)
    assert keys_of(via_file.items(0, 1), 40) == want
    pipe = f"pipe:cat {synthetic}"
    with pytest.raises(ShardError, match=r"index\.json explicitly"):
        ShardSource(pipe)
    via_pipe = ShardSource(pipe, index=f"pipe:cat {folder}/index.json", seed=2)
    assert keys_of(via_pipe.items(0, 1), 40) == want


def test_damaged_or_unlisted_shards_name_the_file(tmp_path, synthetic):
    folder = Path(synthetic.rsplit("/", 1)[0])
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    with pytest.raises(ShardError, match=r"shard-000008\.tar: not listed"):
        ShardSource(f"{copy}/shard-{{000000..000008}}.tar")
    data = (copy / "shard-000003.tar").read_bytes()
    (copy / "shard-000003.tar").write_bytes(data[: len(data) // 2])
    with pytest.raises(ShardError, match=r"shard-000003\.tar"):
        list(shard_samples(str(copy / "shard-000003.tar"), 5))
    with pytest.raises(ShardError, match=r"pipe:cat /nonexistent"):
        list(shard_samples("pipe:cat /nonexistent/shard-000000.tar", 5))


# ---------------------------------------------------------------- config and training
def job(out: Path, *overrides: str):
    return load_job_config(CONFIGS / "tiny_lam.yaml", [f"train.output_dir={out}", *overrides])


def test_source_lines_are_checked_by_key(tmp_path, synthetic):
    cases = [
        ("data.sources=[{source: miniwild}, {source: world, world: moon}]",
         r"data\.sources\[1\]\.world: must be one of reach"),
        ("data.sources=[{source: world, world: reach, scene: pan}]",
         r"data\.sources\[0\]\.scene: not a key of source world"),
        ("data.sources=[{source: miniwild}, {source: shards}]",
         r"data\.sources\[1\]\.shards: is required with source: shards"),
        ("data.sources=[{source: miniwild, weight: 0}]",
         r"data\.sources\[0\]\.weight: must be > 0"),
        ("data.sources=[{source: miniwild, colour: red}]", r"data\.sources\[0\]: unknown key"),
        ("data.sources=[{source: tape}]", r"data\.sources\[0\]\.source: must be one of"),
        ("data.source=shards", r"data\.shards: is required"),
        ("data.shards=x.tar", r"data\.shards: needs source: shards"),
    ]
    for override, message in cases:
        with pytest.raises(ConfigError, match=message):
            job(tmp_path, override)
    with pytest.raises(ConfigError, match=r"data\.sources: each source names its own data"):
        job(tmp_path, "data.mixture={pan: 1}", "data.sources=[{source: miniwild}]")
    ok = job(tmp_path, f'data.sources=[{{source: miniwild, scene: pan, weight: 2}}, '
                       f'{{source: shards, shards: "{synthetic}"}}]')
    assert ok.data.sources[0].scene == "pan" and ok.data.sources[1].weight == 1.0


def test_training_on_shards_resumes_exactly(tmp_path, synthetic):
    class Killed(RuntimeError):
        pass

    args = (f"data.shards={synthetic}", "data.source=shards", "train.steps=6",
            "train.save_every=2", "train.eval_every=0", "data.shuffle_buffer=8")
    full = lam.train(job(tmp_path / "full", *args)).parent

    def kill_at_3(step, logged):
        if step == 3:
            raise Killed

    with pytest.raises(Killed):
        lam.train(job(tmp_path / "cut", *args), on_step=kill_at_3)
    AcceleratorState._reset_state(True)
    GradientState._reset_state()
    lam.train(job(tmp_path / "cut", *args), resume="latest")
    losses = [{d["step"]: d["loss"] for d in map(json.loads, (run / "metrics.jsonl").open())
               if "loss" in d} for run in (full, tmp_path / "cut")]
    assert sorted(losses[1]) == list(range(1, 7))
    for step in range(3, 7):
        assert losses[1][step] == pytest.approx(losses[0][step], abs=1e-6, rel=0)


def test_a_mixture_of_procedural_worlds_and_shards_trains(tmp_path, synthetic):
    sources = (f'data.sources=[{{source: miniwild, scene: pan, weight: 2}}, '
               f'{{source: world, world: drive}}, {{source: shards, shards: "{synthetic}"}}]')
    final = lam.train(job(tmp_path / "mix", sources, "train.steps=2", "train.eval_every=2"))
    record = json.loads((final / "lam" / "config.json").read_text())
    lines = [json.loads(ln) for ln in (final.parent / "metrics.jsonl").read_text().splitlines()]
    assert any("val_l1" in ln for ln in lines)
    assert "sources" in json.dumps(record)


# ---------------------------------------------------------------- two real processes
def _two_process_read(out: str, pattern: str) -> None:
    """Runs in each debug_launcher process: this rank's first epoch of clips, then 2 steps."""
    from accelerate import PartialState

    state = PartialState(cpu=True)  # as Accelerator under ACCELERATE_USE_CPU
    rank, world = state.process_index, state.num_processes
    source = ShardSource(pattern, seed=5, shuffle_buffer=4)
    stream = ClipStream([source], with_keys=True)
    stream.configure(rank=rank, world=world, batch_size=1)
    loader = torch.utils.data.DataLoader(stream, batch_size=1)
    n = source.epoch_size(0, rank, world)
    keys = [batch["key"][0] for batch, _ in zip(loader, range(n))]
    Path(f"{out}/rank{rank}.json").write_text(json.dumps({"world": world, "keys": keys}))
    lam.train(job(Path(out) / "run", "data.source=shards", f"data.shards={pattern}",
                  "train.steps=2", "train.eval_every=0"))


def test_two_cpu_processes_read_disjoint_shards(tmp_path, synthetic):
    code = ("from accelerate import debug_launcher\n"
            "from tests.test_shards import _two_process_read\n"
            f"debug_launcher(_two_process_read, args=({str(tmp_path)!r}, {synthetic!r}), "
            "num_processes=2)\n")
    env = {**os.environ, "TMPDIR": str(tmp_path), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=300)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["world"] for r in ranks] == [2, 2]
    a, b = ({clip_number(k) for k in r["keys"]} for r in ranks)
    assert a and b and not a & b and sorted(a | b) == list(range(40))
    assert (tmp_path / "run" / "final" / "config.json").is_file()
    state = json.loads((tmp_path / "run" / "checkpoints" / "2" / "trainer_state.json").read_text())
    assert state.get("num_processes", 2) == 2  # the training ran on both processes
