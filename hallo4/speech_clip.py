"""Short speech clips that start with talking: the Arena cuts each pair's audio to a few seconds, and a
clip that opens on the pause before the first word shows a still face. Core code (no UI): the studio
uses it, the UI re-exports it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .constants import FPS
from .constants import SAMPLE_RATE as SR


def speech_onset(audio: np.ndarray, sr: int = SR, threshold: float = 0.3) -> float:
    """Seconds of leading silence: the first 25 fps frame whose loudness envelope passes `threshold`."""
    from .audio_features import speech_envelope

    env = speech_envelope(audio, sr, FPS)
    loud = np.flatnonzero(env > threshold)
    return float(loud[0] / FPS) if len(loud) else 0.0


def speech_window(audio_path: str | Path, max_seconds: float, out_dir: str | Path, lead: float = 0.25) -> Path:
    """A wav of at most `max_seconds` that starts just before the speech (leading silence cut), so a
    short clip shows talking rather than the pause before it. Returns the input when nothing is cut."""
    import soundfile as sf

    from . import media

    audio = media.load_audio(audio_path, SR, name="speech")
    start = max(0.0, speech_onset(audio) - lead)
    if start < 0.1 and len(audio) <= max_seconds * SR:
        return Path(audio_path)
    seg = audio[int(start * SR) : int((start + max_seconds) * SR)]
    out = Path(out_dir) / f"{Path(audio_path).stem}_speech_{int(start * 1000)}ms_{int(max_seconds * 1000)}ms.wav"
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, seg, SR, subtype="PCM_16")
    return out
