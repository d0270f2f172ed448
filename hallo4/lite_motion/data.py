"""Training motion for the base model: today's rule-based lite motion with randomised style settings.

Each clip's motion is what the rule engine makes (hallo4.articulation mouth, blink schedule, idle head
sway/roll/nods from hallo4.skeleton.idle) under a random style: expressiveness, head liveliness, blink
rate, how completely the lips shut on "p/b/m", and a small yaw/pitch sway (the idle generator moves the
head in the image plane only, so without it the model would never turn the head), and brow raises on
speech emphasis (`brow_raises`). The base model thus
reproduces today's behaviour with natural variety, and that variety is what Arena votes choose from.
"""

from __future__ import annotations

import contextlib
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter1d

from ..articulation import articulate
from ..audio_features import speech_envelope
from ..constants import FPS, num_video_frames
from ..constants import SAMPLE_RATE as SR
from .features import hard_closure

# Sentences rich in lip closures ("p", "b", "m") and in open/spread/round vowels.
SENTENCES = (
    "Peter picked a peck of pickled peppers before breakfast.",
    "My mother made me a blue bowl of broth.",
    "Bob bought a big map of the moon.",
    "The harbour lamps burned above the empty beach.",
    "Please remember to bring the maps back by Monday.",
    "Who knew the blue moon would move so smoothly?",
    "Each evening we eat cheese and sweet peaches.",
    "Father parked the car by the barn on the farm.",
    "Improbable problems make brilliant puzzles.",
    "A small boat bobbed by the pier in the morning mist.",
    "Grandma baked bread and plum pie for the team.",
    "We hope you enjoy the show tonight, my friends.",
    "Big bumblebees buzz by the open window.",
    "Maybe the baby might sleep, but probably not.",
    "The museum opens at nine and closes at five.",
    "Bright balloons bounced above the market square.",
    "I am happy to help, please tell me more about it.",
    "Many people prefer the mountain path in May.",
    "Books about boats and bridges fill my room.",
    "Welcome back, it has been a long time.",
    "The weather is warm, so we walk to the pool.",
    "Mix the butter, sugar and milk in a bowl.",
    "Put the paper by the pot of purple paint.",
    "Remember, every moment matters more than money.",
)
VOICES = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-us+f3", "en-gb+f2", "en-us+m3", "en-us+f4")


@dataclass
class Style:
    """One random style: the knobs a person would turn in today's engine, drawn per clip."""

    expressiveness: float
    head: float  # head liveliness: scales translation and roll
    blink_rate: float
    closure: float  # 1 = lips fully shut on p/b/m, lower = they stay slightly parted
    turn: float  # yaw/pitch sway amplitude (relative)
    brow: float  # brow raises per 10 s of speech (emphasis peaks chosen at random)
    brow_height: float  # peak brow raise 0..1

    @classmethod
    def draw(cls, rng: np.random.Generator) -> Style:
        return cls(
            expressiveness=float(rng.uniform(0.75, 1.25)),
            head=float(np.exp(rng.uniform(np.log(0.3), np.log(2.2)))),
            blink_rate=float(np.exp(rng.uniform(np.log(0.4), np.log(2.5)))),
            closure=float(rng.uniform(0.3, 1.0)),
            turn=float(rng.uniform(0.0, 1.5)),
            brow=float(rng.uniform(1.5, 5.0)),
            brow_height=float(rng.uniform(0.35, 0.9)),
        )


def espeak(text: str, path: Path, voice: str = "en-us", rate: int = 160, pitch: int = 50) -> Path:
    """Synthesise `text` with espeak-ng (installed system binary) into a wav file."""
    subprocess.run(
        ["espeak-ng", "-v", voice, "-s", str(rate), "-p", str(pitch), "-w", str(path), text],
        check=True,
        capture_output=True,
    )
    return path


