"""A DPO round: LoRA on the Hallo4 transformer, trained on A/B votes with Diffusion-DPO.

    python -m trainer.dpo --store data/store --model data/models/hallo4 --out data/rounds

The reference model is the same transformer with its LoRA adapter disabled (no second copy in
memory). Winner and loser share the timestep and the noise. Pair, timestep and noise of step k are
drawn from a generator seeded by (seed, k), so an interrupted round resumed from its checkpoint ends
with exactly the weights of an uninterrupted one. accelerate handles mixed precision, gradient
accumulation and multi-GPU (`accelerate launch -m trainer.dpo ...`).

Output: rounds/round-NNN/ with adapter_model.safetensors + adapter_config.json (PEFT), train_config.json,
metrics.jsonl (step, loss, implicit_acc, reward_margin, lr, seconds) and consumed_votes.json.
"""

from __future__ import annotations

import argparse
import json
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


@dataclass
class DPOConfig:
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
    from peft import LoraConfig

    transformer.requires_grad_(False)
    transformer.add_adapter(LoraConfig(r=cfg.rank, lora_alpha=cfg.lora_alpha or cfg.rank, target_modules=cfg.target_modules,
                                       init_lora_weights=True), adapter_name=ADAPTER)
    transformer.set_adapters([ADAPTER])


def lora_state(transformer) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    return {k: v.detach().cpu().contiguous() for k, v in get_peft_model_state_dict(transformer, adapter_name=ADAPTER).items()}


def save_adapter(transformer, cfg: DPOConfig, directory: Path) -> None:
    from peft import LoraConfig
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file(lora_state(transformer), str(directory / "adapter_model.safetensors"))
    LoraConfig(r=cfg.rank, lora_alpha=cfg.lora_alpha or cfg.rank, target_modules=cfg.target_modules).save_pretrained(str(directory))


def _sample(step: int, cfg: DPOConfig, n_pairs: int, like: torch.Tensor):
    """Pair indices, sigma and noise of a step: a pure function of (seed, step)."""
    g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
    idx = torch.randint(0, n_pairs, (cfg.batch_size,), generator=g)
    u = torch.rand(cfg.batch_size, generator=g)
    sigma = cfg.shift * u / (1 + (cfg.shift - 1) * u)
    noise = torch.randn((cfg.batch_size, *like.shape), generator=g)
    return idx, sigma, noise


def dpo_step_losses(transformer, batch: dict[str, torch.Tensor], sigma: torch.Tensor, noise: torch.Tensor,
                    cfg: DPOConfig, device, dtype):
    """Per-sample errors of policy and reference on winner and loser (same t, same noise)."""
    x0 = torch.cat([batch["x0_w"], batch["x0_l"]]).to(device)
    noise2 = torch.cat([noise, noise]).to(device)
    sig2 = torch.cat([sigma, sigma]).to(device)
    x_t, target = flow_matching_inputs(x0, noise2, sig2)
    x_t[:, :, :1] = x0[:, :, :1]  # the reference frame stays clean, as at inference
    mask = torch.ones_like(target[:, :1])
    mask[:, :, :1] = 0  # ... and carries no loss
    kwargs = dict(
        timestep=(sig2 * 1000).to(device), encoder_hidden_states=torch.cat([batch["prompt"]] * 2).to(device, dtype),
        control_hidden_states=torch.cat([batch["context"]] * 2).to(device, dtype),
        audio_features=torch.cat([batch["audio"]] * 2).to(device, dtype),
        pose_latents=torch.cat([batch["pose"]] * 2).to(device, dtype) if "pose" in batch else None, return_dict=False,
    )
    pred = transformer(hidden_states=x_t.to(dtype), **kwargs)[0]
    with torch.no_grad():
        transformer.disable_adapters()
        try:
            ref = transformer(hidden_states=x_t.to(dtype), **kwargs)[0]
        finally:
            transformer.enable_adapters()
    model_err = per_sample_mse(pred, target, mask)
    ref_err = per_sample_mse(ref, target, mask)
    b = len(sigma)
    return model_err[:b], model_err[b:], ref_err[:b], ref_err[b:]


