"""Presets: one registry; the paper's world model is a ViT-L, built on the meta device."""

import pytest
import torch

from lam_core import PRESETS, get_preset
from lam_core.checkpoint import build_component


def test_paper_world_model_is_vit_large_on_meta_device():
    cfg = get_preset("paper")
    with torch.device("meta"):
        lam = build_component("lam", cfg.lam)
    wm = lam.world_model
    assert all(p.is_meta for p in wm.parameters())
    total = sum(p.numel() for p in wm.parameters())
    adaln = sum(p.numel() for n, p in wm.named_parameters() if "modulation" in n)
    # ViT-L body (24 blocks, width 1024, in/out projections): ~305M; frame-wise AdaLN-zero
    # modulation (6·W² per block, as in DiT): ~153M more.
    assert 300e6 < total - adaln < 310e6
    assert 150e6 < adaln < 156e6
    assert cfg.lam.latent_dim == 128 and cfg.encoder.dim == 1024 and cfg.encoder.kind == "vjepa2"


def test_presets_are_copies():
    a = get_preset("tiny", regularizer="noisy")
    a.lam.world_model.depth = 99
    assert PRESETS["tiny"].lam.world_model.depth != 99
    assert PRESETS["tiny"].lam.regularizer.kind == "sparse"


def test_unknown_preset():
    with pytest.raises(ValueError, match="unknown preset 'huge'; choose one of") as info:
        get_preset("huge")
    for name in PRESETS:  # the message lists every preset there is
        assert name in str(info.value)


@pytest.mark.parametrize("name", ["tiny", "small"])
def test_cpu_presets_build_and_agree(name):
    cfg = get_preset(name)
    assert cfg.lam.grid == cfg.encoder.grid == cfg.decoder.grid
    assert cfg.lam.feature_dim == cfg.encoder.dim == cfg.decoder.feature_dim
    assert cfg.controller.latent_dim == cfg.lam.latent_dim
