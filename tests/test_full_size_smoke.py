"""The real-size Hallo4 DiT (2.77 B parameters, random bf16 weights) runs one real denoising step of the
real pipeline at a tiny canvas on the CPU. About 5 minutes and 6.3 GB of RAM on the 2-core CI machine
(BENCHMARKS.md, bench/bench_full_smoke.py), hence `slow`."""

from __future__ import annotations

import numpy as np
import pytest

from hallo4.models import full_config

FULL_DIT_PARAMETERS = 2_770_040_256


@pytest.mark.slow
def test_full_size_dit_denoises_one_step_on_cpu(portrait_path, speech_path, tmp_path, monkeypatch):
    from hallo4.testing import full_size_smoke

    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path / "data"))
    r = full_size_smoke(portrait_path, speech_path, steps=1, size=64, frames=5, cache_dir=tmp_path / "prompts")
    assert r["parameters"] == FULL_DIT_PARAMETERS
    assert r["dtypes"] == ["torch.bfloat16"]
    frames = r["frames"]
    assert frames.shape == (5, 64, 64, 3) and frames.dtype == np.uint8
    assert np.ptp(frames) > 0  # a NaN latent decodes to one flat value: the step produced numbers
    assert r["timings"]["denoise"] > 0 and full_config()["num_layers"] == 30
