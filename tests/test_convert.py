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
    "self_attn.norm_q.weight",
    "self_attn.norm_k.weight",
    *(f"cross_attn.{p}.{w}" for p in "qkvo" for w in ("weight", "bias")),
    "cross_attn.norm_q.weight",
    "cross_attn.norm_k.weight",
    "norm3.weight",
    "norm3.bias",
    "ffn.0.weight",
    "ffn.0.bias",
    "ffn.2.weight",
    "ffn.2.bias",
    "modulation",
]
OFFICIAL_ADDED = [
    *(f"audio_cross_attn.{p}.{w}" for p in "qkvo" for w in ("weight", "bias")),
    "audio_cross_attn.norm_q.weight",
    "audio_cross_attn.norm_k.weight",
    "audio_cross_norm.weight",
    "audio_cross_norm.bias",
    *(f"condition_cross_attn.{p}.{w}" for p in "qkvo" for w in ("weight", "bias")),
    "condition_cross_attn.norm_q.weight",
    "condition_cross_attn.norm_k.weight",
    "condition_cross_norm.weight",
    "condition_cross_norm.bias",
]
OFFICIAL_TOP = [
    "patch_embedding.weight",
    "patch_embedding.bias",
    "vace_patch_embedding.weight",
    "vace_patch_embedding.bias",
    "text_embedding.0.weight",
    "text_embedding.0.bias",
    "text_embedding.2.weight",
    "text_embedding.2.bias",
    "time_embedding.0.weight",
    "time_embedding.0.bias",
    "time_embedding.2.weight",
    "time_embedding.2.bias",
    "time_projection.1.weight",
    "time_projection.1.bias",
    "head.head.weight",
    "head.head.bias",
    "head.modulation",
    *(f"audio_proj.proj{i}.{w}" for i in (1, 2, 3) for w in ("weight", "bias")),
    "audio_proj.norm.weight",
    "audio_proj.norm.bias",
    "pose_proj.proj.weight",
    "pose_proj.proj.bias",
    "pose_proj.norm.weight",
    "pose_proj.norm.bias",
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
        (
            lambda sd: sd.__setitem__(
                "blocks.1.audio_cross_attn.qq.weight", sd.pop("blocks.1.audio_cross_attn.q.weight")
            ),
            r"missing keys .*blocks\.1\.audio_cross_attn\.q\.weight.*skipped keys .*audio_cross_attn\.qq\.weight",
        ),
        (
            lambda sd: sd.__setitem__("pose_proj.norm.weight", torch.zeros(3)),
            r"shape mismatches .*pose_proj\.norm\.weight \(3,\) \(expected \(16,\)\)",
        ),
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
    vace_only = {
        k: v
        for k, v in sd.items()
        if not any(a in k for a in ("audio_cross", "condition_cross", "audio_proj", "pose_proj"))
    }
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


# ------------------------------------------------------------------------------------------------
# Tolerant but loud: the release's loader accepts these files; ours says what it skipped.
# ------------------------------------------------------------------------------------------------
def _official_sd(tmp_path):
    model, path = _tiny_official(tmp_path, wrap=False)
    return model, torch.load(path, weights_only=True)


@pytest.mark.parametrize("suffix", [".ckpt", ".pth", ".pt", ".bin"])
def test_training_checkpoint_with_optimizer_and_counters(tmp_path, suffix):
    model, sd = _official_sd(tmp_path)
    first = next(iter(sd))
    ckpt = {
        "state_dict": sd,
        "optimizer": {
            "state": {0: {"step": torch.tensor(3.0), "exp_avg": torch.zeros(2)}},
            "param_groups": [{"lr": 1e-4, "params": [0]}],
        },
        "epoch": 7,
        "global_step": 1200,
    }
    path = tmp_path / f"train{suffix}"
    torch.save(ckpt, path)
    notes: list[str] = []
    converted = convert_official(path, None, config=tiny_config(), notes=notes)
    assert_same_model(model, converted)
    assert any("'state_dict' entry" in n and "epoch" in n and "optimizer" in n and "global_step" in n for n in notes)
    assert first  # sanity: a real key list


def test_module_prefix_and_averaged_model_counter(tmp_path):
    model, sd = _official_sd(tmp_path)
    wrapped = {f"module.{k}": v for k, v in sd.items()}
    wrapped["n_averaged"] = torch.tensor(12)  # torch.optim.swa_utils.AveragedModel keeps a counter
    wrapped["module.step_counter"] = torch.tensor(5)  # not a weight of the model
    path = tmp_path / "swa.pth"
    torch.save(wrapped, path)
    notes: list[str] = []
    assert_same_model(model, convert_official(path, None, config=tiny_config(), notes=notes))
    skipped = [n for n in notes if n.startswith("skipped keys")]
    assert skipped and "n_averaged" in skipped[0] and "module.step_counter" in skipped[0] and "(2)" in skipped[0]


def test_ema_copy_next_to_plain_weights_uses_plain(tmp_path):
    model, sd = _official_sd(tmp_path)
    mixed = dict(sd)
    mixed.update({f"ema.{k}": v + 1.0 for k, v in sd.items()})  # a different (EMA) copy of every weight
    path = tmp_path / "with_ema.safetensors"
    save_file({k: v.contiguous() for k, v in mixed.items()}, str(path))
    notes: list[str] = []
    assert_same_model(model, convert_official(path, None, config=tiny_config(), notes=notes))
    assert any(n.startswith(f"used the plain weights; skipped their EMA copies ({len(sd)})") for n in notes)


def test_ema_only_checkpoint_is_loaded_and_said(tmp_path):
    model, sd = _official_sd(tmp_path)
    path = tmp_path / "ema_only.ckpt"
    torch.save({"ema": sd, "optimizer_states": [{"lr": 1.0}]}, path)
    notes: list[str] = []
    assert_same_model(model, convert_official(path, None, config=tiny_config(), notes=notes))
    assert any("'ema' entry" in n and "optimizer_states" in n for n in notes)
    torch.save({f"model_ema.{k}": v for k, v in sd.items()}, path)
    notes = []
    assert_same_model(model, convert_official(path, None, config=tiny_config(), notes=notes))
    assert any(n.startswith(f"loaded {len(sd)} weights from an EMA copy") for n in notes)


def test_skipped_keys_warn_without_a_notes_list(tmp_path):
    _, sd = _official_sd(tmp_path)
    sd["optimizer.lr"] = torch.tensor(0.1)
    path = tmp_path / "w.pth"
    torch.save(sd, path)
    with pytest.warns(UserWarning, match=r"skipped keys that are not weights of this model \(1\): optimizer\.lr"):
        convert_official(path, None, config=tiny_config())


def test_cli_lists_skipped_keys_and_refuses_missing_or_misshaped(tmp_path, capsys):
    _, sd = _official_sd(tmp_path)
    sd["loss_scale"] = torch.tensor(65536.0)
    path = tmp_path / "w.ckpt"
    torch.save({"state_dict": sd, "epoch": 1}, path)
    assert main(["--official", str(path), "-o", str(tmp_path / "ok"), "--tiny"]) == 0
    err = capsys.readouterr().err
    assert "warning: skipped keys that are not weights of this model (1): loss_scale" in err
    assert "warning: used the checkpoint's 'state_dict' entry" in err

    broken = dict(sd)
    broken.pop("blocks.0.cross_attn.k.weight")
    broken.pop("head.head.bias")
    broken["pose_proj.proj.weight"] = torch.zeros(16, 16, 3, 3)
    torch.save({"state_dict": broken}, path)
    assert main(["--official", str(path), "-o", str(tmp_path / "bad"), "--tiny"]) == 2
    err = capsys.readouterr().err
    assert "missing keys (official names) (2): blocks.0.cross_attn.k.weight, head.head.bias" in err
    assert "shape mismatches (1): pose_proj.proj.weight (16, 16, 3, 3) (expected (16, 16, 2, 2))" in err
    assert "warning: skipped keys" in err and not (tmp_path / "bad").exists()


def test_unsupported_file_type_is_refused(tmp_path):
    path = tmp_path / "weights.npz"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"unsupported file type '\.npz'"):
        convert_official(path, None, config=tiny_config())
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 16)
    with pytest.raises(InputError, match="not a readable safetensors file"):
        convert_official(bad, None, config=tiny_config())


