"""A DPO round: LoRA on the Hallo4 transformer, trained on A/B votes with Diffusion-DPO.

    python -m trainer.dpo --store data/store --model data/models/hallo4 --out data/rounds
    accelerate launch --multi_gpu --num_processes 4 -m trainer.dpo --store ... --batch-size 8   # 4 GPUs (DDP)
    accelerate launch --config_file trainer/configs/zero2.yaml -m trainer.dpo ...     # DeepSpeed ZeRO-2

The reference model is the same transformer with its LoRA adapter disabled (no second copy in
memory). Winner and loser share the timestep and the noise.

Data parallelism, correct by construction:
* The schedule is global. Optimizer step k draws its whole batch (`batch_size` pairs, their timesteps
  and noise) from a generator seeded by (seed, k); process r of n takes the r-th contiguous share of it,
  split into `grad_accum` micro-batches. So a round's result depends on (seed, batch_size) only, not on
  how many processes or micro-batches share the work (beyond float noise), and an interrupted round
  resumed from its checkpoint, with any process count, ends with the weights of an uninterrupted one.
* The policy forward runs through the prepared (DDP / DeepSpeed) model, so gradients are averaged over
  the processes before every optimizer step and all ranks keep identical adapters. Margin weights are
  normalised by the mean over the global batch, so the average of the ranks' losses is the global loss.
* Only the main process writes: metrics (gathered over the ranks, with the pair indices each rank
  trained on), checkpoints, the adapter, ranks.json (each rank's adapter checksum) and the store.
accelerate also handles mixed precision and gradient accumulation; gradient checkpointing is the
model's own (non-reentrant, so it works under DDP).

Output: rounds/round-NNN/ with adapter_model.safetensors + adapter_config.json (PEFT), train_config.json,
metrics.jsonl (step, loss, implicit_acc, reward_margin, lr, seconds, pairs_by_rank; the last row also
eval_implicit_acc over `eval_pairs` pairs with fixed draws), ranks.json and consumed_votes.json.

Parts: `dpo_config` (DPOConfig), `lora` (the adapter), `dpo_step` (a step's batch and losses, implicit
accuracy), `distributed` (accelerate, DeepSpeed, checkpoints), `dpo_train` (the loop), this module (the round
from votes, and the CLI).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import torch

from hallo4.cli import run
from hallo4.errors import InputError
from hallo4.progress import Progress, ProgressCallback, as_progress

from .distributed import make_accelerator
from .dpo_config import ADAPTER, CHECKPOINT, LORA_TARGETS, DPOConfig
from .dpo_step import dpo_step_losses, has_pose, implicit_accuracy
from .dpo_train import train
from .lora import adapter_checksum, add_lora, lora_state, save_adapter

__all__ = [
    "ADAPTER",
    "CHECKPOINT",
    "LORA_TARGETS",
    "DPOConfig",
    "add_lora",
    "adapter_checksum",
    "dpo_step_losses",
    "implicit_accuracy",
    "lora_state",
    "main",
    "make_accelerator",
    "next_round_dir",
    "run_round",
    "save_adapter",
    "train",
]


def next_round_dir(out: str | Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nums = [int(p.name.split("-")[1]) for p in out.glob("round-*") if p.name.split("-")[1].isdigit()]
    return out / f"round-{(max(nums) + 1 if nums else 1):03d}"


def run_round(
    store_dir: str | Path | None,
    model: str | Path,
    out: str | Path,
    cfg: DPOConfig,
    *,
    dataset: str | Path | None = None,
    resume: str | Path | None = None,
    progress: Progress | ProgressCallback | None = None,
) -> Path:
    """From votes to a finished round folder. Under `accelerate launch` call it on every process: the pairs
    are encoded once, shared out over the processes, and only the main process writes the round and the store."""
    # Longer than 60 lines: a round's stages (records, round folder, encoding, training, consumed votes) with the
    # multi-process hand-offs between them, in the order they run.
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    from hallo4.pipelines import Hallo4Pipeline
    from hallo4.preferences import PreferenceStore

    from .data import cache_pairs, pairs_from_dataset, pairs_from_store

    prog = as_progress(progress)
    state = PartialState(cpu=not torch.cuda.is_available())
    # The store is opened by the main process first (it may migrate the schema), then by the others.
    with state.main_process_first():
        store = PreferenceStore(store_dir) if store_dir else None
        records = pairs_from_dataset(dataset) if dataset else pairs_from_store(store)
    if not records:
        raise InputError(
            "training data",
            "there are no usable pairs (ties, both-bad and skips carry no signal)",
            "Collect decisive A/B votes in the Arena first.",
        )
    # One round folder for all processes: the main process picks it.
    chosen = [str(resume) if resume else (str(next_round_dir(out)) if state.is_main_process else None)]
    if state.num_processes > 1:
        broadcast_object_list(chosen)
    round_dir = Path(chosen[0])
    pipe = Hallo4Pipeline.from_pretrained(str(model), load_text_encoder=True)
    cache_kw = dict(width=cfg.width, height=cfg.height, frames=cfg.frames, model_id=str(model))
    # Each process encodes its share of the missing pairs; then every process lists all the (now cached) files.
    cache_pairs(
        pipe,
        records[state.process_index :: state.num_processes],
        Path(out) / "cache",
        **cache_kw,
        progress=prog.sub(0.0, 0.15),
    )
    state.wait_for_everyone()
    files = cache_pairs(pipe, records, Path(out) / "cache", **cache_kw)
    accelerator = make_accelerator(cfg, find_unused_parameters=not has_pose(files[0]))
    train(
        pipe.transformer,
        files,
        [r.weight for r in records],
        round_dir,
        cfg,
        prog.sub(0.15, 1.0),
        resume=bool(resume),
        accelerator=accelerator,
    )
    if accelerator.is_main_process:
        votes = sorted({v for r in records for v in r.vote_ids})
        (round_dir / "consumed_votes.json").write_text(
            json.dumps({"votes": votes, "pairs": len(records), "model": str(model)})
        )
        if store is not None:
            store.mark_consumed(votes, round_dir.name)
    accelerator.wait_for_everyone()
    return round_dir


# DPOConfig fields that the CLI exposes as typed numeric options (one list for the parser and the config).
_NUMERIC_OPTIONS = (
    "steps",
    "beta",
    "lr",
    "rank",
    "batch_size",
    "grad_accum",
    "save_every",
    "seed",
    "width",
    "height",
    "frames",
    "eval_pairs",
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.dpo", description="A Diffusion-DPO round from A/B votes.")
    p.add_argument("--store", help="preference store folder")
    p.add_argument("--dataset", help="or an exported dataset folder")
    p.add_argument("--model", required=True, help="Hallo4 pipeline folder (or repo id)")
    p.add_argument("--out", required=True, help="rounds folder (round-NNN is created inside)")
    p.add_argument("--resume", help="round folder to resume from its last checkpoint")
    d = DPOConfig()
    helps = {
        "steps": "optimizer steps",
        "batch_size": "pairs per optimizer step over all processes (a multiple of processes x grad-accum)",
        "grad_accum": "micro-batches each process splits its share into",
        "eval_pairs": "pairs whose implicit accuracy the last metrics row reports (0 = none)",
    }
    for name in _NUMERIC_OPTIONS:
        p.add_argument(
            "--" + name.replace("_", "-"), type=type(getattr(d, name)), default=getattr(d, name), help=helps.get(name)
        )
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--weight-by-margin", action="store_true")
    args = p.parse_args(argv)
    if not args.store and not args.dataset:
        p.error("give --store or --dataset")
    cfg = DPOConfig(
        **{
            k: getattr(args, k)
            for k in (*_NUMERIC_OPTIONS, "mixed_precision", "gradient_checkpointing", "weight_by_margin")
        }
    )

    main_process = os.environ.get("RANK", "0") == "0"  # set by `accelerate launch` / torchrun

    def cb(fraction: float, message: str) -> None:
        if main_process:
            print(f"\r[{fraction * 100:5.1f}%] {message:<50}", end="", file=sys.stderr, flush=True)

    def work() -> int:
        out = run_round(args.store, args.model, args.out, cfg, dataset=args.dataset, resume=args.resume, progress=cb)
        if main_process:
            print(f"\n{out}")
        return 0

    return run(work)


if __name__ == "__main__":
    raise SystemExit(main())
