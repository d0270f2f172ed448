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
metrics.jsonl (step, loss, implicit_acc, reward_margin, lr, seconds, pairs_by_rank), ranks.json and
consumed_votes.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from hallo4.errors import Hallo4Error, InputError
from hallo4.progress import Progress, ProgressCallback, as_progress

from .loss import dpo_loss_from_errors, flow_matching_inputs, per_sample_mse

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


def next_round_dir(out: str | Path) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    nums = [int(p.name.split("-")[1]) for p in out.glob("round-*") if p.name.split("-")[1].isdigit()]
    return out / f"round-{(max(nums) + 1 if nums else 1):03d}"


def add_lora(transformer, cfg: DPOConfig) -> None:
    """Add the trainable adapter. Its random init is drawn from `cfg.seed`, so every process (and every
    rerun) starts from the same weights."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        transformer.add_adapter(
            LoraConfig(
                r=cfg.rank,
                lora_alpha=cfg.lora_alpha or cfg.rank,
                target_modules=cfg.target_modules,
                init_lora_weights=True,
            ),
            adapter_name=ADAPTER,
        )
    transformer.set_adapters([ADAPTER])


def lora_state(transformer) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    return {
        k: v.detach().cpu().contiguous()
        for k, v in get_peft_model_state_dict(transformer, adapter_name=ADAPTER).items()
    }


def adapter_checksum(transformer) -> str:
    """sha256 over the adapter's tensors (names and bytes): equal on every rank iff the adapters are identical."""
    h = hashlib.sha256()
    for k, v in sorted(lora_state(transformer).items()):
        h.update(k.encode())
        h.update(v.float().numpy().tobytes())
    return h.hexdigest()


def save_adapter(transformer, cfg: DPOConfig, directory: Path) -> None:
    from peft import LoraConfig
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file(lora_state(transformer), str(directory / "adapter_model.safetensors"))
    LoraConfig(r=cfg.rank, lora_alpha=cfg.lora_alpha or cfg.rank, target_modules=cfg.target_modules).save_pretrained(
        str(directory)
    )


def _sample(step: int, cfg: DPOConfig, n_pairs: int, shape: tuple[int, ...]):
    """Pair indices, sigma and noise of the whole global batch of a step: a pure function of (seed, step)."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    # Without replacement inside a step (when there are enough pairs): no two ranks train on the same pair at once.
    if cfg.batch_size <= n_pairs:
        idx = torch.randperm(n_pairs, generator=g)[: cfg.batch_size]
    else:
        idx = torch.randint(0, n_pairs, (cfg.batch_size,), generator=g)
    u = torch.rand(cfg.batch_size, generator=g)
    sigma = cfg.shift * u / (1 + (cfg.shift - 1) * u)
    noise = torch.randn((cfg.batch_size, *shape), generator=g)
    return idx, sigma, noise


def dpo_step_losses(
    transformer,
    batch: dict[str, torch.Tensor],
    sigma: torch.Tensor,
    noise: torch.Tensor,
    cfg: DPOConfig,
    device,
    dtype,
    base=None,
):
    """Per-sample errors of policy and reference on winner and loser (same t, same noise).

    `transformer` is what the policy forward runs through: under accelerate the prepared (DDP/DeepSpeed)
    model, so that backward averages the gradients over the processes. `base` is the plain model whose
    adapter is switched off for the reference pass (default: `transformer` itself); the reference needs no
    gradients and no synchronisation, so it runs on the plain model, before the policy pass."""
    base = transformer if base is None else base
    x0 = torch.cat([batch["x0_w"], batch["x0_l"]]).to(device)
    noise2 = torch.cat([noise, noise]).to(device)
    sig2 = torch.cat([sigma, sigma]).to(device)
    x_t, target = flow_matching_inputs(x0, noise2, sig2)
    x_t[:, :, :1] = x0[:, :, :1]  # the reference frame stays clean, as at inference
    mask = torch.ones_like(target[:, :1])
    mask[:, :, :1] = 0  # ... and carries no loss
    kwargs = dict(
        timestep=(sig2 * 1000).to(device),
        encoder_hidden_states=torch.cat([batch["prompt"]] * 2).to(device, dtype),
        control_hidden_states=torch.cat([batch["context"]] * 2).to(device, dtype),
        audio_features=torch.cat([batch["audio"]] * 2).to(device, dtype),
        pose_latents=torch.cat([batch["pose"]] * 2).to(device, dtype) if "pose" in batch else None,
        return_dict=False,
    )
    with torch.no_grad():
        base.disable_adapters()
        try:
            ref = base(hidden_states=x_t.to(dtype), **kwargs)[0]
        finally:
            base.enable_adapters()
    pred = transformer(hidden_states=x_t.to(dtype), **kwargs)[0]
    model_err = per_sample_mse(pred, target, mask)
    ref_err = per_sample_mse(ref, target, mask)
    b = len(sigma)
    return model_err[:b], model_err[b:], ref_err[:b], ref_err[b:]


def _load_batch(pair_files: list[Path], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Read only the pairs this process trains on (a round may have far more pairs than fit in memory)."""
    from .data import load_pair

    tensors = [load_pair(pair_files[int(i)]) for i in idx]
    return {k: torch.stack([t[k] for t in tensors]) for k in tensors[0]}


