"""Retention: what the app deletes, when, so a public server's disk does not fill up.

Folders and their limits (hours / GB; environment variables, 0 = no limit):

=====================================  ==================================  =========
what                                   variables                           default
=====================================  ==================================  =========
generated videos (data/outputs)        HALLO4_KEEP_OUTPUTS_HOURS / _GB     24 h, 5 GB
result cache (data/cache/results*)     HALLO4_KEEP_CACHE_HOURS / _GB       72 h, 5 GB
arena clips nobody voted on (store)    HALLO4_KEEP_UNVOTED_HOURS           168 h
partial files (hidden ``.*.part*``)    HALLO4_KEEP_PARTIAL_HOURS           1 h
Gradio's upload / temp files           HALLO4_KEEP_UPLOADS_HOURS           6 h
=====================================  ==================================  =========

Age limits delete files older than that; size limits then delete the oldest files until the folder
fits. Files younger than `MIN_AGE_S` are never touched (a job may be writing or serving them).
Voted pairs, their clips and conditions are never deleted. Gradio's own temp files are deleted by
Gradio (`gr.Blocks(delete_cache=...)`, see `gradio_delete_cache`). `start()` runs the sweep in a
daemon thread every HALLO4_CLEANUP_EVERY_S seconds (default 600).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from . import paths

log = logging.getLogger("hallo4.retention")
MIN_AGE_S = 120.0
HOUR = 3600.0


def _env(name: str, default: float) -> float:
    try:
        return float(os.environ.get(name, default))
    except ValueError:
        log.warning("%s=%r is not a number; using %s", name, os.environ.get(name), default)
        return default


@dataclass(frozen=True)
class Policy:
    outputs_hours: float = 24.0
    outputs_gb: float = 5.0
    cache_hours: float = 72.0
    cache_gb: float = 5.0
    unvoted_hours: float = 168.0
    partial_hours: float = 1.0
    uploads_hours: float = 6.0
    every_s: float = 600.0

    @classmethod
    def from_env(cls) -> Policy:
        d = cls()
        return cls(
            outputs_hours=_env("HALLO4_KEEP_OUTPUTS_HOURS", d.outputs_hours),
            outputs_gb=_env("HALLO4_KEEP_OUTPUTS_GB", d.outputs_gb),
            cache_hours=_env("HALLO4_KEEP_CACHE_HOURS", d.cache_hours),
            cache_gb=_env("HALLO4_KEEP_CACHE_GB", d.cache_gb),
            unvoted_hours=_env("HALLO4_KEEP_UNVOTED_HOURS", d.unvoted_hours),
            partial_hours=_env("HALLO4_KEEP_PARTIAL_HOURS", d.partial_hours),
            uploads_hours=_env("HALLO4_KEEP_UPLOADS_HOURS", d.uploads_hours),
            every_s=_env("HALLO4_CLEANUP_EVERY_S", d.every_s),
        )


def _is_partial(p: Path) -> bool:
    return p.name.startswith(".") and (".part" in p.name or p.name.endswith(".video.mp4") or p.name.endswith(".tmp"))


def sweep_dir(
    folder: Path, *, max_age_s: float = 0, max_bytes: float = 0, partial_age_s: float = HOUR, now: float | None = None
) -> list[Path]:
    """Delete (recursively) partial files older than `partial_age_s`, files older than `max_age_s`,
    then the oldest files until the folder holds at most `max_bytes`. Returns what was deleted."""
    now = time.time() if now is None else now
    if not folder.is_dir():
        return []
    files = []
    for p in folder.rglob("*"):
        try:
            if p.is_file() and not p.is_symlink():
                st = p.stat()
                files.append((st.st_mtime, st.st_size, p))
        except OSError:
            continue  # deleted meanwhile
    removed: list[Path] = []
    kept = []
    for mtime, size, p in files:
        age = now - mtime
        if age < MIN_AGE_S:
            kept.append((mtime, size, p))
            continue
        if (_is_partial(p) and age > partial_age_s) or (max_age_s and age > max_age_s):
            p.unlink(missing_ok=True)
            removed.append(p)
        else:
            kept.append((mtime, size, p))
    if max_bytes:
        total = sum(size for _, size, _ in kept)
        for mtime, size, p in sorted(kept):
            if total <= max_bytes:
                break
            if now - mtime < MIN_AGE_S:
                continue
            p.unlink(missing_ok=True)
            removed.append(p)
            total -= size
    return removed


def sweep(
    policy: Policy | None = None, *, now: float | None = None, gradio_dir: str | Path | None = None
) -> dict[str, int]:
    """One pass over every folder the app writes; returns how many files went from each."""
    policy = policy or Policy.from_env()
    gb = 1024**3
    out = {
        "outputs": len(
            sweep_dir(
                paths.outputs_dir(),
                max_age_s=policy.outputs_hours * HOUR,
                max_bytes=policy.outputs_gb * gb,
                partial_age_s=policy.partial_hours * HOUR,
                now=now,
            )
        ),
        "cache": sum(
            len(
                sweep_dir(
                    paths.cache_dir() / sub,
                    max_age_s=policy.cache_hours * HOUR,
                    max_bytes=policy.cache_gb * gb,
                    partial_age_s=policy.partial_hours * HOUR,
                    now=now,
                )
            )
            for sub in ("results", "results_meta")
        ),
        "store_partial": len(
            sweep_dir(paths.store_dir() / "media", partial_age_s=policy.partial_hours * HOUR, now=now)
        ),
    }
    if gradio_dir:
        out["uploads"] = len(sweep_dir(Path(gradio_dir), max_age_s=policy.uploads_hours * HOUR, now=now))
    if policy.unvoted_hours:
        from .studio import store

        out["unvoted"] = store().prune_unvoted(older_than_s=policy.unvoted_hours * HOUR, now=now)["media"]
    return out


def gradio_delete_cache(policy: Policy | None = None) -> tuple[int, int]:
    """`gr.Blocks(delete_cache=...)`: Gradio deletes its own temp files (uploads, served copies)."""
    policy = policy or Policy.from_env()
    return int(policy.every_s), int(policy.uploads_hours * HOUR)


_thread: threading.Thread | None = None


def start(policy: Policy | None = None, gradio_dir: str | Path | None = None) -> threading.Thread:
    """Sweep now and then every `policy.every_s` seconds in a daemon thread (errors are logged, never fatal)."""
    global _thread
    policy = policy or Policy.from_env()

    def loop() -> None:
        while True:
            try:
                removed = sweep(policy, gradio_dir=gradio_dir)
                if any(removed.values()):
                    log.info("Retention: removed %s", removed)
            except Exception:  # a failed sweep must not kill the app
                log.exception("Retention sweep failed")
            time.sleep(policy.every_s)

    if _thread is None or not _thread.is_alive():
        _thread = threading.Thread(target=loop, name="hallo4-retention", daemon=True)
        _thread.start()
    return _thread
