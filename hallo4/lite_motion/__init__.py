"""Lite motion model: per-frame lite-engine motion sampled from a small flow-matching network (issue 16).

`load_motion_model()` gives the shipped base (weights/ next to this file, rebuilt by
`python -m hallo4.lite_motion.train_base`); `LiteMotion.tracks()` is what the lite engine calls.
The DPO loop around it: `rounds` (list / activate / roll back rounds, live metrics, what an Arena clip
records), `clips` (a stored clip's motion, cached or rebuilt) and trainer.lite_dpo (votes -> a round);
docs/INTERFACES.md "Lite loop".
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

BASE_WEIGHTS = Path(__file__).parent / "weights"

# Exports load on first use: `hallo4.lite_motion.rounds` is asked on every lite request and must not pull in
# torch and diffusers (hundreds of MB) when no lite round is active.
_EXPORTS = {
    "LiteMotion": "runtime",
    "load_motion_model": "runtime",
    "LiteMotionModel": "model",
    "MOTION_NAMES": "features",
    "normalise": "features",
    "denormalise": "features",
    "speech_conditions": "features",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BASE_WEIGHTS", *_EXPORTS]
