"""The process side of a DPO round (accelerate): the Accelerator, DeepSpeed's settings, how the global batch
is split over the processes, and checkpoints whose layout does not depend on the process count."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import torch

from hallo4.errors import InputError

from .dpo_config import ADAPTER, CHECKPOINT, DPOConfig
from .lora import save_adapter


def make_accelerator(cfg: DPOConfig, *, find_unused_parameters: bool = False):
    """The round's Accelerator: mixed precision and accumulation from `cfg`; the process layout (one process,
    DDP on GPUs or CPU/gloo, DeepSpeed) comes from `accelerate launch` / `accelerate config`."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState, GradientState
    from accelerate.utils import DistributedDataParallelKwargs

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        # accelerate keeps one global state per process and refuses a second Accelerator with other settings (the
        # app runs rounds one after another in one process); its accumulation counter would also carry over from
        # the last round. A single process has nothing to lose by starting fresh, and accelerate has no public reset.
        AcceleratorState._reset_state()
        GradientState._reset_state()
    handlers = [DistributedDataParallelKwargs(find_unused_parameters=find_unused_parameters)]
    return Accelerator(
        mixed_precision=cfg.mixed_precision,
        gradient_accumulation_steps=cfg.grad_accum,
        cpu=not torch.cuda.is_available(),
        kwargs_handlers=handlers,
    )


def configure_deepspeed(accelerator, cfg: DPOConfig, micro: int) -> bool:
    """Under DeepSpeed: check the config agrees with the round and give it the per-rank micro-batch (there is no
    dataloader to read it from). ZeRO-3 is refused: it shards the weights, and the reference pass and the adapter
    export read them whole."""
    from accelerate.utils import DistributedType

    if accelerator.distributed_type != DistributedType.DEEPSPEED:
        return False
    plugin = accelerator.state.deepspeed_plugin
    if plugin.zero_stage == 3:
        raise InputError(
            "DeepSpeed config",
            "ZeRO stage 3 is not supported by the DPO trainer",
            "Use ZeRO-2: accelerate launch --config_file trainer/configs/zero2.yaml ...",
        )
    if accelerator.gradient_accumulation_steps != cfg.grad_accum:
        raise InputError(
            "DeepSpeed config",
            f"gradient_accumulation_steps is "
            f"{accelerator.gradient_accumulation_steps} but --grad-accum is {cfg.grad_accum}",
            "Set the same value in both.",
        )
    plugin.deepspeed_config["train_micro_batch_size_per_gpu"] = micro
    return True


def check_layout(cfg: DPOConfig, processes: int) -> int:
    per_rank, rest = divmod(cfg.batch_size, processes * cfg.grad_accum)
    if rest or per_rank == 0:
        raise InputError(
            "batch size",
            f"{cfg.batch_size} pairs per step cannot be split evenly over {processes} "
            f"process(es) x {cfg.grad_accum} accumulation step(s)",
            f"Use a batch size that is a multiple of {processes * cfg.grad_accum} "
            f"(e.g. --batch-size {processes * cfg.grad_accum}).",
        )
    return per_rank


def gather_object(accelerator, obj):
    """One Python object per rank, in rank order, on every rank."""
    from accelerate.utils import gather_object

    return gather_object([obj]) if accelerator.num_processes > 1 else [obj]


def save_checkpoint(accelerator, base, optimizer, cfg: DPOConfig, ckpt: Path, step: int) -> None:
    """Adapter + optimizer moments + step, written by the main process in a layout that does not depend on the
    process count (DDP keeps the full optimizer state on every rank; under DeepSpeed, where each rank holds only
    its shard, `optimizer` is None and the moments are not saved)."""
    if accelerator.is_main_process:
        save_adapter(base, cfg, ckpt)
        if optimizer is not None:
            torch.save(optimizer.state_dict(), ckpt / "optimizer.pt")
        else:
            (ckpt / "optimizer.pt").unlink(missing_ok=True)
        if accelerator.scaler is not None:
            torch.save(accelerator.scaler.state_dict(), ckpt / "scaler.pt")
        (ckpt / "state.json").write_text(
            json.dumps({"step": step, "num_processes": accelerator.num_processes, "batch_size": cfg.batch_size})
        )
    accelerator.wait_for_everyone()


def restore_checkpoint(accelerator, base, optimizer, round_dir: Path, deepspeed: bool) -> int:
    """Resume from `round_dir/checkpoint`: adapter, optimizer moments (not under DeepSpeed), scaler; returns the
    step it was saved at. The main process drops metric lines written after it (they are recomputed identically)."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    ckpt = round_dir / CHECKPOINT
    # Every rank reads the same files, so they resume identical whatever the process count was before.
    set_peft_model_state_dict(base, load_file(str(ckpt / "adapter_model.safetensors")), adapter_name=ADAPTER)
    main = accelerator.is_main_process
    if (ckpt / "optimizer.pt").exists() and not deepspeed:
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True, map_location="cpu"))
    elif main:
        print(
            "warning: resuming without the optimizer's moments (DeepSpeed keeps them sharded per rank); "
            "the adapter and the step are restored",
            file=sys.stderr,
        )
    if accelerator.scaler is not None and (ckpt / "scaler.pt").exists():
        accelerator.scaler.load_state_dict(torch.load(ckpt / "scaler.pt", weights_only=True))
    start = json.loads((ckpt / "state.json").read_text())["step"]
    metrics_path = round_dir / "metrics.jsonl"
    if main and metrics_path.exists():
        kept = [l for l in metrics_path.read_text().splitlines() if l.strip() and json.loads(l)["step"] <= start]
        metrics_path.write_text("".join(l + "\n" for l in kept))
    return start
