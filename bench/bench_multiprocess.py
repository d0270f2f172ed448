"""1 vs 2 processes: DPO steps/s on the tiny model and lite batch throughput, through `accelerate launch`.

python bench/bench_multiprocess.py [--steps 20] [--rows 6] [--size 256] [--seconds 2]
    -> bench/results/multiprocess.json

DPO: the tiny random Hallo4 transformer (hallo4.models.tiny_config), LoRA r8, global batch 2 pairs per step
(1 process: both pairs; 2 processes: one each, gradients all-reduced over gloo), synthetic cached pairs with
latents 16x3x4x8, fp32, OMP_NUM_THREADS=1 per process. steps/s is measured from the metrics' clock after 3
warm-up steps, so process start and model set-up are excluded.
Batch: `python -m hallo4.batch` on `rows` lite rows (the two example portraits, hello.wav), wall time of the whole
command (start-up included) and the rows' own seconds from summary.csv.
On a shared 2-core machine the two processes compete with other jobs: the numbers are indicative only.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write  # noqa: E402
from hallo4.metrics_log import read_metrics  # noqa: E402
from trainer.launch import launch  # noqa: E402

WARMUP = 3


def _launch(args: list[str], processes: int) -> float:
    """Wall seconds of `trainer.launch.launch` (start-up included)."""
    t0 = time.perf_counter()
    res = launch(args, processes)
    if res.returncode not in (0, 1):
        raise RuntimeError(res.stderr[-3000:])
    return time.perf_counter() - t0


def dpo_worker(pairs: Path, out: Path, steps: int) -> None:
    """Runs inside each process: the same train() the CLI uses, on cached synthetic pairs."""
    import torch

    from hallo4.models import Hallo4Transformer3DModel, tiny_config
    from hallo4.testing import perturb_zero_init
    from trainer.dpo import DPOConfig, train

    torch.manual_seed(0)
    model = perturb_zero_init(Hallo4Transformer3DModel(**tiny_config()))
    files = sorted(pairs.glob("*.safetensors"))
    cfg = DPOConfig(steps=steps, rank=8, batch_size=2, save_every=10**9, lr=1e-4)
    train(model, files, [1.0] * len(files), out, cfg)


def _pairs(directory: Path, n: int = 8) -> None:
    import torch
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(0)
    directory.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        base = torch.randn(16, 3, 4, 8, generator=g)
        save_file(
            {
                "x0_w": base + 0.5,
                "x0_l": base - 0.5,
                "context": torch.randn(96, 3, 4, 8, generator=g) * 0.1,
                "audio": torch.randn(5, 5, 2, 16, generator=g),
                "pose": torch.randn(16, 5, 4, 8, generator=g) * 0.1,
                "prompt": torch.randn(16, 32, generator=g),
            },
            str(directory / f"p{i}.safetensors"),
        )


def _bench_dpo(tmp: Path, steps: int) -> dict:
    """1 vs 2 processes of the tiny DPO round: steps/s after warm-up, and whether the ranks agree."""
    dpo = {}
    for n in (1, 2):
        out = tmp / f"dpo{n}"
        worker = ["bench/bench_multiprocess.py", "--dpo-worker", str(tmp / "pairs"), str(out), str(steps)]
        wall = _launch(worker, n)
        rows = read_metrics(out / "metrics.jsonl")
        warm = rows[-1]["seconds"] - rows[WARMUP - 1]["seconds"]
        checksums = json.loads((out / "ranks.json").read_text())["adapter_sha256"]
        dpo[f"{n}_process"] = {
            "steps_per_s": round((len(rows) - WARMUP) / warm, 2),
            "pairs_per_s": round(2 * (len(rows) - WARMUP) / warm, 2),
            "wall_s_incl_startup": round(wall, 1),
            "ranks": len(checksums),
            "ranks_identical": len(set(checksums)) == 1,
        }
    return dpo


def _bench_batch(tmp: Path, rows: int, size: int, seconds: float) -> dict:
    """1 vs 2 processes of a lite batch: clips per minute."""
    examples = ROOT / "examples"
    jobs = tmp / "jobs.csv"
    with open(jobs, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "portrait", "audio", "seed", "size", "max_seconds"])
        portraits = sorted((examples / "portraits").iterdir())
        for i in range(rows):
            w.writerow(
                [
                    f"clip{i}",
                    portraits[i % len(portraits)],
                    examples / "audio" / "hello.wav",
                    i,
                    size,
                    seconds,
                ]
            )
    batch = {}
    for n in (1, 2):
        out = tmp / f"batch{n}"
        wall = _launch(["-m", "hallo4.batch", str(jobs), "-o", str(out)], n)
        with open(out / "summary.csv", newline="") as f:
            summary = list(csv.DictReader(f))
        assert all(r["status"] == "done" for r in summary), summary
        batch[f"{n}_process"] = {
            "wall_s": round(wall, 1),
            "clips_per_min": round(60 * len(summary) / wall, 2),
            "mean_row_s": round(sum(float(r["seconds"]) for r in summary) / len(summary), 2),
        }
    return batch


def main(argv=None) -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--rows", type=int, default=6)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--dpo-worker", nargs=3, metavar=("PAIRS", "OUT", "STEPS"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.dpo_worker:
        dpo_worker(Path(args.dpo_worker[0]), Path(args.dpo_worker[1]), int(args.dpo_worker[2]))
        return
    tmp = Path(tempfile.mkdtemp(prefix="bench-mp-"))
    _pairs(tmp / "pairs")
    dpo = _bench_dpo(tmp, args.steps)
    batch = _bench_batch(tmp, args.rows, args.size, args.seconds)
    write(
        "multiprocess",
        {
            "dpo": {
                "config": "tiny Hallo4 transformer, LoRA r8, global batch 2 pairs/step, latents 16x3x4x8, fp32, "
                f"{args.steps} steps ({WARMUP} warm-up), OMP_NUM_THREADS=1 per process, gloo",
                **dpo,
            },
            "batch": {
                "config": f"{args.rows} lite rows, {args.size} px, {args.seconds} s of audio each, "
                "OMP_NUM_THREADS=1 per process",
                **batch,
            },
            "note": "2 shared CPU cores under load from other jobs; 2 processes on 2 cores also compete with the launcher "
            "and each other; numbers are indicative.",
        },
    )


if __name__ == "__main__":
    main()
