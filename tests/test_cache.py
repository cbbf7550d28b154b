"""Feature cache (lam_core.data.cache): round trip, shards, validation errors that name the file."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from lam_core import get_preset
from lam_core.checkpoint import build_component
from lam_core.data.cache import (
    INDEX_NAME,
    FeatureCacheDataset,
    FeatureCacheError,
    build_feature_cache,
    shard_name,
)


class Clips(torch.utils.data.Dataset):
    """Seven fixed random clips (8 frames, 32 px) with actions."""

    def __init__(self, n: int = 7):
        g = torch.Generator().manual_seed(0)
        self.video = torch.rand(n, 8, 3, 32, 32, generator=g)
        self.actions = torch.randn(n, 3, 2, generator=g)

    def __len__(self) -> int:
        return len(self.video)

    def __getitem__(self, i: int) -> dict:
        return {"video": self.video[i], "actions": self.actions[i]}


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return build_component("encoder", get_preset("tiny").encoder).eval()


@pytest.fixture
def cache(tmp_path, encoder):
    return build_feature_cache(encoder, Clips(), tmp_path / "cache", batch_size=2, shard_size=3,
                               dtype=torch.float32, description={"what": "test"})


def test_round_trip_fp32_is_exact_and_sharded(cache, encoder):
    data = Clips()
    index = json.loads((cache / INDEX_NAME).read_text())
    assert [s["count"] for s in index["shards"]] == [3, 3, 1]
    assert index["count"] == 7 and index["dtype"] == "float32"
    assert index["feature_shape"] == [4, 16, 48] and index["action_shape"] == [3, 2]
    assert index["dataset"] == {"what": "test"}
    ds = FeatureCacheDataset(cache, expected_encoder=encoder.cfg)
    assert len(ds) == 7
    with torch.no_grad():
        want = encoder(data.video)
    for i in range(7):
        item = ds[i]
        assert item["features"].dtype == torch.float32
        torch.testing.assert_close(item["features"], want[i], rtol=1e-5, atol=1e-6)
        assert torch.equal(item["actions"], data.actions[i])
    clone = pickle.loads(pickle.dumps(ds))  # what DataLoader workers receive
    assert torch.equal(clone[5]["features"], ds[5]["features"])


def test_fp16_is_close(tmp_path, encoder):
    out = build_feature_cache(encoder, Clips(3), tmp_path / "c16", batch_size=3)
    ds = FeatureCacheDataset(out)
    with torch.no_grad():
        want = encoder(Clips(3).video)
    torch.testing.assert_close(ds[2]["features"], want[2], rtol=1e-3, atol=2e-3)


def test_refuses_to_overwrite_and_overflow(tmp_path, encoder, cache):
    with pytest.raises(FileExistsError, match="cache"):
        build_feature_cache(encoder, Clips(), cache)

    class Huge(torch.nn.Module):
        cfg = encoder.cfg

        def forward(self, video):
            return torch.full((len(video), 4, 16, 48), 1e6)

    with pytest.raises(FeatureCacheError, match="float16"):
        build_feature_cache(Huge(), Clips(2), tmp_path / "huge")
    assert not (tmp_path / "huge").exists()  # nothing half-written left behind


def test_missing_or_corrupt_index_names_the_file(cache):
    index = cache / INDEX_NAME
    text = index.read_text()
    index.write_text("{not json")
    with pytest.raises(FeatureCacheError, match=r"index\.json: not valid JSON"):
        FeatureCacheDataset(cache)
    index.write_text(json.dumps({**json.loads(text), "count": 99}))
    with pytest.raises(FeatureCacheError, match=r"index\.json: shard counts"):
        FeatureCacheDataset(cache)
    index.unlink()
    with pytest.raises(FeatureCacheError, match=r"index\.json: missing"):
        FeatureCacheDataset(cache)


def test_missing_or_corrupt_shard_names_the_file(cache):
    shard = cache / shard_name(1)
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    with pytest.raises(FeatureCacheError, match=r"shard_00001\.safetensors: cannot read"):
        FeatureCacheDataset(cache)
    shard.unlink()
    with pytest.raises(FeatureCacheError, match=r"shard_00001\.safetensors: missing"):
        FeatureCacheDataset(cache)


def test_other_encoder_is_rejected(cache):
    other = get_preset("tiny").encoder
    other.depth = 2
    with pytest.raises(FeatureCacheError, match="another encoder"):
        FeatureCacheDataset(cache, expected_encoder=other)