def test_release_config_maps_constructor_kwargs(tmp_path):
    import json

    from hallo4.convert import load_release_config, release_config

    cfg = release_config(
        {
            "model_type": "t2v",
            "dim": 256,
            "num_heads": 2,
            "ffn_dim": 512,
            "freq_dim": 256,
            "num_layers": 4,
            "vace_layers": [0, 2],
            "in_dim": 16,
            "out_dim": 16,
            "text_len": 8,
            "text_dim": 4096,
            "vace_in_dim": 96,
            "eps": 1e-6,
            "enable_audio_cross_attn": True,
            "enable_skeleton_cross_attn": False,
            "use_gradient_checkpointing": True,
        }
    )
    assert (cfg["num_attention_heads"], cfg["attention_head_dim"], cfg["ffn_dim"], cfg["num_layers"]) == (
        2,
        128,
        512,
        4,
    )
    assert cfg["vace_layers"] == [0, 2] and cfg["enable_audio"] and not cfg["enable_skeleton"]
    assert cfg["audio_layers"] == 12 and cfg["audio_dim"] == 768  # the release's fixed projector sizes
    assert release_config({"num_layers": 6})["vace_layers"] == [0, 2, 4]  # the release's default
    assert release_config({"qk_norm": False})["qk_norm"] is None
    for bad, message in [
        ({"dim": 256, "num_heads": 3}, "not divisible"),
        ({"dimm": 3}, "unknown release"),
        ({"model_type": "i2v"}, "model_type"),
        ({"window_size": [4, 4]}, "local attention"),
    ]:
        with pytest.raises(InputError, match=message):
            release_config(bad)
    path = tmp_path / "cfg.json"
    path.write_text("[1, 2]")
    with pytest.raises(InputError, match="not a JSON object"):
        load_release_config(path)
    path.write_text(json.dumps({"dim": 64, "num_heads": 2}))
    assert load_release_config(path)["attention_head_dim"] == 32
    with pytest.raises(InputError, match="not found"):
        load_release_config(tmp_path / "none.json")


