"""Hallo4Pipeline end to end with a tiny random model loaded from files (CPU, seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hallo4 import media
from hallo4.errors import CancelledError, MissingWeightsError
from hallo4.pipelines import Hallo4Pipeline
from hallo4.pipelines.conditions import fit_frames
from hallo4.pipelines.vace_context import blank_patches
from hallo4.progress import Progress

from .helpers import TINY_RUN

SMALL = TINY_RUN  # 0.5 s = 13 frames: one segment


@pytest.fixture(scope="module")
def pipe(tiny_pipeline_dir, tmp_path_factory):
    p = Hallo4Pipeline.from_pretrained(tiny_pipeline_dir)
    p.prompt_cache_dir = tmp_path_factory.mktemp("prompts")
    return p


@pytest.fixture(scope="module")
def speech(speech_path):
    return media.load_audio(speech_path, 16000, max_seconds=0.5)


def _skeleton_frames(n=13, h=32, w=64):
    frames = np.zeros((n, h, w, 3), np.uint8)
    for i in range(n):
        x = 20 + i % 10
        frames[i, 8:24, x : x + 3] = (255, 0, 0)
        frames[i, 12:14, 10:54] = (0, 255, 0)
    return frames


def test_from_files_to_mp4_with_audio(pipe, portrait_path, speech_path, tmp_path):
    seen = []
    out = pipe(
        portrait_path,
        speech_path,
        skeleton=_skeleton_frames(25),
        seed=3,
        max_seconds=1.0,
        output_path=tmp_path / "o.mp4",
        progress=lambda f, m: seen.append((f, m)),
        **{**SMALL, "frames_per_segment": 9},
    )
    assert out.frames.shape == (25, 32, 32, 3) and out.frames.dtype == np.uint8  # square portrait: cropped back
    assert out.seed == 3 and out.video_path == tmp_path / "o.mp4"
    info = media.probe(out.video_path)
    assert info.num_frames == 25 and abs(info.fps - 25) < 1e-6
    # video-stream length (the container duration can overshoot: media.write_mp4 uses apad + -shortest)
    assert info.has_audio and info.num_frames / info.fps == pytest.approx(1.0)
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any("Segment 3/3: step 2/2" in m for _, m in seen)  # (25 - 1) / 8 = 3 segments
    for key in ("audio", "reference", "denoise", "decode", "encode", "total"):
        assert key in out.timings


def test_same_seed_same_frames_other_seed_differs(pipe, portrait_path, speech):
    a = pipe(portrait_path, speech, skeleton=False, seed=11, **SMALL).frames
    b = pipe(portrait_path, speech, skeleton=False, seed=11, **SMALL).frames
    c = pipe(portrait_path, speech, skeleton=False, seed=12, **SMALL).frames
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_audio_and_skeleton_change_the_video(pipe, portrait_path, speech):
    base = pipe(portrait_path, speech, skeleton=False, seed=5, **SMALL).frames
    silent = pipe(portrait_path, np.zeros_like(speech), skeleton=False, seed=5, **SMALL).frames
    skel = pipe(portrait_path, speech, skeleton=_skeleton_frames(), seed=5, **SMALL).frames
    assert base.shape == silent.shape == skel.shape
    assert np.abs(base.astype(int) - silent).mean() > 0.5
    assert np.abs(base.astype(int) - skel).mean() > 0.5


def test_audio_only_uses_idle_skeleton(pipe, portrait_path, speech):
    pytest.importorskip("hallo4.skeleton").__dict__.get("idle_skeleton") or pytest.skip(
        "idle_skeleton not available yet"
    )
    out = pipe(portrait_path, speech, skeleton=None, seed=5, **SMALL).frames
    none = pipe(portrait_path, speech, skeleton=False, seed=5, **SMALL).frames
    assert out.shape == (13, 32, 32, 3) and not np.array_equal(out, none)


def test_long_audio_several_segments(pipe, portrait_path, examples_dir, tmp_path):
    seen = []
    out = pipe(
        portrait_path,
        examples_dir / "audio" / "story.wav",
        skeleton=False,
        max_seconds=7.0,
        seed=1,
        **{**SMALL, "frames_per_segment": 33, "num_inference_steps": 1},
        progress=lambda f, m: seen.append(m),
        output_path=tmp_path / "long.mp4",
    )
    assert len(out.frames) == 175  # ceil(7 * 25); (175 - 1) / 32 -> 6 segments, the last padded then trimmed
    assert any(m.startswith("Segment 6/6") for m in seen) and not any("Segment 7" in m for m in seen)
    info = media.probe(out.video_path)
    assert info.num_frames == 175 and info.has_audio and info.num_frames / info.fps == pytest.approx(7.0)


def test_cancel_stops_between_steps(pipe, portrait_path, speech):
    prog = Progress()
    steps = []

    def on(fraction, message):
        if "step" in message:
            steps.append(message)
            prog.cancel()

    prog._callback = on
    with pytest.raises(CancelledError):
        pipe(portrait_path, speech, skeleton=False, progress=prog, **{**SMALL, "num_inference_steps": 5})
    assert steps == ["Segment 1/1: step 1/5"]


def test_prompt_cache_skips_the_text_encoder(tiny_pipeline_dir, portrait_path, speech, tmp_path, monkeypatch):
    p = Hallo4Pipeline.from_pretrained(tiny_pipeline_dir)
    assert p.text_encoder is None  # loaded only on a cache miss
    p.prompt_cache_dir = tmp_path
    a = p(portrait_path, speech, skeleton=False, prompt="a man is talking", seed=2, **SMALL).frames
    assert not p._last_prompt_cache_hit and len(list(tmp_path.glob("*.safetensors"))) == 1
    assert p.text_encoder is None

    from transformers import UMT5EncoderModel

    def boom(*a, **k):
        raise AssertionError("text encoder loaded on a cache hit")

    monkeypatch.setattr(UMT5EncoderModel, "from_pretrained", boom)
    b = p(portrait_path, speech, skeleton=False, prompt="a man is talking", seed=2, **SMALL).frames
    assert p._last_prompt_cache_hit and np.array_equal(a, b)
    pe, ne = p.encode_prompt("a man is talking", p_default_neg())
    assert pe.shape == (1, 512, 32) and (pe[0, 10:] == 0).all() and not (pe[0, :4] == 0).all()


def p_default_neg():
    from hallo4.pipelines import DEFAULT_NEGATIVE_PROMPT

    return DEFAULT_NEGATIVE_PROMPT


def test_missing_weights_name_what_and_how(tmp_path, tiny_pipeline_dir):
    with pytest.raises(MissingWeightsError) as e:
        Hallo4Pipeline.from_pretrained(tmp_path / "nope")
    msg = str(e.value)
    assert "hf download fudan-generative-ai/hallo4 --include 'hallo4/model_weight.pth'" in msg
    assert "--local-dir models/hallo4-official" in msg and "python -m hallo4.weights download" in msg
    assert "python -m hallo4.convert --official models/hallo4-official/hallo4/model_weight.pth -o models/hallo4" in msg
    # the bare converter output (transformer only): the other parts are named
    import shutil

    only = tmp_path / "hallo4"
    shutil.copytree(tiny_pipeline_dir / "transformer", only)
    with pytest.raises(MissingWeightsError) as e:
        Hallo4Pipeline.from_pretrained(only)
    for part in ("vae", "text_encoder", "tokenizer", "audio_encoder"):
        assert part in str(e.value)
    assert "transformer (" not in str(e.value)
    with pytest.raises(
        MissingWeightsError,
        match=r"(?s)'no-such-org/no-such-model' is neither a local folder nor.*python -m hallo4.weights",
    ):
        Hallo4Pipeline.from_pretrained("no-such-org/no-such-model")


def test_vace_mask_and_helpers():
    mask = torch.ones(9, 16, 16)
    mask[0] = 0
    mask[3, :8, :8] = 0
    m = Hallo4Pipeline.latent_mask(mask)
    assert m.shape == (64, 3, 2, 2)
    # nearest-exact, as the release: latent frames read pixel frames 1, 4, 7 (never frame 0)
    assert (m == 1).all()
    mask[4, 8:, 8:] = 0
    m = Hallo4Pipeline.latent_mask(mask)
    assert (m[:, 1].view(8, 8, 2, 2)[:, :, 1, 1] == 0).all() and m.sum() == m.numel() - 64
    rng = torch.Generator().manual_seed(0)
    blanked = blank_patches(torch.zeros(64, 64, 3), 0.1, rng)
    assert int((blanked[..., 0] == -1).sum()) == 4 * int(0.1 * 32 * 32)  # exactly int(0.1 * patches)
    assert (blanked[::2, ::2] == blanked[1::2, 1::2]).all()  # whole 2x2 patches
    assert fit_frames(np.arange(3), 7).tolist() == [0, 1, 2, 1, 0, 1, 2]
    assert Hallo4Pipeline.default_canvas(512, 512) == (832, 480)
    assert Hallo4Pipeline.default_canvas(400, 900) == (480, 832)


def test_vae_tiling_decodes_in_tiles_close_to_untiled(tiny_pipeline_dir, pipe, portrait_path, speech, monkeypatch):
    """vae_tiling=True really runs the VAE tile by tile (tiles smaller than the 32x64 canvas, overlapping and
    blended) and stays close to the untiled frames. The tiny random VAE is not local (its mid block attends over
    the whole image), so tiles cannot match exactly: measured 5.8 grey levels on average, and 8.8 when the tiles
    are not blended (diffusers' blend_v / blend_h as no-ops), which the bound of 7 tells apart."""
    untiled = pipe(portrait_path, speech, skeleton=False, seed=5, **SMALL).frames
    p = Hallo4Pipeline.from_pretrained(tiny_pipeline_dir)
    p.prompt_cache_dir = pipe.prompt_cache_dir
    # tile sizes persist in the VAE; the call's vae_tiling=True switches tiling on with them
    p.enable_vae_tiling(
        tile_sample_min_height=16, tile_sample_min_width=32, tile_sample_stride_height=8, tile_sample_stride_width=16
    )
    p.disable_vae_tiling()
    calls = {"tiled_encode": 0, "tiled_decode": 0}
    for name in calls:
        real = getattr(p.vae, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            calls[_name] += 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(p.vae, name, spy)
    tiled = p(portrait_path, speech, skeleton=False, seed=5, vae_tiling=True, **SMALL).frames
    assert p.vae.use_tiling and calls["tiled_decode"] >= 1 and calls["tiled_encode"] >= 1, calls
    assert tiled.shape == untiled.shape == (13, 32, 32, 3)
    diff = np.abs(tiled.astype(int) - untiled).mean()
    assert 0 < diff < 7.0, diff
    p(portrait_path, speech, skeleton=False, seed=5, vae_tiling=False, **SMALL)
    assert not p.vae.use_tiling


def test_model_cpu_offload_gives_the_same_frames(tiny_pipeline_dir, pipe, portrait_path, speech, tmp_path):
    ref = pipe(portrait_path, speech, skeleton=False, seed=8, **SMALL).frames
    p = Hallo4Pipeline.from_pretrained(tiny_pipeline_dir)
    p.prompt_cache_dir = pipe.prompt_cache_dir
    p.enable_model_cpu_offload(device="cpu")  # accelerate hooks; on a GPU machine device="cuda"
    assert np.array_equal(p(portrait_path, speech, skeleton=False, seed=8, **SMALL).frames, ref)
