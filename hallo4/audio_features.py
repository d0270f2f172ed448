"""Frame-rate speech features (25 fps) that need no model weights.

Used by the lite engine (mouth targets), the lip-sync meter (speech envelope) and idle motion
(speech energy). Each video frame t is centred on sample t * sr / fps, with a 64 ms window.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .constants import FPS, SAMPLE_RATE, num_video_frames

__all__ = ["ArticulatoryFeatures", "articulatory_features", "attack_release", "num_video_frames", "speech_envelope"]


def _frames(audio: np.ndarray, sr: int, fps: float, win: int) -> np.ndarray:
    n = num_video_frames(len(audio), sr, fps)
    hop = sr / fps
    centres = (np.arange(n) * hop + hop / 2).astype(np.int64)
    padded = np.pad(audio.astype(np.float32), (win // 2, win // 2))
    idx = centres[:, None] + np.arange(win)[None, :]
    idx = np.clip(idx, 0, len(padded) - 1)
    return padded[idx]


def speech_envelope(audio: np.ndarray, sr: int = SAMPLE_RATE, fps: float = FPS) -> np.ndarray:
    """Loudness per video frame in [0, 1]: RMS in dB mapped from a noise floor to the 98th percentile."""
    win = int(sr * 0.064)
    frames = _frames(audio, sr, fps, win) * np.hanning(win)[None, :].astype(np.float32)
    rms = np.sqrt(np.mean(frames**2, axis=1) + 1e-12)
    db = 20 * np.log10(rms + 1e-9)
    top = np.percentile(db, 98)
    floor = max(np.percentile(db, 10), top - 45.0)
    floor = min(floor, top - 20.0)
    return np.clip((db - floor) / (top - floor + 1e-6), 0.0, 1.0).astype(np.float32)


def attack_release(x: np.ndarray, attack: float, release: float) -> np.ndarray:
    """One-pole smoother with separate rise/fall coefficients (per frame, 0..1: 1 = instant)."""
    y = np.empty_like(x)
    acc = float(x[0]) if len(x) else 0.0
    for i, v in enumerate(x):
        k = attack if v > acc else release
        acc += k * (float(v) - acc)
        y[i] = acc
    return y


# ----------------------------------------------------------------------------------------------
# Articulatory features: formants and lip-closure cues (used by hallo4.articulation)
# ----------------------------------------------------------------------------------------------
@dataclass
class ArticulatoryFeatures:
    """Per-video-frame acoustic cues for the mouth shape (all (T,) float32).

    f1/f2 are the first two formants in Hz (NaN where the frame is not a clear vowel); `level_db` is
    the frame level relative to the loudest 2% of the clip; `dip` is how far (dB) the quietest 10 ms
    inside the frame falls below the speech on both sides of it (a stop closure is a short silence),
    `dip_either` below the louder side (a nasal can start or end a word);
    `murmur` is the share of energy below 400 Hz (a nasal or voice bar: the lips are shut and sound
    leaves through the nose or throat); `vowelness` is 0..1 confidence that the frame is a vowel.
    """

    f1: np.ndarray
    f2: np.ndarray
    level_db: np.ndarray
    dip: np.ndarray
    dip_either: np.ndarray
    murmur: np.ndarray
    vowelness: np.ndarray
    envelope: np.ndarray
    # The same closure cues on 10 ms sub-frames (a 50 ms closure can straddle two video frames):
    sub_level_db: np.ndarray
    sub_dip: np.ndarray
    sub_dip_either: np.ndarray
    sub_murmur: np.ndarray
    sub_frame_of: np.ndarray  # (S,) the video frame each sub-frame belongs to
    # Frication (what the lips and teeth do while the level dips): spectral flatness over 1-8 kHz
    # (noise is flat, voicing is not) and the share of energy above 3 kHz.
    flatness: np.ndarray | None = None
    high_share: np.ndarray | None = None


def _formants(frames: np.ndarray, sr: int, order: int) -> tuple[np.ndarray, np.ndarray]:
    """F1, F2 per frame from LPC roots (autocorrelation method; roots as companion-matrix eigenvalues).

    The LPC coefficients come from scipy's Levinson solver on each frame's autocorrelation, not
    librosa.lpc: that one is numba-compiled and its first call costs seconds, more than a whole clip.
    """
    from scipy.linalg import solve_toeplitz

    frames = frames - frames.mean(axis=1, keepdims=True)
    frames = np.concatenate([frames[:, :1], frames[:, 1:] - 0.63 * frames[:, :-1]], axis=1)  # pre-emphasis
    frames = frames * np.hamming(frames.shape[1])[None, :].astype(np.float32)
    frames = frames + 1e-6 * np.random.default_rng(0).standard_normal(frames.shape).astype(np.float32)  # silence-safe
    spec = np.fft.rfft(frames.astype(np.float64), n=2 * frames.shape[1], axis=1)
    r = np.fft.irfft(np.abs(spec) ** 2, axis=1)[:, : order + 1]
    r[:, 0] *= 1.0 + 1e-9  # white-noise correction keeps the Toeplitz system well conditioned
    a = np.ones((len(frames), order + 1))
    for t in range(len(frames)):
        a[t, 1:] = -solve_toeplitz(r[t, :order], r[t, 1:])  # (T, order + 1), a[:, 0] == 1
    comp = np.zeros((len(a), order, order))
    comp[:, 0, :] = -a[:, 1:]
    comp[:, np.arange(1, order), np.arange(order - 1)] = 1.0
    roots = np.linalg.eigvals(comp)
    freq = np.angle(roots) * sr / (2 * np.pi)
    bw = -np.log(np.abs(roots) + 1e-12) * sr / np.pi
    ok = (freq > 180) & (freq < sr / 2 - 200) & (bw < 500)
    freq = np.where(ok, freq, np.inf)
    freq.sort(axis=1)
    f1, f2 = freq[:, 0], freq[:, 1]
    f1 = np.where(np.isfinite(f1), f1, np.nan)
    f2 = np.where(np.isfinite(f2), f2, np.nan)
    return f1.astype(np.float32), f2.astype(np.float32)


def _levels_and_dips(audio: np.ndarray, sr: int, sub: int, n: int, per: float):
    """Sub-frame level (dB re the loud part), frame level, and how far each frame dips below the speech
    on both sides (a stop) or the louder side (a nasal starting or ending a word) within 120 ms."""
    m = len(audio) // sub
    rms = np.sqrt(np.mean(audio[: m * sub].reshape(m, sub) ** 2, axis=1) + 1e-12) if m else np.zeros(1)
    db_sub = 20 * np.log10(rms + 1e-9)
    # Relative to the loud part of the clip, but never below -40 dBFS: digital silence or a near-silent
    # recording must not count as loud just because nothing in it is louder.
    top = max(float(np.percentile(db_sub, 98)), -40.0) if m else 0.0
    db_sub = np.maximum(db_sub - top, -60.0)
    starts = np.clip((np.arange(n) * per).astype(int), 0, max(len(db_sub) - 1, 0))
    stops = np.clip(starts + int(round(per)), starts + 1, len(db_sub))
    level = np.array([db_sub[a:b].mean() for a, b in zip(starts, stops)], np.float32)
    # A closure is a dip below loud speech on BOTH sides: the quiet before the first word is silence, not a stop.
    span = int(round(0.12 * sr / sub))  # 120 ms of sub-frames
    padded = np.pad(db_sub, span, mode="constant", constant_values=-60.0)
    windows = np.lib.stride_tricks.sliding_window_view(padded, span + 1)
    before, after = windows[: len(db_sub)].max(1), windows[span : span + len(db_sub)].max(1)
    both, either = np.minimum(before, after), np.maximum(before, after)
    dip = np.array([(both[a:b] - db_sub[a:b]).max() for a, b in zip(starts, stops)], np.float32)
    dip_either = np.array([(either[a:b] - db_sub[a:b]).max() for a, b in zip(starts, stops)], np.float32)
    return db_sub, level, dip, dip_either, both, either


def articulatory_features(audio: np.ndarray, sr: int = SAMPLE_RATE, fps: float = FPS) -> ArticulatoryFeatures:
    """Formants, level, closure dips and nasal murmur per video frame, without any model.

    Hand-written signal processing because no maintained library maps speech to lip shapes without
    learned weights. It uses scipy's Levinson solver and numpy FFTs rather than librosa
    (or scipy.signal): their first call loads numba / scipy.stats and costs seconds, longer than
    rendering a clip. Level and dips on 10 ms sub-frames so a 60 ms stop closure is seen
    even though a video frame lasts 40 ms.
    """
    # Longer than 60 lines: numbered steps 1-5 on the same padded audio, windows and spectrum bins; levels and
    # dips already live in _levels_and_dips.
    audio = np.asarray(audio, np.float32)
    env = speech_envelope(audio, sr, fps)
    n = len(env)
    # Whole video frames of samples (at least one), so every frame has its 10 ms sub-frames.
    audio = np.pad(audio, (0, max(0, int(math.ceil(n * sr / fps)) - len(audio))))
    # 1. Formants on a 30 ms window, LPC order 2 + kHz (the textbook rule: 18 at 16 kHz).
    win = int(0.030 * sr)
    f1, f2 = _formants(_frames(audio, sr, fps, win), sr, order=2 + int(sr // 1000))
    # 2. Level per 10 ms sub-frame relative to the loud part of the clip, and its dips (closures).
    sub = int(sr * 0.010)
    m = len(audio) // sub
    per = sr / fps / sub  # sub-frames per video frame (4 at 25 fps)
    db_sub, level, dip, dip_either, both, either = _levels_and_dips(audio, sr, sub, n, per)
    # 3. Murmur: share of 80-4000 Hz energy below 400 Hz on a 32 ms window.
    win2 = int(0.032 * sr)
    spec = np.abs(np.fft.rfft(_frames(audio, sr, fps, win2) * np.hanning(win2)[None, :], axis=1)) ** 2
    freqs = np.fft.rfftfreq(win2, 1.0 / sr)
    lo = spec[:, (freqs >= 80) & (freqs < 400)].sum(1)
    mid = spec[:, (freqs >= 400) & (freqs < 4000)].sum(1)
    murmur = (lo / (lo + mid + 1e-12)).astype(np.float32)
    noise = spec[:, (freqs >= 1000) & (freqs < 8000)] + 1e-12
    flatness = (np.exp(np.log(noise).mean(1)) / noise.mean(1)).astype(np.float32)
    high_share = (spec[:, freqs >= 3000].sum(1) / (spec[:, freqs >= 80].sum(1) + 1e-12)).astype(np.float32)
    # 4. Vowel confidence: loud, voiced, and the formants are where vowels put them.
    valid = np.isfinite(f1) & np.isfinite(f2) & (f1 > 200) & (f1 < 1100) & (f2 > 600) & (f2 < 3200)
    vowelness = np.clip((level + 30.0) / 15.0, 0, 1) * valid * np.clip((0.97 - murmur) / 0.2, 0, 1)
    # 5. Sub-frame murmur (32 ms windows every 10 ms, centred on each sub-frame).
    centres = np.arange(m) * sub + sub // 2
    padded_audio = np.pad(audio, (win2 // 2, win2 // 2))
    idx = np.clip(centres[:, None] + np.arange(win2)[None, :], 0, len(padded_audio) - 1)
    hann = np.hanning(win2)[None, :].astype(np.float32)
    sspec = np.abs(np.fft.rfft(padded_audio[idx] * hann, axis=1)) ** 2 if m else np.zeros((1, win2 // 2 + 1))
    slo = sspec[:, (freqs >= 80) & (freqs < 400)].sum(1)
    smid = sspec[:, (freqs >= 400) & (freqs < 4000)].sum(1)
    sub_murmur = (slo / (slo + smid + 1e-12)).astype(np.float32)
    sub_murmur = np.pad(sub_murmur, (0, len(db_sub) - len(sub_murmur)))
    sub_frame_of = np.minimum((np.arange(len(db_sub)) / per).astype(int), n - 1)
    return ArticulatoryFeatures(
        f1,
        f2,
        level,
        dip,
        dip_either,
        murmur,
        vowelness.astype(np.float32),
        env,
        db_sub.astype(np.float32),
        (both - db_sub).astype(np.float32),
        (either - db_sub).astype(np.float32),
        sub_murmur,
        sub_frame_of,
        flatness,
        high_share,
    )
