"""The V-JEPA 2 encoder loads offline from a folder (a tiny random config, never a download)."""

import shutil

import pytest
import torch

from lam_core import EncoderConfig, LatentActionPipeline
from lam_core.checkpoint import load_component, save_component

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def vjepa2_dir(tmp_path_factory):
    cfg = transformers.VJEPA2Config(
        crop_size=32,
        patch_size=16,
        frames_per_clip=8,
        tubelet_size=2,
        hidden_size=48,
        num_attention_heads=4,
        num_hidden_layers=2,
        pred_hidden_size=48,
        pred_num_attention_heads=4,
        pred_num_hidden_layers=1,
        pred_num_mask_tokens=4,
        num_pooler_layers=1,
    )
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vjepa2")
    transformers.VJEPA2Model(cfg).save_pretrained(path)
    return path


def test_vjepa2_encoder_loads_offline_and_is_causal(vjepa2_dir, tmp_path):
    enc = load_component(save_component_for(vjepa2_dir, tmp_path), expected="encoder")
    assert enc.cfg.image_size == 32 and enc.cfg.dim == 48 and enc.cfg.tubelet == 2
    video = torch.rand(2, 8, 3, 48, 40)  # any size: resized and centre-cropped
    feats = enc(video)
    assert feats.shape == (2, 4, 4, 48)
    v2 = video.clone()
    v2[:, 4:] = torch.rand_like(v2[:, 4:])
    feats2 = enc(v2)
    assert torch.equal(feats2[:, :2], feats[:, :2])
    assert not torch.equal(feats2[:, 2:], feats[:, 2:])
    assert not any(p.requires_grad for p in enc.parameters())


def save_component_for(vjepa2_dir, tmp_path):
    """An encoder component folder whose config points at the V-JEPA 2 folder (no weights)."""
    from lam_core.models import VJEPA2Encoder

    enc = VJEPA2Encoder(EncoderConfig(kind="vjepa2", hub_id=str(vjepa2_dir)))
    save_component(enc, tmp_path / "encoder")
    assert not (tmp_path / "encoder" / "model.safetensors").exists()
    return tmp_path / "encoder"


def test_vjepa2_matches_transformers_per_tubelet(vjepa2_dir, tmp_path):
    enc = load_component(save_component_for(vjepa2_dir, tmp_path))
    model = transformers.VJEPA2Model.from_pretrained(vjepa2_dir).eval()
    video = torch.rand(1, 4, 3, 32, 32)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 1, 3, 1, 1)
    with torch.no_grad():
        ref = model.get_vision_features(pixel_values_videos=((video - mean) / std)[:, 2:4])
    torch.testing.assert_close(enc(video)[:, 1], ref, atol=1e-5, rtol=1e-5)


def test_pipeline_with_vjepa2_encoder(vjepa2_dir, tmp_path):
    from lam_core import LAMConfig, RegularizerConfig, TransformerConfig
    from lam_core.checkpoint import build_component

    enc = load_component(save_component_for(vjepa2_dir, tmp_path))
    lam = build_component(
        "lam",
        LAMConfig(
            feature_dim=48,
            grid=2,
            regularizer=RegularizerConfig(latent_dim=8),
            idm=TransformerConfig(24, 1, 2),
            world_model=TransformerConfig(24, 1, 2),
        ),
    )
    pipe = LatentActionPipeline(enc, lam)
    pipe.save_pretrained(tmp_path / "pipe")
    loaded = LatentActionPipeline.from_pretrained(tmp_path / "pipe")
    z = loaded.infer_latents(torch.rand(1, 8, 3, 32, 32))
    assert z.shape == (1, 3, 8)


def test_vjepa2_without_weights_fails_clearly(tmp_path):
    with pytest.raises(OSError):
        load_component_from_missing(tmp_path)


def load_component_from_missing(tmp_path):
    from lam_core.models import VJEPA2Encoder

    return VJEPA2Encoder(EncoderConfig(kind="vjepa2", hub_id=str(tmp_path / "absent")))


def test_vjepa2_weights_are_never_unpickled(vjepa2_dir, tmp_path):
    """A V-JEPA 2 folder whose weights are a pickled ``pytorch_model.bin`` is refused."""
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(vjepa2_dir / "config.json", pickled / "config.json")
    model = transformers.VJEPA2Model.from_pretrained(vjepa2_dir)
    torch.save(model.state_dict(), pickled / "pytorch_model.bin")  # the legacy pickled format
    from lam_core.models import VJEPA2Encoder

    with pytest.raises(OSError, match="safetensors"):
        VJEPA2Encoder(EncoderConfig(kind="vjepa2", hub_id=str(pickled)))
