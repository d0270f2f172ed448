"""bench/gpu_check.py: its CPU dry run at tiny sizes goes through every part (nine modes incl. model and
group offload, text encoder, VAE, a DPO step), extrapolates segments as it says, writes JSON + a table."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import gpu_check  # noqa: E402

pytestmark = pytest.mark.slow  # ~20 s unloaded (nine modes, text encoder, VAE, a DPO step on tiny sizes)


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check") / "gpu_check.json"
    assert gpu_check.main(["--dry-run", "--steps", "1", "-o", str(out)]) == 0
    return json.loads(out.read_text()), out.with_suffix(".md").read_text()


def test_dry_run_measures_every_part(dry_run):
    result, _ = dry_run
    assert result["dry_run"] and result["measured_steps"] == 1
    modes = {(m["precision"], m["offload"]): m for m in result["modes"]}
    assert set(modes) == set(gpu_check.MODES)
    vae = result["vae"]
    vae_s = vae["encode_16_skeleton_frames_s"] * 1 + vae["encode_context_video_s"] + vae["decode_segment_s"]
    for m in modes.values():
        assert "error" not in m, m
        assert m["seconds_per_step"] > 0
        assert m["segment_s"] == round(25 * m["seconds_per_step"] + vae_s, 1)  # the stated extrapolation
    assert result["text_encoder"]["encode_two_prompts_s"] > 0
    assert (
        result["dpo"]["seconds_per_step"] > 0
        and result["dpo"]["loss_finite"]
        and result["dpo"]["trainable_params"] > 0
    )


def test_table_says_what_was_measured(dry_run, tmp_path):
    _, md = dry_run
    assert "TINY configuration" in md and "extrapolated" in md
    rows = [line for line in md.splitlines() if line.startswith("|")]
    assert len(rows) == 2 + len(gpu_check.MODES)  # header, rule, one row per mode
    bench = tmp_path / "BENCHMARKS.md"
    bench.write_text("# Benchmarks\n\nintro\n")
    gpu_check.update_benchmarks(md, bench)
    gpu_check.update_benchmarks(md.replace("TINY", "tiny"), bench)  # replaced in place, not appended twice
    text = bench.read_text()
    assert text.count(gpu_check.BEGIN) == 1 and "tiny configuration" in text and "TINY" not in text


def test_refuses_without_cuda_unless_dry_run(capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the real check would run")
    assert gpu_check.main(["-o", "/nonexistent/x.json"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
