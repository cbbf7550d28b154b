"""Pack a folder of videos into WebDataset shards, and measure how fast shards stream
(docs/DESIGN.md#at-scale; format and reader in lam_core/data/shards.py, docs/SCALE.md).

    python train/shards.py pack --videos DIR --out SHARDS/ [--features ENCODER_DIR]
        [--clips-per-shard 1000] [--num-frames 8 --fps 4 --size 64] [--stride FRAMES]
        [--frames-format npy|mp4] [--workers N]
    python train/shards.py bench --shards "SHARDS/shard-{000000..000009}.tar" [--workers 2]

``pack`` cuts every video (recursive; mp4, webm, mkv, avi, mov) into clips of ``--num-frames``
frames at ``--fps``, resized (shorter side) and centre-cropped to ``--size``, one clip every
``--stride`` frames (default: ``--num-frames``, clips that do not overlap), exactly the frames
``lam_core.video.read_video(path, fps=F, size=S, start=t, max_frames=T)`` gives. Unreadable
videos are skipped and counted; with ``--features`` each clip also stores the frozen encoder's
features (float16) of a pipeline or encoder folder, so training can skip the encoder
(``data.shard_features: true``). ``bench`` prints the loader's throughput in clips/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from lam_core.clip import frames_to_tensor
from lam_core.data.folders import VIDEO_EXTENSIONS
from lam_core.data.shards import ShardError, ShardWriter
from lam_core.data.streams import ShardSource
from lam_core.video import VideoDecodeError, frame_indices, probe_video, read_video
from lam_core.video import resize_center_crop as fit_frames

WINDOWS_PER_READ = 16  # clip windows decoded per decord batch
WINDOWS_PER_TASK = 64  # clip windows of one file per task of the --workers pool (bounds memory)


def clip_starts(info: dict, num_frames: int, fps: float, stride: int) -> list[float]:
    """Start times (s) of the windows of ``num_frames`` frames at ``fps`` that fit in a video,
    one every ``stride`` frames."""
    starts, k = [], 0
    while True:
        start = k * stride / fps
        if len(frame_indices(info["frames"], info["fps"], fps, start, num_frames)) < num_frames:
            return starts
        starts.append(start)
        k += 1


def read_windows(path: Path, starts: list[float], num_frames: int, fps: float,
                 size: int) -> Iterator[tuple[float, np.ndarray]]:
    """``(start, (T, S, S, 3) uint8)`` of each window: one decord reader per file, the frames of
    16 windows decoded once; PyAV (``read_video``) for what decord cannot read.

    Raises:
        VideoDecodeError: the file cannot be decoded.
    """
    import decord

    done = 0
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=1)
        source_fps, count = float(reader.get_avg_fps()), len(reader)
        for g in range(0, len(starts), WINDOWS_PER_READ):
            group = starts[g:g + WINDOWS_PER_READ]
            idx = [frame_indices(count, source_fps, fps, s, num_frames) for s in group]
            unique = np.unique(np.concatenate(idx))
            frames = reader.get_batch(unique.tolist()).asnumpy()
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise RuntimeError(f"decord gave frames of shape {frames.shape}")
            frames = fit_frames(frames, size)
            for start, ix in zip(group, idx):
                yield start, frames[np.searchsorted(unique, ix)]
                done += 1
    except Exception:  # decord refuses the file or a frame size (AV1, ...): PyAV from here on
        for start in starts[done:]:
            clip = read_video(path, fps=fps, max_frames=num_frames, size=size, start=start,
                              min_frames=num_frames)
            yield start, clip.frames


def _task_clips(task: tuple) -> tuple[list[tuple[float, np.ndarray]], str | None]:
    """``([(start, frames)], None)`` of one task ``(path, starts, num_frames, fps, size)``, or
    the clips read before a decoding error and its message."""
    torch.set_num_threads(1)
    clips: list[tuple[float, np.ndarray]] = []
    try:
        clips.extend(read_windows(*task))
    except VideoDecodeError as e:
        return clips, str(e)
    return clips, None


def _results(tasks: list[tuple], workers: int) -> Iterator[tuple[list, str | None]]:
    """:func:`_task_clips` of each task, in order; with ``workers``, in that many processes
    (spawned: a forked process whose OpenMP pool ran can hang) with at most 2 tasks each ahead."""
    if workers <= 0:
        yield from map(_task_clips, tasks)
        return
    import collections
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    ahead: collections.deque = collections.deque()
    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        for task in tasks:
            ahead.append(pool.submit(_task_clips, task))
            if len(ahead) > 2 * workers:
                yield ahead.popleft().result()
        while ahead:
            yield ahead.popleft().result()


def load_encoder(folder: str | Path) -> torch.nn.Module:
    """The frozen encoder of a pipeline or encoder folder (eval mode, no grad)."""
    from lam_core.checkpoint import load_component
    from train.config import component_folder

    encoder = load_component(component_folder(folder, "encoder"), expected="encoder")
    return encoder.eval().requires_grad_(False)


def pack(videos: str | Path, out: str | Path, *, features: str | Path | None = None,
         clips_per_shard: int = 1000, num_frames: int = 8, fps: float = 4.0, size: int = 64,
         stride: int | None = None, frames_format: str = "npy", batch_size: int = 32,
         workers: int = 0, progress: bool = True) -> dict:
    """Pack the videos under ``videos`` into shards in ``out`` (see the module docstring).

    Clips keep the order of the files (sorted paths) and of their start times, whatever
    ``workers`` (processes decoding videos; 0: this one) is.

    Returns:
        ``{"out", "clips", "shards", "files", "skipped", "seconds", "pattern"}``.

    Raises:
        FileExistsError: ``out`` exists and is not empty.
        ShardError: no video file, or no clip from any of them.
        ValueError: bad parameters (``--num-frames`` not a multiple of the encoder's tubelet...).
    """
    from lam_core.config import config_to_dict
    from train.data import encode

    began = time.time()
    videos, stride = Path(videos), stride or num_frames
    if num_frames < 1 or fps <= 0 or size < 2 or stride < 1:
        raise ValueError("--num-frames, --fps, --size and --stride must be positive (size ≥ 2)")
    if frames_format == "mp4" and size % 2:
        raise ValueError("--frames-format mp4 needs an even --size (yuv420p)")
    writer = ShardWriter(out, clips_per_shard, frames_format)  # refuses an existing folder first
    try:
        if not videos.is_dir():
            raise ShardError(f"{videos}: no such folder")
        files = sorted(p for p in videos.rglob("*")
                       if p.suffix.lower() in VIDEO_EXTENSIONS and p.is_file())
        if not files:
            raise ShardError(f"{videos}: no video files ({', '.join(VIDEO_EXTENSIONS)})")
        encoder = load_encoder(features) if features else None
        if encoder is not None and num_frames % encoder.cfg.tubelet:
            raise ValueError(f"--num-frames {num_frames} is not a multiple of the encoder's "
                             f"tubelet ({encoder.cfg.tubelet})")
        skipped: list[dict] = []
        plans = []
        for path in files:
            try:
                starts = clip_starts(probe_video(path), num_frames, fps, stride)
            except VideoDecodeError as e:
                skipped.append({"file": str(path.relative_to(videos)), "reason": str(e)})
                continue
            if not starts:
                skipped.append({"file": str(path.relative_to(videos)),
                                "reason": f"shorter than {num_frames} frames at {fps:g} fps"})
                continue
            plans.append((path, starts))
        bar = tqdm(total=sum(len(s) for _, s in plans), unit="clip", desc="pack",
                   disable=not progress, dynamic_ncols=True)
        pending: list[tuple[np.ndarray, dict]] = []

        def flush() -> None:
            feats = [None] * len(pending)
            if encoder is not None and pending:
                video = torch.stack([frames_to_tensor(f) for f, _ in pending])
                feats = encode(encoder, video).to(torch.float16).numpy()
            for (frames, meta), f in zip(pending, feats):
                writer.add(frames, meta, f)
            bar.update(len(pending))
            pending.clear()

        tasks = [(path, starts[i:i + WINDOWS_PER_TASK], num_frames, fps, size)
                 for path, starts in plans for i in range(0, len(starts), WINDOWS_PER_TASK)]
        failed: set[Path] = set()
        for task, (clips, error) in zip(tasks, _results(tasks, workers)):
            path = task[0]
            if path in failed:  # a later part of a file that failed: drop it
                continue
            for start, frames in clips:
                pending.append((frames, {"source": str(path.relative_to(videos)),
                                         "start": round(start, 6), "fps": float(fps),
                                         "num_frames": num_frames}))
                if len(pending) >= batch_size:
                    flush()
            if error is not None:
                failed.add(path)
                skipped.append({"file": str(path.relative_to(videos)), "reason": error})
                bar.set_postfix(skipped=len(skipped))
        flush()
        bar.close()
        if not writer.count:
            reasons = "; ".join(s["reason"] for s in skipped[:3])
            raise ShardError(f"{videos}: no clip could be cut from {len(files)} file(s); first "
                             f"reasons: {reasons}")
        feature_info = None
        if encoder is not None:
            feature_info = {"encoder": config_to_dict(encoder.cfg), "dtype": "float16",
                            "shape": writer.feature_shape}
        source = {"videos": str(videos.resolve()), "files": len(files), "stride": stride,
                  "skipped": skipped}
        index_fields = {"clip": {"num_frames": num_frames, "fps": fps, "size": size,
                                 "frames": frames_format},
                        "features": feature_info, "source": source}
        shards, clips, size_bytes = len(writer.shards), writer.count, writer.bytes
        writer.close(**index_fields)
    except BaseException:
        writer.abort()
        raise
    out = Path(out)
    return {"out": str(out), "clips": clips, "shards": shards, "files": len(files),
            "skipped": skipped, "bytes": size_bytes, "seconds": time.time() - began,
            "pattern": str(out / f"shard-{{000000..{shards - 1:06d}}}.tar")}


def bench(shards: str, index: str | None = None, workers: int = 0, batch_size: int = 32,
          batches: int = 50, shuffle_buffer: int = 1000, features: bool = False) -> dict:
    """Loader throughput: ``batches`` batches of a ``DataLoader`` over a shard stream, timed
    after the first (worker start-up). Returns ``{"clips_per_s", "batches", ...}``."""
    from lam_core.data.streams import ClipStream

    stream = ClipStream([ShardSource(shards, index, shuffle_buffer=shuffle_buffer,
                                     features=features)],
                        keys=("features",) if features else ("video",))
    stream.configure(batch_size=batch_size)
    loader = torch.utils.data.DataLoader(stream, batch_size=batch_size, num_workers=workers)
    it = iter(loader)
    began = time.time()
    next(it)
    first = time.time() - began
    began = time.time()
    for _ in range(batches):
        next(it)
    seconds = time.time() - began
    return {"clips_per_s": batches * batch_size / seconds, "batches": batches,
            "batch_size": batch_size, "workers": workers, "seconds": seconds,
            "first_batch_s": first}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("pack", help="pack a folder of videos into shards")
    p.add_argument("--videos", required=True, help="folder of video files (searched recursively)")
    p.add_argument("--out", required=True, help="output folder (must not exist)")
    p.add_argument("--features", help="pipeline or encoder folder: also store its features")
    p.add_argument("--clips-per-shard", type=int, default=1000)
    p.add_argument("--num-frames", type=int, default=8, help="frames per clip")
    p.add_argument("--fps", type=float, default=4.0, help="frame rate of the clips")
    p.add_argument("--size", type=int, default=64, help="frame side in pixels")
    p.add_argument("--stride", type=int, help="frames between clip starts (default: num-frames)")
    p.add_argument("--frames-format", choices=("npy", "mp4"), default="npy",
                   help="npy: exact uint8 frames (default); mp4: h264, ~13x smaller, lossy")
    p.add_argument("--workers", type=int, default=0,
                   help="processes decoding videos (0: this one); the shards are the same")
    p.add_argument("--batch-size", type=int, default=32, help="clips per encoder call")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    b = sub.add_parser("bench", help="loader throughput of some shards")
    b.add_argument("--shards", required=True, help="brace pattern of the shards")
    b.add_argument("--index", help="index.json (default: beside the shards)")
    b.add_argument("--workers", type=int, default=0)
    b.add_argument("--batch-size", type=int, default=32)
    b.add_argument("--batches", type=int, default=50)
    b.add_argument("--shuffle-buffer", type=int, default=1000)
    b.add_argument("--features", action="store_true", help="read features instead of frames")
    args = parser.parse_args(argv)
    try:
        if args.command == "pack":
            if args.threads:
                torch.set_num_threads(args.threads)
            result = pack(args.videos, args.out, features=args.features,
                          clips_per_shard=args.clips_per_shard, num_frames=args.num_frames,
                          fps=args.fps, size=args.size, stride=args.stride,
                          frames_format=args.frames_format, batch_size=args.batch_size,
                          workers=args.workers)
            rate = result["clips"] / max(result["seconds"], 1e-9)
            print(f"packed {result['clips']} clips from {result['files']} files "
                  f"({len(result['skipped'])} skipped) into {result['shards']} shards, "
                  f"{result['bytes'] / 1e6:.1f} MB, in {result['seconds']:.1f} s "
                  f"({rate:.1f} clips/s)")
            for s in result["skipped"]:
                print(f"  skipped {s['file']}: {s['reason']}")
            print(f'data.shards: "{result["pattern"]}"')
            return result
        result = bench(args.shards, args.index, args.workers, args.batch_size, args.batches,
                       args.shuffle_buffer, args.features)
        print(f"{result['clips_per_s']:.1f} clips/s ({result['batches']} batches of "
              f"{result['batch_size']}, {result['workers']} workers, first batch "
              f"{result['first_batch_s']:.2f} s)")
        return result
    except (ShardError, FileExistsError, ValueError) as e:
        sys.exit(f"train/shards.py {args.command}: {e}")


if __name__ == "__main__":
    main()
