"""The Arena without Gradio: the vote store, pairs of candidate clips, votes and win rates."""

from __future__ import annotations

import logging
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
from ..speech_clip import speech_window
from ..system_labels import system_label
from .generation import GenerateArgs, check_input, engine_kwargs, generate
from .models import hallo4_weights_present

log = logging.getLogger("hallo4.studio")

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


def arena_new_pair(
    portrait: str | Path,
    audio: str | Path,
    progress: Progress | ProgressCallback | None = None,
    max_seconds: float = 4.0,
    size: int = 384,
) -> ArenaMatch:
    """Generate two candidates of the same conditions and pair them: lite vs hallo4 when the hallo4 weights
    are here; else two lite motion-model clips, the active lite round vs the base (base vs base while no
    round is active), with different seeds, each recording its round and seed so a lite DPO round can
    rebuild its motion (hallo4.lite_motion.rounds.lite_clip_options)."""
    from ..lite_motion.rounds import active_lite_round, arena_lite_rounds

    portrait = check_input(portrait, "portrait", "a portrait photo")
    audio = check_input(audio, "audio", "a speech recording")
    prog = as_progress(progress)
    # The clips cover speech, not the silence before it: cut the leading pause, then max_seconds.
    audio = speech_window(audio, max_seconds, paths.cache_dir() / "arena_audio")
    st = store()
    cond = st.add_conditions(portrait, audio)
    rng = random.Random()
    if hallo4_weights_present():
        sides = [("lite", active_lite_round()), ("hallo4", None)]
    else:
        sides = [("lite", name) for name in arena_lite_rounds()]  # (active round, base); base vs base when none
    clips = []
    for k, (engine, round_name) in enumerate(sides):

        def clip_progress(fraction: float, message: str, k: int = k) -> None:
            prog((k + fraction) / 2, f"Clip {k + 1} of 2: {message}")

        seed = rng.randrange(2**31 - 1)
        base = GenerateArgs(
            portrait=portrait, audio=audio, preset="fast", seed=seed, size=size, max_seconds=max_seconds
        )
        if engine == "hallo4":
            clips.append(_hallo4_clip(st, cond, base, clip_progress))
        else:
            clips.append(_lite_clip(st, cond, base, round_name, clip_progress))
    return _match(st.get_pair(st.add_pair(clips[0], clips[1])))


def _lite_clip(st: PreferenceStore, cond: int, args: GenerateArgs, round_name: str | None, progress) -> int:
    """A lite clip sampled from `round_name`'s motion model (None = base), stored with what made it; its
    motion is cached at once, so a round can train on it even after that round's weights are gone."""
    from ..lite_motion.clips import clip_motion
    from ..lite_motion.rounds import lite_clip_options

    opts = lite_clip_options(round_name, int(args.seed))
    args.engine, args.extra = "lite", dict(opts["options"])
    res = generate(args, progress, use_cache=False)
    clip = st.add_clip(
        cond,
        res.video,
        engine="lite",
        model_id=opts["model_id"],
        adapter=opts["adapter"],
        parameters={**res.parameters, **opts["parameters"]},
        seed=res.seed,
        timings=res.timings,
    )
    try:
        clip_motion(st, st.get_clip(clip))
    except InputError as exc:  # the trainer rebuilds it later if it can; the pair is still worth a vote
        log.warning("Could not cache the motion of lite clip %s (round %s): %s", clip, round_name or "base", exc)
    return clip


def _hallo4_clip(st: PreferenceStore, cond: int, args: GenerateArgs, progress) -> int:
    args.engine = "hallo4"
    res = generate(args, progress, use_cache=False)
    return st.add_clip(
        cond,
        res.video,
        engine="hallo4",
        adapter=engine_kwargs("hallo4").get("adapter"),
        parameters=res.parameters,
        seed=res.seed,
        timings=res.timings,
    )


def arena_next_pair(rater: str) -> ArenaMatch | None:
    """A stored pair this rater has not voted on (fewest votes first), or None."""
    pair = store().next_pair(rater)
    return _match(pair) if pair else None


def arena_vote(match: ArenaMatch, choice: str, rater: str) -> dict[str, Any]:
    """Record a screen choice ('left', 'right', 'tie', 'both_bad', 'skip'); reveal who made what."""
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
