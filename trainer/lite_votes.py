"""What a lite DPO round learns from: the Arena's decisive votes on pairs of two lite motion-model clips.

    pairs, skipped = lite_pairs_from_store(store)   # LitePairs + {reason: count} for votes left out
    count, skipped = count_lite_votes(store)         # the same selection without loading any motion (cheap)

A pair is usable when the preference store has a decisive majority on it (PreferenceStore.usable_pairs:
ties, "both bad" and skips carry no signal) and both clips are lite clips that recorded their motion
source (round, seed, weights hash: hallo4.lite_motion.rounds.lite_clip_options), with the same
expressiveness and no skeleton (a skeleton drives the head, so such a vote says nothing about the model's
head motion). Each clip's motion comes from hallo4.lite_motion.clips.clip_motion (cache, else rebuild).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hallo4.errors import InputError

log = logging.getLogger(__name__)

NOT_LITE = "not a pair of two lite motion-model clips"
SKELETON = "made with a skeleton (the head was not the model's)"
EXPRESSIVENESS = "the two clips used different expressiveness"
UNREBUILDABLE = "motion neither cached nor rebuildable"


@dataclass
class LitePair:
    """One vote with the model's own inputs: conditions (T, C), winner and loser motion (T, D), normalised."""

    cond: np.ndarray
    winner: np.ndarray
    loser: np.ndarray
    vote_id: str = ""
    weight: float = 1.0  # share of decisive votes agreeing (1.0 = unanimous), as trainer.dpo weighs pairs
    vote_ids: list[int] = field(default_factory=list)  # the store's vote rows behind this pair


def open_store():
    """The app's preference store (HALLO4_DATA_DIR/store)."""
    from hallo4 import paths
    from hallo4.preferences import PreferenceStore

    return PreferenceStore(paths.store_dir())


def _usable(store: Any) -> tuple[list[Any], Counter]:
    from hallo4.lite_motion.clips import motion_source

    keep, skipped = [], Counter()
    for up in store.usable_pairs():
        sw, sl = motion_source(up.winner), motion_source(up.loser)
        if sw is None or sl is None:
            skipped[NOT_LITE] += 1
        elif up.conditions.skeleton:
            skipped[SKELETON] += 1
        elif abs(sw.expressiveness - sl.expressiveness) > 1e-6:
            skipped[EXPRESSIVENESS] += 1
        else:
            keep.append(up)
    return keep, skipped


def count_lite_votes(store: Any) -> tuple[int, dict[str, int]]:
    """(usable lite pairs, {reason: count} of decisive pairs left out), reading only the store's rows."""
    keep, skipped = _usable(store)
    return len(keep), dict(skipped)


def lite_pairs_from_store(store: Any) -> tuple[list[LitePair], dict[str, int]]:
    """LitePairs (conditions, winner and loser motion, weight, vote ids) for every usable lite pair."""
    from hallo4.lite_motion.clips import clip_motion

    keep, skipped = _usable(store)
    pairs = []
    for up in keep:
        try:
            w, l = clip_motion(store, up.winner), clip_motion(store, up.loser)
        except InputError as exc:  # a round's weights gone or changed and nothing cached: leave the vote out
            log.warning("lite pair %s left out: %s", up.pair_id, exc)
            skipped[UNREBUILDABLE] += 1
            continue
        if len(w.cond) != len(l.cond):
            skipped[UNREBUILDABLE] += 1
            log.warning("lite pair %s left out: its clips have %d and %d frames", up.pair_id, len(w.cond), len(l.cond))
            continue
        pairs.append(LitePair(w.cond, w.motion, l.motion, f"pair-{up.pair_id}", float(up.weight), list(up.vote_ids)))
    return pairs, dict(skipped)


def too_few_votes_error(have: int, need: int, skipped: dict[str, int]) -> InputError:
    left_out = "; ".join(f"{n} {why}" for why, n in skipped.items() if n)
    return InputError(
        "votes",
        f"{have} usable lite vote{'s' if have != 1 else ''}, a lite round needs at least {need}"
        + (f" (decisive pairs left out: {left_out})" if left_out else ""),
        f"Vote on {need - have} more lite pairs in the Arena (pick the better clip; ties, 'both bad' and skips "
        "do not count), then start the round again.",
    )
