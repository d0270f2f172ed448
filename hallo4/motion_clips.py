"""Talking-head clips with known head motion, made from a real portrait (for tests and benchmarks).

No redistributable talking-head video ships with the project, so the driving footage is made from an
example photo: the lite engine's warp rig turns (yaw, pitch), tilts (roll) and moves the head along
smooth tracks while the mouth follows real speech. The tracks are returned, so what a skeleton
extracted from the clip should show is known.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import media
from .constants import FPS


@dataclass
class MotionClip:
    video: Path
    yaw: np.ndarray  # radians per frame, as commanded to the rig
    pitch: np.ndarray
    roll: np.ndarray
    shift: np.ndarray  # (T, 2) translation in eye distances


def head_tracks(
    num_frames: int,
    *,
    yaw_deg: float = 20.0,
    pitch_deg: float = 7.0,
    roll_deg: float = 4.0,
    shift: float = 0.25,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Smooth, seeded head tracks of a talker: a few slow sines per axis, starting at rest (frame 0 = 0)."""
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / FPS

    def track(amp: float) -> np.ndarray:
        x = sum(np.sin(2 * np.pi * rng.uniform(0.15, 0.6) * t + rng.uniform(0, 2 * np.pi)) for _ in range(3)) / 2.0
        x = x - x[0]
        return (amp * x / (np.abs(x).max() + 1e-6)).astype(np.float32)

    return {
        "yaw": np.radians(track(yaw_deg)),
        "pitch": np.radians(track(pitch_deg)),
        "roll": np.radians(track(roll_deg)),
        "shift": np.stack([track(shift), track(shift * 0.5)], 1),
    }


def talking_head_clip(
    portrait: str | Path | np.ndarray,
    out: str | Path,
    seconds: float = 2.0,
    *,
    audio: str | Path | None = None,
    size: int = 384,
    seed: int = 0,
    **track_kw,
) -> MotionClip:
    """Render `seconds` of the portrait talking (mouth from `audio` when given) with known head motion."""
    from . import face as F
    from .engines.lite import SR, FaceRig, blink_track, mouth_tracks

    img = portrait if isinstance(portrait, np.ndarray) else media.load_image(portrait, name="portrait")
    if not isinstance(img, np.ndarray):
        w, h = media.output_size(img.width, img.height, size, multiple=2)
        img = np.asarray(img.resize((w, h), resample=3))
    analysis = F.analyze_face(img, require=True)
    rig = FaceRig(img, analysis.landmarks)
    n = int(round(seconds * FPS))
    tr = head_tracks(n, seed=seed, **track_kw)
    if audio is not None:
        sound = media.load_audio(audio, SR, name="audio", max_seconds=seconds)
        mouth = mouth_tracks(sound, SR, FPS)
        open_, spread = np.resize(mouth["open"], n), np.resize(mouth["spread"], n)
    else:
        sound, open_, spread = None, np.zeros(n, np.float32), np.zeros(n, np.float32)
    blinks = blink_track(n, np.random.default_rng(seed))
    head = np.concatenate([tr["shift"], np.stack([tr["roll"], tr["yaw"], tr["pitch"]], 1)], 1).astype(np.float32)
    frames = (rig.render(open_[i], spread[i], blinks[i], head[i]) for i in range(n))
    path = media.write_mp4(out, frames, fps=FPS, audio=sound, audio_sr=SR, num_frames=n)
    return MotionClip(Path(path), tr["yaw"], tr["pitch"], tr["roll"], tr["shift"])
