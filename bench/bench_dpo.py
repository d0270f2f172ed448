"""Diffusion-DPO training speed and peak memory on the tiny random Hallo4 transformer (CPU, fp32).

python bench/bench_dpo.py [--steps 30] [--latent 4x8] [--frames 2]  ->  bench/results/dpo.json

Config: hallo4.models.tiny_config() (inner_dim 64, 2 layers, 1 VACE layer, 314k parameters), LoRA rank 8
on every attention linear (to_q/k/v/out.0), batch 1 pair, 1 + F latent frames of h x w, beta 2500.
One DPO step = policy forward on winner+loser (batch 2) with grad, reference forward (adapter off,
no grad), backward, AdamW step. Peak memory: process max RSS (CPU) or torch.cuda.max_memory_allocated.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import peak_rss_mib, write  # noqa: E402
from hallo4.metrics_log import read_metrics  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--latent", default="4x8", help="latent h x w")
    p.add_argument("--frames", type=int, default=2, help="latent frames after the reference")
    p.add_argument("--rank", type=int, default=8)
    args = p.parse_args(argv)
    h, w = (int(v) for v in args.latent.split("x"))
    n_video = 4 * args.frames - 3 if args.frames > 1 else 1

    from hallo4.models import Hallo4Transformer3DModel, tiny_config
    from hallo4.testing import perturb_zero_init
    from trainer.dpo import DPOConfig, train

    torch.manual_seed(0)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = perturb_zero_init(Hallo4Transformer3DModel(**tiny_config()))
    tmp = Path(tempfile.mkdtemp(prefix="bench-dpo-"))
    g = torch.Generator().manual_seed(0)
    files = []
    for i in range(4):
        base = torch.randn(16, 1 + args.frames, h, w, generator=g)
        t = {
            "x0_w": base + 0.5,
            "x0_l": base - 0.5,
            "context": torch.randn(96, 1 + args.frames, h, w, generator=g) * 0.1,
            "audio": torch.randn(n_video, 5, 2, 16, generator=g),
            "pose": torch.randn(16, n_video, h, w, generator=g) * 0.1,
            "prompt": torch.randn(16, 32, generator=g),
        }
        files.append(tmp / f"p{i}.safetensors")
        save_file(t, str(files[-1]))
    cfg = DPOConfig(steps=args.steps, rank=args.rank, save_every=10**9, lr=1e-4)
    t0 = time.perf_counter()
    round_dir = train(model, files, [1.0] * len(files), tmp / "round-001", cfg)
    total = time.perf_counter() - t0
    rows = read_metrics(round_dir / "metrics.jsonl")
    warm = rows[-1]["seconds"] - rows[min(4, len(rows) - 1)]["seconds"]
    warm_steps = len(rows) - 1 - min(4, len(rows) - 1)
    lora_params = sum(p.numel() for n, p in model.named_parameters() if "lora_" in n)
    write(
        "dpo",
        {
            "config": f"tiny Hallo4 transformer ({sum(p.numel() for p in model.parameters()) - lora_params} params), LoRA r{args.rank} "
            f"on attention linears ({lora_params} params), 1 pair/step, latents 16x{1 + args.frames}x{h}x{w}, "
            f"{n_video} audio/skeleton frames, fp32, CPU threads {torch.get_num_threads()}",
            "steps": args.steps,
            "total_s": round(total, 2),
            "steps_per_s": round(warm_steps / warm, 2) if warm > 0 else None,
            "steps_per_s_incl_setup": round(args.steps / total, 2),
            "peak_rss_MiB": round(peak_rss_mib(), 1),
            "cuda_peak_MiB": round(torch.cuda.max_memory_allocated() / 2**20, 1)
            if torch.cuda.is_available()
            else None,
            "final_loss": rows[-1]["loss"],
            "final_implicit_acc": rows[-1]["implicit_acc"],
            "note": "2 shared CPU cores under load from other jobs; numbers are indicative.",
        },
    )


if __name__ == "__main__":
    main()
