"""A stored lite Arena clip's motion: cached at pair time, loaded (or rebuilt) by the DPO trainer.

    cm = clip_motion(store, clip)   # ClipMotion(cond (T, C), motion (T, D) normalised, source)

A lite-motion clip records (hallo4.lite_motion.rounds.lite_clip_options) the motion round, the seed and
the weights' hash; its audio is the pair's conditions audio in the store, cut to the clip's max_seconds.
From these the motion is rebuilt exactly as the engine sampled it (same code path: runtime.LiteMotion).
The result is cached in `<store>/lite_motion/<key>.npz` (key = hash of audio, cut, seed, weights), so the
trainer still has a clip's motion after its round's weights are gone; the Arena stores its lite clips with
`store_lite_clip` (add_clip with the right record, then `clip_motion` once to fill that cache).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..constants import FPS, SAMPLE_RATE, num_video_frames
from ..errors import InputError
from .rounds import BASE, model_path, weights_sha256

log = logging.getLogger(__name__)
CACHE_DIR = "lite_motion"


@dataclass(frozen=True)
class MotionSource:
    """What made a clip's motion: round (None = base), seed, the audio cut, the weights' hash."""

    round: str | None
    seed: int
    max_seconds: float | None
    weights_sha256: str | None
    expressiveness: float = 1.0


@dataclass
class ClipMotion:
    cond: np.ndarray  # (T, C) speech conditions, the model's input
    motion: np.ndarray  # (T, D) normalised motion, the model's output for the clip's seed
    source: MotionSource


def motion_source(clip: Any) -> MotionSource | None:
    """The clip's recorded motion source (a preferences.Clip), or None when it is not a lite-motion clip
    (another engine, lite's rule-based motion, or a clip stored without the "lite_motion" record)."""
    params = clip.parameters or {}
    meta = params.get("lite_motion")
    if clip.engine != "lite" or not isinstance(meta, dict) or meta.get("seed") is None:
        return None
    name = meta.get("round")
    max_s = params.get("max_seconds")
    return MotionSource(
        round=None if name in (None, BASE) else str(name),
        seed=int(meta["seed"]),
        max_seconds=None if max_s is None else float(max_s),
        weights_sha256=meta.get("weights_sha256"),
        expressiveness=float(params.get("expressiveness", (params.get("options") or {}).get("expressiveness", 1.0))),
    )


def cache_key(audio_sha256: str, src: MotionSource) -> str:
    text = json.dumps([audio_sha256, src.max_seconds, src.seed, src.weights_sha256 or src.round or BASE])
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def clip_motion(store: Any, clip: Any, *, use_cache: bool = True) -> ClipMotion:
    """The clip's conditions and normalised motion: from the cache, else rebuilt (and then cached).

    Raises InputError when the clip is not a lite-motion clip, or when it must be rebuilt and its
    round's weights are gone or differ from the ones that made it (the hash recorded with the clip)."""
    src = motion_source(clip)
    if src is None:
        raise InputError(
            "clip",
            f"clip {clip.id} is not a lite motion-model clip (no lite_motion record)",
            "Only Arena clips made with hallo4.lite_motion.rounds.lite_clip_options can train a lite round.",
        )
    cond_row = store.get_conditions(clip.conditions_id)
    cache = Path(store.root) / CACHE_DIR / f"{cache_key(cond_row.audio, src)}.npz"
    if use_cache and cache.is_file():
        with np.load(cache) as z:
            return ClipMotion(z["cond"], z["motion"], src)
    cond, motion = rebuild_motion(cond_row.audio_path, src)
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f"{cache.stem}.{uuid.uuid4().hex}.tmp.npz")
        np.savez(tmp, cond=cond, motion=motion)
        tmp.replace(cache)  # atomic: a reader never sees half a file
    return ClipMotion(cond, motion, src)


def store_lite_clip(store: Any, conditions_id: int, result: Any, opts: dict[str, Any]) -> int:
    """Store a lite Arena clip rendered with `opts = rounds.lite_clip_options(...)` (a GenerationResult) the
    way the trainer reads it, cache its motion, and return the clip id."""
    if int(result.seed) != int(opts["seed"]):
        raise ValueError(f"the clip was rendered with seed {result.seed}, its options say {opts['seed']}")
    clip_id = store.add_clip(
        conditions_id,
        result.video,
        "lite",
        model_id=opts["model_id"],
        adapter=opts["adapter"],
        parameters={**result.parameters, **opts["parameters"]},
        seed=int(opts["seed"]),
        timings=result.timings,
    )
    clip_motion(store, store.get_clip(clip_id))
    return clip_id


def rebuild_motion(audio_path: str | Path, src: MotionSource) -> tuple[np.ndarray, np.ndarray]:
    """(conditions, normalised motion) for `src`, sampled as the lite engine did (same audio decoding,
    frame count, conditions and seeded sampler)."""
    from .. import media

    if src.weights_sha256 and weights_sha256(src.round) != src.weights_sha256:
        raise InputError(
            "clip",
            f"the weights of lite round {src.round or BASE!r} changed since this clip was made",
            "Its motion cannot be rebuilt; vote on new pairs (clips cache their motion when the Arena makes them).",
        )
    audio = media.load_audio(audio_path, SAMPLE_RATE, name="audio", max_seconds=src.max_seconds)
    n = num_video_frames(len(audio), SAMPLE_RATE, FPS)
    return _adapter(src.round).normalised(audio, SAMPLE_RATE, FPS, n, src.seed)


_adapters: dict[tuple[str, int], Any] = {}


def _adapter(round_name: str | None):
    """One loaded model per weights file version (a round's weights never change; the base may be rebuilt)."""
    from . import BASE_WEIGHTS
    from .rounds import WEIGHTS_FILE
    from .runtime import LiteMotion

    path = model_path(round_name) or BASE_WEIGHTS
    weights = path / WEIGHTS_FILE
    key = (str(path), weights.stat().st_mtime_ns if weights.is_file() else 0)
    if key not in _adapters:
        if len(_adapters) > 8:
            _adapters.clear()
        _adapters[key] = LiteMotion(path)
    return _adapters[key]
