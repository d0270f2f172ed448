"""The preference store's schema: migrations, row types, and SQLite errors turned into storage messages.

Rows:
- media: sha256 -> a stored file under data_dir/media/<2 hex>/<sha256><ext>.
- conditions: portrait, audio, skeleton (optional), prompt (optional), keyed by their hashes.
- clips: one generated video of some conditions, with the engine, model id, adapter round, every
  generation parameter, the seed and the timings.
- pairs: two clips of the same conditions (clip_a, clip_b).
- votes: a rater's verdict on a pair. `label` is relative to the PAIR's clip_a / clip_b, never to the
  screen: 'a' = clip_a better, 'b' = clip_b better, 'tie', 'both_bad', 'skip'. `left_clip` records
  which clip was shown on the left, so position bias can be studied. One vote per rater per pair.

Every row carries a `uid` (uuid4) so exports can be imported into another store idempotently.
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..paths import storage_error

LABELS = ("a", "b", "tie", "both_bad", "skip")
DECISIVE = ("a", "b")
SCHEMA_VERSION = 2
DB_NAME = "preferences.sqlite3"

# Each entry upgrades the schema from version i to i + 1. Never edit a shipped entry: append one.
MIGRATIONS: list[str] = [
    # 0 -> 1: the initial schema
    """
    CREATE TABLE media (
        sha256 TEXT PRIMARY KEY,
        ext TEXT NOT NULL,
        size INTEGER NOT NULL,
        created REAL NOT NULL
    );
    CREATE TABLE conditions (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        portrait TEXT NOT NULL REFERENCES media(sha256),
        audio TEXT NOT NULL REFERENCES media(sha256),
        skeleton TEXT REFERENCES media(sha256),
        prompt TEXT,
        created REAL NOT NULL
    );
    CREATE TABLE clips (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        conditions_id INTEGER NOT NULL REFERENCES conditions(id),
        video TEXT NOT NULL REFERENCES media(sha256),
        engine TEXT NOT NULL,
        model_id TEXT,
        adapter TEXT,
        parameters TEXT NOT NULL DEFAULT '{}',
        seed INTEGER,
        timings TEXT NOT NULL DEFAULT '{}',
        created REAL NOT NULL
    );
    CREATE TABLE pairs (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        conditions_id INTEGER NOT NULL REFERENCES conditions(id),
        clip_a INTEGER NOT NULL REFERENCES clips(id),
        clip_b INTEGER NOT NULL REFERENCES clips(id),
        created REAL NOT NULL,
        CHECK (clip_a <> clip_b),
        UNIQUE (clip_a, clip_b)
    );
    CREATE TABLE votes (
        id INTEGER PRIMARY KEY,
        uid TEXT NOT NULL UNIQUE,
        pair_id INTEGER NOT NULL REFERENCES pairs(id),
        clip_a INTEGER NOT NULL REFERENCES clips(id),
        clip_b INTEGER NOT NULL REFERENCES clips(id),
        left_clip INTEGER NOT NULL REFERENCES clips(id),
        label TEXT NOT NULL CHECK (label IN ('a', 'b', 'tie', 'both_bad', 'skip')),
        rater TEXT NOT NULL,
        created REAL NOT NULL,
        UNIQUE (pair_id, rater)
    );
    CREATE INDEX votes_pair ON votes(pair_id);
    CREATE INDEX clips_conditions ON clips(conditions_id);
    """,
    # 1 -> 2: which DPO round consumed which votes
    """
    CREATE TABLE consumed (
        vote_id INTEGER NOT NULL REFERENCES votes(id),
        round TEXT NOT NULL,
        created REAL NOT NULL,
        PRIMARY KEY (vote_id, round)
    );
    """,
]
assert len(MIGRATIONS) == SCHEMA_VERSION


@dataclass
class Clip:
    id: int
    uid: str
    conditions_id: int
    video: str  # sha256
    engine: str
    model_id: str | None
    adapter: str | None
    parameters: dict[str, Any]
    seed: int | None
    timings: dict[str, float]
    created: float
    video_path: str = ""

    @property
    def system(self) -> str:
        """What produced the clip, for win rates: engine[/model][@adapter]."""
        s = self.engine + (f"/{self.model_id}" if self.model_id else "")
        return s + (f"@{self.adapter}" if self.adapter else "")


@dataclass
class Conditions:
    id: int
    uid: str
    portrait: str
    audio: str
    skeleton: str | None
    prompt: str | None
    portrait_path: str = ""
    audio_path: str = ""
    skeleton_path: str | None = None


@dataclass
class Pair:
    id: int
    uid: str
    conditions_id: int
    clip_a: Clip
    clip_b: Clip
    votes: int = 0


@dataclass
class UsablePair:
    """A pair with a decisive majority: the DPO trainer's unit of data."""

    pair_id: int
    winner: Clip
    loser: Clip
    conditions: Conditions
    weight: float  # |a - b| / decisive votes: 1.0 = unanimous
    vote_ids: list[int] = field(default_factory=list)


def sqlite_storage_error(exc: sqlite3.OperationalError, root: Path) -> Exception:
    """SQLite's words for a read-only / full / unwritable folder become the app's clear storage message."""
    text = str(exc).lower()
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return storage_error(OSError(errno.EROFS, str(exc)), root) or exc
    if "disk is full" in text or "disk i/o" in text:
        return storage_error(OSError(errno.ENOSPC, str(exc)), root) or exc
    return exc
