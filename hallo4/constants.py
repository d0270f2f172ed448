"""One home for the facts every part of Hallo4 Studio shares.

Frame rate, sample rate, the clip length rule and the file suffixes each engine, the app, the meter
and the trainer accept. Change a fact here and every reader follows; nothing else writes these numbers.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

FPS = 25.0
"""Output frame rate of both engines (the release trains and samples at 25 fps)."""

SAMPLE_RATE = 16000
"""Audio sample rate of every speech feature (wav2vec2 and the lite engine's own features)."""

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
"""Portrait files the app, the CLI and the batch runner read."""

AUDIO_SUFFIXES = (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".aac", ".opus")
"""Speech files (decoded by ffmpeg, so any container it reads; these are the ones offered in pickers)."""

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".mkv", ".avi", ".m4v", ".gif")
"""Videos a skeleton is extracted from, or a rendered skeleton video is read back from."""

SKELETON_SUFFIXES = (".json", *VIDEO_SUFFIXES)
"""Skeleton inputs: the JSON format (hallo4.skeleton.format) or a video."""


def num_video_frames(num_samples: int, sr: int = SAMPLE_RATE, fps: float = FPS) -> int:
    """T = ceil(seconds * fps), at least 1: the release's clip length rule (audio drives length)."""
    return max(1, int(math.ceil(num_samples / sr * fps - 1e-9)))


def file_sha256(path: str | Path) -> str:
    """Content hash of a file, read in 1 MiB chunks (media store keys, result cache keys)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
