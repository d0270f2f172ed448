"""Benchmark the Hallo4 DiT: analytic weight memory of the real model, CPU step time of a small one.

    python bench/bench_model.py            # writes bench/results/model_memory.json

1. Weight memory of `full_config()` (built on the meta device, nothing allocated): bf16 vs int8
   (`hallo4.quantization.quantize_8bit`: quantised Linear weights 1 byte + float32 row scales,
   everything else bf16).
2. Seconds per denoising step (one forward with the CFG batch of 2) and peak RSS, on CPU, for a
   stated small config, in fp32 and after int8 quantisation; each variant in its own process so that
   the peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SMALL = dict(  # the small CPU config (real audio/text dims, narrow and shallow DiT)
    num_attention_heads=2,
    attention_head_dim=128,
    ffn_dim=1024,
    num_layers=4,
    vace_layers=[0, 2],
)
LATENT = dict(batch=2, channels=16, latent_frames=4, height=16, width=16, text_tokens=512)  # 16 x (1+4) x 16 x 16


def _gib(n: int) -> float:
    return round(n / 2**30, 3)


def memory_report() -> dict:
    from accelerate import init_empty_weights

    from hallo4.models import Hallo4Transformer3DModel, full_config
    from hallo4.quantization import estimate_weight_memory

    with init_empty_weights():
        model = Hallo4Transformer3DModel(**full_config())
    est = estimate_weight_memory(model)
    groups = {"base": 0, "vace": 0, "audio_cross_attn": 0, "skeleton_cross_attn": 0, "audio_proj": 0, "pose_proj": 0}
    for name, p in model.named_parameters():
        if name.startswith("vace_"):
            groups["vace"] += p.numel()
        elif ".audio_" in name:
            groups["audio_cross_attn"] += p.numel()
        elif ".skeleton_" in name:
            groups["skeleton_cross_attn"] += p.numel()
        elif name.startswith("audio_proj"):
            groups["audio_proj"] += p.numel()
        elif name.startswith("pose_proj"):
            groups["pose_proj"] += p.numel()
        else:
            groups["base"] += p.numel()
    return {
        "config": "full_config() = Wan2.1-VACE-1.3B + Hallo4 (30 blocks, 15 VACE blocks, dim 1536)",
        "parameters": est["params"],
        "parameters_by_part": groups,
        "linear_params_quantized": est["linear_params_quantized"],
        "bf16_bytes": est["bytes_full"],
        "bf16_GiB": _gib(est["bytes_full"]),
        "int8_bytes": est["bytes_8bit"],
        "int8_GiB": _gib(est["bytes_8bit"]),
        "int8_simple_bytes": est["bytes_8bit_simple"],
        "int8_rule": "quantised nn.Linear weights 1 B + 4 B scale per output row; biases, norms, "
        "embeddings, head, audio/pose projectors 2 B (bf16); int8_simple: all quantised-Linear "
        "params 1 B, rest 2 B",
        "fp32_GiB": _gib(est["params"] * 4),
    }


def run_one(variant: str, repeats: int) -> dict:
    import torch

    from hallo4.models import Hallo4Transformer3DModel, tiny_config
    from hallo4.quantization import quantize_8bit, weight_memory_bytes

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    torch.manual_seed(0)
    cfg = tiny_config(
        audio_layers=12,
        audio_dim=768,
        audio_hidden_dim=512,
        audio_tokens=32,
        text_dim=4096,
        freq_dim=256,
        rope_max_seq_len=1024,
        **SMALL,
    )
    model = Hallo4Transformer3DModel(**cfg).eval()
    if variant == "int8":
        quantize_8bit(model)
    b, c, f, h, w = (LATENT[k] for k in ("batch", "channels", "latent_frames", "height", "width"))
    frames = 4 * f - 3
    g = torch.Generator().manual_seed(0)
    inputs = dict(
        hidden_states=torch.randn(b, c, 1 + f, h, w, generator=g),
        timestep=torch.tensor([500.0] * b),
        encoder_hidden_states=torch.randn(b, LATENT["text_tokens"], cfg["text_dim"], generator=g),
        control_hidden_states=torch.randn(b, 96, 1 + f, h, w, generator=g),
        audio_features=torch.randn(b, frames, 5, 12, 768, generator=g),
        pose_latents=torch.randn(b, c, frames, h, w, generator=g),
    )
    times = []
    with torch.inference_mode():
        model(**inputs)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(**inputs)
            times.append(time.perf_counter() - t0)
    return {
        "variant": variant,
        "seconds_per_step": round(statistics.median(times), 4),
        "seconds_all": [round(t, 4) for t in times],
        "peak_rss_MiB": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "weight_MiB": round(weight_memory_bytes(model) / 2**20, 2),
        "parameters": sum(p.numel() for p in model.parameters()),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--one", choices=["fp32", "int8"], help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("-o", "--output", default=str(ROOT / "bench" / "results" / "model_memory.json"))
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one, args.repeats)))
        return 0

    import torch

    result = {"full_model_weight_memory": memory_report()}
    tokens = (1 + LATENT["latent_frames"]) * LATENT["height"] * LATENT["width"] // 4
    cpu = {
        "what": "one denoising step = one forward of the CFG batch (2), audio + skeleton + VACE context, "
        "after one warm-up; median of repeats",
        "config": {**SMALL, "inner_dim": 256, "text_dim": 4096, "audio": "(5, 12, 768) window, 32 tokens/frame"},
        "latent": f"{LATENT['channels']} x (1 + {LATENT['latent_frames']}) x {LATENT['height']} x {LATENT['width']}, "
        f"{tokens} video tokens, {LATENT['text_tokens']} text tokens, batch {LATENT['batch']}",
        "threads": int(os.environ.get("BENCH_THREADS", "2")),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs (shared)",
        "torch": torch.__version__,
        "runs": [],
    }
    for variant in ("fp32", "int8"):
        out = subprocess.run(
            [sys.executable, __file__, "--one", variant, "--repeats", str(args.repeats)],
            capture_output=True,
            text=True,
            check=True,
            cwd=ROOT,
        )
        cpu["runs"].append(json.loads(out.stdout.strip().splitlines()[-1]))
    result["cpu_step_small_config"] = cpu
    path = Path(args.output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
