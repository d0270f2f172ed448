"""Lite motion model: per-frame lite-engine motion sampled from a small flow-matching network (issue 16).

`load_motion_model()` gives the shipped base (weights/ next to this file, rebuilt by
`python -m hallo4.lite_motion.train_base`); `LiteMotion.tracks()` is what the lite engine calls.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .features import MOTION_NAMES, as_engine_tracks, denormalise, normalise, speech_conditions
from .model import LiteMotionModel

BASE_WEIGHTS = Path(__file__).parent / "weights"


def load_motion_model(path: str | Path | None = None) -> LiteMotionModel:
    """The model saved at `path` (a save_pretrained folder; default: the shipped base), in eval mode."""
    from ..errors import InputError

    path = Path(path) if path else BASE_WEIGHTS
    if not (path / "config.json").is_file():
        raise InputError("motion model", f"no lite motion model at {path}",
                         "Rebuild the base with `python -m hallo4.lite_motion.train_base`, or pick a saved round.", path=str(path))
    return LiteMotionModel.from_pretrained(str(path), use_safetensors=True).eval()


class LiteMotion:
    """Adapter used by the lite engine: audio -> (mouth tracks, blinks, head) for one seed."""

    def __init__(self, model: LiteMotionModel | str | Path | None = None):
        self.model = model if isinstance(model, LiteMotionModel) else load_motion_model(model)

    def tracks(self, audio: np.ndarray, sr: int, fps: float, n: int, seed: int):
        cond = speech_conditions(audio, sr, fps)[:n]
        if len(cond) < n:
            cond = np.concatenate([cond, np.repeat(cond[-1:], n - len(cond), 0)])
        return as_engine_tracks(denormalise(self.model.motion(cond, seed)))


__all__ = ["LiteMotion", "LiteMotionModel", "MOTION_NAMES", "load_motion_model", "normalise", "denormalise",
           "speech_conditions", "BASE_WEIGHTS"]
