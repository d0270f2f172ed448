"""The DPO training loop on cached pairs (see `trainer.dpo` for the round around it and the data-parallel rules).

Optimizer step k draws its whole global batch from (seed, k) (`dpo_step.sample_step`); process r trains on the
r-th contiguous share, in `grad_accum` micro-batches. Only the main process writes (metrics, checkpoints, the
adapter); every process takes part in the gathers.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

import torch

from hallo4.errors import InputError
from hallo4.progress import Progress, ProgressCallback, as_progress

from .distributed import (
    check_layout,
    configure_deepspeed,
    gather_object,
    make_accelerator,
    restore_checkpoint,
    save_checkpoint,
)
from .dpo_config import CHECKPOINT, DPOConfig
from .dpo_step import dpo_step_losses, has_pose, implicit_accuracy, latent_shape, load_batch, sample_step
from .lora import adapter_checksum, add_lora, save_adapter
from .loss import dpo_loss_from_errors


def train(
    transformer,
    pair_files: list[Path],
    weights: list[float],
    round_dir: Path,
    cfg: DPOConfig,
    progress: Progress | ProgressCallback | None = None,
    resume: bool = False,
    accelerator=None,
    eval_files: list[Path] | None = None,
) -> Path:
    """Run (or resume) the loop on cached pairs; the main process writes checkpoints, metrics and the adapter.

    Call it on every process (under `accelerate launch`); `accelerator` defaults to `make_accelerator(cfg)`.
    `eval_files`: held-out pairs whose implicit accuracy the last metrics row reports (`eval_implicit_acc`);
    default the first `cfg.eval_pairs` training pairs."""
    # Longer than 60 lines: setup, resume and the loop with its checkpoints in the order they run (the DPO step
    # itself lives in dpo_step).
    prog = as_progress(progress)
    if not pair_files:
        raise InputError(
            "training data",
            "there are no usable pairs (ties, both-bad and skips carry no signal)",
            "Collect decisive A/B votes in the Arena first.",
        )
    pair_files = [Path(p) for p in pair_files]
    if eval_files is None:
        eval_files = pair_files[: cfg.eval_pairs]
    if accelerator is None:
        # DDP must be told when a branch (the skeleton cross-attention) gets no input and so no gradient.
        accelerator = make_accelerator(cfg, find_unused_parameters=not has_pose(pair_files[0]))
    micro = check_layout(cfg, accelerator.num_processes)
    deepspeed = configure_deepspeed(accelerator, cfg, micro)
    if accelerator.is_main_process:
        round_dir.mkdir(parents=True, exist_ok=True)
    if not any(".lora_A." in n for n, _ in transformer.named_parameters()):
        add_lora(transformer, cfg)
    if cfg.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    model, optimizer = accelerator.prepare(transformer, optimizer)
    base = accelerator.unwrap_model(model)
    metrics_path = round_dir / "metrics.jsonl"
    start = 0
    if resume and (round_dir / CHECKPOINT / "state.json").exists():
        start = restore_checkpoint(accelerator, base, optimizer, round_dir, deepspeed)
    elif accelerator.is_main_process and metrics_path.exists():
        metrics_path.unlink()
    accelerator.wait_for_everyone()
    model.train()
    loop = _Loop(accelerator, model, base, optimizer, pair_files, torch.tensor(weights, dtype=torch.float32), cfg)
    t0 = time.perf_counter()
    for step in range(start + 1, cfg.steps + 1):
        prog((step - 1) / cfg.steps, f"DPO step {step}/{cfg.steps}")
        row = loop.step(step, micro)
        if accelerator.is_main_process:
            row["seconds"] = round(time.perf_counter() - t0, 3)
            if step == cfg.steps and eval_files:
                row["eval_implicit_acc"] = implicit_accuracy(base, eval_files, cfg)
                row["eval_pairs"] = len(eval_files)
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_checkpoint(accelerator, base, None if deepspeed else optimizer, cfg, round_dir / CHECKPOINT, step)
    _finish(accelerator, base, cfg, round_dir)
    prog(1.0, f"Round finished: {round_dir.name}")
    return round_dir


class _Loop:
    """One optimizer step after another over the global schedule; `step` returns the step's metrics row."""

    def __init__(self, accelerator, model, base, optimizer, pair_files: list[Path], pair_weights, cfg: DPOConfig):
        self.accelerator, self.model, self.base, self.optimizer = accelerator, model, base, optimizer
        self.pair_files, self.pair_weights, self.cfg = pair_files, pair_weights, cfg
        self.shape = latent_shape(pair_files[0])
        # Inputs follow the weights: float32 under DDP (autocast does the rest), bf16/fp16 under DeepSpeed.
        self.dtype = next(base.parameters()).dtype

    def step(self, step: int, micro: int) -> dict:
        acc, cfg = self.accelerator, self.cfg
        idx, sigma, noise = sample_step(step, cfg, len(self.pair_files), self.shape)
        w_global = self.pair_weights[idx]
        first = acc.process_index * micro * cfg.grad_accum
        seen, losses, inside, margin = [], [], [], []
        for m in range(cfg.grad_accum):
            part = slice(first + m * micro, first + (m + 1) * micro)
            batch = load_batch(self.pair_files, idx[part])
            with acc.accumulate(self.model):
                with acc.autocast():
                    errors = dpo_step_losses(
                        self.model, batch, sigma[part], noise[part], cfg, acc.device, self.dtype, base=self.base
                    )
                out = dpo_loss_from_errors(
                    *errors,
                    cfg.beta,
                    w_global[part].to(acc.device) if cfg.weight_by_margin else None,
                    w_global.mean() if cfg.weight_by_margin else None,
                )
                acc.backward(out.loss)
                self.optimizer.step()
                self.optimizer.zero_grad()
            seen.append(idx[part])
            losses.append(out.losses)
            inside.append(out.inside)
            margin.append(out.inside / cfg.beta)
        # Every rank takes part in the gathers; only the main process writes.
        seen_all = acc.gather(torch.cat(seen).to(acc.device)).cpu().reshape(acc.num_processes, -1)
        loss_all = acc.gather(torch.cat(losses).float()).cpu()
        inside_all = acc.gather(torch.cat(inside).float()).cpu()
        margin_all = acc.gather(torch.cat(margin).float()).cpu()
        return {
            "step": step,
            "loss": float(loss_all.mean()),
            "implicit_acc": float((inside_all > 0).float().mean()),
            "reward_margin": float(margin_all.mean()),
            "lr": cfg.lr,
            "pairs_by_rank": seen_all.tolist(),
        }


def _finish(accelerator, base, cfg: DPOConfig, round_dir: Path) -> None:
    """The adapter, the round's settings and every rank's adapter checksum (equal iff the ranks agree)."""
    checksums = gather_object(accelerator, adapter_checksum(base))
    if accelerator.is_main_process:
        save_adapter(base, cfg, round_dir)
        (round_dir / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
        ranks = {"num_processes": accelerator.num_processes, "adapter_sha256": checksums}
        (round_dir / "ranks.json").write_text(json.dumps(ranks, indent=2))
    accelerator.wait_for_everyone()
