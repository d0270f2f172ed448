"""Do votes improve the lite motion model? base -> N simulated votes -> one DPO round -> fresh pairs judged.

    python -m bench.bench_lite_dpo [--votes 200] [--seeds 0 1 2] [--render]

For each rater (lively head, lips shut on p/b/m, few blinks, random control) and seed: the shipped base
samples pairs on training sentences, the rater votes, trainer.lite_dpo trains one round (reference = base),
then fresh pairs (round vs base, different seeds, held-out voices) are judged by the same rater. Also
reports the jaw/speech correlation (hallo4.metrics.cross_correlation on the motion) and, with --render,
the lip-sync meter on clips rendered by the lite engine, including rule motion vs base model on every
examples/audio clip (what decides Generate's default lite motion). Writes bench/results/lite_dpo.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from hallo4 import media
from hallo4.cli import run
from hallo4.constants import SAMPLE_RATE as SR
from hallo4.lite_motion import load_motion_model, speech_conditions
from hallo4.lite_motion.data import SENTENCES, VOICES, espeak
from trainer.lite_dpo import LiteDPOConfig
from trainer.lite_sim import RATERS, run_rater

from .common import write


def speech_set(folder: Path, count: int, seed: int, offset: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(count):
        path = espeak(
            SENTENCES[(i + offset) % len(SENTENCES)],
            folder / f"b{seed}_{i}.wav",
            VOICES[int(rng.integers(len(VOICES)))],
            int(rng.integers(120, 200)),
            int(rng.integers(25, 80)),
        )
        out.append(media.load_audio(path, SR, name="audio"))
    return out


def rendered_sync(motion, audio_path: Path, portrait: Path, seed: int) -> float:
    from hallo4.engines.base import GenerationRequest
    from hallo4.engines.lite import LiteEngine
    from hallo4.metrics import lipsync

    with tempfile.TemporaryDirectory() as tmp:
        req = GenerationRequest(
            portrait=portrait, audio=audio_path, seed=seed, size=320, output=Path(tmp) / "clip.mp4"
        )
        res = LiteEngine(motion=motion).generate(req)
        return lipsync(res.video).correlation


def examples_sync(base) -> dict[str, dict[str, float]]:
    """Lip-sync meter of the rule motion and of the base model on each examples/audio clip (grace_hopper, seed 1)."""
    from hallo4.lite_motion import LiteMotion

    root = Path(__file__).resolve().parents[1]
    portrait = root / "examples" / "portraits" / "grace_hopper.jpg"
    out = {}
    for audio in sorted((root / "examples" / "audio").glob("*.wav")):
        rules = rendered_sync("rules", audio, portrait, 1)
        model = rendered_sync(LiteMotion(base), audio, portrait, 1)
        out[audio.name] = {"rules": round(rules, 4), "base": round(model, 4)}
        print(audio.name, out[audio.name], flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.bench_lite_dpo", description=__doc__.splitlines()[0])
    parser.add_argument("--votes", type=int, default=200)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--train-clips", type=int, default=24)
    parser.add_argument("--eval-clips", type=int, default=12)
    parser.add_argument("--pairs-per-clip", type=int, default=8, help="judged round-vs-base pairs per eval clip")
    parser.add_argument("--steps", type=int, default=LiteDPOConfig.steps)
    parser.add_argument("--render", action="store_true", help="also render hello.wav and measure lip sync (slower)")
    args = parser.parse_args(argv)
    return run(lambda: _bench(args))


def _bench(args: argparse.Namespace) -> int:
    """The whole run (main's work; long because it trains one round per rater and seed)."""
    base = load_motion_model()
    with tempfile.TemporaryDirectory() as tmp:
        train_audio = speech_set(Path(tmp), args.train_clips, 101)
        eval_audio = speech_set(Path(tmp), args.eval_clips, 202, offset=args.train_clips)
    train_conds = [speech_conditions(a) for a in train_audio]
    eval_conds = [speech_conditions(a) for a in eval_audio]
    root = Path(__file__).resolve().parents[1]
    runs = []
    sync_examples = examples_sync(base) if args.render else None
    for rater in RATERS:
        for seed in args.seeds:
            t = time.perf_counter()
            res, new = run_rater(
                base,
                train_conds,
                eval_conds,
                eval_audio,
                rater,
                args.votes,
                LiteDPOConfig(steps=args.steps, seed=seed),
                pairs_per_clip=args.pairs_per_clip,
                seed=seed,
            )
            row = {**res.__dict__, "seed": seed, "total_seconds": round(time.perf_counter() - t, 1)}
            if args.render and seed == args.seeds[0]:
                from hallo4.lite_motion import LiteMotion

                audio = root / "examples" / "audio" / "hello.wav"
                portrait = root / "examples" / "portraits" / "grace_hopper.jpg"
                row["rendered_sync_base"] = rendered_sync(LiteMotion(base), audio, portrait, 1)
                row["rendered_sync_round"] = rendered_sync(LiteMotion(new), audio, portrait, 1)
            print(row, flush=True)
            runs.append(row)
    summary = {}
    for rater in RATERS:
        rows = [r for r in runs if r["rater"] == rater]
        wins = [r["win_rate"] for r in rows]
        summary[rater] = {
            "win_rate_mean": round(float(np.mean(wins)), 3),
            "win_rate_min": round(min(wins), 3),
            "win_rate_max": round(max(wins), 3),
            "sync_drop_max": round(max(r["base_sync"] - r["round_sync"] for r in rows), 4),
            "train_seconds_mean": round(float(np.mean([r["train_seconds"] for r in rows])), 1),
        }
    import torch

    cond10 = np.resize(train_conds[0], (250, train_conds[0].shape[1]))  # a 10 s clip's conditions
    base.motion(cond10, 0)
    t = time.perf_counter()
    for s in range(5):
        base.motion(cond10, s)
    sample_s = (time.perf_counter() - t) / 5
    write(
        "lite_dpo",
        {
            "votes": args.votes,
            "judged_pairs": args.eval_clips * args.pairs_per_clip,
            "sample_seconds_10s_clip": round(sample_s, 3),
            "torch_threads": torch.get_num_threads(),
            "parameters": sum(p.numel() for p in base.parameters()),
            "seeds": args.seeds,
            "config": LiteDPOConfig(steps=args.steps).__dict__,
            "note": "2-core machine shared with other jobs during the run: seconds are upper bounds",
            "summary": summary,
            "examples_sync": sync_examples,
            "runs": runs,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
