"""Hallo4Transformer3DModel: structure of the full config (meta device), tiny forward behaviour."""

from __future__ import annotations

import pytest
import torch
from accelerate import init_empty_weights

from hallo4.models import Hallo4Transformer3DModel, full_config, tiny_config

# Exact parameter counts (recorded; docs/MODEL.md: 2.77B in the DiT).
FULL_PARAMS = 2_770_040_256
VACE_13B_PARAMS = 2_153_972_032  # diffusers WanVACETransformer3DModel at the 1.3B sizes
ADDED_PER_BLOCK = 18_898_944  # 2 x (q,k,v,o 1536x1536 + biases + 2 RMSNorm) + 2 affine LayerNorms
AUDIO_PROJ_PARAMS = 49_074_176
POSE_PROJ_PARAMS = 25_728


def _inputs(batch=2, latent_frames=2, h=4, w=4, seed=0, cfg=None):
    cfg = cfg or tiny_config()
    g = torch.Generator().manual_seed(seed)
    frames = 4 * latent_frames - 3
    return dict(
        hidden_states=torch.randn(batch, 16, 1 + latent_frames, h, w, generator=g),
        timestep=torch.tensor([700.0, 20.0][:batch]),
        encoder_hidden_states=torch.randn(batch, 7, cfg["text_dim"], generator=g),
        control_hidden_states=torch.randn(batch, 96, 1 + latent_frames, h, w, generator=g),
    ), dict(
        audio_features=torch.randn(
            batch, frames, cfg["audio_window"], cfg["audio_layers"], cfg["audio_dim"], generator=g
        ),
        pose_latents=torch.randn(batch, 16, frames, h, w, generator=g),
    )


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return Hallo4Transformer3DModel(**tiny_config()).eval()


