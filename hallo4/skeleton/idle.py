"""Idle (audio-only) motion synthesised around the portrait's own pose."""

from __future__ import annotations

import numpy as np

from ..audio_features import speech_envelope
from ..constants import FPS, SAMPLE_RATE
from .format import EYELID_PAIRS_68, EYES_68, SkeletonSequence
from .retarget import anchor, portrait_pose


def idle_skeleton(
    portrait: np.ndarray,
    num_frames: int,
    *,
    seed: int = 0,
    audio: np.ndarray | None = None,
    sr: int = SAMPLE_RATE,
    fps: float = FPS,
) -> SkeletonSequence:
    """Audio-only mode: natural idle motion around the portrait's own pose, deterministic for a seed.

    Breathing (shoulders rise ~0.25 Hz), slow head sway and roll, nods loosely following speech energy,
    and blinks on a random schedule.
    """
    base = portrait_pose(portrait)
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / fps
    neck = anchor(base.body[0])
    unit = neck[1] if neck else 0.25 * base.width  # shoulder width
    pivot = neck[0] if neck else np.array([base.width / 2, base.height * 0.8], np.float32)

    def wave(amp: float, freqs=(0.11, 0.23, 0.41)) -> np.ndarray:
        return sum(
            amp / len(freqs) * np.sin(2 * np.pi * f * rng.uniform(0.8, 1.25) * t + rng.uniform(0, 2 * np.pi))
            for f in freqs
        )

    breath = 0.012 * unit * np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * t + rng.uniform(0, 2 * np.pi))
    sway_x = wave(0.05 * unit)
    sway_y = wave(0.02 * unit)
    roll = wave(np.radians(3.0))
    if audio is not None and len(audio):
        env = speech_envelope(audio, sr, fps)
        env = np.pad(env, (0, max(0, num_frames - len(env))))[:num_frames]
        from scipy.ndimage import gaussian_filter1d

        energy = gaussian_filter1d(env.astype(np.float32), 5.0, mode="nearest")
        sway_y = sway_y + 0.05 * unit * (energy - energy.mean())  # nod down on emphasis
    blink = _blinks(rng, num_frames, fps)

    body = np.repeat(base.body, num_frames, 0)
    face = np.repeat(base.face, num_frames, 0)
    hands = np.zeros((num_frames, 2, 21, 3), np.float32)
    head_idx = [0, 14, 15, 16, 17]
    for i in range(num_frames):
        c, s = np.cos(roll[i]), np.sin(roll[i])
        rot = np.array([[c, -s], [s, c]], np.float32)
        move = np.array([sway_x[i], sway_y[i]], np.float32)
        for arr, idx in ((body[i], head_idx), (face[i], slice(None))):
            rel = arr[idx, :2] - pivot
            arr[idx, :2] = pivot + rel @ rot.T + move
        body[i, [1, 2, 5], 1] -= breath[i]
        if blink[i] > 0 and face[i, EYES_68, 2].min() > 0:
            for up, low in EYELID_PAIRS_68:
                face[i, up, 1] += blink[i] * 0.9 * (face[i, low, 1] - face[i, up, 1])
    return SkeletonSequence(body, hands, face, base.width, base.height, fps)


def _blinks(rng: np.random.Generator, num_frames: int, fps: float) -> np.ndarray:
    """Lid closure per frame (0 open .. 1 shut): 4-frame blinks at gamma-distributed intervals."""
    blink = np.zeros(num_frames, np.float32)
    k = int(rng.uniform(0.5, 2.5) * fps)
    while k < num_frames:
        blink[k : k + 4] = np.array([0.6, 1.0, 0.7, 0.3], np.float32)[: max(0, num_frames - k)]
        k += 4 + int(rng.gamma(4.0, 0.9) * fps)
    return blink