def test_cli_config_builds_the_described_size(tmp_path, capsys):
    import json

    from hallo4.convert import release_config

    kwargs = {
        "dim": 64,
        "num_heads": 2,
        "ffn_dim": 128,
        "freq_dim": 32,
        "num_layers": 2,
        "vace_layers": [0],
        "text_dim": 32,
        "model_type": "t2v",
        "text_len": 8,
    }
    cfg = release_config(kwargs)
    cfg.update(audio_layers=2, audio_dim=16, audio_hidden_dim=32, audio_tokens=4)  # tiny projectors are not
    torch.manual_seed(0)  # a release size: expect refusal
    sd = export_official(Hallo4Transformer3DModel(**cfg).state_dict())
    path = tmp_path / "w.pth"
    torch.save(sd, path)
    (tmp_path / "cfg.json").write_text(json.dumps(kwargs))
    assert main(["--official", str(path), "--config", str(tmp_path / "cfg.json"), "-o", str(tmp_path / "o")]) == 2
    assert "audio_proj.proj1.weight (32, 160) (expected (512, 46080))" in capsys.readouterr().err
    torch.manual_seed(0)
    sd = export_official(Hallo4Transformer3DModel(**release_config(kwargs)).state_dict())
    torch.save(sd, path)
    assert main(["--official", str(path), "--config", str(tmp_path / "cfg.json"), "-o", str(tmp_path / "o")]) == 0
    loaded = Hallo4Transformer3DModel.from_pretrained(tmp_path / "o")
    assert loaded.config.num_layers == 2 and loaded.config.attention_head_dim == 32


def test_cli_help_shows_the_documented_options(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in ("--official", "--config", "--output", "--from-vace", "--dtype"):
        assert option in out
