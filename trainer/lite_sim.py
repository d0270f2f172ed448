"""Simulated Arena raters for lite motion, and the vote -> round -> judge loop (bench/bench_lite_dpo.py, CI).

Each scripted rater prefers one visible property of a clip's motion; the random rater is the control.
Raters judge the motion tracks the lite warper renders (not the pixels), so hundreds of votes cost
seconds; the bench also renders clips and measures their lip sync with hallo4.metrics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from hallo4.audio_features import speech_envelope
from hallo4.constants import FPS
from hallo4.constants import SAMPLE_RATE as SR
from hallo4.lite_motion.features import CONDITION_NAMES, HEAD, MOTION_SCALE, denormalise, hard_closure
from hallo4.lite_motion.model import LiteMotionModel
from hallo4.metrics import cross_correlation

from .lite_dpo import LiteDPOConfig, LitePair, train_lite_round


def lively(motion: np.ndarray, cond: np.ndarray) -> float:
    """Livelier head: the head's spread of positions and angles (each channel in its own scale)."""
    return float((motion[:, HEAD] / MOTION_SCALE[HEAD]).std(0).sum())


def lips_closed(motion: np.ndarray, cond: np.ndarray) -> float:
    """Lips fully shut on "p/b/m" (not on "f/v") while the mouth still talks: minus the jaw opening left on the frames speech
    says are closures, relative to the opening on the other voiced frames (a mouth that barely opens anywhere
    does not count as closing well; it scores like one that never closes)."""
    # "f"/"v" are found among closure-deep dips but the lips do not shut there (the lower lip meets the teeth).
    hard = hard_closure(cond) & (cond[:, CONDITION_NAMES.index("labiodental")] < 0.5)
    voiced = (cond[:, CONDITION_NAMES.index("voiced")] > 0.5) & ~hard
    if not hard.any() or not voiced.any():
        return 0.0
    jaw = np.clip(motion[:, 0], 0, None)
    return -float((jaw[hard].mean() + 0.02) / (jaw[voiced].mean() + 0.02))


def few_blinks(motion: np.ndarray, cond: np.ndarray) -> float:
    """Fewer blinks: minus the number of blinks (lid closure crossing 0.5), then minus total lid closure."""
    b = motion[:, 2]
    onsets = int(np.sum((b[1:] >= 0.5) & (b[:-1] < 0.5)) + (b[0] >= 0.5))
    return -onsets - 0.01 * float(np.clip(b, 0, None).sum())


RATERS = {"lively": lively, "lips_closed": lips_closed, "few_blinks": few_blinks, "random": None}


def judge(rater: str, a: np.ndarray, b: np.ndarray, cond: np.ndarray, rng: np.random.Generator) -> bool:
    """True when the rater prefers `a` (motions in engine units). Ties and the random rater flip a coin."""
    fn = RATERS[rater]
    if fn is None:
        return bool(rng.random() < 0.5)
    sa, sb = fn(a, cond), fn(b, cond)
    return bool(rng.random() < 0.5) if abs(sa - sb) < 1e-9 else sa > sb


def sample_motion(model: LiteMotionModel, cond: np.ndarray, seeds: list[int]) -> list[np.ndarray]:
    """Normalised motions for one clip's conditions, one per seed (batched)."""
    noise = torch.stack(
        [torch.randn(len(cond), model.config.motion_dim, generator=torch.Generator().manual_seed(s)) for s in seeds]
    )
    c = torch.from_numpy(cond)[None].expand(len(seeds), -1, -1)
    return list(model.sample(c, noise=noise).numpy())


def simulated_votes(
    model: LiteMotionModel, conds: list[np.ndarray], rater: str, votes: int, seed: int = 0
) -> list[LitePair]:
    """`votes` Arena votes on pairs of the model's samples (same speech, different seeds)."""
    rng = np.random.default_rng(seed)
    per_clip = -(-votes // len(conds))
    pairs: list[LitePair] = []
    for ci, cond in enumerate(conds):
        seeds = [int(s) for s in rng.integers(2**31 - 1, size=2 * per_clip)]
        xs = sample_motion(model, cond, seeds)
        for k in range(per_clip):
            a, b = xs[2 * k], xs[2 * k + 1]
            a_wins = judge(rater, denormalise(a), denormalise(b), cond, rng)
            pairs.append(LitePair(cond, a if a_wins else b, b if a_wins else a, vote_id=f"sim-{rater}-{ci}-{k}"))
    return pairs[:votes]


def mouth_sync(motion: np.ndarray, audio: np.ndarray) -> float:
    """Best normalised cross-correlation of the jaw track with the speech envelope (hallo4.metrics)."""
    _, corrs = cross_correlation(denormalise(motion)[:, 0], speech_envelope(audio, SR, FPS))
    return float(max(corrs))


@dataclass
class RoundResult:
    rater: str
    votes: int
    win_rate: float  # round vs base on fresh pairs, judged by the same rater
    base_sync: float
    round_sync: float
    train_seconds: float
    final_implicit_acc: float


def evaluate(
    base: LiteMotionModel,
    new: LiteMotionModel,
    conds: list[np.ndarray],
    audios: list[np.ndarray],
    rater: str,
    pairs_per_clip: int,
    seed: int,
) -> tuple[float, float, float]:
    """(round win rate, base lip sync, round lip sync) on fresh clips with fresh seeds."""
    rng = np.random.default_rng(seed + 7919)
    wins, total, sb, sr = 0, 0, [], []
    for cond, audio in zip(conds, audios):
        seeds = [int(s) for s in rng.integers(2**31 - 1, size=2 * pairs_per_clip)]
        xb = sample_motion(base, cond, seeds[:pairs_per_clip])
        xn = sample_motion(new, cond, seeds[pairs_per_clip:])
        for a, b in zip(xn, xb):
            wins += judge(rater, denormalise(a), denormalise(b), cond, rng)
            total += 1
            sb.append(mouth_sync(b, audio))
            sr.append(mouth_sync(a, audio))
    return wins / total, float(np.mean(sb)), float(np.mean(sr))


def run_rater(
    base: LiteMotionModel,
    train_conds: list[np.ndarray],
    eval_conds: list[np.ndarray],
    eval_audios: list[np.ndarray],
    rater: str,
    votes: int,
    cfg: LiteDPOConfig,
    pairs_per_clip: int = 4,
    seed: int = 0,
) -> tuple[RoundResult, LiteMotionModel]:
    import time

    pairs = simulated_votes(base, train_conds, rater, votes, seed)
    t = time.perf_counter()
    new, metrics = train_lite_round(base, pairs, cfg)
    train_s = time.perf_counter() - t
    win, sb, sr = evaluate(base, new, eval_conds, eval_audios, rater, pairs_per_clip, seed)
    acc = float(np.mean([m["implicit_acc"] for m in metrics[-20:]]))
    return RoundResult(rater, len(pairs), win, sb, sr, train_s, acc), new
