"""What every benchmark shares: rows of the table, timing, FLOP counts, the matmul peak, the load.

A :class:`Row` is one line of ``benchmarks/run.py``'s table: an absolute figure, a ratio measured
in the same run (against a baseline or another setting), and the FLOP floor of its work (its
FLOPs over the matmul peak of its dtype measured in the same run at the same thread count).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

PEAK_SIZE = 2048  # the peak is a PEAK_SIZE³ matmul per dtype


@dataclass
class Row:
    """One line of the table.

    Attributes:
        name: what was measured.
        value: the absolute figure, in ``unit``.
        unit: ``s``, ``clips/s`` ...
        ratio: the ratio measured in the same run (``None``: none).
        ratio_of: what the ratio compares (``"loop / batched"``).
        flops: FLOPs of the work (matmuls and attention, :func:`count_flops`; 0: not counted).
        dtype: the dtype whose peak gives the floor.
        floor_s: FLOPs / peak: the time the work would take at the matmul peak.
        target: the target in words (``""``: none).
        met: whether the target is met (None: no target).
        note: one line on what bounds it or what was left out.
        extra: more numbers for ``results.json`` (breakdowns, settings).
    """

    name: str
    value: float
    unit: str
    ratio: float | None = None
    ratio_of: str = ""
    flops: float = 0.0
    dtype: str = "float32"
    floor_s: float | None = None
    target: str = ""
    met: bool | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)

    def seconds(self) -> float | None:
        """The row's time in seconds (for the floor), if its unit is one."""
        return self.value if self.unit == "s" else self.extra.get("seconds")

    def times_floor(self) -> float | None:
        s = self.seconds()
        return None if not self.floor_s or s is None else s / self.floor_s

    def as_dict(self) -> dict:
        d = asdict(self)
        d["times_floor"] = self.times_floor()
        return d


@dataclass
class Context:
    """What the benchmarks share in one run.

    Attributes:
        quick: fewer repeats and smaller work (a smoke run; the numbers are not the report's).
        threads: torch threads of the run.
        peak: ``{dtype name: GFLOP/s}`` of a :data:`PEAK_SIZE`³ matmul at ``threads``; the key
            ``"float32@1"`` holds fp32 at one thread (the studio's setting).
    """

    quick: bool
    threads: int
    peak: dict[str, float]

    def floor(self, flops: float, dtype: str = "float32", threads: int | None = None) -> float:
        """Seconds of ``flops`` at the measured peak of ``dtype`` (at ``threads``: the run's, or
        1 for ``float32``)."""
        key = dtype if threads in (None, self.threads) else f"{dtype}@{threads}"
        return flops / (self.peak[key] * 1e9)


def timeit(fn: Callable[[], object], repeat: int = 3, warmup: int = 1) -> float:
    """Best wall time of ``fn()`` over ``repeat`` runs, in seconds (the best is the least
    disturbed by the other processes of a shared machine)."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def _sdpa_flops(q_shape, k_shape, v_shape, *args, **kwargs) -> int:
    """``Q Kᵀ`` and ``P V`` of one attention call: ``4 · B · H · Lq · Lk · D``."""
    b, h, lq, d = q_shape
    return 4 * b * h * lq * k_shape[-2] * d


def count_flops(fn: Callable[[], object]) -> float:
    """FLOPs of ``fn()``: matmuls (``FlopCounterMode``) plus the CPU attention kernel's forward
    (its backward is not counted: a few percent of a training step here)."""
    aten = torch.ops.aten
    mapping = {}
    for name in ("_scaled_dot_product_flash_attention_for_cpu",):
        op = getattr(aten, name, None)
        if op is not None:
            mapping[op] = _sdpa_flops
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        fn()
    return float(counter.get_total_flops())


def matmul_peak(dtype: torch.dtype, size: int = PEAK_SIZE, repeat: int = 3) -> float:
    """GFLOP/s of a ``size³`` matmul in ``dtype`` at the current thread count (best of
    ``repeat``; one run where a first one takes over 5 s: emulated bf16)."""
    a, b = torch.randn(size, size).to(dtype), torch.randn(size, size).to(dtype)
    t = time.perf_counter()
    a @ b
    first = time.perf_counter() - t
    best = first if first > 5 else timeit(lambda: a @ b, repeat=repeat, warmup=0)
    return 2 * size**3 / min(best, first) / 1e9


def load() -> tuple[float, float, float]:
    """``os.getloadavg()``: the machine's 1, 5 and 15 minute load."""
    return tuple(round(x, 2) for x in os.getloadavg())  # type: ignore[return-value]


def cpu_facts() -> dict:
    """The CPU's model, cores and the flags that matter for bf16 (lscpu / /proc/cpuinfo)."""
    model, flags = "", set()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    wanted = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_vnni")
    return {"model": model, "cores": os.cpu_count(), "flags": {f: f in flags for f in wanted},
            "native_bf16": bool({"avx512_bf16", "amx_bf16"} & flags)}
