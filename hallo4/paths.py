"""Where the app keeps its data: one root (HALLO4_DATA_DIR, default ./data) for outputs, the
preference store, rounds, caches and models. On a Space point it at persistent storage (/data)."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .errors import Hallo4Error

log = logging.getLogger(__name__)


def data_dir() -> Path:
    root = Path(os.environ.get("HALLO4_DATA_DIR", "data")).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str) -> Path:
    path = data_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def outputs_dir() -> Path:
    """Generated videos."""
    return subdir("outputs")


def store_dir() -> Path:
    """The A/B preference store (SQLite + content-addressed media)."""
    return subdir("store")


def rounds_dir() -> Path:
    """DPO rounds (adapters, metrics)."""
    return subdir("rounds")


def models_dir() -> Path:
    """Downloaded / converted weights."""
    return subdir("models")


def cache_dir() -> Path:
    """Prompt-embedding cache, result cache."""
    return subdir("cache")


def storage_error(exc: OSError, where: str | os.PathLike | None = None) -> Hallo4Error | None:
    """A user-facing error for a full disk / read-only or unwritable folder, or None for other OSErrors."""
    import errno

    from .errors import Hallo4Error

    target = where or getattr(exc, "filename", None) or os.environ.get("HALLO4_DATA_DIR", "data")
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return Hallo4Error(
            f"The disk holding {target} is full: nothing more can be saved.",
            hint="Free some space (old outputs and caches under the data folder can go; see the README's "
            "retention settings) or point HALLO4_DATA_DIR at a bigger disk, then try again.",
        )
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return Hallo4Error(
            f"The data folder {target} is read-only (or not writable by this user): nothing can be saved.",
            hint="Make it writable (chmod/chown, or mount it read-write), or set HALLO4_DATA_DIR to a "
            "writable folder, then restart.",
        )
    return None


def check_writable() -> Path:
    """Start-up check: the data folder exists and a file can be written, synced and removed in it.
    Raises Hallo4Error saying exactly what is wrong (read-only, full, missing permission)."""
    from .errors import Hallo4Error

    root = Path(os.environ.get("HALLO4_DATA_DIR", "data")).expanduser().resolve()
    probe = root / f".write-test-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        with open(probe, "wb") as f:
            f.write(b"\0" * 65536)  # a few blocks: a full disk fails here, not only on the first big video
            f.flush()
            os.fsync(f.fileno())
        probe.unlink()
    except OSError as exc:
        try:
            probe.unlink(missing_ok=True)
        except OSError as cleanup:  # the real problem is `exc`, reported below; say what was left behind
            log.warning("could not remove the write-test file %s: %s", probe, cleanup)
        err = storage_error(exc, root)
        if err is None:
            raise Hallo4Error(
                f"The data folder {root} cannot be used ({exc.strerror or exc}).",
                hint="Set HALLO4_DATA_DIR to a writable folder.",
            ) from exc
        raise err from exc
    return root
