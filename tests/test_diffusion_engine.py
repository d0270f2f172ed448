"""The hallo4 engine over a tiny random pipeline: requests, CPU warning, 8-bit, LoRA adapters, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from hallo4 import media
from hallo4.engines import GenerationRequest, get_engine
from hallo4.engines.diffusion import DiffusionEngine
from hallo4.errors import InputError, MissingWeightsError, ResourceError

from .helpers import TINY_RUN

pytestmark = pytest.mark.usefixtures("data_dir")  # HALLO4_DATA_DIR in each test's tmp_path

OPTS = {"steps": 2, "frames_per_segment": 13, "height": 32, "width": 64}


def _run(engine, portrait, audio, **pipe_kw):
    return engine.pipe(portrait, audio, skeleton=False, seed=4, max_seconds=0.5, **TINY_RUN, **pipe_kw).frames


def test_engine_generates_mp4(tiny_pipeline_dir, portrait_path, speech_path, tmp_path):
    engine = get_engine("hallo4", model=str(tiny_pipeline_dir), output_dir=tmp_path)
    assert isinstance(engine, DiffusionEngine) and engine.name == "hallo4"
    assert engine.device.type == "cpu" and engine.dtype == torch.float32
    messages = []
    res = engine.generate(
        GenerationRequest(portrait=portrait_path, audio=speech_path, max_seconds=0.5, seed=9, options=OPTS),
        lambda f, m: messages.append(m),
    )
    assert res.engine == "hallo4" and res.seed == 9 and res.num_frames == 13
    assert res.video.parent == tmp_path and res.video.exists()
    info = media.probe(res.video)
    assert info.num_frames == 13 and info.has_audio and (info.width, info.height) == (32, 32)
    assert any("CPU" in w and "float32" in w for w in res.warnings)
    assert res.parameters["steps"] == 2 and res.parameters["dtype"] == "float32"
    assert "load" in res.timings and "denoise" in res.timings
    assert messages[-1] == "Done"


def test_bad_options_and_missing_weights(tmp_path, portrait_path, speech_path):
    with pytest.raises(InputError, match=r"quantize: unknown quantisation '4bit'\. Use 'none' or '8bit'"):
        DiffusionEngine(quantize="4bit")
    with pytest.raises(InputError, match=r"offload: unknown offload mode 'everything'\. Use 'none', 'model'"):
        DiffusionEngine(offload="everything")
    engine = DiffusionEngine(model=str(tmp_path / "absent"))
    with pytest.raises(MissingWeightsError, match="python -m hallo4.convert"):
        engine.generate(GenerationRequest(portrait=portrait_path, audio=speech_path, options=OPTS))
    if not torch.cuda.is_available():
        with pytest.raises(ResourceError, match="no CUDA GPU is available.*Use device='cpu'"):
            DiffusionEngine(device="cuda")


def test_8bit_runs_and_stays_close(tiny_pipeline_dir, portrait_path, speech_path):
    pytest.importorskip("bitsandbytes")
    full = DiffusionEngine(model=str(tiny_pipeline_dir))
    full.load()
    q = DiffusionEngine(model=str(tiny_pipeline_dir), quantize="8bit")
    q.load()
    import bitsandbytes as bnb

    assert isinstance(q.pipe.transformer.blocks[0].attn1.to_q, bnb.nn.Linear8bitLt)
    a = _run(full, portrait_path, speech_path).astype(np.float32)
    b = _run(q, portrait_path, speech_path).astype(np.float32)
    diff = np.abs(a - b).mean()
    print(f"8-bit vs fp32: mean abs frame difference {diff:.2f} / 255")
    assert diff < 6.0
    assert np.corrcoef(a.ravel(), b.ravel())[0, 1] > 0.95


def test_lora_adapter_load_and_unload(tiny_pipeline_dir, portrait_path, speech_path, tmp_path):
    from peft import LoraConfig, get_peft_model_state_dict
    from safetensors.torch import save_file

    engine = DiffusionEngine(model=str(tiny_pipeline_dir))
    engine.load()
    base = _run(engine, portrait_path, speech_path)
    # a round folder as the DPO trainer writes it (PEFT names, adapter_config.json)
    tr = engine.pipe.transformer
    config = LoraConfig(
        r=4, lora_alpha=4, target_modules=["to_q", "to_k", "to_v", "to_out.0"], init_lora_weights=False
    )
    tr.add_adapter(config, adapter_name="tmp")
    sd = get_peft_model_state_dict(tr, adapter_name="tmp")
    tr.delete_adapters("tmp")
    round_dir = tmp_path / "rounds" / "round-001"
    round_dir.mkdir(parents=True)
    save_file(
        {f"base_model.model.{k}": v.contiguous() * 20 for k, v in sd.items()},
        str(round_dir / "adapter_model.safetensors"),
    )
    (round_dir / "adapter_config.json").write_text(json.dumps(config.to_dict(), default=list))
    assert np.array_equal(_run(engine, portrait_path, speech_path), base)

    engine.load_adapter(round_dir)
    adapted = _run(engine, portrait_path, speech_path)
    assert np.abs(adapted.astype(int) - base).mean() > 0.5
    engine.unload_adapter()
    assert np.array_equal(_run(engine, portrait_path, speech_path), base)
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingWeightsError, match=r"No LoRA adapter in .*empty \(expected adapter_model"):
        engine.load_adapter(tmp_path / "empty")


def test_generate_cli_end_to_end(tiny_pipeline_dir, portrait_path, speech_path, tmp_path):
    out = tmp_path / "cli.mp4"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "hallo4.generate",
            "--engine",
            "hallo4",
            "--model",
            str(tiny_pipeline_dir),
            "--portrait",
            str(portrait_path),
            "--audio",
            str(speech_path),
            "--max-seconds",
            "1",
            "--size",
            "64",
            "--steps",
            "2",
            "--seed",
            "5",
            "-o",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["engine"] == "hallo4" and summary["seed"] == 5 and summary["num_frames"] == 25
    info = media.probe(out)
    assert info.num_frames == 25 and info.has_audio and info.num_frames / info.fps == pytest.approx(1.0)
