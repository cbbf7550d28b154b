"""WebDataset shards of clips: the format, a writer and the reading of one shard
(docs/DESIGN.md#at-scale; for data that outgrows one machine).

A shard folder (written by :class:`ShardWriter`, e.g. through ``python train/shards.py pack``)::

    index.json           {"format": "lam-studio-shards", "format_version": 1, "count": n,
                          "clips_per_shard": c, "pattern": "shard-{000000..000009}.tar",
                          "shards": [{"file": "shard-000000.tar", "count": c}, ...],
                          "clip": {"num_frames": T, "fps": F, "size": S, "frames": "npy"},
                          "features": null | {"encoder": {...}, "dtype": "float16", "shape": [...]},
                          "source": {...what was packed...}}
    shard-000000.tar     per clip <key>.frames.npy (uint8 T×S×S×3; or <key>.frames.mp4, h264),
                         [<key>.features.npy (float16 T'×N×D, the frozen encoder's)], <key>.json
                         ({"source", "start", "fps", "num_frames", "clip"})

Shards are plain tar files in the WebDataset layout (one sample = consecutive members sharing a
key), so ``webdataset``, ``tar`` and object stores all read them. Reading goes through
``webdataset.gopen``: local paths, ``file://`` and ``pipe:`` URLs (``pipe:curl -s URL``,
``pipe:aws s3 cp URL -``: nothing here assumes a cloud vendor); brace notation
(``shard-{000000..000099}.tar``) lists shards. ``.npy`` members are loaded with
``allow_pickle=False``: nothing read from a shard is ever unpickled.

:class:`lam_core.data.streams.ShardSource` streams them: split over processes and DataLoader
workers, shuffled per epoch, resumable at any position.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lam_core.clip import frames_to_tensor

__all__ = [
    "INDEX_NAME",
    "SHARDS_FORMAT",
    "ShardClips",
    "ShardError",
    "ShardWriter",
    "decode_frames",
    "decode_sample",
    "default_index",
    "encode_frames",
    "expand_shards",
    "read_index",
    "resolve_shards",
    "shard_samples",
]

INDEX_NAME = "index.json"
SHARDS_FORMAT = "lam-studio-shards"
FORMAT_VERSION = 1
FRAME_FORMATS = ("npy", "mp4")
MP4_CRF = 18  # h264 quality of frames.mp4 (visually lossless; mean error ~2/255 measured)


class ShardError(ValueError):
    """A shard or its index is missing, unreadable or does not match; the message names it."""


# ---------------------------------------------------------------- encoding
def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def _load_npy(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


def encode_frames(frames: np.ndarray, fmt: str = "npy", fps: float = 4.0) -> tuple[str, bytes]:
    """``(member extension, bytes)`` of ``(T, H, W, 3)`` uint8 frames: ``frames.npy`` (exact)
    or ``frames.mp4`` (h264 yuv420p, crf 18: ~13× smaller, lossy, ~23 ms to decode 8 frames)."""
    if fmt == "npy":
        return "frames.npy", _npy(frames)
    if fmt != "mp4":
        raise ValueError(f"frames format must be one of {FRAME_FORMATS}, got {fmt!r}")
    import av

    buf = io.BytesIO()
    with av.open(buf, mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(10_000))
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt, stream.options = "yuv420p", {"crf": str(MP4_CRF)}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return "frames.mp4", buf.getvalue()


def decode_frames(sample: dict[str, bytes]) -> np.ndarray:
    """The ``(T, H, W, 3)`` uint8 frames of a raw sample (``frames.npy`` or ``frames.mp4``)."""
    if "frames.npy" in sample:
        return _load_npy(sample["frames.npy"])
    if "frames.mp4" in sample:
        import av

        with av.open(io.BytesIO(sample["frames.mp4"])) as container:
            return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])
    raise ShardError(f"clip {sample.get('__key__')}: no frames.npy or frames.mp4 member")


# ---------------------------------------------------------------- writing
def _shard_name(i: int) -> str:
    return f"shard-{i:06d}.tar"


class ShardWriter:
    """Writes clips into tar shards of ``clips_per_shard`` clips, then ``index.json``.

    Everything goes to a temporary folder beside ``out_dir``, renamed when :meth:`close` has
    written the index: a half-written folder is never mistaken for a finished one. Use as a
    context manager (an exception removes the temporary folder).

    Args:
        out_dir: the shard folder (must not exist, or be an empty folder).
        clips_per_shard: clips per tar file.
        frames_format: ``"npy"`` (exact, the default) or ``"mp4"`` (see :func:`encode_frames`).

    Raises:
        FileExistsError: ``out_dir`` exists and is not empty.
    """

    def __init__(self, out_dir: str | Path, clips_per_shard: int = 1000,
                 frames_format: str = "npy") -> None:
        from webdataset import TarWriter

        self.out_dir = Path(out_dir)
        if self.out_dir.exists() and (not self.out_dir.is_dir() or any(self.out_dir.iterdir())):
            raise FileExistsError(f"{self.out_dir}: already exists; remove it or choose another "
                                  "output folder")
        if clips_per_shard < 1:
            raise ValueError(f"clips_per_shard must be ≥ 1, got {clips_per_shard}")
        if frames_format not in FRAME_FORMATS:
            raise ValueError(f"frames format must be one of {FRAME_FORMATS}, got {frames_format!r}")
        self._tar_writer = TarWriter
        self.clips_per_shard, self.frames_format = clips_per_shard, frames_format
        self.tmp = self.out_dir.with_name(f".{self.out_dir.name}.tmp-{os.getpid()}")
        shutil.rmtree(self.tmp, ignore_errors=True)
        self.tmp.mkdir(parents=True)
        self.shards: list[dict] = []
        self.count = 0
        self.bytes = 0
        self.feature_shape: list[int] | None = None
        self._tar = None

    def add(self, frames: np.ndarray, meta: dict, features: np.ndarray | None = None) -> None:
        """Append one clip: ``(T, H, W, 3)`` uint8 frames, a JSON-able ``meta`` and optional
        ``(T', N, D)`` features (stored float16)."""
        if self._tar is None:
            self._tar = self._tar_writer(str(self.tmp / _shard_name(len(self.shards))),
                                         encoder=False, mtime=0)
            self.shards.append({"file": _shard_name(len(self.shards)), "count": 0})
        ext, data = encode_frames(frames, self.frames_format, meta.get("fps", 4.0))
        sample = {"__key__": f"{self.count:09d}", ext: data,
                  "json": json.dumps({**meta, "clip": self.count}).encode()}
        if features is not None:
            sample["features.npy"] = _npy(np.asarray(features, dtype=np.float16))
            self.feature_shape = list(features.shape)
        self.bytes += self._tar.write(sample)
        self.count += 1
        self.shards[-1]["count"] += 1
        if self.shards[-1]["count"] == self.clips_per_shard:
            self._tar.close()
            self._tar = None

    def close(self, **fields: Any) -> Path:
        """Finish the last shard, write ``index.json`` (plus ``fields``, e.g. ``clip``,
        ``features``, ``source``) and move the folder into place; returns ``out_dir``.

        Raises:
            ShardError: no clip was added.
        """
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        if not self.count:
            self.abort()
            raise ShardError(f"{self.out_dir}: no clip to write")
        last = len(self.shards) - 1
        index = {"format": SHARDS_FORMAT, "format_version": FORMAT_VERSION, "count": self.count,
                 "clips_per_shard": self.clips_per_shard,
                 "pattern": f"shard-{{000000..{last:06d}}}.tar", "shards": self.shards, **fields}
        (self.tmp / INDEX_NAME).write_text(json.dumps(index, indent=2) + "\n")
        if self.out_dir.exists():
            self.out_dir.rmdir()  # checked empty in __init__
        self.tmp.rename(self.out_dir)
        return self.out_dir

    def abort(self) -> None:
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        shutil.rmtree(self.tmp, ignore_errors=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


# ---------------------------------------------------------------- index and URLs
def expand_shards(pattern: str) -> list[str]:
    """Shard URLs of a brace pattern (``a/shard-{000000..000099}.tar``; ``::`` joins patterns)."""
    from webdataset.shardlists import expand_urls

    urls = expand_urls(pattern)
    if not urls:
        raise ShardError(f"{pattern!r}: lists no shard")
    return urls


def default_index(pattern: str) -> str | None:
    """``index.json`` beside the shards, for local paths and ``file://`` URLs (None for others,
    e.g. ``pipe:`` whose command cannot be rewritten safely: give the index explicitly)."""
    if ":" in pattern.split("/", 1)[0] and not pattern.startswith("file:"):
        return None
    head = pattern.rsplit("/", 1)[0] if "/" in pattern else "."
    return f"{head}/{INDEX_NAME}"


def _read_url(url: str) -> bytes:
    from webdataset.gopen import gopen

    if ":" not in url.split("/", 1)[0]:
        path = Path(url)
        if not path.is_file():
            raise ShardError(f"{path}: missing (the shards' index.json, written by "
                             "`python train/shards.py pack`)")
        return path.read_bytes()
    try:
        with gopen(url, "rb") as f:
            return f.read()
    except Exception as e:  # any scheme's failure (OSError, a pipe's exit status, ...)
        raise ShardError(f"{url}: cannot read ({e})") from e


def read_index(url: str | Path) -> dict:
    """Read and check a shard folder's ``index.json`` (a path or any ``gopen`` URL).

    Raises:
        ShardError: naming the file when it is missing, not JSON or lacks a field.
    """
    url = str(url)
    try:
        index = json.loads(_read_url(url))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ShardError(f"{url}: not valid JSON ({e})") from e
    if not isinstance(index, dict) or index.get("format") != SHARDS_FORMAT:
        raise ShardError(f"{url}: 'format' is not {SHARDS_FORMAT!r}")
    if index.get("format_version") != FORMAT_VERSION:
        raise ShardError(f"{url}: format_version {index.get('format_version')!r} is not "
                         f"{FORMAT_VERSION}")
    shards = index.get("shards")
    if not isinstance(shards, list) or not shards or not all(
            isinstance(s, dict) and isinstance(s.get("file"), str)
            and isinstance(s.get("count"), int) and s["count"] > 0 for s in shards):
        raise ShardError(f"{url}: 'shards' must be a non-empty list of "
                         "{'file': str, 'count': int > 0}")
    if sum(s["count"] for s in shards) != index.get("count"):
        raise ShardError(f"{url}: shard counts do not add up to count={index.get('count')}")
    return index


def resolve_shards(pattern: str, index: dict, index_url: str = INDEX_NAME) -> list[tuple[str, int]]:
    """``[(url, clips)]`` of the shards a pattern lists, their counts from the index (an entry
    matches a URL that contains its file name; a pattern may list a subset of the shards).

    Raises:
        ShardError: a URL that no index entry names.
    """
    files = sorted(((s["file"], s["count"]) for s in index["shards"]), key=lambda s: -len(s[0]))
    out = []
    for url in expand_shards(pattern):
        match = next(((f, c) for f, c in files if f in url), None)
        if match is None:
            raise ShardError(f"{url}: not listed in {index_url} (its shards are "
                             f"{index['shards'][0]['file']} …); wrong pattern or index?")
        out.append((url, match[1]))
    return out


# ---------------------------------------------------------------- reading
def shard_samples(url: str, count: int, wanted: np.ndarray | None = None
                  ) -> Iterator[tuple[int, dict[str, bytes]]]:
    """``(ordinal, {"__key__", ext: bytes})`` of the clips of one shard, in order.

    Args:
        url: a path or ``gopen`` URL.
        count: the clips ``index.json`` gives it (checked when the whole shard is read).
        wanted: ``(count,)`` booleans: only these clips are extracted (the others are skipped
            undecoded); reading stops after the last wanted one.

    Raises:
        ShardError: naming the URL when it cannot be opened or read, is truncated, or holds
            another number of clips than the index says.
    """
    from webdataset.gopen import gopen

    wanted_at = np.flatnonzero(wanted) if wanted is not None else np.arange(count)
    if not len(wanted_at):
        return
    last = int(wanted_at[-1])
    try:
        stream = gopen(url, "rb")
    except Exception as e:
        raise ShardError(f"{url}: cannot open ({e})") from e
    ordinal, key, sample, take, complete, abandoned = -1, None, {}, False, True, False
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                if not member.isreg():
                    continue
                k, _, ext = member.name.rsplit("/", 1)[-1].partition(".")
                if k != key:
                    if take:
                        yield ordinal, sample
                    if ordinal == last:
                        complete = False
                        break
                    ordinal, key, sample = ordinal + 1, k, {"__key__": k}
                    if ordinal >= count:
                        raise ShardError(f"{url}: holds more than the {count} clips index.json "
                                         "says")
                    take = wanted is None or bool(wanted[ordinal])
                if take:
                    sample[ext] = tar.extractfile(member).read()
                tar.members = []  # a streamed tar would otherwise keep every header
            else:
                if take:
                    yield ordinal, sample
    except GeneratorExit:  # the consumer stopped early: close quietly
        abandoned = True
        raise
    except tarfile.TarError as e:
        raise ShardError(f"{url}: not a readable tar file ({e})") from e
    finally:
        try:
            stream.close()
        except Exception as e:  # a pipe: command that failed reports its exit status here
            if not abandoned:
                raise ShardError(f"{url}: {e}") from e
    if complete and ordinal + 1 != count:
        raise ShardError(f"{url}: holds {ordinal + 1} clips, index.json says {count} "
                         "(truncated or rewritten shard?)")


def decode_sample(sample: dict[str, bytes], features: bool) -> dict[str, Any]:
    if features:
        if "features.npy" not in sample:
            raise ShardError(f"clip {sample['__key__']}: no features.npy (pack with --features)")
        item = {"features": torch.from_numpy(_load_npy(sample["features.npy"]).astype(np.float32))}
    else:
        item = {"video": frames_to_tensor(decode_frames(sample))}
    item["key"] = sample["__key__"]
    return item

class ShardClips(torch.utils.data.Dataset):
    """The first ``length`` clips of some shards in order, held in memory (a validation split).

    Args:
        shards: brace pattern (see :class:`ShardSource`).
        index: its ``index.json`` (default: beside the shards).
        length: clips to keep (None: all).
    """

    def __init__(self, shards: str, index: str | None = None, length: int | None = None) -> None:
        index = index or default_index(shards)
        if index is None:
            raise ShardError(f"{shards!r}: give the shards' index.json explicitly")
        self.items: list[dict[str, Any]] = []
        for url, count in resolve_shards(shards, read_index(index), index):
            need = count if length is None else min(count, length - len(self.items))
            if need <= 0:
                break
            wanted = np.arange(count) < need
            self.items += [decode_sample(sample, features=False)
                           for _, sample in shard_samples(url, count, wanted)]
        if not self.items:
            raise ShardError(f"{shards}: no clip")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.items[i]
