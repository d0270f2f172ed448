"""Golden tests: the project against values computed by running the authors' Hallo4 release
(tests/fixtures/hallo4-official/, see its README: data only, no code of theirs).

Every file of the fixture is checked: the tiny transformer (through the official checkpoint format and
`python -m hallo4.convert --config`), the audio path, the sampler schedule, the VACE masks and patch
blanking, and the prompts with the tokenizer's cleaning.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from hallo4.testing import recipe_weights

GOLDEN = Path(__file__).parent / "fixtures" / "hallo4-official"
TINY = GOLDEN / "transformer-tiny"
AUDIO = GOLDEN / "audio"


def _json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------
# Weight recipe (shared by the three random models)
# ------------------------------------------------------------------------------------------------
def test_weight_recipe_reproduces_the_check_values():
    keys = _json(TINY / "keys.json")
    sd = recipe_weights(keys, 1000)
    names = sorted(keys)
    for index, name, first in [
        (0, "audio_proj.norm.bias", [-0.0530559, -0.1129971, -0.0673383]),
        (11, "blocks.0.audio_cross_attn.norm_q.weight", [1.1205235, 1.0109389, 0.9116759]),
        (46, "blocks.0.modulation", [0.0574187, -0.0144579, -0.0864874]),
        (292, "vace_patch_embedding.weight", [-0.0139882, 0.0202437, 0.0312365]),
    ]:
        assert names[index] == name
        np.testing.assert_allclose(sd[name].flatten()[:3].numpy(), first, atol=1e-7)
    assert len(sd) == 293 and sum(v.numel() for v in sd.values()) == 36_901_376
    for keys_file, base, total in [
        (TINY / "keys.json", 1000, 14233.5629293),
        (AUDIO / "wav2vec2_keys.json", 2000, 290.8614890),
        (AUDIO / "projector_keys.json", 3000, 31.5182629),
    ]:
        weights = recipe_weights(_json(keys_file), base)
        assert sum(w.double().sum().item() for w in weights.values()) == pytest.approx(total, abs=1e-6)


# ------------------------------------------------------------------------------------------------
# 1. transformer-tiny: official checkpoint -> CLI converter (--config) -> our model
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def golden_transformer(tmp_path_factory):
    from hallo4.convert import main
    from hallo4.models import Hallo4Transformer3DModel

    tmp = tmp_path_factory.mktemp("golden")
    ckpt = tmp / "model_weight.ckpt"
    torch.save({"state_dict": recipe_weights(_json(TINY / "keys.json"), 1000)}, ckpt)
    out = tmp / "converted"
    assert main(["--official", str(ckpt), "--config", str(TINY / "config.json"), "-o", str(out)]) == 0
    ckpt.unlink()
    return Hallo4Transformer3DModel.from_pretrained(out).eval()


def _golden_call(model, audio_zero: bool = False) -> torch.Tensor:
    """The fixture's official call, mapped to our batched calling convention (README section 1.3)."""
    inp = load_file(str(TINY / "inputs.safetensors"))
    audio = inp["audio_emb_int8"].to(torch.float32) * 0.03125
    with torch.no_grad():
        return model(
            hidden_states=inp["x"],
            timestep=inp["t"],
            encoder_hidden_states=inp["context"],  # padded to text_len
            control_hidden_states=inp["vace_context"],
            pose_latents=inp["skeleton_latents"],
            audio_features=torch.zeros_like(audio) if audio_zero else audio,
            control_scale=float(inp["vace_context_scale"]),
            return_dict=False,
        )[0]


def test_transformer_matches_release(golden_transformer):
    ref = load_file(str(TINY / "outputs.safetensors"))
    inp = load_file(str(TINY / "inputs.safetensors"))
    assert inp["context"][0, 5:].abs().max() == 0  # rows past context_lens are zero: padded as the release does
    torch.testing.assert_close(_golden_call(golden_transformer), ref["out_cond"], rtol=0, atol=1e-5)
    torch.testing.assert_close(
        _golden_call(golden_transformer, audio_zero=True), ref["out_uncond_audio_zero"], rtol=0, atol=1e-5
    )


def test_transformer_intermediates_match_release(golden_transformer):
    ref = load_file(str(TINY / "outputs.safetensors"))
    inp = load_file(str(TINY / "inputs.safetensors"))
    m = golden_transformer
    with torch.no_grad():
        temb, proj, text, _ = m.condition_embedder(inp["t"], inp["context"])
        torch.testing.assert_close(temb, ref["dbg_time_embedding"], rtol=0, atol=1e-4)
        torch.testing.assert_close(proj, ref["dbg_time_projection"], rtol=0, atol=1e-4)
        torch.testing.assert_close(text, ref["dbg_text_embedding"], rtol=0, atol=1e-4)
        torch.testing.assert_close(m.pose_proj(inp["skeleton_latents"]), ref["dbg_pose_proj"], rtol=0, atol=1e-4)
        audio = m.audio_proj(inp["audio_emb_int8"].to(torch.float32) * 0.03125)[:, :, :4]
        torch.testing.assert_close(audio, ref["dbg_audio_proj_first4tokens"], rtol=0, atol=1e-4)


