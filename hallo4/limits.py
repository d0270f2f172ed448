"""What one request may cost, decided before any decoding starts.

Every size that drives memory or time (audio seconds, frames, canvas, fps, file bytes) is capped here,
in one place, and checked against what a cheap header probe or the parsed file *claims* before frames
or samples are decoded. Decoding itself is then bounded as well (ffmpeg `-t` / `-frames:v`), so a file
whose header lies still cannot make us hold more than the caps allow.

Memory budget of one request (documented in the README): the decoded data is bounded by the OUTPUT,
never by the input:

- audio: ``max_audio_seconds * 16000 * 4`` bytes (60 s: 3.8 MB);
- frames held at once: the lite engine streams (one canvas frame at a time); the hallo4 engine and a
  rendered skeleton video hold ``frames * width * height * 3`` bytes with ``frames <= max_frames`` and
  ``width, height <= 2048`` (the output canvas), see `frames_bytes`;
- inputs are never held at their own resolution: video frames are decoded one at a time and fitted
  to the output canvas at once; a skeleton's canvas size only positions its points.

Two profiles: the public app (`app_limits`, 60 s of audio unless HALLO4_MAX_AUDIO_SECONDS says
otherwise) and the command line (`cli_limits`, HALLO4_CLI_MAX_AUDIO_SECONDS, default 600 s). The
process-wide profile is `active()`; `app.py` switches to the app's with `use(app_limits())`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .constants import FPS
from .errors import InputError

SEED_MAX = 2**63 - 1  # numpy and torch both accept seeds in [0, 2**63 - 1]


@dataclass(frozen=True)
class Limits:
    """Caps on one request. `max_audio_seconds` also bounds every frame count (audio drives length)."""

    max_audio_seconds: float = 60.0
    max_skeleton_side: int = 4096  # width / height a skeleton file may claim for its canvas
    max_skeleton_frames: int = 15_000  # frames a skeleton file may hold (10 min at 25 fps)
    max_skeleton_bytes: int = 64 * 1024**2  # a skeleton JSON's size on disk (parsed into Python lists)
    min_fps: float = 1.0
    max_fps: float = 240.0
    max_video_side: int = 4096  # a video's decoded width / height (frames are fitted to the canvas at once)
    max_output_side: int = 2048  # the output canvas's long side
    max_preview_side: int = 1024  # Skeleton-tab previews without a portrait

    @property
    def max_frames(self) -> int:
        """Output frames of the longest allowed audio."""
        return int(math.ceil(self.max_audio_seconds * FPS)) + 1

    def audio_seconds(self, requested: float | None) -> float:
        """The audio length to decode: the request's, never more than the cap (empty = the cap)."""
        if requested is None:
            return float(self.max_audio_seconds)
        return float(min(float(requested), self.max_audio_seconds))

    def frames_bytes(self, width: int, height: int, frames: int | None = None) -> int:
        """Bytes of `frames` RGB frames of the output canvas (default: the longest allowed clip)."""
        return int(width) * int(height) * 3 * int(self.max_frames if frames is None else frames)

    def check_fps(self, fps: float, what: str, path: str | None = None) -> float:
        fps = float(fps)
        if not math.isfinite(fps) or not self.min_fps <= fps <= self.max_fps:
            raise InputError(
                what,
                f"its frame rate {fps:g} fps is outside {self.min_fps:g}-{self.max_fps:g} fps",
                "Re-export it at a normal frame rate (25 or 30 fps).",
                path=path,
            )
        return fps


def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise InputError(
            name, f"{raw!r} is not a number", f"Set it to a number of seconds, e.g. {default:g}."
        ) from None
    if not math.isfinite(value) or value <= 0:
        raise InputError(name, f"{raw!r} must be a positive number of seconds", f"Set it to e.g. {default:g}.")
    return value


def app_limits() -> Limits:
    """The public app's caps (HALLO4_MAX_AUDIO_SECONDS, default 60 s)."""
    return Limits(max_audio_seconds=_env_float("HALLO4_MAX_AUDIO_SECONDS", 60.0))


def cli_limits() -> Limits:
    """The command line's caps: longer audio (HALLO4_CLI_MAX_AUDIO_SECONDS, default 600 s)."""
    return Limits(max_audio_seconds=_env_float("HALLO4_CLI_MAX_AUDIO_SECONDS", 600.0))


_active: Limits | None = None


def active() -> Limits:
    """The process's caps: the CLI's unless `use` switched them (the app does at start-up)."""
    return _active if _active is not None else use(cli_limits())


def use(limits: Limits) -> Limits:
    """Make `limits` the process's caps (returned, for chaining)."""
    global _active
    _active = limits
    return limits


def check_seed(seed: object) -> int | None:
    """None / -1 = random; otherwise an integer in [0, 2**63 - 1], with a clear message if not."""
    if seed is None or seed == "" or seed == -1:
        return None
    try:
        value = float(seed)
    except (TypeError, ValueError):
        raise InputError(
            "seed", f"{seed!r} is not a whole number", "Enter a whole number, or -1 for a random seed."
        ) from None
    if not math.isfinite(value) or value != int(value):
        raise InputError("seed", f"{seed!r} is not a whole number", "Enter a whole number, or -1 for a random seed.")
    value = int(seed) if isinstance(seed, int) else int(value)
    if value < 0:
        raise InputError("seed", f"{value} is negative", "Use a seed from 0 to 2^63-1, or -1 for a random seed.")
    if value > SEED_MAX:
        raise InputError(
            "seed", f"{value} is larger than 2^63-1", "Use a seed from 0 to 2^63-1, or -1 for a random seed."
        )
    return value
