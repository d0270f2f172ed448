"""Full-size smoke on CPU: the real-size Hallo4 DiT (2.77 B parameters, random bf16 weights) runs one real
denoising step (CFG batch 2) of the real pipeline code at a tiny canvas, with tiny VAE / umT5 / wav2vec2
whose output sizes are the real ones.

    python bench/bench_full_smoke.py            # writes bench/results/full_smoke.json

What it shows: the full configuration builds, loads into bf16 and runs end to end on a CPU machine, and
what that costs (wall time, peak RSS). Not a speed target: a 64x64, 5-frame canvas is 48 video tokens.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import peak_rss_mib, write  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1)
    parser.add_argument("--name", default="full_smoke")
    args = parser.parse_args()

    import numpy as np
    import torch

    from hallo4.testing import full_size_smoke

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    with tempfile.TemporaryDirectory() as tmp:
        os.environ.setdefault("HALLO4_DATA_DIR", tmp)
        r = full_size_smoke(
            ROOT / "examples" / "portraits" / "astronaut.png",
            ROOT / "examples" / "audio" / "hello.wav",
            steps=args.steps,
            size=args.size,
            frames=args.frames,
            cache_dir=Path(tmp) / "prompts",
        )
    frames = r.pop("frames")
    write(
        args.name,
        {
            "what": f"real-size DiT, random bf16 weights, {args.steps} denoising step(s) with CFG (batch 2), "
            f"{args.size}x{args.size} canvas, {args.frames} frames, tiny VAE/umT5/wav2vec2 with real output sizes",
            "threads": torch.get_num_threads(),
            "parameters": r["parameters"],
            "dtypes": r["dtypes"],
            "build_s": round(r["build_s"], 2),
            "generate_s": round(r["generate_s"], 2),
            "stage_s": {k: round(v, 3) for k, v in r["timings"].items()},
            "output_shape": list(frames.shape),
            "output_finite_nonconstant": bool(np.ptp(frames) > 0),
            "peak_rss_MiB": round(peak_rss_mib(), 1),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