def _latent_shape(path: Path) -> tuple[int, ...]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return tuple(f.get_slice("x0_w").get_shape())


def _has_pose(path: Path) -> bool:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return "pose" in f.keys()


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


def _configure_deepspeed(accelerator, cfg: DPOConfig, micro: int) -> bool:
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


def _check_layout(cfg: DPOConfig, processes: int) -> int:
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


def train(
    transformer,
    pair_files: list[Path],
    weights: list[float],
    round_dir: Path,
    cfg: DPOConfig,
    progress: Progress | ProgressCallback | None = None,
    resume: bool = False,
    accelerator=None,
) -> Path:
    """Run (or resume) the loop on cached pairs; the main process writes checkpoints, metrics and the adapter.

    Call it on every process (under `accelerate launch`); `accelerator` defaults to `make_accelerator(cfg)`."""
    from safetensors.torch import load_file

    prog = as_progress(progress)
    if not pair_files:
        raise InputError(
            "training data",
            "there are no usable pairs (ties, both-bad and skips carry no signal)",
            "Collect decisive A/B votes in the Arena first.",
        )
    pair_files = [Path(p) for p in pair_files]
    if accelerator is None:
        # DDP must be told when a branch (the skeleton cross-attention) gets no input and so no gradient.
        accelerator = make_accelerator(cfg, find_unused_parameters=not _has_pose(pair_files[0]))
    world, rank = accelerator.num_processes, accelerator.process_index
    micro = _check_layout(cfg, world)
    deepspeed = _configure_deepspeed(accelerator, cfg, micro)
    main = accelerator.is_main_process
    device = accelerator.device
    shape = _latent_shape(pair_files[0])
    pair_weights = torch.tensor(weights, dtype=torch.float32)
    if main:
        round_dir.mkdir(parents=True, exist_ok=True)
    if not any(".lora_A." in n for n, _ in transformer.named_parameters()):
        add_lora(transformer, cfg)
    if cfg.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    model, optimizer = accelerator.prepare(transformer, optimizer)
    base = accelerator.unwrap_model(model)
    # Inputs follow the weights: float32 under DDP (autocast does the rest), bf16/fp16 under DeepSpeed.
    dtype = next(base.parameters()).dtype
    start = 0
    ckpt = round_dir / CHECKPOINT
    metrics_path = round_dir / "metrics.jsonl"
    if resume and (ckpt / "state.json").exists():
        from peft.utils import set_peft_model_state_dict

        # Every rank reads the same files, so they resume identical whatever the process count was before.
        set_peft_model_state_dict(base, load_file(str(ckpt / "adapter_model.safetensors")), adapter_name=ADAPTER)
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
        # Drop metric lines written after the checkpoint (they will be recomputed identically).
        if main and metrics_path.exists():
            kept = [l for l in metrics_path.read_text().splitlines() if l.strip() and json.loads(l)["step"] <= start]
            metrics_path.write_text("".join(l + "\n" for l in kept))
    elif main and metrics_path.exists():
        metrics_path.unlink()
    accelerator.wait_for_everyone()
    model.train()
    t0 = time.perf_counter()
    for step in range(start + 1, cfg.steps + 1):
        prog((step - 1) / cfg.steps, f"DPO step {step}/{cfg.steps}")
        idx, sigma, noise = _sample(step, cfg, len(pair_files), shape)
        w_global = pair_weights[idx]
        mine = slice(rank * micro * cfg.grad_accum, (rank + 1) * micro * cfg.grad_accum)
        seen, losses, inside, margin = [], [], [], []
        for m in range(cfg.grad_accum):
            part = slice(mine.start + m * micro, mine.start + (m + 1) * micro)
            batch = _load_batch(pair_files, idx[part])
            with accelerator.accumulate(model):
                with accelerator.autocast():
                    mw, ml, rw, rl = dpo_step_losses(
                        model, batch, sigma[part], noise[part], cfg, device, dtype, base=base
                    )
                out = dpo_loss_from_errors(
                    mw,
                    ml,
                    rw,
                    rl,
                    cfg.beta,
                    w_global[part].to(device) if cfg.weight_by_margin else None,
                    w_global.mean() if cfg.weight_by_margin else None,
                )
                accelerator.backward(out.loss)
                optimizer.step()
                optimizer.zero_grad()
            seen.append(idx[part])
            losses.append(out.losses)
            inside.append(out.inside)
            margin.append(out.inside / cfg.beta)
        # Every rank takes part in the gathers; only the main process writes.
        seen_all = accelerator.gather(torch.cat(seen).to(device)).cpu().reshape(world, -1)
        loss_all = accelerator.gather(torch.cat(losses).float()).cpu()
        inside_all = accelerator.gather(torch.cat(inside).float()).cpu()
        margin_all = accelerator.gather(torch.cat(margin).float()).cpu()
        if main:
            row = {
                "step": step,
                "loss": float(loss_all.mean()),
                "implicit_acc": float((inside_all > 0).float().mean()),
                "reward_margin": float(margin_all.mean()),
                "lr": cfg.lr,
                "seconds": round(time.perf_counter() - t0, 3),
                "pairs_by_rank": seen_all.tolist(),
            }
            with open(metrics_path, "a") as f:
                f.write(json.dumps(row) + "\n")
        if step % cfg.save_every == 0 or step == cfg.steps:
            _save_checkpoint(accelerator, base, None if deepspeed else optimizer, cfg, ckpt, step)
    checksums = accelerate_gather_object(accelerator, adapter_checksum(base))
    if main:
        save_adapter(base, cfg, round_dir)
        (round_dir / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
        ranks = {"num_processes": world, "adapter_sha256": checksums}
        (round_dir / "ranks.json").write_text(json.dumps(ranks, indent=2))
    accelerator.wait_for_everyone()
    prog(1.0, f"Round finished: {round_dir.name}")
    return round_dir


def accelerate_gather_object(accelerator, obj):
    """One Python object per rank, in rank order, on every rank."""
    from accelerate.utils import gather_object

    return gather_object([obj]) if accelerator.num_processes > 1 else [obj]


def _save_checkpoint(accelerator, base, optimizer, cfg: DPOConfig, ckpt: Path, step: int) -> None:
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


@torch.no_grad()
def implicit_accuracy(transformer, pair_files: list[Path], cfg: DPOConfig, draws: int = 4) -> float:
    """Share of (pair, t, noise) draws where the policy beats the reference on the winner vs the loser."""
    from .data import load_pair

    tensors = [load_pair(p) for p in pair_files]
    wins, total = 0, 0
    for i, t in enumerate(tensors):
        for d in range(draws):
            g = torch.Generator().manual_seed(10_000_019 + i * 97 + d)
            u = torch.rand(1, generator=g)
            sigma = cfg.shift * u / (1 + (cfg.shift - 1) * u)
            noise = torch.randn((1, *t["x0_w"].shape), generator=g)
            mw, ml, rw, rl = dpo_step_losses(
                transformer, {k: v[None] for k, v in t.items()}, sigma, noise, cfg, "cpu", torch.float32
            )
            wins += int(((rw - mw) - (rl - ml)).item() > 0)
            total += 1
    return wins / max(total, 1)


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
    accelerator = make_accelerator(cfg, find_unused_parameters=not _has_pose(files[0]))
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

    try:
        out = run_round(args.store, args.model, args.out, cfg, dataset=args.dataset, resume=args.resume, progress=cb)
    except Hallo4Error as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    if main_process:
        print(f"\n{out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
