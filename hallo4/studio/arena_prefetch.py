"""Keeping the Arena flowing: after a vote the next pair is prepared in the background from the same
conditions, so "Next pair" shows one at once instead of "no pending pair" (each vote used to need a
pair the rater made by hand). One preparation at a time per process; it only runs when the rater has
nothing left to vote on.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path

from ..progress import Progress
from .arena import ArenaMatch, arena_new_pair, arena_next_pair, store

log = logging.getLogger("hallo4.studio.arena")

_lock = threading.Lock()
_worker: threading.Thread | None = None


def preparing() -> bool:
    return _worker is not None and _worker.is_alive()


def prepare_next(rater: str, pair_id: int | None) -> bool:
    """Start making a new pair from `pair_id`'s conditions if `rater` has no pending pair. True if started."""
    global _worker
    if pair_id is None or store().next_pair(rater) is not None:
        return False
    st = store()
    cond = st.get_conditions(st.get_pair(int(pair_id)).conditions_id)
    with _lock:
        if preparing():
            return False

        def run(portrait: str = cond.portrait_path, audio: str = cond.audio_path) -> None:
            try:
                arena_new_pair(portrait, audio)
            except Exception as exc:  # noqa: BLE001 - "Next pair" then makes one itself and reports any error
                log.warning("Preparing the next Arena pair failed: %s", exc)

        _worker = threading.Thread(target=run, name="arena-prepare", daemon=True)
        _worker.start()
    return True


def next_pair(
    rater: str,
    portrait: str | Path | None,
    audio: str | Path | None,
    progress: Progress | None = None,
    timeout: float = 300.0,
) -> ArenaMatch:
    """A pair for `rater`: a pending one, else the one being prepared (waiting for it), else a new one
    made now from `portrait`/`audio` (the "Make a new pair" inputs, an example by default)."""
    start = time.monotonic()
    while True:
        match = arena_next_pair(rater)
        if match is not None:
            return match
        if not preparing() or time.monotonic() - start > timeout:
            break
        if progress is not None:
            progress(min(0.9, (time.monotonic() - start) / 20), "Preparing the next pair")
        time.sleep(0.3)
    return arena_new_pair(portrait, audio, progress)
