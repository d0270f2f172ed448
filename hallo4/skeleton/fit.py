"""Fitting a skeleton sequence to the audio's length (ping-pong / hold / trim), always with a message."""

from __future__ import annotations

import numpy as np

from ..errors import InputError
from .format import SkeletonSequence


def pingpong_indices(length: int, num_frames: int) -> np.ndarray:
    """Frame indices that play `length` frames forwards then backwards (0..n-1..1, no frame twice at a
    turn, so no visible jump) until `num_frames` are filled; a single frame is held."""
    if length <= 1:
        return np.zeros(num_frames, dtype=int)
    cycle = np.concatenate([np.arange(length), np.arange(length - 2, 0, -1)])
    return cycle[np.arange(num_frames) % len(cycle)]


def fit_length(seq: SkeletonSequence, num_frames: int, mode: str = "pingpong") -> tuple[SkeletonSequence, str]:
    """Make the sequence `num_frames` long, and say what was done (never silently)."""
    n = seq.num_frames
    if num_frames <= 0:
        raise InputError("length", "must be at least one frame", "Use audio of at least 40 ms.")
    if mode not in ("pingpong", "hold", "trim", "loop"):
        raise InputError("fit mode", f"unknown mode {mode!r}", "Use pingpong, hold or trim.")
    if n == num_frames:
        return seq, ""
    if num_frames < n:
        return seq.slice(0, num_frames), f"Skeleton trimmed from {n} to {num_frames} frames to match the audio."
    if mode == "trim":
        return seq, f"Skeleton ({n} frames) is shorter than the audio ({num_frames} frames); kept as is (trim mode)."
    if mode == "hold" or n == 1:
        idx = np.concatenate([np.arange(n), np.full(num_frames - n, n - 1)])
        msg = f"Skeleton ({n} frames) was shorter than the audio; the last pose is held for {num_frames - n} frames."
    elif mode == "loop":
        idx = np.arange(num_frames) % n
        msg = f"Skeleton ({n} frames) looped to {num_frames} frames."
    else:
        idx = pingpong_indices(n, num_frames)
        msg = f"Skeleton ({n} frames) was shorter than the audio; played back and forth (ping-pong) to {num_frames} frames."
    out = SkeletonSequence(seq.body[idx], seq.hands[idx], seq.face[idx], seq.width, seq.height, seq.fps)
    return out, msg
