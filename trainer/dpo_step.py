"""One Diffusion-DPO step's data and losses: the global batch of a step, the policy/reference errors on
winner and loser (same timestep, same noise), and the implicit accuracy of an adapter."""

from __future__ import annotations

from pathlib import Path

import torch

from .data import load_pair
from .dpo_config import DPOConfig
from .loss import flow_matching_inputs, per_sample_mse


def sample_step(step: int, cfg: DPOConfig, n_pairs: int, shape: tuple[int, ...]):
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


def load_batch(pair_files: list[Path], idx: torch.Tensor) -> dict[str, torch.Tensor]:
    """Read only the pairs this process trains on (a round may have far more pairs than fit in memory)."""

    tensors = [load_pair(pair_files[int(i)]) for i in idx]
    return {k: torch.stack([t[k] for t in tensors]) for k in tensors[0]}


def latent_shape(path: Path) -> tuple[int, ...]:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return tuple(f.get_slice("x0_w").get_shape())


def has_pose(path: Path) -> bool:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return "pose" in f.keys()


@torch.no_grad()
def implicit_accuracy(transformer, pair_files: list[Path], cfg: DPOConfig, draws: int = 4) -> float:
    """Share of (pair, t, noise) draws where the policy beats the reference on the winner vs the loser.

    The draws are fixed (seeded per pair and draw, apart from the training schedule), so two calls on the same
    adapter agree; the round reports it for its evaluation pairs in the last metrics row (`eval_implicit_acc`)."""
    param = next(transformer.parameters())
    wins, total = 0, 0
    for i, path in enumerate(pair_files):
        t = load_pair(path)
        for d in range(draws):
            g = torch.Generator().manual_seed(10_000_019 + i * 97 + d)
            u = torch.rand(1, generator=g)
            sigma = cfg.shift * u / (1 + (cfg.shift - 1) * u)
            noise = torch.randn((1, *t["x0_w"].shape), generator=g)
            batch = {k: v[None] for k, v in t.items()}
            mw, ml, rw, rl = dpo_step_losses(transformer, batch, sigma, noise, cfg, param.device, param.dtype)
            wins += int(((rw - mw) - (rl - ml)).item() > 0)
            total += 1
    return wins / max(total, 1)
