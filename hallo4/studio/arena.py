"""The Arena without Gradio: the vote store, pairs of candidate clips, votes and win rates."""

from __future__ import annotations

import os
import random
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import InputError
from ..preferences import PreferenceStore
from ..progress import Progress, ProgressCallback, as_progress
from .generation import GenerateArgs, check_input, engine_kwargs, generate
from .models import hallo4_weights_present

_store_lock = threading.Lock()
_stores: dict[str, PreferenceStore] = {}


def store() -> PreferenceStore:
    """The data folder's vote store (one per folder and process; durable on the Hub when configured)."""
    root = str(paths.store_dir())
    with _store_lock:
        if root not in _stores:
            _stores[root] = PreferenceStore(
                root, hub_repo_id=os.environ.get("HALLO4_HUB_DATASET"), hub_token=os.environ.get("HF_TOKEN")
            )
        return _stores[root]


@dataclass
class ArenaMatch:
    """What a rater sees: a pair, which clip is on the left (random), the two video paths."""

    pair_id: int
    left_clip: int
    right_clip: int
    left_video: str
    right_video: str


def _match(pair) -> ArenaMatch:
    left, right = (pair.clip_a, pair.clip_b) if random.random() < 0.5 else (pair.clip_b, pair.clip_a)
    return ArenaMatch(pair.id, left.id, right.id, left.video_path, right.video_path)


LITE_VARIANTS = [0.7, 1.0, 1.3]  # lite "systems" the Arena compares while no diffusion weights exist


def arena_new_pair(
    portrait: str | Path,
    audio: str | Path,
    progress: Progress | ProgressCallback | None = None,
    max_seconds: float = 4.0,
    size: int = 384,
) -> ArenaMatch:
    """Generate two candidates of the same conditions (different engines/seeds/settings) and pair them."""
    from ..ui import speech_window

    portrait = check_input(portrait, "portrait", "a portrait photo")
    audio = check_input(audio, "audio", "a speech recording")
    prog = as_progress(progress)
    # The clips cover speech, not the silence before it: cut the leading pause, then max_seconds.
    audio = speech_window(audio, max_seconds, paths.cache_dir() / "arena_audio")
    st = store()
    cond = st.add_conditions(portrait, audio)
    rng = random.Random()
    engines = ["lite", "hallo4" if hallo4_weights_present() else "lite"]
    # Two different lite settings (so the win rates compare something), or lite vs hallo4.
    variants = rng.sample(LITE_VARIANTS, 2)
    clips = []
    for k, engine in enumerate(engines):

        def clip_progress(fraction: float, message: str, k: int = k) -> None:
            prog((k + fraction) / 2, f"Clip {k + 1} of 2: {message}")

        res = generate(
            GenerateArgs(
                portrait=portrait,
                audio=audio,
                engine=engine,
                preset="fast",
                seed=rng.randrange(2**31 - 1),
                size=size,
                max_seconds=max_seconds,
                extra={"expressiveness": variants[k]} if engine == "lite" else {},
            ),
            clip_progress,
            use_cache=False,
        )
        clips.append(
            st.add_clip(
                cond,
                res.video,
                engine=engine,
                adapter=engine_kwargs(engine).get("adapter"),
                model_id=f"expressiveness-{variants[k]:g}" if engine == "lite" else None,
                parameters=res.parameters,
                seed=res.seed,
                timings=res.timings,
            )
        )
    return _match(st.get_pair(st.add_pair(clips[0], clips[1])))


def arena_next_pair(rater: str) -> ArenaMatch | None:
    """A stored pair this rater has not voted on (fewest votes first), or None."""
    pair = store().next_pair(rater)
    return _match(pair) if pair else None


def arena_vote(match: ArenaMatch, choice: str, rater: str) -> dict[str, Any]:
    """Record a screen choice ('left', 'right', 'tie', 'both_bad', 'skip'); reveal who made what."""
    from ..ui import system_label

    if choice not in ("left", "right", "tie", "both_bad", "skip"):
        raise InputError("vote", f"unknown choice {choice!r}", "Use the buttons under the videos.")
    st = store()
    try:
        pair = st.get_pair(int(match.pair_id))
    except (KeyError, TypeError, ValueError):
        raise InputError(
            "vote",
            f"pair {match.pair_id!r} does not exist (it may have been removed)",
            "Press 'Next pair' and vote on the pair shown.",
        ) from None
    if {int(match.left_clip), int(match.right_clip)} != {pair.clip_a.id, pair.clip_b.id}:
        raise InputError("vote", "the clips on screen are not this pair's", "Press 'Next pair' and vote again.")
    label = st.label_for_choice(pair, match.left_clip, choice)
    st.record_vote(pair.id, label, match.left_clip, rater)

    def who(c) -> str:
        extra = f", {c.parameters.get('options', {}).get('steps', '?')} steps" if c.engine == "hallo4" else ""
        return f"{system_label(c.system)}{extra}"

    left, right = st.get_clip(match.left_clip), st.get_clip(match.right_clip)
    return {"left": who(left), "right": who(right), "label": label, "votes": st.vote_count()}


def win_rate_rows() -> list[list[Any]]:
    """The Arena's win-rate table: system, wins, losses, ties, votes, win rate."""
    from ..ui import system_label

    return [
        [
            system_label(r["system"]),
            r["wins"],
            r["losses"],
            r["ties"],
            r["votes"],
            "" if r["win_rate"] is None else f"{r['win_rate'] * 100:.0f}%",
        ]
        for r in store().win_rates()
    ]
