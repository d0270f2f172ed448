"""Plain helpers several test files import (fixtures live in conftest.py)."""

from __future__ import annotations

import subprocess

from trainer.launch import launch


def launch_ok(args: list[str], processes: int, timeout: float = 600) -> subprocess.CompletedProcess:
    """`trainer.launch.launch` (one process, or several through accelerate), which must succeed."""
    res = launch(args, processes, timeout=timeout)
    assert res.returncode == 0, res.stderr[-4000:]
    return res


# The tiny pipeline's quick run: a 32x64 canvas, one 13-frame segment (0.5 s of audio), 2 denoising steps.
TINY_RUN = dict(height=32, width=64, frames_per_segment=13, num_inference_steps=2)