@contextlib.contextmanager
def cached_portrait_pose(portrait: np.ndarray):
    """Reuse one portrait's detected pose for many idle-motion draws (the detection, ~1 s, is the same each time)."""
    from ..skeleton import idle

    base = idle.portrait_pose(portrait)
    original = idle.portrait_pose
    idle.portrait_pose = lambda _image: base
    try:
        yield
    finally:
        idle.portrait_pose = original


def brow_raises(audio: np.ndarray, n: int, style: Style, rng: np.random.Generator) -> np.ndarray:
    """(n,) brow raise 0..1: smooth 0.2-0.6 s bumps on loudness peaks (speech emphasis), about `style.brow`
    per 10 s of speech, at random among the peaks; zero in silence (the bumps are cut to speech +- 0.1 s)."""
    from scipy.signal import find_peaks

    env = gaussian_filter1d(speech_envelope(audio, SR, FPS)[:n], 2.0, mode="nearest")
    out = np.zeros(n, np.float32)
    speech = env > 0.25 * max(float(env.max()), 1e-6)
    if not speech.any():
        return out
    peaks, _ = find_peaks(env, prominence=0.08 * float(env.max()), distance=int(0.5 * FPS))
    peaks = peaks[speech[peaks]]
    count = int(rng.poisson(style.brow * speech.sum() / FPS / 10.0))
    if count == 0 or len(peaks) == 0:
        return out
    chosen = rng.choice(peaks, size=min(count, len(peaks)), replace=False, p=env[peaks] / env[peaks].sum())
    for k in chosen:
        half = int(round(rng.uniform(0.2, 0.6) * FPS / 2))
        bump = np.hanning(2 * half + 1)[1:-1] * style.brow_height * rng.uniform(0.7, 1.0)
        lo, hi = k - half + 1, k + half
        seg = bump[max(0, -lo) : len(bump) - max(0, hi - n)]
        out[max(lo, 0) : min(hi, n)] = np.maximum(out[max(lo, 0) : min(hi, n)], seg)
    near_speech = np.convolve(speech.astype(float), np.ones(int(0.2 * FPS) + 1), mode="same") > 0
    return (out * near_speech).astype(np.float32)


def rule_motion(audio: np.ndarray, cond: np.ndarray, portrait: np.ndarray, style: Style, seed: int) -> np.ndarray:
    """(T, 9) motion (MOTION_NAMES order) from the rule engine under `style`."""
    from ..engines.lite import blink_track, head_motion_from_skeleton
    from ..skeleton import idle_skeleton

    rng = np.random.default_rng(seed)
    n = num_video_frames(len(audio), SR, FPS)
    art = articulate(audio, SR, FPS, style.expressiveness)
    open_ = art.open[:n].copy()
    hard = hard_closure(cond)[:n]
    leak = (1 - style.closure) * 1.5 * gaussian_filter1d(open_, 2.0, mode="nearest")
    open_[hard] = np.maximum(open_[hard], leak[hard])
    blinks = blink_track(n, rng, FPS, rate=style.blink_rate)
    head = (
        head_motion_from_skeleton(idle_skeleton(portrait, n, seed=seed, audio=audio, sr=SR, fps=FPS), n) * style.head
    )
    t = np.arange(n) / FPS

    def wave(amp: float, freqs=(0.09, 0.19, 0.37)) -> np.ndarray:
        return sum(
            amp / len(freqs) * np.sin(2 * np.pi * f * rng.uniform(0.8, 1.25) * t + rng.uniform(0, 2 * np.pi))
            for f in freqs
        )

    env = gaussian_filter1d(speech_envelope(audio, SR, FPS)[:n], 4.0, mode="nearest")
    yaw = wave(np.radians(5.0) * style.turn)
    pitch = wave(np.radians(2.5) * style.turn) + np.radians(2.0) * style.turn * (env - env.mean())  # nod on emphasis
    brow = brow_raises(audio, n, style, rng)
    return np.stack([open_, art.spread[:n], blinks, head[:, 0], head[:, 1], head[:, 2], yaw, pitch, brow], 1).astype(
        np.float32
    )
