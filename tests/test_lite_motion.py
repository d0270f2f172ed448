"""The lite motion model (hallo4.lite_motion): sampler, shipped base weights, the engine hook, base training."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hallo4 import media
from hallo4.articulation import articulate
from hallo4.lite_motion import BASE_WEIGHTS, LiteMotion, LiteMotionModel, load_motion_model, speech_conditions
from hallo4.lite_motion.features import CONDITION_NAMES, MOTION_NAMES, denormalise, normalise

TINY = dict(width=16, dilations=(1, 2), sample_steps=3)


def test_sampler_is_deterministic_per_seed_and_keeps_the_clip_length():
    model = LiteMotionModel(**TINY).eval()
    for p in model.parameters():  # the zero-initialised output layer would make every sample pure noise
        torch.nn.init.normal_(p, std=0.2)
    cond = np.random.default_rng(0).normal(size=(37, len(CONDITION_NAMES))).astype(np.float32)
    a, b, c = model.motion(cond, 1), model.motion(cond, 1), model.motion(cond, 2)
    assert a.shape == (37, len(MOTION_NAMES))
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).mean() > 1e-3
    noise = torch.randn(1, 37, len(MOTION_NAMES))
    one_step = model.sample(torch.from_numpy(cond)[None], noise=noise, steps=1)[0]
    v = model(noise, torch.ones(1), torch.from_numpy(cond)[None])[0]
    torch.testing.assert_close(one_step, (noise[0] - v).detach())  # Euler from s = 1 to 0: x0 = x1 - v
    np.testing.assert_allclose(normalise(denormalise(a)), a, rtol=1e-5, atol=1e-6)


def test_save_and_load_roundtrip_is_safetensors(tmp_path):
    model = LiteMotionModel(**TINY)
    model.save_pretrained(str(tmp_path), safe_serialization=True)
    assert (tmp_path / "diffusion_pytorch_model.safetensors").is_file()
    loaded = load_motion_model(tmp_path)
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    with pytest.raises(Exception, match="no lite motion model"):
        load_motion_model(tmp_path / "missing")


def test_shipped_base_follows_speech_like_the_rules(speech_path):
    """The base reproduces today's mouth (jaw track close to the rules), with head motion, blinks and variety."""
    assert (BASE_WEIGHTS / "diffusion_pytorch_model.safetensors").stat().st_size < 4_000_000
    model = load_motion_model()
    assert sum(p.numel() for p in model.parameters()) < 3_000_000
    audio = media.load_audio(speech_path, 16000, name="audio")
    cond = speech_conditions(audio)
    rules = articulate(audio).open
    motion = LiteMotion(model)
    outs = [motion.tracks(audio, 16000, 25.0, len(cond), seed) for seed in range(4)]
    for mouth, blinks, head in outs:
        assert np.corrcoef(mouth["open"], rules)[0, 1] > 0.8
        assert head.shape == (len(cond), 5) and np.abs(head).max() < 0.6
        assert 0 <= blinks.min() and blinks.max() <= 1
    # Blink rates vary with the style (a calm style may not blink in 6 s, as with the rules), but most blink.
    assert sum(b.max() > 0.5 for _, b, _ in outs) >= 2
    heads = np.stack([h for _, _, h in outs])
    assert heads.std(0).mean() > 1e-3  # different seeds, different head motion


def test_lite_engine_renders_model_motion(tmp_path, portrait_path, speech_path):
    from hallo4.engines.base import GenerationRequest
    from hallo4.engines.lite import LiteEngine

    req = GenerationRequest(
        portrait=portrait_path,
        audio=speech_path,
        seed=3,
        size=256,
        max_seconds=1.0,
        output=tmp_path / "m.mp4",
        options={"motion": "base"},
    )
    res = LiteEngine().generate(req)
    assert res.parameters["motion"] != "rules" and res.num_frames == 25
    assert media.probe(res.video).num_frames == 25


def test_shipped_base_raises_brows_on_speech_and_never_in_silence(speech_path):
    """The brow channel is alive: a few 0.2-0.6 s raises over speech, none in a pause (issue 16 lists brows)."""
    speech = media.load_audio(speech_path, 16000, name="audio")
    audio = np.concatenate([speech, np.zeros(2 * 16000, np.float32), speech])  # speech, 2 s pause, speech
    n = len(speech_conditions(audio))
    pause = slice(int((len(speech) / 16000 + 0.4) * 25), int((len(speech) / 16000 + 1.6) * 25))
    motion = LiteMotion(load_motion_model())
    raises = []
    for seed in range(4):
        mouth, _, _ = motion.tracks(audio, 16000, 25.0, n, seed)
        brow = mouth["brow"]
        assert brow.shape == (n,) and 0 <= brow.min() and brow.max() <= 1
        assert brow[pause].max() < 0.1, (seed, brow[pause])  # no raise while silent
        up = brow > 0.2
        raises.append(int(np.sum(up[1:] & ~up[:-1]) + up[0]))
        assert up.mean() < 0.4, seed  # raises are sparse, not a held expression
    seconds = 2 * len(speech) / 16000
    assert 0.5 <= np.mean(raises) / seconds * 10 <= 8, raises  # a few raises per 10 s of speech


def test_motion_path_tucks_the_lower_lip_on_f(tmp_path):
    """ "afa" through the motion model: the engine's tracks carry "labiodental" (f/v) from the speech itself."""
    import shutil
    import subprocess

    assert shutil.which("espeak-ng"), "espeak-ng is missing: apt-get install espeak-ng (it is listed in packages.txt)"
    wav = tmp_path / "afa.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), "afa"], check=True, capture_output=True)
    audio = np.concatenate([np.zeros(int(0.3 * 16000), np.float32), media.load_audio(wav, 16000)])
    n = len(speech_conditions(audio))
    mouth, _, _ = LiteMotion(load_motion_model()).tracks(audio, 16000, 25.0, n, 0)
    labio = np.flatnonzero(mouth["labiodental"] > 0.5)
    assert len(labio) >= 2, mouth.get("labiodental")
    np.testing.assert_array_equal(mouth["labiodental"] > 0.5, articulate(audio).labiodental[:n] > 0.5)
    assert mouth["open"][labio].max() > 0.02  # the lips are not shut on "f"
