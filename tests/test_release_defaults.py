"""The hallo4 engine's release defaults: trained canvas, per-segment noise re-seeded with the seed, the
seed reported, and the release precision mode (fp32 weights under bf16 autocast, fp32 time path/head)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from hallo4 import media
from hallo4.engines import GenerationRequest
from hallo4.engines.diffusion import DiffusionEngine, choose_precision
from hallo4.errors import InputError
from hallo4.pipelines import Hallo4Pipeline

from .helpers import TINY_RUN

pytestmark = pytest.mark.usefixtures("data_dir")  # HALLO4_DATA_DIR in each test's tmp_path

OPTS = {"steps": 2, "frames_per_segment": 13, "height": 32, "width": 64}


def test_default_canvas_is_the_trained_one_and_other_sizes_warn(
    tiny_pipeline_dir, portrait_path, speech_path, tmp_path
):
    engine = DiffusionEngine(model=str(tiny_pipeline_dir), output_dir=tmp_path)
    req = GenerationRequest(portrait=portrait_path, audio=speech_path)
    assert req.size is None and engine._canvas(req, {}) == (None, None)  # the pipeline's 832x480 / 480x832
    assert engine._size_warning(req, None, None) is None
    assert engine._canvas(GenerationRequest(portrait=portrait_path, audio=speech_path, size=2000), {}) == (480, 832)
    assert engine._size_warning(req, 480, 832) is None and engine._size_warning(req, 832, 480) is None
    assert "512x288" in engine._size_warning(req, 288, 512)
    res = engine.generate(
        GenerationRequest(portrait=portrait_path, audio=speech_path, max_seconds=0.5, seed=3, options=OPTS)
    )
    assert any("differs from the 832x480 / 480x832 canvas" in w for w in res.warnings)
    assert Hallo4Pipeline.default_canvas(600, 800) == (832, 480)  # 3:4 portrait: no cropping on 832x480
    assert Hallo4Pipeline.default_canvas(450, 900) == (480, 832)


def test_each_segment_noise_is_reseeded_with_the_seed(
    tiny_pipeline_dir, portrait_path, speech_path, monkeypatch, tmp_path
):
    pipe = Hallo4Pipeline.from_pretrained(tiny_pipeline_dir)
    pipe.prompt_cache_dir = tmp_path / "prompts"
    states = []
    real = pipe.prepare_latents

    def spy(*args, **kwargs):
        generator = kwargs.get("generator", args[3] if len(args) > 3 else None)
        states.append(generator.get_state().clone())  # the noise generator, before the segment draws
        return real(*args, **kwargs)

    monkeypatch.setattr(pipe, "prepare_latents", spy)
    canvas = dict(height=32, width=32, frames_per_segment=9, num_inference_steps=1)
    out = pipe(portrait_path, speech_path, skeleton=False, seed=1234, max_seconds=1.0, **canvas)
    assert out.seed == 1234 and len(states) == 3  # 25 frames = 3 segments of 9 (8 new frames each)
    fresh = torch.Generator().manual_seed(1234).get_state()
    assert all(torch.equal(s, fresh) for s in states)


def test_cli_reports_seed_and_warnings(tmp_path, portrait_path, speech_path):
    out = tmp_path / "lite.mp4"
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "hallo4.generate",
            "--portrait",
            str(portrait_path),
            "--audio",
            str(speech_path),
            "--engine",
            "lite",
            "-o",
            str(out),
            "--max-seconds",
            "0.6",
        ],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    seed_lines = [line for line in res.stderr.splitlines() if line.startswith("seed: ")]
    assert len(seed_lines) == 1 and int(seed_lines[0][6:]) >= 0  # drawn and said
    assert max(media.probe(out).width, media.probe(out).height) == 512  # lite's default size


def test_choose_precision_by_free_memory():
    gib = 2**30
    assert choose_precision(80 * gib) == "release"
    assert choose_precision(20 * gib) == "bf16"
    assert choose_precision(8 * gib) == "8bit"
    with pytest.raises(InputError, match="unknown precision"):
        DiffusionEngine(precision="fp8")
    with pytest.raises(InputError, match="contradicts"):
        DiffusionEngine(precision="bf16", quantize="8bit")
    assert DiffusionEngine(device="cpu").precision == "fp32"
    assert DiffusionEngine(device="cpu", quantize="8bit").precision == "8bit"


def test_release_precision_keeps_time_path_and_head_fp32(tiny_pipeline_dir, portrait_path, speech_path):
    engine = DiffusionEngine(model=str(tiny_pipeline_dir), precision="release")
    pipe = engine.load()
    assert pipe.autocast_dtype == torch.bfloat16 and pipe.transformer.dtype == torch.float32
    assert any("autocast on the CPU is slow" in w for w in engine.load_warnings)
    seen = {}
    tr = pipe.transformer

    def record(name):
        def hook(module, inputs, output):
            seen.setdefault(name, output.dtype)  # returns None: the output is unchanged

        return hook

    hooks = [
        m.register_forward_hook(record(name))
        for name, m in [
            ("time_embedder", tr.condition_embedder.time_embedder),
            ("time_proj", tr.condition_embedder.time_proj),
            ("head", tr.proj_out),
            ("attn_q", tr.blocks[0].attn1.to_q),
            ("ffn", tr.blocks[0].ffn),
        ]
    ]
    kw = dict(skeleton=False, seed=4, max_seconds=0.5, **TINY_RUN)
    release = pipe(portrait_path, speech_path, **kw).frames.astype(np.float32)
    for h in hooks:
        h.remove()
    assert seen == {
        "time_embedder": torch.float32,
        "time_proj": torch.float32,
        "head": torch.float32,
        "attn_q": torch.bfloat16,
        "ffn": torch.bfloat16,
    }
    pipe.disable_release_precision()
    exact = pipe(portrait_path, speech_path, **kw).frames.astype(np.float32)
    diff = np.abs(release - exact).mean()
    assert 0 < diff < 6.0  # bf16 matmuls move pixels a little, not the picture
    with pytest.raises(ValueError, match="float32 transformer weights"):
        pipe.transformer.to(torch.bfloat16)
        pipe.enable_release_precision()
