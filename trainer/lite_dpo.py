"""A DPO round for the lite motion model (issue 16): the same Diffusion-DPO loss as the Hallo4 rounds.

    python -m trainer.lite_dpo --data-dir DIR [--steps N --beta B --lr LR] [--out DIR/rounds/lite/round-NNN]
    out = train_from_votes(LiteDPOConfig(), out=...)          # the same from Python (the app)
    new, metrics = train_lite_round(model, pairs, cfg, out)    # the core, on LitePairs (bench, tests)

`train_from_votes` reads the Arena's decisive votes on pairs of two lite motion-model clips from the
preference store (trainer.lite_votes), takes each clip's cached or rebuilt motion, trains one round from
the active lite model (the reference; recorded as the round's parent) and writes it to the lite rounds
folder (hallo4.lite_motion.rounds), marking the votes consumed by "lite/round-NNN".

Inputs are the model's own cached inputs for each vote: the clip's speech conditions and the normalised
motion of the winner and the loser (hallo4.lite_motion). The reference is a frozen copy of the model
before the round (the model has ~0.4 M parameters, so a full copy is cheaper than LoRA bookkeeping and
the whole network is fine-tuned). Winner and loser share the window, the flow time and the noise; the
pair, window, time and noise of step k come from a generator seeded by (seed, k), so a round is
reproducible. Output folder: the round's model (save_pretrained: safetensors + config.json),
train_config.json (first), metrics.jsonl (step, loss, implicit_acc, reward_margin, lr, seconds; one line
per step, flushed as it happens, the same keys trainer.dpo writes), consumed_votes.json and round.json
(last: the round is finished and can be activated).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from hallo4.errors import InputError
from hallo4.lite_motion.model import LiteMotionModel
from hallo4.progress import Progress, ProgressCallback, as_progress

from .lite_votes import LitePair, lite_pairs_from_store, open_store, too_few_votes_error
from .loss import dpo_loss, flow_matching_inputs

MOUTH = slice(0, 2)  # open, spread: hallo4.lite_motion.features.MOTION_NAMES
MIN_LITE_VOTES = 10  # fewer decisive votes say too little about a preference to be worth a round


@dataclass
class LiteDPOConfig:
    steps: int = 100  # with 200 votes: seconds on 2 cores; longer rounds drift the mouth (BENCHMARKS.md)
    beta: float = 500.0
    lr: float = 6e-4  # with mouth_kl 30: every scripted rater >= 0.7 on seeds 0-2 (3e-4 missed on seed 2)
    batch_size: int = 8
    window: int = 100  # frames per training window (4 s)
    seed: int = 0
    threads: int = 1  # torch CPU threads (the machine is shared)
    mouth_kl: float = 30.0  # extra KL to the reference on the mouth channels (open, spread): keeps lip sync


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
    weights = torch.tensor([pairs[k].weight for k in idx], dtype=torch.float32)
    return (*(torch.from_numpy(np.stack(a).astype(np.float32)) for a in (cs, ws, ls)), weights)


def _step(policy, ref, batch, cfg: LiteDPOConfig, g: torch.Generator):
    """The Diffusion-DPO loss of one batch: winner and loser share window, flow time and noise."""
    cond, x_w, x_l, weights = batch
    noise = torch.randn(x_w.shape, generator=g)
    sigma = torch.rand(cfg.batch_size, generator=g)
    xt_w, target_w = flow_matching_inputs(x_w, noise, sigma)
    xt_l, target_l = flow_matching_inputs(x_l, noise, sigma)
    both = torch.cat([xt_w, xt_l])
    sig2, cond2 = torch.cat([sigma, sigma]), torch.cat([cond, cond])
    pred_w, pred_l = policy(both, sig2, cond2).chunk(2)
    with torch.no_grad():
        ref_w, ref_l = ref(both, sig2, cond2).chunk(2)
    res = dpo_loss(pred_w, pred_l, ref_w, ref_l, target_w, target_l, beta=cfg.beta, weights=weights)
    if cfg.mouth_kl:
        # For a flow model the per-step KL between policy and reference is proportional to the squared
        # difference of their velocities; penalising it on the mouth channels lets votes move the mouth only
        # where they agree strongly, so speech keeps driving it (BENCHMARKS.md: lips-shut rater).
        drift = torch.cat([pred_w - ref_w, pred_l - ref_l])[..., MOUTH]
        res.loss = res.loss + cfg.mouth_kl * drift.pow(2).mean()
    return res


def train_lite_round(
    model: LiteMotionModel,
    pairs: list[LitePair],
    cfg: LiteDPOConfig | None = None,
    out_dir: str | Path | None = None,
    progress: Progress | ProgressCallback | None = None,
    parent: str | None = None,
) -> tuple[LiteMotionModel, list[dict]]:
    """Returns (the round's model, metrics per step); `model` itself is left unchanged (it is the reference).

    With `out_dir`, writes the round folder as it goes (module doc); `parent` names the reference there."""
    cfg = cfg or LiteDPOConfig()
    _check(pairs)
    prog = as_progress(progress)
    torch.set_num_threads(cfg.threads)
    ref = model.eval().requires_grad_(False)
    policy = copy.deepcopy(model).train().requires_grad_(True)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.lr, weight_decay=0.0)
    metrics: list[dict] = []
    out = Path(out_dir) if out_dir else None
    log = None
    if out:
        out.mkdir(parents=True, exist_ok=True)
        header = {"engine": "lite", "parent": parent or "base", **asdict(cfg), "votes": len(pairs)}
        (out / "train_config.json").write_text(json.dumps(header, indent=2))
        log = open(out / "metrics.jsonl", "w")  # noqa: SIM115 (kept open for the whole round, closed below)
    t0 = time.perf_counter()
    try:
        _train_steps(policy, ref, opt, pairs, cfg, prog, metrics, log, t0)
    except BaseException as exc:  # cancelled, killed by Ctrl-C or a bug: the Train tab shows the round as failed
        if out:
            (out / "failed.json").write_text(json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        raise
    finally:
        if log:
            log.close()
    policy.eval().requires_grad_(False)
    if out:
        _save_round(policy, pairs, metrics, out, parent, time.perf_counter() - t0)
    return policy, metrics


def _train_steps(policy, ref, opt, pairs, cfg: LiteDPOConfig, prog: Progress, metrics: list, log, t0: float):
    """The optimizer steps; each appends its row to `metrics` and, flushed, to the open metrics.jsonl `log`."""
    for step in range(cfg.steps):
        prog.check()  # a cancel asked during the last report stops before the next step
        g = torch.Generator().manual_seed(cfg.seed * 1_000_003 + step)
        res = _step(policy, ref, _batch(pairs, cfg, g), cfg, g)
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
        if log:
            log.write(json.dumps(row) + "\n")
            log.flush()  # the Train tab plots the round live from this file
        prog((step + 1) / cfg.steps, f"step {step + 1}/{cfg.steps} loss {row['loss']:.4f}")


def _save_round(policy, pairs: list[LitePair], metrics: list[dict], out: Path, parent: str | None, secs: float):
    """Weights via a temporary folder (a listed round never has half a weights file), then round.json last."""
    tmp = out / ".saving"
    shutil.rmtree(tmp, ignore_errors=True)
    policy.save_pretrained(str(tmp), safe_serialization=True)
    for f in sorted(tmp.iterdir(), key=lambda f: f.suffix == ".safetensors"):  # config first, weights last
        f.replace(out / f.name)
    tmp.rmdir()
    (out / "consumed_votes.json").write_text(json.dumps([p.vote_id for p in pairs]))
    last = metrics[-10:]
    summary = {
        "finished": time.time(),
        "parent": parent or "base",
        "votes": len(pairs),
        "steps": len(metrics),
        "train_seconds": round(secs, 1),
        "final_loss": round(float(np.mean([m["loss"] for m in last])), 5) if last else None,
        "final_implicit_acc": round(float(np.mean([m["implicit_acc"] for m in last])), 4) if last else None,
    }
    (out / "round.json").write_text(json.dumps(summary, indent=2))


def train_from_votes(
    cfg: LiteDPOConfig | None = None,
    *,
    store=None,
    out: str | Path | None = None,
    parent: str | None = "active",
    min_votes: int = MIN_LITE_VOTES,
    progress: Progress | ProgressCallback | None = None,
) -> Path:
    """Arena votes -> one lite round; returns its folder.

    store: a PreferenceStore (default: the app's, HALLO4_DATA_DIR/store). out: the round folder (default:
    a fresh lite/round-NNN; the app passes the one it reserved with rounds.reserve_lite_round). parent:
    "active" (the lite model Generate uses now), "base" / None, or a round name: the reference and the
    starting point. Raises InputError (how many votes there are, how many are needed, how to get them)
    before creating anything when fewer than `min_votes` usable lite votes exist."""
    from hallo4.lite_motion.rounds import active_lite_round, lite_rounds_dir, model_path, reserve_lite_round
    from hallo4.lite_motion.runtime import load_motion_model

    store = store or open_store()
    pairs, skipped = lite_pairs_from_store(store)
    if len(pairs) < min_votes:
        raise too_few_votes_error(len(pairs), min_votes, skipped)
    parent = active_lite_round() if parent == "active" else (None if parent in (None, "base") else parent)
    model = load_motion_model(model_path(parent))
    out = Path(out) if out else lite_rounds_dir() / reserve_lite_round()
    train_lite_round(model, pairs, cfg, out, progress, parent=parent)
    store.mark_consumed([v for p in pairs for v in p.vote_ids], f"lite/{out.name}")
    return out


def main(argv: list[str] | None = None) -> int:
    from hallo4.cli import run

    d = LiteDPOConfig()
    p = argparse.ArgumentParser(prog="python -m trainer.lite_dpo", description="A lite DPO round from Arena votes.")
    p.add_argument("--data-dir", help="the app's data folder (HALLO4_DATA_DIR: store/ and rounds/ inside)")
    p.add_argument("--out", help="round folder to write (default: the next DATA_DIR/rounds/lite/round-NNN)")
    p.add_argument("--parent", default="active", help='reference model: "active" (default), "base" or round-NNN')
    p.add_argument("--min-votes", type=int, default=MIN_LITE_VOTES, help="refuse a round with fewer usable votes")
    p.add_argument("--activate", action="store_true", help="make the finished round Generate's lite motion")
    for name in ("steps", "beta", "lr", "batch_size", "window", "seed", "threads", "mouth_kl"):
        p.add_argument("--" + name.replace("_", "-"), type=type(getattr(d, name)), default=getattr(d, name))
    args = p.parse_args(argv)
    if args.data_dir:
        os.environ["HALLO4_DATA_DIR"] = str(Path(args.data_dir).resolve())
    cfg = LiteDPOConfig(**{k: getattr(args, k) for k in asdict(d)})

    def cb(fraction: float, message: str) -> None:
        print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)

    def work() -> int:
        out = train_from_votes(cfg, out=args.out, parent=args.parent, min_votes=args.min_votes, progress=cb)
        if args.activate:
            from hallo4.lite_motion.rounds import activate_lite_round

            activate_lite_round(out.name)
        print(out, flush=True)
        return 0

    return run(work)


if __name__ == "__main__":
    raise SystemExit(main())
