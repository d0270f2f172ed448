"""How far each precision mode drifts from the release's numerics, on the tiny golden fixture.

    python -m bench.bench_precision        # -> bench/results/precision.json

The tiny transformer of tests/fixtures/hallo4-official (recipe weights, 36.9 M parameters, real audio and
text sizes) runs the fixture's inputs in each mode; the reference is the release's own fp32 output
(`out_cond`, `out_uncond_audio_zero`) and the CFG combination uncond + 6 (cond - uncond) that the sampler
uses; bf16 and 8bit are also compared with the release mode's output. Modes: fp32 (exact), release
(fp32 weights under bf16 autocast, time path and head fp32 -- the authors' inference numerics), bf16 (bf16 weights), 8bit (bitsandbytes int8 Linear layers, the rest bf16).
CPU kernels here; a GPU's bf16 kernels round differently but at the same scale.
"""

from __future__ import annotations

import contextlib
import json
import time
from pathlib import Path

import torch
from safetensors.torch import load_file

from bench.common import write
from hallo4.convert import convert_state_dict, release_config
from hallo4.models import Hallo4Transformer3DModel
from hallo4.testing import recipe_weights

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "hallo4-official" / "transformer-tiny"
GUIDANCE = 6.0


def golden_model() -> Hallo4Transformer3DModel:
    model = Hallo4Transformer3DModel(**release_config(json.loads((FIXTURE / "config.json").read_text()))).eval()
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    official = recipe_weights(json.loads((FIXTURE / "keys.json").read_text()), 1000)
    model.load_state_dict(convert_state_dict(official, expected, notes=[]), strict=True)
    return model


def run(model, dtype: torch.dtype, autocast: bool) -> tuple[torch.Tensor, torch.Tensor]:
    inp = load_file(str(FIXTURE / "inputs.safetensors"))
    audio = inp["audio_emb_int8"].to(torch.float32) * 0.03125
    outs = []
    for a in (audio, torch.zeros_like(audio)):
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if autocast else contextlib.nullcontext()
        with torch.no_grad(), ctx:
            out = model(
                hidden_states=inp["x"].to(dtype),
                timestep=inp["t"],
                encoder_hidden_states=inp["context"].to(dtype),
                control_hidden_states=inp["vace_context"].to(dtype),
                pose_latents=inp["skeleton_latents"].to(dtype),
                audio_features=a.to(dtype),
                control_scale=float(inp["vace_context_scale"]),
                return_dict=False,
            )[0]
        outs.append(out.float())
    return outs[0], outs[1]


def main() -> None:
    ref = load_file(str(FIXTURE / "outputs.safetensors"))
    ref_cond, ref_uncond = ref["out_cond"], ref["out_uncond_audio_zero"]
    ref_cfg = ref_uncond + GUIDANCE * (ref_cond - ref_uncond)
    results, cfgs = {}, {}
    for mode in ("fp32", "release", "bf16", "8bit"):
        model = golden_model()
        if mode in ("bf16", "8bit"):
            model = model.to(torch.bfloat16)
        if mode == "8bit":
            from hallo4.quantization import quantize_8bit

            quantize_8bit(model, device="cpu")
        dtype = torch.bfloat16 if mode in ("bf16", "8bit") else torch.float32
        t = time.perf_counter()
        cond, uncond = run(model, dtype, autocast=mode == "release")
        seconds = time.perf_counter() - t
        cfg = uncond + GUIDANCE * (cond - uncond)
        cfgs[mode] = cfg
        results[mode] = {
            "max_abs_cond": (cond - ref_cond).abs().max().item(),
            "mean_abs_cond": (cond - ref_cond).abs().mean().item(),
            "max_abs_uncond": (uncond - ref_uncond).abs().max().item(),
            "max_abs_cfg": (cfg - ref_cfg).abs().max().item(),
            "mean_abs_cfg": (cfg - ref_cfg).abs().mean().item(),
            "relative_cfg": ((cfg - ref_cfg).norm() / ref_cfg.norm()).item(),
            "seconds_two_forwards_cpu": seconds,
        }
    for mode in ("bf16", "8bit"):  # drift from the release's own (bf16 autocast) numerics
        diff = cfgs[mode] - cfgs["release"]
        results[mode]["max_abs_cfg_vs_release_mode"] = diff.abs().max().item()
        results[mode]["relative_cfg_vs_release_mode"] = (diff.norm() / cfgs["release"].norm()).item()
    write(
        "precision",
        {
            "fixture": "tests/fixtures/hallo4-official/transformer-tiny",
            "reference": "release fp32 outputs",
            "max_abs_out_cond": ref_cond.abs().max().item(),
            "max_abs_cfg": ref_cfg.abs().max().item(),
            "guidance": GUIDANCE,
            "modes": results,
        },
    )


if __name__ == "__main__":
    main()
