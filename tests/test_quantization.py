"""hallo4.quantization: bitsandbytes int8 Linear layers on CPU, memory accounting."""

from __future__ import annotations

import pytest
import torch
import torch.nn as nn
from accelerate import init_empty_weights

from hallo4.models import Hallo4Transformer3DModel, full_config, tiny_config
from hallo4.quantization import DEFAULT_SKIP, estimate_weight_memory, quantize_8bit, weight_memory_bytes

from .test_model import _inputs, _perturb_zero_init

bnb = pytest.importorskip("bitsandbytes")


def _model(dtype=torch.float32):
    torch.manual_seed(0)
    model = _perturb_zero_init(Hallo4Transformer3DModel(**tiny_config())).eval()
    return model if dtype == torch.float32 else model.to(dtype)


def test_quantized_tiny_model_close_to_full_precision():
    model = _model()
    base, cond = _inputs()
    with torch.no_grad():
        ref = model(**base, **cond).sample
    before = weight_memory_bytes(model)
    quantize_8bit(model)
    after = weight_memory_bytes(model)

    assert isinstance(model.blocks[0].attn1.to_q, bnb.nn.Linear8bitLt)
    assert isinstance(model.blocks[1].audio_attn.to_out[0], bnb.nn.Linear8bitLt)
    assert isinstance(model.blocks[1].ffn.net[2], bnb.nn.Linear8bitLt)
    assert isinstance(model.vace_blocks[0].proj_out, bnb.nn.Linear8bitLt)
    assert model.blocks[0].attn1.to_q.weight.dtype == torch.int8
    for kept in (
        model.proj_out,
        model.audio_proj.proj1,
        model.condition_embedder.time_proj,
        model.condition_embedder.text_embedder.linear_1,
    ):
        assert type(kept) is nn.Linear and kept.weight.dtype == torch.float32
    assert after < 0.6 * before, (before, after)

    with torch.no_grad():
        out = model(**base, **cond).sample
    # LLM.int8 (per-row absmax, outliers > 6 in fp): tolerance 3% relative L2, 5% of the max abs value
    rel = ((out - ref).norm() / ref.norm()).item()
    print(f"int8 vs fp32: relative L2 {rel:.4f}, max abs {(out - ref).abs().max().item():.4f}")
    assert rel < 0.03
    assert (out - ref).abs().max() < 0.05 * ref.abs().max()


def test_analytic_estimate_matches_measured_tiny():
    model = _model(torch.bfloat16)
    est = estimate_weight_memory(model, dtype=torch.bfloat16)
    buffers = sum(b.numel() * b.element_size() for b in model.buffers())
    assert est["bytes_full"] + buffers == weight_memory_bytes(model)
    quantize_8bit(model)
    assert est["bytes_8bit"] + buffers == weight_memory_bytes(model)
    base, cond = _inputs()
    with torch.no_grad():
        out = model(**{k: v.to(torch.bfloat16) if v.is_floating_point() else v for k, v in {**base, **cond}.items()})
    assert torch.isfinite(out.sample.float()).all()


def test_full_config_memory_estimate():
    with init_empty_weights():
        model = Hallo4Transformer3DModel(**full_config())
    est = estimate_weight_memory(model)
    print(est)
    assert est["params"] == 2_770_040_256
    assert est["bytes_full"] == 2 * est["params"]  # bf16
    assert 1.35 < est["bytes_full"] / est["bytes_8bit"] < 2.0
    assert est["bytes_8bit_simple"] < est["bytes_8bit"] + 10_000_000


def test_meta_model_cannot_be_quantized():
    with init_empty_weights():
        model = Hallo4Transformer3DModel(**tiny_config())
    with pytest.raises(ValueError, match="meta"):
        quantize_8bit(model)


def test_skip_matches_prefixes_only():
    assert "proj_out" in DEFAULT_SKIP
    model = quantize_8bit(_model())
    # vace_blocks.*.proj_out is not the head "proj_out": it is quantised
    assert isinstance(model.vace_blocks[0].proj_out, bnb.nn.Linear8bitLt)
    assert type(model.proj_out) is nn.Linear
