"""The settings of a Diffusion-DPO round (`trainer.dpo`), shared by its parts."""

from __future__ import annotations

from dataclasses import dataclass, field

ADAPTER = "dpo"
LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
CHECKPOINT = "checkpoint"


@dataclass
class DPOConfig:
    """A round's settings. `batch_size` is the global batch: pairs per optimizer step over all processes;
    each process splits its share into `grad_accum` micro-batches (batch_size must be a multiple of
    processes x grad_accum). `steps` counts optimizer steps."""

    steps: int = 200
    beta: float = 2500.0
    lr: float = 1e-4
    rank: int = 16
    lora_alpha: int | None = None  # None = rank
    batch_size: int = 1
    grad_accum: int = 1
    mixed_precision: str = "no"  # "no" | "bf16" | "fp16"
    gradient_checkpointing: bool = False
    seed: int = 0
    save_every: int = 50
    shift: float = 8.0  # timestep sampling follows the sampler's flow shift
    weight_by_margin: bool = False
    width: int = 832
    height: int = 480
    frames: int = 81
    target_modules: list[str] = field(default_factory=lambda: list(LORA_TARGETS))
    eval_pairs: int = 8  # pairs whose implicit accuracy is measured after the last step (0 = none)
