"""The pipeline's inputs as arrays: portrait and speech loading, the canvas, the skeleton frames.

Everything here works on the CPU in pixels (uint8 frames, 16 kHz float audio); the VAE side of the
conditions is `vace_context`. The trainer builds its inputs through the same functions (via the pipeline's
public methods), so a training pair is conditioned exactly as a generated clip.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from .. import media
from ..constants import FPS, SAMPLE_RATE, VIDEO_SUFFIXES
from ..errors import Hallo4Error, InputError

DEFAULT_CANVAS = (832, 480)  # (width, height); portraits narrower than 480:832 use (480, 832)


def default_canvas(src_width: int, src_height: int) -> tuple[int, int]:
    """(width, height): 832x480, or 480x832 for images narrower than 480:832 (no cropping)."""
    return (480, 832) if src_width / src_height < 480 / 832 - 1e-6 else DEFAULT_CANVAS


def load_portrait(portrait) -> np.ndarray:
    """A path, PIL image or (H, W, 3) uint8 array -> (H, W, 3) uint8 RGB."""
    if isinstance(portrait, (str, os.PathLike)):
        return np.asarray(media.load_image(portrait, name="portrait"))
    if hasattr(portrait, "convert"):  # PIL
        return np.asarray(portrait.convert("RGB"))
    arr = np.asarray(portrait)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InputError("portrait", f"expected an (H, W, 3) uint8 RGB image, got {arr.shape} {arr.dtype}")
    return arr


def load_audio(audio, max_seconds: float | None) -> np.ndarray:
    """A path (any ffmpeg-readable file) or a 16 kHz float array -> mono float32 at 16 kHz, cut to `max_seconds`."""
    if isinstance(audio, (str, os.PathLike)):
        return media.load_audio(audio, SAMPLE_RATE, name="audio", max_seconds=max_seconds)
    wav = np.asarray(audio, dtype=np.float32).reshape(-1)
    if max_seconds is not None:
        wav = wav[: int(round(max_seconds * SAMPLE_RATE))]
    if wav.size < int(SAMPLE_RATE / FPS):  # less than one video frame
        raise InputError("audio", "contains no audio (zero length)", "Upload a recording with speech.")
    return wav


def frames_to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def pad_repeat(x, n: int):
    """Pad along axis 0 to n by repeating the last element (or trim)."""
    if len(x) >= n:
        return x[:n]
    if isinstance(x, torch.Tensor):
        return torch.cat([x, x[-1:].expand(n - len(x), *x.shape[1:])], 0)
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), 0)], 0)


def fit_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """Ping-pong loop (or trim) frames to length n (the indices: `skeleton.pingpong_indices`, the one home)."""
    from ..skeleton import pingpong_indices

    t = len(frames)
    if t == 0:
        raise InputError("skeleton", "has no frames", "Upload a skeleton with at least one frame.")
    if t >= n:
        return frames[:n]
    return frames[pingpong_indices(t, n)]


def skeleton_frames(
    skeleton, portrait: np.ndarray, n: int, width: int, height: int, seed: int, audio: np.ndarray, warnings: list[str]
) -> np.ndarray | None:
    """Rendered skeleton frames (n, H, W, 3) uint8 on the canvas, or None (skeleton=False: no skeleton).

    skeleton: None (an idle skeleton from the portrait), a path (JSON / OpenPose / DWPose, or a rendered
    video), a `SkeletonSequence` or rendered (T, H, W, 3) frames. Its length is fitted to n (ping-pong loop
    or trim); a fitted length is said in `warnings`."""
    if skeleton is False:
        return None
    if skeleton is None:
        return _idle_frames(portrait, n, width, height, seed, audio)
    if isinstance(skeleton, (str, os.PathLike)):
        path = Path(skeleton)
        if not path.exists():
            raise InputError("skeleton", "file not found", "Upload the skeleton again.", path=str(path))
        if path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES:
            from ..skeleton.render import load_skeleton_video

            frames = load_skeleton_video(path, width, height, max_frames=n)  # never more than needed
            if len(frames) != n:
                warnings.append(
                    f"The skeleton video has {len(frames)} frames for {n} audio frames; "
                    "it was looped back and forth / trimmed to the audio."
                )
            return fit_frames(frames, n)
        from ..skeleton import SkeletonSequence

        skeleton = SkeletonSequence.load(path)
    if isinstance(skeleton, np.ndarray):
        frames = skeleton
        if frames.ndim != 4 or frames.shape[-1] != 3:
            raise InputError("skeleton", f"frames must be (T, H, W, 3), got {frames.shape}")
        if frames.shape[1:3] != (height, width):
            frames = np.stack([media.fit_to_canvas(f, width, height)[0] for f in frames])
        return fit_frames(frames.astype(np.uint8), n)
    # a SkeletonSequence
    from ..skeleton import fit_length, render_skeleton

    seq = skeleton.resample(FPS) if abs(float(skeleton.fps) - FPS) > 1e-3 else skeleton
    seq, message = fit_length(seq, n, "pingpong")
    if message:
        warnings.append(message)
    return fit_frames(render_skeleton(seq, width, height), n)


def _idle_frames(portrait: np.ndarray, n: int, width: int, height: int, seed: int, audio: np.ndarray) -> np.ndarray:
    """Audio-only mode: an idle skeleton synthesised from the portrait, rendered on the canvas."""
    try:
        from ..skeleton import idle_skeleton, render_skeleton
    except ImportError as exc:
        raise Hallo4Error(
            "Audio-only generation needs an idle skeleton, but hallo4.skeleton.idle_skeleton is not "
            f"available ({exc}).",
            hint="Pass a skeleton (JSON or rendered video), or skeleton=False for no skeleton conditioning.",
        ) from exc
    seq = idle_skeleton(portrait, n, seed=seed, audio=audio, sr=SAMPLE_RATE, fps=FPS)
    return fit_frames(render_skeleton(seq, width, height), n)
