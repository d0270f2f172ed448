"""Stored system ids in words ('lite/expressiveness-1.3' -> 'lite, expressive head motion'): the Arena's
pairs and win-rate table show these to raters. Core code (no UI): the studio uses it, the UI re-exports it."""

from __future__ import annotations

import re
from pathlib import Path

LITE_STYLE = {0.7: "calm head motion", 1.0: "natural head motion", 1.3: "expressive head motion"}


def system_label(system: str) -> str:
    """A stored system id in words: 'lite/expressiveness-1.3' -> 'lite, expressive head motion',
    'lite/lite-motion@round-002' -> 'lite motion model, lite round round-002'."""
    base, _, adapter = system.partition("@")
    engine, _, model = base.partition("/")
    words = engine
    m = re.fullmatch(r"expressiveness-([0-9.]+)", model or "")
    if model == "lite-motion":  # the lite motion model (hallo4.lite_motion.rounds.MODEL_ID): base or a round
        return "lite motion model, " + (f"lite round {Path(adapter).name}" if adapter else "base")
    if m:
        words += ", " + LITE_STYLE.get(float(m.group(1)), f"head motion x{float(m.group(1)):g}")
    elif model:
        words += f", {model}"
    if engine == "hallo4":
        words = "hallo4 diffusion" + (f", {model}" if model else "")
    if adapter:
        words += f", trained round {Path(adapter).name}"
    return words
