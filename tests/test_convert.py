"""hallo4.convert: official Wan/Hallo4 naming -> our module tree, loud on any mismatch."""

from __future__ import annotations

import pytest
import torch
from accelerate import init_empty_weights
from safetensors.torch import save_file

from hallo4.convert import (
    convert_official,
    export_official,
    load_official_state_dict,
    main,
    official_to_ours,
    ours_to_official,
)
from hallo4.errors import InputError
from hallo4.models import Hallo4Transformer3DModel, full_config, tiny_config

# Official names of a Wan2.1-VACE / Hallo4 block, as in the Wan2.1 repo and the Hallo4 release.
OFFICIAL_BLOCK = [
    *(f"self_attn.{p}.{w}" for p in "qkvo" for w in ("weight", "bias")),
    "self_attn.norm_q.weight", "self_attn.norm_k.weight",
    *(f"cross_attn.{p}.{w}" for p in "qkvo" for w in ("weight", "bias")),
    "cross_attn.norm_q.weight", "cross_attn.norm_k.weight",
    "norm3.weight", "norm3.bias", "ffn.0.weight", "ffn.0.bias", "ffn.2.weight", "ffn.2.bias", "modulation",
]
OFFICIAL_ADDED = [
    *(f"audio_cross_attn.{p}.{w}" for p in "qkvo" for w in ("weight", "bias")),
    "audio_cross_attn.norm_q.weight", "audio_cross_attn.norm_k.weight",
    "audio_cross_norm.weight", "audio_cross_norm.bias",
    *(f"condition_cross_attn.{p}.{w}" for p in "qkvo" for w in ("weight", "bias")),
    "condition_cross_attn.norm_q.weight", "condition_cross_attn.norm_k.weight",
    "condition_cross_norm.weight", "condition_cross_norm.bias",
]
OFFICIAL_TOP = [
    "patch_embedding.weight", "patch_embedding.bias", "vace_patch_embedding.weight", "vace_patch_embedding.bias",
    "text_embedding.0.weight", "text_embedding.0.bias", "text_embedding.2.weight", "text_embedding.2.bias",
    "time_embedding.0.weight", "time_embedding.0.bias", "time_embedding.2.weight", "time_embedding.2.bias",
    "time_projection.1.weight", "time_projection.1.bias", "head.head.weight", "head.head.bias", "head.modulation",
    *(f"audio_proj.proj{i}.{w}" for i in (1, 2, 3) for w in ("weight", "bias")),
    "audio_proj.norm.weight", "audio_proj.norm.bias",
    "pose_proj.proj.weight", "pose_proj.proj.bias", "pose_proj.norm.weight", "pose_proj.norm.bias",
]


def official_names(num_layers: int, vace_layers: int) -> set[str]:
    names = set(OFFICIAL_TOP)
    for i in range(num_layers):
        names |= {f"blocks.{i}.{n}" for n in OFFICIAL_BLOCK + OFFICIAL_ADDED}
    for j in range(vace_layers):
        names |= {f"vace_blocks.{j}.{n}" for n in OFFICIAL_BLOCK + ["after_proj.weight", "after_proj.bias"]}
    names |= {"vace_blocks.0.before_proj.weight", "vace_blocks.0.before_proj.bias"}
    return names


def test_standard_names_follow_diffusers():
    assert official_to_ours("blocks.3.self_attn.o.weight") == "blocks.3.attn1.to_out.0.weight"
    assert official_to_ours("blocks.3.norm3.bias") == "blocks.3.norm2.bias"
    assert official_to_ours("blocks.3.ffn.0.weight") == "blocks.3.ffn.net.0.proj.weight"
    assert official_to_ours("blocks.0.modulation") == "blocks.0.scale_shift_table"
    assert official_to_ours("head.modulation") == "scale_shift_table"
    assert official_to_ours("vace_blocks.0.before_proj.weight") == "vace_blocks.0.proj_in.weight"
    assert official_to_ours("blocks.0.audio_cross_attn.norm_k.weight") == "blocks.0.audio_attn.norm_k.weight"
    assert official_to_ours("blocks.0.condition_cross_norm.weight") == "blocks.0.skeleton_norm.weight"
    assert official_to_ours("blocks.0.before_proj.weight") is None  # only VACE blocks have it
    assert official_to_ours("blocks.0.norm2.weight") is None  # official norm2 has no parameters
    assert ours_to_official("condition_embedder.time_proj.bias") == "time_projection.1.bias"
    assert official_to_ours("blocks.2.audio_attn.q.weight") == "blocks.2.audio_attn.to_q.weight"  # legacy
    assert official_to_ours("blocks.2.audio_norm.bias") == "blocks.2.audio_norm.bias"
    assert ours_to_official("blocks.2.audio_attn.to_out.0.bias") == "blocks.2.audio_cross_attn.o.bias"


def test_full_config_official_names_map_one_to_one():
    with init_empty_weights():
        model = Hallo4Transformer3DModel(**full_config())
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    official = official_names(30, 15)
    mapped = {official_to_ours(k) for k in official}
    assert None not in mapped and len(mapped) == len(official)
    assert mapped == set(ours)
    assert {ours_to_official(k) for k in ours} == official
    assert ours["blocks.7.audio_attn.to_q.weight"] == (1536, 1536)


