"""Frame-rate speech features (25 fps) that need no model weights.

Used by the lite engine (mouth targets), the lip-sync meter (speech envelope) and idle motion
(speech energy). Each video frame t is centred on sample t * sr / fps, with a 64 ms window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

VISEMES = ("closed", "open", "wide", "round")


def num_video_frames(num_samples: int, sr: int, fps: float = 25.0) -> int:
    """T = ceil(seconds * fps), as in Hallo4."""
    return max(1, int(math.ceil(num_samples / sr * fps - 1e-9)))


def _frames(audio: np.ndarray, sr: int, fps: float, win: int) -> np.ndarray:
    n = num_video_frames(len(audio), sr, fps)
    hop = sr / fps
    centres = (np.arange(n) * hop + hop / 2).astype(np.int64)
    padded = np.pad(audio.astype(np.float32), (win // 2, win // 2))
    idx = centres[:, None] + np.arange(win)[None, :]
    idx = np.clip(idx, 0, len(padded) - 1)
    return padded[idx]


def speech_envelope(audio: np.ndarray, sr: int = 16000, fps: float = 25.0) -> np.ndarray:
    """Loudness per video frame in [0, 1]: RMS in dB mapped from a noise floor to the 98th percentile."""
    win = int(sr * 0.064)
    frames = _frames(audio, sr, fps, win) * np.hanning(win)[None, :].astype(np.float32)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    db = 20 * np.log10(rms + 1e-9)
    top = np.percentile(db, 98)
    floor = max(np.percentile(db, 10), top - 45.0)
    floor = min(floor, top - 20.0)
    return np.clip((db - floor) / (top - floor + 1e-6), 0.0, 1.0).astype(np.float32)


@dataclass
class SpeechFeatures:
    envelope: np.ndarray  # (T,) loudness 0..1
    voicing: np.ndarray  # (T,) 0..1, low-band share of energy (vowels, voiced consonants)
    brightness: np.ndarray  # (T,) 0..1, high-band share (s, sh, f, "ee")
    roundness: np.ndarray  # (T,) 0..1, low-F2 vowels ("oo", "o", "w")
    viseme: np.ndarray  # (T,) int index into VISEMES

    @property
    def num_frames(self) -> int:
        return len(self.envelope)


def speech_features(audio: np.ndarray, sr: int = 16000, fps: float = 25.0) -> SpeechFeatures:
    """Envelope, voicing and a coarse viseme class from the spectral shape of each frame.

    Hand-written because no library maps audio to mouth shapes without a model: band-energy ratios are
    a well-known weight-free proxy (F1 energy ~ jaw opening, high band ~ spread lips / fricatives,
    strong F1 with weak F2 region ~ rounded lips).
    """
    env = speech_envelope(audio, sr, fps)
    win = 1024 if sr >= 16000 else 512
    frames = _frames(audio, sr, fps, win) * np.hanning(win)[None, :].astype(np.float32)
    spec = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    freqs = np.fft.rfftfreq(win, 1.0 / sr)

    def band(lo: float, hi: float) -> np.ndarray:
        m = (freqs >= lo) & (freqs < hi)
        return spec[:, m].sum(axis=1)

    low = band(80, 900)  # F1 region
    mid = band(900, 2500)  # F2 region
    high = band(2500, min(7500, sr / 2))
    total = low + mid + high + 1e-9
    voicing = np.clip(low / total * 1.4, 0, 1)
    brightness = np.clip(high / total * 2.0, 0, 1)
    roundness = np.clip((low / (mid + 1e-9) - 2.0) / 6.0, 0, 1) * voicing
    scores = np.stack(
        [
            1.0 - env * 1.5,  # closed
            env * voicing * (1 - roundness),  # open
            env * brightness * 1.2,  # wide
            env * roundness * 1.3,  # round
        ],
        axis=1,
    )
    return SpeechFeatures(env, voicing.astype(np.float32), brightness.astype(np.float32),
                          roundness.astype(np.float32), scores.argmax(axis=1))


def attack_release(x: np.ndarray, attack: float, release: float) -> np.ndarray:
    """One-pole smoother with separate rise/fall coefficients (per frame, 0..1: 1 = instant)."""
    y = np.empty_like(x)
    acc = float(x[0]) if len(x) else 0.0
    for i, v in enumerate(x):
        k = attack if v > acc else release
        acc += k * (float(v) - acc)
        y[i] = acc
    return y
