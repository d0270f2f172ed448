"""Train the lite motion model's base weights on a CPU in minutes.

    python -m hallo4.lite_motion.train_base            # rebuilds hallo4/lite_motion/weights/

Steps: 1. speech: examples/audio plus espeak-ng sentences in varied voices, rates and pitches (temp
folder); 2. per clip, conditions (features.speech_conditions) and several rule-based motions with random
styles (data.rule_motion); 3. flow-matching training on random windows; 4. save_pretrained (safetensors +
config.json).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .. import media
from ..cli import run
from ..constants import SAMPLE_RATE as SR
from .data import SENTENCES, VOICES, Style, cached_portrait_pose, espeak, rule_motion
from .features import normalise, speech_conditions
from .model import LiteMotionModel

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Clip:
    cond: np.ndarray  # (T, C)
    motion: np.ndarray  # (T, D) normalised
    audio: np.ndarray | None = None


def speech_corpus(folder: Path, count: int, seed: int = 0) -> list[np.ndarray]:
    """examples/audio plus `count` espeak-ng sentences with random voice, rate and pitch (16 kHz mono)."""
    rng = np.random.default_rng(seed)
    audios = [media.load_audio(p, SR, name="audio") for p in sorted((ROOT / "examples" / "audio").glob("*.wav"))]
    for i in range(count):
        text = SENTENCES[i % len(SENTENCES)]
        path = espeak(
            text,
            folder / f"s{i}.wav",
            voice=VOICES[int(rng.integers(len(VOICES)))],
            rate=int(rng.integers(120, 200)),
            pitch=int(rng.integers(25, 80)),
        )
        audios.append(media.load_audio(path, SR, name="audio"))
    return audios


def build_clips(audios: list[np.ndarray], styles_per_audio: int, seed: int = 0) -> list[Clip]:
    """Conditions once per audio, `styles_per_audio` rule motions each (random styles and seeds)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    portrait = np.asarray(Image.open(ROOT / "examples" / "portraits" / "grace_hopper.jpg").convert("RGB"))
    clips = []
    with cached_portrait_pose(portrait):
        for audio in audios:
            cond = speech_conditions(audio, SR)
            for _ in range(styles_per_audio):
                motion = rule_motion(audio, cond, portrait, Style.draw(rng), int(rng.integers(2**31 - 1)))
                clips.append(Clip(cond, normalise(motion), audio))
    return clips


def windows(clips: list[Clip], batch: int, length: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of random (motion, cond) windows; short clips are edge-padded."""
    xs, cs = [], []
    for k in rng.integers(len(clips), size=batch):
        c = clips[k]
        t = len(c.motion)
        if t < length:
            pad = ((0, length - t), (0, 0))
            m, co = np.pad(c.motion, pad, mode="edge"), np.pad(c.cond, pad, mode="edge")
        else:
            s = int(rng.integers(t - length + 1))
            m, co = c.motion[s : s + length], c.cond[s : s + length]
        xs.append(m)
        cs.append(co)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(cs))


def train(
    model: LiteMotionModel,
    clips: list[Clip],
    steps: int,
    batch: int = 16,
    length: int = 100,
    lr: float = 2e-3,
    seed: int = 0,
    log_every: int = 100,
) -> list[float]:
    """Flow-matching regression (v = eps - x0, trainer.loss) with AdamW and a cosine schedule; returns the loss curve."""
    from trainer.loss import flow_matching_inputs, per_sample_mse

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda i: min(1.0, (i + 1) / warm) * 0.5 * (1 + np.cos(np.pi * min(i / max(steps, 1), 1.0)))
    )
    model.train()
    losses = []
    for step in range(steps):
        x0, cond = windows(clips, batch, length, rng)
        noise = torch.randn(x0.shape, generator=gen)
        sigma = torch.sigmoid(torch.randn(batch, generator=gen))  # logit-normal: most weight mid-way
        xt, target = flow_matching_inputs(x0, noise, sigma)
        loss = per_sample_mse(model(xt, sigma, cond), target).mean()
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        if log_every and (step + 1) % log_every == 0:
            print(f"step {step + 1}/{steps} loss {np.mean(losses[-log_every:]):.4f}", flush=True)
    model.eval()
    return losses


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m hallo4.lite_motion.train_base", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "weights")
    parser.add_argument("--sentences", type=int, default=36, help="espeak-ng sentences (random voice/rate/pitch)")
    parser.add_argument("--styles", type=int, default=3, help="random styles per audio")
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--width", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the machine is shared)")
    args = parser.parse_args(argv)

    def work() -> int:
        torch.manual_seed(args.seed)
        torch.set_num_threads(args.threads)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            audios = speech_corpus(Path(tmp), args.sentences, args.seed)
        clips = build_clips(audios, args.styles, args.seed)
        t_data = time.perf_counter() - t0
        print(f"{len(clips)} clips, {sum(len(c.motion) for c in clips)} frames in {t_data:.0f} s", flush=True)
        model = LiteMotionModel(width=args.width)
        losses = train(model, clips, args.steps, seed=args.seed)
        model.save_pretrained(str(args.out), safe_serialization=True)
        info = {
            "clips": len(clips),
            "frames": int(sum(len(c.motion) for c in clips)),
            "steps": args.steps,
            "final_loss": float(np.mean(losses[-100:])),
            "data_seconds": round(t_data, 1),
            "train_seconds": round(time.perf_counter() - t0 - t_data, 1),
            "parameters": sum(p.numel() for p in model.parameters()),
            "command": "python -m hallo4.lite_motion.train_base",
        }
        (args.out / "training.json").write_text(json.dumps(info, indent=2))
        print(json.dumps(info))
        return 0

    return run(work)


if __name__ == "__main__":
    raise SystemExit(main())
