"""What the lite motion model sees (per-frame speech conditions) and what it makes (per-frame motion).

Conditions are the engine's own weight-free speech measures (hallo4.audio_features / hallo4.articulation):
the rule-based mouth targets plus the acoustics they come from, so the model keeps lip sync by
construction and learns the rest (head, blinks, style) as a distribution. Motion channels are exactly what
the lite warper renders per frame (`FaceRig.render(open, spread, blink, head)`), each divided by a fixed
scale so every channel is O(1) for the flow-matching loss.
"""

from __future__ import annotations

import numpy as np

from ..articulation import ArticulationConfig, articulate, closure_track
from ..audio_features import articulatory_features
from ..constants import FPS, SAMPLE_RATE

# name -> scale (motion value = normalised value * scale)
MOTION_CHANNELS: dict[str, float] = {
    "open": 0.5,  # jaw opening 0..~1.2
    "spread": 0.5,  # -1 rounded .. +1 spread
    "blink": 0.5,  # eyelid closure 0..1
    "tx": 0.08,  # head translation, inter-ocular distances
    "ty": 0.04,
    "roll": 0.03,  # radians
    "yaw": 0.04,
    "pitch": 0.03,
    "brow": 0.5,  # brow raise 0..1 (emphasis; the renderer's tracks["brow"])
}
MOTION_NAMES = tuple(MOTION_CHANNELS)
MOTION_SCALE = np.array(list(MOTION_CHANNELS.values()), np.float32)
HEAD = slice(3, 8)  # tx, ty, roll, yaw, pitch: the engine's (n, 5) head track

CONDITION_NAMES = (
    "rule_open",
    "rule_spread",
    "closure",
    "hard_closure",
    "envelope",
    "level",
    "vowelness",
    "murmur",
    "f1",
    "f2",
    "voiced",
    "dip",
    # "f"/"v" (lower lip to upper teeth): a speech fact like closure, so it is a condition passed straight to
    # tracks["labiodental"] rather than a motion channel the model could drift off: lip sync by construction,
    # no sampling error and no DPO round can move it.
    "labiodental",
)


def speech_conditions(audio: np.ndarray, sr: int = SAMPLE_RATE, fps: float = FPS) -> np.ndarray:
    """(T, len(CONDITION_NAMES)) float32 conditions for `audio`, T = the engine's frame count."""
    feats = articulatory_features(audio, sr, fps)
    art = articulate(audio, sr, fps)
    hard = closure_track(feats, ArticulationConfig(), include_silence=False)
    voiced = np.isfinite(feats.f1).astype(np.float32)
    cond = np.stack(
        [
            art.open,
            art.spread,
            art.closure,
            hard,
            feats.envelope,
            np.clip(feats.level_db / 40.0 + 1.0, -1, 1.5),
            feats.vowelness,
            feats.murmur,
            np.nan_to_num((feats.f1 - 500.0) / 300.0) * voiced,
            np.nan_to_num((feats.f2 - 1500.0) / 600.0) * voiced,
            voiced,
            np.clip(feats.dip / 30.0, 0, 2),
            art.labiodental if art.labiodental is not None else np.zeros_like(art.open),
        ],
        1,
    )
    return np.nan_to_num(cond).astype(np.float32)


def hard_closure(cond: np.ndarray) -> np.ndarray:
    """The frames where speech says the lips must be shut ("p", "b", "m"), from a condition array."""
    return cond[:, CONDITION_NAMES.index("hard_closure")] > 0.5


def normalise(motion: np.ndarray) -> np.ndarray:
    return (motion / MOTION_SCALE).astype(np.float32)


def denormalise(x: np.ndarray) -> np.ndarray:
    return (x * MOTION_SCALE).astype(np.float32)


def as_engine_tracks(
    motion: np.ndarray, cond: np.ndarray | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """(mouth dict, blinks (T,), head (T, 5)) in the lite engine's units, clipped to what it renders well.

    The mouth dict also carries "brow" (motion) and, given the clip's conditions, "labiodental" (speech).
    """
    m = np.asarray(motion, np.float32)
    mouth = {
        "open": np.clip(m[:, 0], 0, 1.2),
        "spread": np.clip(m[:, 1], -1, 1),
        "brow": np.clip(m[:, MOTION_NAMES.index("brow")], 0, 1),
    }
    if cond is not None:
        mouth["labiodental"] = np.clip(
            np.asarray(cond, np.float32)[: len(m), CONDITION_NAMES.index("labiodental")], 0, 1
        )
    blinks = np.clip(m[:, 2], 0, 1)
    head = np.clip(m[:, HEAD], [-0.6, -0.6, -0.35, -0.45, -0.28], [0.6, 0.6, 0.35, 0.45, 0.28]).astype(np.float32)
    return mouth, blinks, head