def _batch(tensors: list[dict[str, torch.Tensor]], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    keys = tensors[0].keys()
    return {k: torch.stack([tensors[int(i)][k] for i in idx]) for k in keys}


def train(transformer, pair_files: list[Path], weights: list[float], round_dir: Path, cfg: DPOConfig,
          progress: Progress | ProgressCallback | None = None, resume: bool = False) -> Path:
    """Run (or resume) the loop on cached pairs; writes checkpoints, metrics and the adapter."""
    from accelerate import Accelerator
    from safetensors.torch import load_file

    from .data import load_pair

    prog = as_progress(progress)
    if not pair_files:
        raise InputError("training data", "there are no usable pairs (ties, both-bad and skips carry no signal)",
                         "Collect decisive A/B votes in the Arena first.")
    round_dir.mkdir(parents=True, exist_ok=True)
    accelerator = Accelerator(mixed_precision=cfg.mixed_precision, gradient_accumulation_steps=cfg.grad_accum, cpu=not torch.cuda.is_available())
    device = accelerator.device
    tensors = [load_pair(p) for p in pair_files]
    pair_weights = torch.tensor(weights, dtype=torch.float32)
    if not any(n.startswith("base_model") or ".lora_A." in n for n, _ in transformer.named_parameters()):
        add_lora(transformer, cfg)
    if cfg.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    params = [p for p in transformer.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    transformer, optimizer = accelerator.prepare(transformer, optimizer)
    model = accelerator.unwrap_model(transformer)
    dtype = torch.float32
    start = 0
    ckpt = round_dir / "checkpoint"
    metrics_path = round_dir / "metrics.jsonl"
    if resume and (ckpt / "state.json").exists():
        from peft.utils import set_peft_model_state_dict

        set_peft_model_state_dict(model, load_file(str(ckpt / "adapter_model.safetensors")), adapter_name=ADAPTER)
        optimizer.load_state_dict(torch.load(ckpt / "optimizer.pt", weights_only=True))
        start = json.loads((ckpt / "state.json").read_text())["step"]
        # Drop metric lines written after the checkpoint (they will be recomputed identically).
        if metrics_path.exists():
            kept = [l for l in metrics_path.read_text().splitlines() if l.strip() and json.loads(l)["step"] <= start]
            metrics_path.write_text("".join(l + "\n" for l in kept))
    elif metrics_path.exists():
        metrics_path.unlink()
    transformer.train()
    t0 = time.perf_counter()
    for step in range(start + 1, cfg.steps + 1):
        prog((step - 1) / cfg.steps, f"DPO step {step}/{cfg.steps}")
        idx, sigma, noise = _sample(step, cfg, len(tensors), tensors[0]["x0_w"])
        batch = _batch(tensors, idx)
        with accelerator.accumulate(transformer):
            with accelerator.autocast():
                mw, ml, rw, rl = dpo_step_losses(model, batch, sigma, noise, cfg, device, dtype)
            out = dpo_loss_from_errors(mw, ml, rw, rl, cfg.beta, pair_weights[idx].to(device) if cfg.weight_by_margin else None)
            accelerator.backward(out.loss)
            optimizer.step()
            optimizer.zero_grad()
        row = {"step": step, "loss": float(out.loss.detach()), "implicit_acc": float(out.implicit_acc),
               "reward_margin": float(out.reward_margin), "lr": cfg.lr, "seconds": round(time.perf_counter() - t0, 3)}
        with open(metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if step % cfg.save_every == 0 or step == cfg.steps:
            save_adapter(model, cfg, ckpt)
            torch.save(optimizer.state_dict(), ckpt / "optimizer.pt")
            (ckpt / "state.json").write_text(json.dumps({"step": step}))
    save_adapter(model, cfg, round_dir)
    (round_dir / "train_config.json").write_text(json.dumps(asdict(cfg), indent=2))
    prog(1.0, f"Round finished: {round_dir.name}")
    return round_dir


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
            mw, ml, rw, rl = dpo_step_losses(transformer, {k: v[None] for k, v in t.items()}, sigma, noise, cfg, "cpu", torch.float32)
            wins += int(((rw - mw) - (rl - ml)).item() > 0)
            total += 1
    return wins / max(total, 1)


def run_round(store_dir: str | Path | None, model: str | Path, out: str | Path, cfg: DPOConfig, *, dataset: str | Path | None = None,
              resume: str | Path | None = None, progress: Progress | ProgressCallback | None = None) -> Path:
    """From votes to a finished round folder."""
    from hallo4.pipelines import Hallo4Pipeline
    from hallo4.preferences import PreferenceStore

    from .data import cache_pairs, pairs_from_dataset, pairs_from_store

    prog = as_progress(progress)
    store = PreferenceStore(store_dir) if store_dir else None
    records = pairs_from_dataset(dataset) if dataset else pairs_from_store(store)
    if not records:
        raise InputError("training data", "there are no usable pairs (ties, both-bad and skips carry no signal)",
                         "Collect decisive A/B votes in the Arena first.")
    round_dir = Path(resume) if resume else next_round_dir(out)
    pipe = Hallo4Pipeline.from_pretrained(str(model), load_text_encoder=True)
    files = cache_pairs(pipe, records, Path(out) / "cache", width=cfg.width, height=cfg.height, frames=cfg.frames,
                        model_id=str(model), progress=prog.sub(0.0, 0.15))
    train(pipe.transformer, files, [r.weight for r in records], round_dir, cfg, prog.sub(0.15, 1.0), resume=bool(resume))
    votes = sorted({v for r in records for v in r.vote_ids})
    (round_dir / "consumed_votes.json").write_text(json.dumps({"votes": votes, "pairs": len(records), "model": str(model)}))
    if store is not None:
        store.mark_consumed(votes, round_dir.name)
    return round_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m trainer.dpo", description="A Diffusion-DPO round from A/B votes.")
    p.add_argument("--store", help="preference store folder")
    p.add_argument("--dataset", help="or an exported dataset folder")
    p.add_argument("--model", required=True, help="Hallo4 pipeline folder (or repo id)")
    p.add_argument("--out", required=True, help="rounds folder (round-NNN is created inside)")
    p.add_argument("--resume", help="round folder to resume from its last checkpoint")
    d = DPOConfig()
    for name in ("steps", "beta", "lr", "rank", "batch_size", "grad_accum", "save_every", "seed", "width", "height", "frames"):
        p.add_argument("--" + name.replace("_", "-"), type=type(getattr(d, name)), default=getattr(d, name))
    p.add_argument("--mixed-precision", default="no", choices=["no", "bf16", "fp16"])
    p.add_argument("--gradient-checkpointing", action="store_true")
    p.add_argument("--weight-by-margin", action="store_true")
    args = p.parse_args(argv)
    if not args.store and not args.dataset:
        p.error("give --store or --dataset")
    cfg = DPOConfig(**{k: getattr(args, k) for k in ("steps", "beta", "lr", "rank", "batch_size", "grad_accum", "save_every", "seed",
                                                      "width", "height", "frames", "mixed_precision", "gradient_checkpointing",
                                                      "weight_by_margin")})

    def cb(fraction: float, message: str) -> None:
        print(f"\r[{fraction * 100:5.1f}%] {message:<50}", end="", file=sys.stderr, flush=True)

    try:
        out = run_round(args.store, args.model, args.out, cfg, dataset=args.dataset, resume=args.resume, progress=cb)
    except Hallo4Error as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    print(f"\n{out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
