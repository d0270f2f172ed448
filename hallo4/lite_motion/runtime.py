"""What the lite engine calls: the saved motion model, loaded safely, and its per-clip tracks.

`clip_conditions` + `LiteMotionModel.motion` are the one code path from (audio, seed, weights) to a clip's
motion: the engine renders it (`LiteMotion.tracks`) and hallo4.lite_motion.clips rebuilds it for the DPO
trainer (`LiteMotion.normalised`), so the trainer learns from exactly the motion a rater saw.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import BASE_WEIGHTS
from .features import as_engine_tracks, denormalise, speech_conditions
from .model import LiteMotionModel


def load_motion_model(path: str | Path | None = None) -> LiteMotionModel:
    """The model saved at `path` (a save_pretrained folder; default: the shipped base), in eval mode."""
    from ..errors import InputError

    path = Path(path) if path else BASE_WEIGHTS
    if not (path / "config.json").is_file():
        raise InputError(
            "motion model",
            f"no lite motion model at {path}",
            "Rebuild the base with `python -m hallo4.lite_motion.train_base`, or pick a saved round.",
            path=str(path),
        )
    return LiteMotionModel.from_pretrained(str(path), use_safetensors=True).eval()


def clip_conditions(audio: np.ndarray, sr: int, fps: float, n: int) -> np.ndarray:
    """(n, C) speech conditions for a clip of n frames (cut, or the last frame repeated)."""
    cond = speech_conditions(audio, sr, fps)[:n]
    if len(cond) < n:
        cond = np.concatenate([cond, np.repeat(cond[-1:], n - len(cond), 0)])
    return cond


class LiteMotion:
    """Adapter used by the lite engine: audio -> (mouth tracks, blinks, head) for one seed."""

    def __init__(self, model: LiteMotionModel | str | Path | None = None):
        self.model = model if isinstance(model, LiteMotionModel) else load_motion_model(model)

    def normalised(self, audio: np.ndarray, sr: int, fps: float, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """(conditions (n, C), normalised motion (n, D)): the model's own inputs and output for one clip."""
        cond = clip_conditions(audio, sr, fps, n)
        return cond, self.model.motion(cond, seed)

    def tracks(self, audio: np.ndarray, sr: int, fps: float, n: int, seed: int):
        cond, x = self.normalised(audio, sr, fps, n, seed)
        return as_engine_tracks(denormalise(x), cond)
