"""The lite engine's per-frame motion tracks from rules: mouth shape, blinks and head motion.

The mouth comes from the speech (hallo4.articulation), blinks from a seeded natural schedule, the head
from a skeleton sequence's eye and nose keypoints. The lite motion model (hallo4.lite_motion) samples
the same tracks instead of the rules when asked to.
"""

from __future__ import annotations

import numpy as np

from ..articulation import articulate
from ..constants import FPS


def mouth_tracks(audio: np.ndarray, sr: int, fps: float, expressiveness: float = 1.0) -> dict[str, np.ndarray]:
    """Per-frame jaw opening (0..1), lip spread (-1 round .. +1 wide) and closure: see hallo4.articulation."""
    return articulate(audio, sr, fps, expressiveness).as_tracks()


def blink_track(n: int, rng: np.random.Generator, fps: float = FPS, rate: float = 1.0) -> np.ndarray:
    """Eyelid closure 0..1 per frame: blinks every ~2-6 s / `rate` (gamma-distributed), ~200 ms each."""
    track = np.zeros(n, np.float32)
    shape = np.array([0.35, 0.85, 1.0, 0.7, 0.35, 0.1], np.float32)  # fast close, slower open
    t = int(rng.uniform(0.6, 2.5) * fps)
    while t < n:
        seg = shape[: max(0, min(len(shape), n - t))]
        track[t : t + len(seg)] = np.maximum(track[t : t + len(seg)], seg)
        t += len(shape) + int(rng.gamma(4.0, 0.9 / rate) * fps)
    return track


def head_motion_from_skeleton(seq, n: int) -> np.ndarray:
    """Head translation (in inter-ocular distances) and roll from eye/nose keypoints, relative to frame 0."""
    face = np.asarray(seq.face, np.float32)[:n]
    body = np.asarray(seq.body, np.float32)[:n]
    conf_face = face[:, 36:48, 2].mean(axis=1)
    if np.mean(conf_face > 0.3) > 0.5:
        right = face[:, 36:42, :2].mean(axis=1)
        left = face[:, 42:48, :2].mean(axis=1)
        nose = face[:, 30, :2]
    else:  # COCO-18: 0 nose, 14 right eye, 15 left eye
        right, left, nose = body[:, 14, :2], body[:, 15, :2], body[:, 0, :2]
    iod = np.linalg.norm(left[0] - right[0]) + 1e-6
    centre = (left + right) / 2 * 0.5 + nose * 0.5
    d = left - right
    roll = np.arctan2(d[:, 1], d[:, 0])
    out = np.zeros((len(face), 3), np.float32)
    out[:, :2] = (centre - centre[:1]) / iod
    out[:, 2] = roll - roll[0]
    out = np.clip(out, [-0.6, -0.6, -0.35], [0.6, 0.6, 0.35])
    if len(out) < n:
        out = np.concatenate([out, np.repeat(out[-1:], n - len(out), axis=0)])
    return out
