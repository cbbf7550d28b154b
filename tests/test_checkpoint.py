"""save_pretrained → from_pretrained is exact; broken checkpoints fail naming the file."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from lam_core import CheckpointError, LatentActionPipeline
from lam_core.checkpoint import load_component, save_component

from .helpers import tiny_pipeline


@pytest.mark.parametrize("regularizer", ["sparse", "noisy", "discrete", "none"])
def test_save_load_gives_identical_outputs(tmp_path, video, regularizer):
    pipe = tiny_pipeline(regularizer)
    pipe.save_pretrained(tmp_path / "ckpt")
    loaded = LatentActionPipeline.from_pretrained(tmp_path / "ckpt")
    for a, b in zip(pipe.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    r1 = pipe.transfer(video[:1], video[1:])
    r2 = loaded.transfer(video[:1], video[1:])
    assert (r1.transferred.frames == r2.transferred.frames).all()
    assert r1.source_error == r2.source_error
    assert (r1.latents == r2.latents).all()


def test_pipeline_folder_layout(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path)
    meta = json.loads((tmp_path / "config.json").read_text())
    assert meta["format"] == "lam-studio-pipeline"
    for name in ("encoder", "lam", "decoder", "controller"):
        assert (tmp_path / name / "config.json").is_file()
        assert (tmp_path / name / "model.safetensors").is_file()


def test_components_can_be_shared_by_relative_path(tmp_path):
    pipe = tiny_pipeline()
    save_component(pipe.encoder, tmp_path / "shared" / "encoder")
    save_component(pipe.decoder, tmp_path / "shared" / "decoder")
    save_component(pipe.lam, tmp_path / "model" / "lam")
    meta = {
        "format": "lam-studio-pipeline",
        "format_version": 1,
        "components": {
            "encoder": "../shared/encoder",
            "lam": "lam",
            "decoder": "../shared/decoder",
            "controller": None,
        },
    }
    (tmp_path / "model" / "config.json").write_text(json.dumps(meta))
    loaded = LatentActionPipeline.from_pretrained(tmp_path / "model")
    assert loaded.controller is None
    assert torch.equal(loaded.encoder.embed.weight, pipe.encoder.embed.weight)


def test_fp16_save_loads_into_fp32(tmp_path):
    pipe = tiny_pipeline()
    save_component(pipe.lam, tmp_path / "lam", dtype=torch.float16)
    assert (
        load_file(tmp_path / "lam" / "model.safetensors")["world_model.proj_in.weight"].dtype
        == torch.float16
    )
    lam = load_component(tmp_path / "lam")
    w = lam.world_model.proj_in.weight
    assert w.dtype == torch.float32
    torch.testing.assert_close(w, pipe.lam.world_model.proj_in.weight, atol=1e-3, rtol=1e-3)


def test_wrong_shape_names_file_and_tensor(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path)
    path = tmp_path / "lam" / "model.safetensors"
    state = load_file(path)
    state["world_model.proj_in.weight"] = torch.zeros(3, 3)
    save_file(state, path)
    with pytest.raises(CheckpointError) as e:
        LatentActionPipeline.from_pretrained(tmp_path)
    msg = str(e.value)
    assert str(path) in msg and "world_model.proj_in.weight" in msg and "(3, 3)" in msg


def test_missing_weights_file_is_named(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path)
    (tmp_path / "decoder" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match=r"decoder/model\.safetensors: missing"):
        LatentActionPipeline.from_pretrained(tmp_path)


def test_missing_tensor_and_corrupt_file_are_named(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path)
    path = tmp_path / "encoder" / "model.safetensors"
    state = load_file(path)
    del state["norm.weight"]
    save_file(state, path)
    with pytest.raises(CheckpointError, match=r"missing tensors \['norm.weight'\]"):
        LatentActionPipeline.from_pretrained(tmp_path)
    path.write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match="cannot read safetensors"):
        LatentActionPipeline.from_pretrained(tmp_path)


def test_bad_configs_are_named(tmp_path):
    tiny_pipeline().save_pretrained(tmp_path)
    cfg_path = tmp_path / "lam" / "config.json"
    meta = json.loads(cfg_path.read_text())
    meta["config"]["world_model"]["widht"] = 3
    cfg_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"lam/config.json.*world_model.*widht"):
        LatentActionPipeline.from_pretrained(tmp_path)
    meta["config"]["world_model"].pop("widht")
    meta["config"]["world_model"]["depth"] = "four"
    cfg_path.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r"world_model\.depth: expected int"):
        LatentActionPipeline.from_pretrained(tmp_path)
    cfg_path.write_text("{ not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        LatentActionPipeline.from_pretrained(tmp_path)


def test_unknown_folder_or_id_says_what_was_tried(tmp_path):
    with pytest.raises(CheckpointError, match="no such checkpoint folder"):
        LatentActionPipeline.from_pretrained(tmp_path / "nope" / "deeper")
    with pytest.raises(CheckpointError, match="not a lam-studio pipeline folder"):
        LatentActionPipeline.from_pretrained(tmp_path)
    with pytest.raises(CheckpointError, match="could not download"):
        LatentActionPipeline.from_pretrained("no-such-owner/no-such-model", local_files_only=True)
