"""The benchmarks call private readers of lam_core.video: a smoke test that they still fit (a
changed signature once broke ``bench_data`` silently, caught only by a full benchmark run)."""

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def test_bench_data_decodes_the_shipped_clips_with_both_decoders():
    sys.path.insert(0, str(BENCH))
    try:
        import bench_data
    finally:
        sys.path.remove(str(BENCH))
    files = sorted((BENCH.parent / "assets" / "clips").glob("*.mp4"))[:2]
    assert files
    for decoder in ("decord", "av"):
        assert bench_data.decode_folder(files, decoder, repeat=1) > 0
