"""Speech: decode any ffmpeg-readable audio (or a video's audio track) to mono float32, bounded."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..constants import FPS, SAMPLE_RATE
from ..errors import InputError
from .ffmpeg import check_file, quiet_cmd, run_ffmpeg
from .info import header_duration

SILENCE_PEAK = 1e-4


def load_audio(
    path: str | os.PathLike,
    sr: int = SAMPLE_RATE,
    *,
    name: str = "audio",
    max_seconds: float | None = None,
    allow_silence: bool = False,
) -> np.ndarray:
    """Decode any ffmpeg-readable audio (or a video's audio track) to mono float32 at `sr`.

    Bounded before decoding: without `max_seconds`, a file whose header says it is longer than the
    active cap (`hallo4.limits.active().max_audio_seconds`) is refused; and ffmpeg never decodes more
    than the cap (`-t`), so a lying header cannot make us hold more either.
    """
    from .. import limits

    p = check_file(path, name)
    cap = limits.active().max_audio_seconds
    if max_seconds is None:
        _refuse_longer_than(p, name, cap)
    seconds = cap if max_seconds is None else min(float(max_seconds), cap)
    cmd = quiet_cmd("-i", str(p), "-map", "0:a:0", "-vn", "-ac", "1", "-ar", str(int(sr)))
    cmd += ["-t", f"{seconds:.3f}", "-f", "f32le", "-"]
    out = run_ffmpeg(cmd, name, p, 600)
    if out.returncode != 0:
        _raise_decode_error(out.stderr.decode(errors="replace"), name, p)
    audio = np.frombuffer(out.stdout, dtype=np.float32).copy()
    if audio.size < sr // FPS:  # less than one video frame of sound
        raise InputError(
            name,
            "contains no audio (zero length)",
            "Upload a recording with speech, at least a second long.",
            path=str(p),
        )
    if not np.all(np.isfinite(audio)):
        audio = np.nan_to_num(audio)
    if not allow_silence and float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise InputError(
            name, "is silent", "Upload a recording with audible speech (check the microphone level).", path=str(p)
        )
    return np.clip(audio, -1.0, 1.0)


def _refuse_longer_than(p: Path, name: str, cap: float) -> None:
    """Refuse, from the header alone, a file that claims to be longer than the cap."""
    duration = header_duration(p, name)
    if duration is not None and duration > cap + 0.5:
        raise InputError(
            name,
            f"is {_clock(duration)} long, more than the {cap:g} s this server accepts",
            f"Trim it to {cap:g} s or less (or set a shorter maximum length) and upload it again.",
            path=str(p),
        )


def _raise_decode_error(err: str, name: str, p: Path) -> None:
    """ffmpeg failed: say whether the file has no audio track or could not be decoded at all."""
    if "matches no streams" in err or "Stream map" in err:
        raise InputError(
            name,
            "has no audio track",
            "Upload a file with speech in it (wav/mp3/m4a/flac/ogg, or a video with sound).",
            path=str(p),
        )
    raise InputError(
        name,
        "could not be decoded as audio (damaged file or unsupported format)",
        "Convert it to WAV or MP3 and upload it again.",
        path=str(p),
    )


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
        if s >= 3600
        else f"{s // 60}:{s % 60:02d} min"
        if s >= 60
        else f"{seconds:.1f} s"
    )