def _tiny_official(tmp_path, seed=0, mutate=None, wrap=True):
    torch.manual_seed(seed)
    model = Hallo4Transformer3DModel(**tiny_config()).eval()
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():  # make the zero-initialised parts non-trivial
        for p in model.parameters():
            if not p.any():
                p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    sd = export_official(model.state_dict())
    assert set(sd) == official_names(2, 1)
    if mutate:
        mutate(sd)
    path = tmp_path / "model_weight.pth"
    torch.save({"state_dict": sd} if wrap else sd, path)
    return model, path


def assert_same_model(a, b):
    """Bit-identical weights; outputs equal up to float32 kernel noise (CPU matmul kernels may pick a
    different path for memory-mapped, differently aligned tensors: ~1e-7 differences)."""
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]), k
    with torch.no_grad():
        torch.testing.assert_close(a(**_inputs()).sample, b(**_inputs()).sample, rtol=0, atol=1e-5)


def _inputs():
    g = torch.Generator().manual_seed(5)
    cfg = tiny_config()
    return dict(
        hidden_states=torch.randn(1, 16, 3, 4, 4, generator=g),
        timestep=torch.tensor([321.0]),
        encoder_hidden_states=torch.randn(1, 6, cfg["text_dim"], generator=g),
        control_hidden_states=torch.randn(1, 96, 3, 4, 4, generator=g),
        audio_features=torch.randn(1, 5, 5, cfg["audio_layers"], cfg["audio_dim"], generator=g),
        pose_latents=torch.randn(1, 16, 5, 4, 4, generator=g),
    )


def test_convert_roundtrip_identical_outputs(tmp_path):
    model, path = _tiny_official(tmp_path)
    out = tmp_path / "converted"
    assert main(["--official", str(path), "-o", str(out), "--tiny"]) == 0
    assert (out / "config.json").exists() and list(out.glob("*.safetensors"))
    assert_same_model(model, Hallo4Transformer3DModel.from_pretrained(out).eval())


def test_convert_accepts_safetensors_and_prefix(tmp_path):
    model, path = _tiny_official(tmp_path, wrap=False)
    sd = {f"model.diffusion_model.{k}": v.contiguous() for k, v in torch.load(path, weights_only=True).items()}
    st = tmp_path / "w.safetensors"
    save_file(sd, str(st))
    assert set(load_official_state_dict(st)) == official_names(2, 1)
    assert_same_model(model, convert_official(st, None, config=tiny_config()))


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda sd: sd.__setitem__("blocks.1.audio_cross_attn.qq.weight", sd.pop("blocks.1.audio_cross_attn.q.weight")),
         r"missing keys .*blocks\.1\.audio_cross_attn\.q\.weight.*skipped keys .*audio_cross_attn\.qq\.weight"),
        (lambda sd: sd.__setitem__("pose_proj.norm.weight", torch.zeros(3)),
         r"shape mismatches .*pose_proj\.norm\.weight \(3,\) \(expected \(16,\)\)"),
        (lambda sd: sd.pop("vace_blocks.0.before_proj.bias"), r"missing keys .*vace_blocks\.0\.before_proj\.bias"),
        (lambda sd: sd.__setitem__("blocks.5.modulation", torch.zeros(1, 6, 64)), r"unexpected keys .*blocks\.5"),
    ],
)
def test_corrupted_checkpoint_fails_clearly(tmp_path, mutate, message, capsys):
    _, path = _tiny_official(tmp_path, mutate=mutate)
    with pytest.raises(InputError, match=message):
        convert_official(path, tmp_path / "out", config=tiny_config())
    assert not (tmp_path / "out").exists()
    assert main(["--official", str(path), "-o", str(tmp_path / "o2"), "--tiny"]) == 2
    assert "official checkpoint" in capsys.readouterr().err


def test_missing_file_is_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_official_state_dict(tmp_path / "nope.pth")


def test_from_plain_vace_initialises_hallo4_modules(tmp_path):
    model, path = _tiny_official(tmp_path)
    sd = torch.load(path, weights_only=True)["state_dict"]
    vace_only = {k: v for k, v in sd.items()
                 if not any(a in k for a in ("audio_cross", "condition_cross", "audio_proj", "pose_proj"))}
    torch.save(vace_only, tmp_path / "vace.pth")
    with pytest.raises(InputError, match="missing keys"):
        convert_official(tmp_path / "vace.pth", None, config=tiny_config())
    out = tmp_path / "from_vace"
    assert main(["--official", str(tmp_path / "vace.pth"), "-o", str(out), "--tiny", "--from-vace"]) == 0
    converted = Hallo4Transformer3DModel.from_pretrained(out).eval()
    blk = converted.blocks[1]
    assert not blk.audio_attn.to_out[0].weight.any() and not blk.skeleton_attn.to_out[0].bias.any()
    assert blk.audio_attn.to_q.weight.std() > 0 and converted.audio_proj.proj1.weight.std() > 0
    inputs = _inputs()
    with torch.no_grad():  # zero-init: the conditions have no effect yet; the VACE weights are the source's
        a = converted(**inputs).sample
        b = converted(**{**inputs, "audio_features": None, "pose_latents": None}).sample
    assert torch.equal(a, b)
    for k, v in vace_only.items():
        assert torch.equal(converted.state_dict()[official_to_ours(k)], v)
