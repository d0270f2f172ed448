"""Start a trainer command in 1 or N CPU processes, as a user would with `accelerate launch` (tests, benchmarks).

N > 1 runs `accelerate launch --multi_gpu --num_processes N` (torchrun). On a machine without CUDA the round's
Accelerator asks for the CPU, so the ranks talk over gloo. (In accelerate 1.15 `--cpu --num_processes N` alone
starts a single process unless mpirun is configured; a round's ranks.json shows how many ran.)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def cpu_env() -> dict[str, str]:
    """Offline, one thread per process, CPU processes even on a GPU machine (two ranks on one GPU would make
    NCCL refuse), the repository importable."""
    return dict(
        os.environ,
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        OMP_NUM_THREADS="1",
        PYTHONPATH=str(ROOT),
        CUDA_VISIBLE_DEVICES="",
    )


def free_port() -> int:
    """A free local port for the rendezvous: other jobs may hold torchrun's default 29500."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_command(args: list[str], processes: int) -> list[str]:
    """The command line: `python ARGS` for one process, `accelerate launch` for several."""
    if processes == 1:
        return [sys.executable, *args]
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(processes),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        *args,
    ]


def launch(args: list[str], processes: int, timeout: float | None = None) -> subprocess.CompletedProcess:
    """Run `args` (e.g. ["-m", "trainer.dpo", ...]) in the repository root with `cpu_env()`; output captured."""
    return subprocess.run(
        launch_command(args, processes), cwd=ROOT, env=cpu_env(), capture_output=True, text=True, timeout=timeout
    )