def _perturb_zero_init(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in model.blocks:
            for attn in (block.audio_attn, block.skeleton_attn):
                for p in attn.to_out[0].parameters():
                    p.copy_(torch.randn(p.shape, generator=g) * 0.2)
        for block in model.vace_blocks:
            for proj in (block.proj_in, block.proj_out):
                if proj is not None:
                    for p in proj.parameters():
                        p.copy_(torch.randn(p.shape, generator=g) * 0.05)
    return model


def test_full_config_structure_on_meta_device():
    with init_empty_weights():
        model = Hallo4Transformer3DModel(**full_config())
    total = sum(p.numel() for p in model.parameters())
    print(f"Hallo4 DiT parameters: {total:,}")
    assert total == FULL_PARAMS
    assert total == VACE_13B_PARAMS + 30 * ADDED_PER_BLOCK + AUDIO_PROJ_PARAMS + POSE_PROJ_PARAMS
    assert 2.7e9 < total < 2.85e9
    assert len(model.blocks) == 30 and len(model.vace_blocks) == 15
    assert list(model.config.vace_layers) == list(range(0, 30, 2))

    shapes = {n: tuple(p.shape) for n, p in model.named_parameters()}
    d = 1536
    for i in (0, 29):
        for attn in ("audio_attn", "skeleton_attn"):
            for proj in ("to_q", "to_k", "to_v", "to_out.0"):
                assert shapes[f"blocks.{i}.{attn}.{proj}.weight"] == (d, d)
                assert shapes[f"blocks.{i}.{attn}.{proj}.bias"] == (d,)
            assert shapes[f"blocks.{i}.{attn}.norm_q.weight"] == (d,)
            assert shapes[f"blocks.{i}.{attn}.norm_k.weight"] == (d,)
        for norm in ("audio_norm", "skeleton_norm"):
            assert shapes[f"blocks.{i}.{norm}.weight"] == (d,) and shapes[f"blocks.{i}.{norm}.bias"] == (d,)
    assert not any("audio" in n or "skeleton" in n for n in shapes if n.startswith("vace_blocks"))
    assert shapes["audio_proj.proj1.weight"] == (512, 5 * 12 * 768)
    assert shapes["audio_proj.proj2.weight"] == (512, 512)
    assert shapes["audio_proj.proj3.weight"] == (32 * d, 512)
    assert shapes["audio_proj.norm.weight"] == (d,)
    assert shapes["pose_proj.proj.weight"] == (d // 4, 16, 2, 2)
    assert shapes["pose_proj.norm.weight"] == (d // 4,)
    assert shapes["vace_patch_embedding.weight"] == (d, 96, 1, 2, 2)
    assert shapes["vace_blocks.0.proj_in.weight"] == (d, d)
    assert "vace_blocks.1.proj_in.weight" not in shapes
    assert shapes["vace_blocks.14.proj_out.weight"] == (d, d)


def test_projector_shapes(tiny):
    cfg = tiny_config()
    _, cond = _inputs(batch=1, latent_frames=3)
    audio = tiny.project_audio(cond["audio_features"])
    assert audio.shape == (1, 4, 4 * cfg["audio_tokens"], 64)
    assert torch.all(audio[:, 0] == 0)
    pose = tiny.project_pose(cond["pose_latents"])
    assert pose.shape == (1, 4, 4, 64)  # (4/2)*(4/2) tokens per latent frame
    assert torch.all(pose[:, 0] == 0)
    # temporal redistribution: latent frame 1 is built from video frame 0 four times
    tokens = cfg["audio_tokens"]
    first = audio[0, 1]
    for k in range(1, 4):
        assert torch.allclose(first[:tokens], first[k * tokens : (k + 1) * tokens])
    quarter = 64 // 4
    assert torch.allclose(pose[0, 1, :, :quarter], pose[0, 1, :, 3 * quarter :])


def test_forward_shape_and_zero_init(tiny):
    base, cond = _inputs()
    with torch.no_grad():
        plain = tiny(**base).sample
        full = tiny(**base, **cond).sample
        zeros = tiny(**base, audio_features=torch.zeros_like(cond["audio_features"])).sample
    assert plain.shape == base["hidden_states"].shape
    assert torch.isfinite(plain).all()
    # zero-initialised output projections: conditions have no effect at init
    assert torch.equal(plain, full)
    assert torch.equal(plain, zeros)


def test_conditions_change_output_after_training():
    torch.manual_seed(0)
    model = _perturb_zero_init(Hallo4Transformer3DModel(**tiny_config())).eval()
    base, cond = _inputs()
    with torch.no_grad():
        real = model(**base, audio_features=cond["audio_features"]).sample
        zero = model(**base, audio_features=torch.zeros_like(cond["audio_features"])).sample
        with_pose = model(**base, audio_features=cond["audio_features"], pose_latents=cond["pose_latents"]).sample
        no_ctx = model(**{**base, "control_hidden_states": torch.zeros_like(base["control_hidden_states"])}).sample
        plain = model(**base).sample
    assert (real - zero).abs().max() > 1e-3
    assert (with_pose - real).abs().max() > 1e-3
    assert (no_ctx - plain).abs().max() > 1e-3


def test_bad_lengths_fail_clearly(tiny):
    base, cond = _inputs()
    with pytest.raises(ValueError, match="4n \\+ 1"):
        tiny(**base, audio_features=cond["audio_features"][:, :4])
    with pytest.raises(ValueError, match="expected 5 audio frames"):
        tiny(**base, audio_features=torch.cat([cond["audio_features"]] * 2, dim=1)[:, :9])
    with pytest.raises(ValueError, match="pose_latents"):
        tiny(**base, pose_latents=cond["pose_latents"][..., :2])


def test_save_load_roundtrip(tmp_path):
    torch.manual_seed(0)
    model = _perturb_zero_init(Hallo4Transformer3DModel(**tiny_config())).eval()
    model.save_pretrained(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert "config.json" in files and any(f.endswith(".safetensors") for f in files)
    loaded = Hallo4Transformer3DModel.from_pretrained(tmp_path / "m").eval()
    base, cond = _inputs()
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k
    with torch.no_grad():  # float32 CPU kernels may differ ~1e-7 with differently aligned (mmapped) weights
        torch.testing.assert_close(model(**base, **cond).sample, loaded(**base, **cond).sample, rtol=0, atol=1e-5)


def test_gradient_checkpointing_matches():
    torch.manual_seed(0)
    model = _perturb_zero_init(Hallo4Transformer3DModel(**tiny_config())).train()
    base, cond = _inputs(batch=1)

    def grads():
        model.zero_grad()
        model(**base, **cond).sample.square().mean().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    ref = grads()
    model.enable_gradient_checkpointing()
    assert model.gradient_checkpointing
    ckpt = grads()
    assert ref.keys() == ckpt.keys()
    assert "blocks.0.audio_attn.to_q.weight" in ref and "pose_proj.proj.weight" in ref
    for n in ref:
        torch.testing.assert_close(ref[n], ckpt[n], rtol=1e-4, atol=1e-6)


def test_peft_lora_on_added_attentions():
    from peft import LoraConfig

    torch.manual_seed(0)
    model = Hallo4Transformer3DModel(**tiny_config()).eval()
    model.add_adapter(LoraConfig(r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"]))
    names = [n for n, _ in model.named_parameters() if "lora_A" in n]
    assert any("audio_attn.to_q" in n for n in names) and any("skeleton_attn.to_out.0" in n for n in names)
    base, cond = _inputs(batch=1)
    with torch.no_grad():
        out = model(**base, **cond, attention_kwargs={"scale": 0.5}).sample
    assert out.shape == base["hidden_states"].shape


def test_matches_diffusers_wan_vace_without_conditions():
    """With audio/skeleton off, the model is exactly diffusers' WanVACETransformer3DModel."""
    from diffusers import WanVACETransformer3DModel

    cfg = tiny_config()
    torch.manual_seed(0)
    ours = _perturb_zero_init(Hallo4Transformer3DModel(**cfg)).eval()
    ref = WanVACETransformer3DModel(
        patch_size=cfg["patch_size"],
        num_attention_heads=cfg["num_attention_heads"],
        attention_head_dim=cfg["attention_head_dim"],
        in_channels=16,
        out_channels=16,
        text_dim=cfg["text_dim"],
        freq_dim=cfg["freq_dim"],
        ffn_dim=cfg["ffn_dim"],
        num_layers=cfg["num_layers"],
        cross_attn_norm=True,
        eps=cfg["eps"],
        rope_max_seq_len=cfg["rope_max_seq_len"],
        vace_layers=cfg["vace_layers"],
        vace_in_channels=96,
    ).eval()
    added = ("audio_", "skeleton_", "pose_proj")
    state = {k: v for k, v in ours.state_dict().items() if not any(a in k for a in added)}
    ref.load_state_dict(state, strict=True)
    # ours computes the timestep sinusoid in float64 as the release does (tests/test_golden.py)
    from hallo4.models.transformer_hallo4 import Float64Timesteps

    ref.condition_embedder.timesteps_proj = Float64Timesteps(cfg["freq_dim"])
    base, _ = _inputs()
    with torch.no_grad():
        expected = ref(**base, control_hidden_states_scale=torch.full((1,), 0.7)).sample
        got = ours(**base, control_scale=0.7).sample
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)


def test_audio_attention_is_per_latent_frame():
    """Changing the audio of one latent frame changes only that frame's tokens after a block."""
    torch.manual_seed(0)
    model = _perturb_zero_init(Hallo4Transformer3DModel(**tiny_config())).eval()
    block = model.blocks[0]
    b, frames, per_frame, dim = 1, 3, 4, 64
    g = torch.Generator().manual_seed(3)
    x = torch.randn(b, frames * per_frame, dim, generator=g)
    text = torch.randn(b, 5, dim, generator=g)
    temb = torch.randn(b, 6, dim, generator=g) * 0.1
    rope = model.rope(torch.zeros(b, 16, frames, 4, 4))
    audio = torch.randn(b, frames, 8, dim, generator=g)
    skel = torch.randn(b, frames, per_frame, dim, generator=g)
    audio2 = audio.clone()
    audio2[:, 2] += 1.0
    skel2 = skel.clone()
    skel2[:, 1] += 1.0
    with torch.no_grad():
        y = block(x, text, temb, rope, audio, skel).reshape(b, frames, per_frame, dim)
        ya = block(x, text, temb, rope, audio2, skel).reshape(b, frames, per_frame, dim)
        ys = block(x, text, temb, rope, audio, skel2).reshape(b, frames, per_frame, dim)
    diff_a = (ya - y).abs().amax(dim=(0, 2, 3))
    diff_s = (ys - y).abs().amax(dim=(0, 2, 3))
    assert diff_a[2] > 1e-4 and diff_a[:2].max() == 0
    assert diff_s[1] > 1e-4 and diff_s[0] == 0 and diff_s[2] == 0