def test_time_sinusoid_is_float64():
    """The sinusoid alone is computed in float64 (the release's precision), then cast to float32."""
    from hallo4.models.transformer_hallo4 import Float64Timesteps

    t = torch.tensor([937.5, 412.0])
    half = 128
    freqs = 10000.0 ** (-np.arange(half, dtype=np.float64) / half)
    args = np.outer(t.numpy().astype(np.float64), freqs)
    expected = np.concatenate([np.cos(args), np.sin(args)], 1)
    out = Float64Timesteps(256)(t)
    assert out.dtype == torch.float64
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# 2. audio: wav2vec2 (all layers, resampled to 25 fps), 5-frame window, projector
# ------------------------------------------------------------------------------------------------
def test_audio_path_matches_release():
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from hallo4.audio_encoder import encode_audio, wav2vec2_hidden_states
    from hallo4.constants import num_video_frames as num_frames
    from hallo4.models import Hallo4AudioProjection

    ref = load_file(str(AUDIO / "audio.safetensors"))
    cfg = {k: v for k, v in _json(AUDIO / "wav2vec2_config.json").items() if not k.startswith("_")}
    torch.manual_seed(0)
    model = Wav2Vec2Model(Wav2Vec2Config(**cfg)).eval()
    model.load_state_dict(recipe_weights(_json(AUDIO / "wav2vec2_keys.json"), 2000), strict=True)
    fe = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True, return_attention_mask=False
    )
    wav = ref["waveform"].numpy()
    input_values = fe(wav, sampling_rate=16000, return_tensors="pt").input_values[0]
    torch.testing.assert_close(input_values, ref["input_values"], rtol=0, atol=1e-5)
    t = num_frames(len(wav))
    assert t == 33
    hidden = wav2vec2_hidden_states(model, input_values[None], t)[0]
    torch.testing.assert_close(hidden, ref["hidden_states"], rtol=0, atol=1e-5)
    emb = encode_audio(model, fe, wav)
    torch.testing.assert_close(emb, ref["audio_emb"], rtol=0, atol=1e-5)

    pcfg = _json(AUDIO / "projector_config.json")
    proj = Hallo4AudioProjection(
        window=pcfg["seq_len"],
        layers=pcfg["blocks"],
        dim=pcfg["channels"],
        hidden_dim=pcfg["intermediate_dim"],
        tokens=pcfg["context_tokens"],
        out_dim=pcfg["output_dim"],
    ).eval()
    proj.load_state_dict(recipe_weights(_json(AUDIO / "projector_keys.json"), 3000), strict=True)
    with torch.no_grad():
        torch.testing.assert_close(proj(emb[None]), ref["proj_out"], rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# 3. schedule: diffusers UniPC configured as the release's flow UniPC
# ------------------------------------------------------------------------------------------------
def test_schedule_matches_release():
    from hallo4.pipelines.sampling import release_scheduler
    from hallo4.testing import make_tiny_components

    gold = _json(GOLDEN / "schedule.json")
    base_config = make_tiny_components()["scheduler"].config  # what a pipeline holds
    sch = release_scheduler(base_config, gold["num_inference_steps"], gold["shift"])
    assert sch.timesteps.dtype == torch.int64
    assert sch.timesteps.tolist() == gold["timesteps"]
    assert gold["timesteps"][0] == 999 and gold["timesteps"][-1] == 249
    np.testing.assert_allclose(sch.sigmas.numpy(), gold["sigmas"], rtol=0, atol=1e-6)

    traj = gold["step_trajectory"]
    shape = (1, 2, 1, 2, 3)
    x = torch.tensor(traj["x_init"]).view(shape)
    target = torch.tensor(traj["target"]).view(shape)
    sch = release_scheduler(base_config, gold["num_inference_steps"], gold["shift"])
    for k, t in enumerate(sch.timesteps):
        out = 0.8 * x + 0.3 * torch.sin(2.0 * x) - 0.5 * target + 0.001 * float(t)
        np.testing.assert_allclose(out.flatten().numpy(), traj["model_outputs"][k], rtol=0, atol=1e-5)
        x = sch.step(out, t, x, return_dict=False)[0]
        np.testing.assert_allclose(x.flatten().numpy(), traj["x_after_step"][k], rtol=0, atol=1e-5)


# ------------------------------------------------------------------------------------------------
# 4. masks: VACE latent mask (nearest-exact) and patch blanking of the carried-over frame
# ------------------------------------------------------------------------------------------------
def test_latent_masks_match_release():
    from hallo4.pipelines import Hallo4Pipeline

    gold = _json(GOLDEN / "masks.json")
    frames = gold["pixel_mask_shape"][1]
    h, w = 48, 64  # the temporal sampling does not depend on the size; the release's is 480x832
    # which pixel frame each latent frame reads: give every pixel frame its own value
    probe = torch.arange(frames, dtype=torch.float32)[:, None, None].expand(frames, h, w).contiguous()
    read = Hallo4Pipeline.latent_mask(probe)
    assert read.shape == (64, 21, h // 8, w // 8)
    assert read[0, :, 0, 0].long().tolist() == gold["source_pixel_frame_of_latent_frame"]
    assert (read == read[:1, :, :1, :1]).all()  # every channel and position reads the same frame

    first = torch.ones(frames, h, w)
    later = torch.ones(frames, h, w)
    later[0] = 0.0  # the carried-over motion frame is known content
    for mask, case in [(first, "first_segment"), (later, "later_segment_motion_frame0")]:
        lat = Hallo4Pipeline.latent_mask(mask)
        expected = gold["cases"][case]["latent_mask_21"]
        assert lat.shape[0] == gold["cases"][case]["mask_channels"]
        assert lat.amin(dim=(0, 2, 3)).tolist() == expected and lat.amax(dim=(0, 2, 3)).tolist() == expected


def test_patch_blanking_matches_release():
    from hallo4.pipelines.vace_context import BLANK_FRACTION, blank_patches

    gold = _json(GOLDEN / "masks.json")["random_mask_patches"]
    rows, cols = gold["patch_grid"]
    frame = torch.rand(2 * rows, 2 * cols, 3, generator=torch.Generator().manual_seed(3)) * 1.8 - 0.9
    out = blank_patches(frame, BLANK_FRACTION, torch.Generator().manual_seed(0))
    blanked = (out == -1.0).all(-1)  # (H, W): all three channels
    patches = blanked.view(rows, 2, cols, 2).permute(0, 2, 1, 3).reshape(rows * cols, 4)
    assert patches.all(1).logical_or(~patches.any(1)).all()  # whole 2x2 patches only
    chosen = patches.all(1)
    assert int(chosen.sum()) == gold["num_masked_patches"] == int(0.1 * gold["total_patches"])
    # the same torch.randperm draw as the release with the generator seeded like its global RNG
    assert chosen[gold["example_after_torch_manual_seed_0_first_8_patch_indices"]].all()
    keep = ~blanked
    assert torch.equal(out[keep], frame[keep])


# ------------------------------------------------------------------------------------------------
# 5. prompts: defaults and the Wan tokenizer's cleaning
# ------------------------------------------------------------------------------------------------
def test_prompts_match_release():
    from hallo4.pipelines.prompt_encoding import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT, clean_prompt

    gold = _json(GOLDEN / "prompt.json")
    assert DEFAULT_PROMPT == gold["positive_prompt"]
    assert DEFAULT_NEGATIVE_PROMPT == gold["negative_prompt"]
    assert clean_prompt(DEFAULT_PROMPT) == gold["positive_prompt_cleaned"]
    cleaned = clean_prompt(DEFAULT_NEGATIVE_PROMPT)
    assert cleaned == gold["negative_prompt_cleaned"]
    assert DEFAULT_NEGATIVE_PROMPT.count("\uff0c") == 27 and "\uff0c" not in cleaned and cleaned.count(",") == 27
    assert clean_prompt("  a&amp;amp;b \t\n c  ") == "a&b c"  # html unescaped twice, whitespace collapsed


def test_pipeline_tokenizes_the_cleaned_prompt(monkeypatch):
    """The text encoder sees the cleaned text (full-width commas as ASCII), not the raw prompt."""
    from hallo4.pipelines import Hallo4Pipeline
    from hallo4.testing import make_tiny_components

    pipe = Hallo4Pipeline(**make_tiny_components())
    seen: list[str] = []
    tokenizer = pipe.tokenizer

    def spy(texts, **kwargs):
        seen.extend(texts)
        return tokenizer(texts, **kwargs)

    monkeypatch.setattr(pipe, "tokenizer", spy)
    pipe._run_text_encoder(["static\uff0c  blurred &amp; bright"], 16)
    assert seen == ["static, blurred & bright"]


def test_fixture_is_complete():
    """Every data file of the fixture is read by a test above (a new file needs a new check)."""
    files = sorted(str(p.relative_to(GOLDEN)) for p in GOLDEN.rglob("*") if p.is_file() and p.name != "README.md")
    assert files == sorted(
        [
            "audio/audio.safetensors",
            "audio/projector_config.json",
            "audio/projector_keys.json",
            "audio/wav2vec2_config.json",
            "audio/wav2vec2_keys.json",
            "masks.json",
            "prompt.json",
            "schedule.json",
            "transformer-tiny/config.json",
            "transformer-tiny/inputs.safetensors",
            "transformer-tiny/keys.json",
            "transformer-tiny/outputs.safetensors",
        ]
    )
