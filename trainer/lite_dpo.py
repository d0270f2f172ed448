"""A DPO round for the lite motion model (issue 16): the same Diffusion-DPO loss as the Hallo4 rounds.

    round = train_lite_round(model, pairs, LiteDPOConfig(), out_dir)

Inputs are the model's own cached inputs for each vote: the clip's speech conditions and the normalised
motion of the winner and the loser (hallo4.lite_motion). The reference is a frozen copy of the model
before the round (the model has ~0.4 M parameters, so a full copy is cheaper than LoRA bookkeeping and
the whole network is fine-tuned). Winner and loser share the window, the flow time and the noise; the
pair, window, time and noise of step k come from a generator seeded by (seed, k), so a round is
reproducible. Output folder: the round's model (save_pretrained: safetensors + config.json),
train_config.json, metrics.jsonl (step, loss, implicit_acc, reward_margin, lr, seconds) as trainer.dpo
writes them, and consumed_votes.json.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hallo4.errors import InputError
from hallo4.lite_motion.model import LiteMotionModel
from hallo4.progress import Progress, ProgressCallback, as_progress

from .loss import dpo_loss, flow_matching_inputs


@dataclass
class LiteDPOConfig:
    steps: int = 80  # with 200 votes: ~1 min on a shared 2-core CPU; longer rounds drift the mouth (BENCHMARKS.md)
    beta: float = 500.0
    lr: float = 3e-4
    batch_size: int = 8
    window: int = 100  # frames per training window (4 s)
    seed: int = 0
    threads: int = 1  # torch CPU threads (the machine is shared)


@dataclass
class LitePair:
    """One vote with the model's own inputs: conditions (T, C), winner and loser motion (T, D), normalised."""

    cond: np.ndarray
    winner: np.ndarray
    loser: np.ndarray
    vote_id: str = ""


def _check(pairs: list[LitePair]) -> None:
    if not pairs:
        raise InputError("votes", "there are no lite votes to train on", "Vote on some lite pairs in the Arena first.")
    for i, p in enumerate(pairs):
        if not (len(p.cond) == len(p.winner) == len(p.loser)):
            raise InputError(
                "votes",
                f"pair {i} ({p.vote_id or 'unnamed'}) has conditions and motions of different lengths",
                "Regenerate the pair; its cached motion does not belong to its audio.",
            )


def _batch(pairs: list[LitePair], cfg: LiteDPOConfig, g: torch.Generator):
    idx = torch.randint(len(pairs), (cfg.batch_size,), generator=g).tolist()
    cs, ws, ls = [], [], []
    for k in idx:
        p = pairs[k]
        t = len(p.cond)
        if t <= cfg.window:
            pad = ((0, cfg.window - t), (0, 0))
            c, w, l = (np.pad(a, pad, mode="edge") for a in (p.cond, p.winner, p.loser))
        else:
            s = int(torch.randint(t - cfg.window + 1, (1,), generator=g))
            c, w, l = (a[s : s + cfg.window] for a in (p.cond, p.winner, p.loser))
        cs.append(c)
        ws.append(w)
        ls.append(l)
    return (torch.from_numpy(np.stack(a).astype(np.float32)) for a in (cs, ws, ls))


def train_lite_round(
    model: LiteMotionModel,
    pairs: list[LitePair],
    cfg: LiteDPOConfig | None = None,
    out_dir: str | Path | None = None,
    progress: Progress | ProgressCallback | None = None,
) -> tuple[LiteMotionModel, list[dict]]:
    """Returns (the round's model, metrics per step); `model` itself is left unchanged (it is the reference)."""
    cfg = cfg or LiteDPOConfig()
    _check(pairs)
    prog = as_progress(progress)
    torch.set_num_threads(cfg.threads)
    ref = model.eval().requires_grad_(False)
    policy = copy.deepcopy(model).train().requires_grad_(True)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    metrics: list[dict] = []
    out = Path(out_dir) if out_dir else None
    if out:
        out.mkdir(parents=True, exist_ok=True)
        (out / "train_config.json").write_text(
            json.dumps({"engine": "lite", **asdict(cfg), "votes": len(pairs)}, indent=2)
        )
    t0 = time.perf_counter()
    for step in range(cfg.steps):
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        cond, x_w, x_l = _batch(pairs, cfg, g)
        noise = torch.randn(x_w.shape, generator=g)
        sigma = torch.rand(cfg.batch_size, generator=g)
        xt_w, target_w = flow_matching_inputs(x_w, noise, sigma)
        xt_l, target_l = flow_matching_inputs(x_l, noise, sigma)
        both = torch.cat([xt_w, xt_l])
        sig2, cond2 = torch.cat([sigma, sigma]), torch.cat([cond, cond])
        pred_w, pred_l = policy(both, sig2, cond2).chunk(2)
        with torch.no_grad():
            ref_w, ref_l = ref(both, sig2, cond2).chunk(2)
        res = dpo_loss(pred_w, pred_l, ref_w, ref_l, target_w, target_l, beta=cfg.beta)
        opt.zero_grad()
        res.loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        row = {
            "step": step + 1,
            "loss": round(res.loss.item(), 5),
            "implicit_acc": round(res.implicit_acc.item(), 4),
            "reward_margin": float(res.reward_margin),
            "lr": cfg.lr,
            "seconds": round(time.perf_counter() - t0, 2),
        }
        metrics.append(row)
        prog((step + 1) / cfg.steps, f"step {step + 1}/{cfg.steps} loss {row['loss']:.4f}")
        if out:
            with open(out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(row) + "\n")
    policy.eval().requires_grad_(False)
    if out:
        policy.save_pretrained(str(out), safe_serialization=True)
        (out / "consumed_votes.json").write_text(json.dumps([p.vote_id for p in pairs]))
    return policy, metrics
