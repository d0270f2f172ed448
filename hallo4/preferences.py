"""The A/B preference store: SQLite (WAL) + content-addressed media, durable under concurrency.

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
Each call opens its own connection (cheap with SQLite), so the store is safe across threads and
processes; writers use BEGIN IMMEDIATE and a busy timeout so concurrent votes queue instead of failing.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import shutil
import sqlite3
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import Hallo4Error, InputError

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


class PreferenceStore:
    """Durable store of clips, pairs and votes in `data_dir` (created if missing)."""

    def __init__(self, data_dir: str | Path, *, hub_repo_id: str | None = None, hub_token: str | None = None):
        self.root = Path(data_dir)
        self.root.mkdir(parents=True, exist_ok=True)
        (self.root / "media").mkdir(exist_ok=True)
        self.db_path = self.root / DB_NAME
        self.hub_repo_id = hub_repo_id
        self.hub_token = hub_token
        self._scheduler = None
        self._migrate()

    # -- connections ----------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        con = sqlite3.connect(self.db_path, timeout=60, isolation_level=None)
        con.row_factory = sqlite3.Row
        con.execute("PRAGMA foreign_keys = ON")
        con.execute("PRAGMA busy_timeout = 60000")
        con.execute("PRAGMA synchronous = NORMAL")  # with WAL: durable across process crashes
        return con

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        con = self._connect()
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        try:
            con = self._connect()
        except sqlite3.OperationalError as exc:
            raise _storage_error(exc, self.root) from exc
        try:
            try:
                con.execute("BEGIN IMMEDIATE")
                try:
                    yield con
                except BaseException:
                    con.execute("ROLLBACK")
                    raise
                con.execute("COMMIT")
            except sqlite3.OperationalError as exc:
                raise _storage_error(exc, self.root) from exc
        finally:
            con.close()

    def _migrate(self) -> None:
        try:
            self._migrate_unchecked()
        except sqlite3.OperationalError as exc:
            raise _storage_error(exc, self.root) from exc

    def _migrate_unchecked(self) -> None:
        con = self._connect()
        try:
            con.execute("PRAGMA journal_mode = WAL")
            con.execute("BEGIN IMMEDIATE")
            version = con.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                con.execute("ROLLBACK")
                raise Hallo4Error(
                    f"The preference store at {self.db_path} has schema version {version}, newer than this "
                    f"program's {SCHEMA_VERSION}.",
                    hint="Update Hallo4 Studio (git pull) before opening it.",
                )
            for v in range(version, SCHEMA_VERSION):
                # executescript() would COMMIT our transaction; run the statements one by one instead.
                for stmt in MIGRATIONS[v].split(";"):
                    if stmt.strip():
                        con.execute(stmt)
                con.execute(f"PRAGMA user_version = {v + 1}")
            con.execute("COMMIT")
        finally:
            con.close()

    @property
    def schema_version(self) -> int:
        with self._read() as con:
            return con.execute("PRAGMA user_version").fetchone()[0]

    def integrity_check(self) -> str:
        with self._read() as con:
            return con.execute("PRAGMA integrity_check").fetchone()[0]

    # -- media ----------------------------------------------------------------------------------
    def media_path(self, sha256: str, ext: str | None = None) -> Path:
        if ext is None:
            with self._read() as con:
                row = con.execute("SELECT ext FROM media WHERE sha256 = ?", (sha256,)).fetchone()
            if row is None:
                raise KeyError(sha256)
            ext = row["ext"]
        return self.root / "media" / sha256[:2] / f"{sha256}{ext}"

    def add_media(self, path: str | Path) -> str:
        """Copy a file into the store (once per content) and return its sha256."""
        src = Path(path)
        if not src.is_file():
            raise InputError("media", "file not found", "Generate or upload the file again.", path=str(src))
        h = hashlib.sha256()
        with open(src, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        sha = h.hexdigest()
        ext = src.suffix.lower()[:10]
        dst = self.media_path(sha, ext)
        if not dst.exists():
            dst.parent.mkdir(parents=True, exist_ok=True)
            tmp = dst.with_suffix(dst.suffix + f".{uuid.uuid4().hex}.tmp")
            shutil.copyfile(src, tmp)
            tmp.replace(dst)  # atomic: a crash never leaves a half-written media file under its hash
        with self._write() as con:
            # A re-added file counts as new: retention's pruning never removes media about to be referenced.
            con.execute(
                "INSERT INTO media(sha256, ext, size, created) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(sha256) DO UPDATE SET created = excluded.created",
                (sha, ext, dst.stat().st_size, time.time()),
            )
        return sha

    # -- conditions / clips / pairs -------------------------------------------------------------
    def add_conditions(
        self, portrait: str | Path, audio: str | Path, skeleton: str | Path | None = None, prompt: str | None = None
    ) -> int:
        """The id of these conditions (created once; the same inputs give the same id)."""
        p = self.add_media(portrait)
        a = self.add_media(audio)
        s = self.add_media(skeleton) if skeleton else None
        uid = hashlib.sha256(f"{p}|{a}|{s or ''}|{prompt or ''}".encode()).hexdigest()[:32]
        with self._write() as con:
            con.execute(
                "INSERT OR IGNORE INTO conditions(uid, portrait, audio, skeleton, prompt, created) VALUES (?,?,?,?,?,?)",
                (uid, p, a, s, prompt, time.time()),
            )
            return con.execute("SELECT id FROM conditions WHERE uid = ?", (uid,)).fetchone()[0]

    def add_clip(
        self,
        conditions_id: int,
        video: str | Path,
        engine: str,
        *,
        model_id: str | None = None,
        adapter: str | None = None,
        parameters: dict | None = None,
        seed: int | None = None,
        timings: dict | None = None,
    ) -> int:
        sha = self.add_media(video)
        with self._write() as con:
            cur = con.execute(
                "INSERT INTO clips(uid, conditions_id, video, engine, model_id, adapter, parameters, seed, timings, created)"
                " VALUES (?,?,?,?,?,?,?,?,?,?)",
                (
                    uuid.uuid4().hex,
                    conditions_id,
                    sha,
                    engine,
                    model_id,
                    adapter,
                    json.dumps(parameters or {}, default=str),
                    seed,
                    json.dumps(timings or {}),
                    time.time(),
                ),
            )
            return int(cur.lastrowid)

    def add_pair(self, clip_a: int, clip_b: int) -> int:
        """A pair of two different clips of the same conditions (the same pair is created once)."""
        if clip_a == clip_b:
            raise InputError("pair", "both sides are the same clip", "Pair two different clips.")
        with self._write() as con:
            rows = {
                r["id"]: r
                for r in con.execute("SELECT id, conditions_id FROM clips WHERE id IN (?, ?)", (clip_a, clip_b))
            }
            if len(rows) != 2:
                raise InputError(
                    "pair", f"clip {clip_a if clip_a not in rows else clip_b} does not exist", "Add the clips first."
                )
            if rows[clip_a]["conditions_id"] != rows[clip_b]["conditions_id"]:
                raise InputError(
                    "pair",
                    "the two clips were made from different portrait/audio conditions",
                    "Only clips of the same portrait, audio and skeleton can be compared.",
                )
            existing = con.execute(
                "SELECT id FROM pairs WHERE (clip_a = ? AND clip_b = ?) OR (clip_a = ? AND clip_b = ?)",
                (clip_a, clip_b, clip_b, clip_a),
            ).fetchone()
            if existing:
                return int(existing[0])
            cur = con.execute(
                "INSERT INTO pairs(uid, conditions_id, clip_a, clip_b, created) VALUES (?,?,?,?,?)",
                (uuid.uuid4().hex, rows[clip_a]["conditions_id"], clip_a, clip_b, time.time()),
            )
            return int(cur.lastrowid)

    # -- votes ----------------------------------------------------------------------------------
    def record_vote(self, pair_id: int, label: str, left_clip_id: int, rater: str) -> int:
        """Store one verdict. `label` is relative to the pair's clip_a/clip_b (see the module doc)."""
        if label not in LABELS:
            raise InputError("vote", f"unknown label {label!r}", f"Use one of: {', '.join(LABELS)}.")
        if not rater or len(rater) > 200:
            raise InputError("vote", "missing or invalid rater session id", "Reload the page to get a session.")
        with self._write() as con:
            pair = con.execute("SELECT clip_a, clip_b FROM pairs WHERE id = ?", (pair_id,)).fetchone()
            if pair is None:
                raise InputError("vote", f"pair {pair_id} does not exist", "Load a new pair and vote again.")
            if left_clip_id not in (pair["clip_a"], pair["clip_b"]):
                raise InputError("vote", "the clip shown on the left is not part of this pair", "Load a new pair.")
            try:
                cur = con.execute(
                    "INSERT INTO votes(uid, pair_id, clip_a, clip_b, left_clip, label, rater, created) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        uuid.uuid4().hex,
                        pair_id,
                        pair["clip_a"],
                        pair["clip_b"],
                        left_clip_id,
                        label,
                        rater,
                        time.time(),
                    ),
                )
            except sqlite3.IntegrityError as exc:
                raise InputError("vote", "this rater already voted on this pair", "Load the next pair.") from exc
            return int(cur.lastrowid)

    @staticmethod
    def label_for_choice(pair: Pair, left_clip_id: int, choice: str) -> str:
        """Translate a screen choice ('left' / 'right' / 'tie' / 'both_bad' / 'skip') into a pair label."""
        if choice not in ("left", "right"):
            return choice
        right_clip_id = pair.clip_b.id if left_clip_id == pair.clip_a.id else pair.clip_a.id
        winner = left_clip_id if choice == "left" else right_clip_id
        return "a" if winner == pair.clip_a.id else "b"

    def vote_count(self, label: str | None = None) -> int:
        with self._read() as con:
            if label:
                return con.execute("SELECT COUNT(*) FROM votes WHERE label = ?", (label,)).fetchone()[0]
            return con.execute("SELECT COUNT(*) FROM votes").fetchone()[0]

    # -- reading --------------------------------------------------------------------------------
    def _clip(self, row: sqlite3.Row) -> Clip:
        return Clip(
            id=row["id"],
            uid=row["uid"],
            conditions_id=row["conditions_id"],
            video=row["video"],
            engine=row["engine"],
            model_id=row["model_id"],
            adapter=row["adapter"],
            parameters=json.loads(row["parameters"]),
            seed=row["seed"],
            timings=json.loads(row["timings"]),
            created=row["created"],
            video_path=str(self.media_path(row["video"], row["ext"])),
        )

    def get_clip(self, clip_id: int) -> Clip:
        with self._read() as con:
            row = con.execute(
                "SELECT c.*, m.ext FROM clips c JOIN media m ON m.sha256 = c.video WHERE c.id = ?", (clip_id,)
            ).fetchone()
        if row is None:
            raise KeyError(clip_id)
        return self._clip(row)

    def get_conditions(self, conditions_id: int) -> Conditions:
        with self._read() as con:
            row = con.execute("SELECT * FROM conditions WHERE id = ?", (conditions_id,)).fetchone()
        if row is None:
            raise KeyError(conditions_id)
        return Conditions(
            id=row["id"],
            uid=row["uid"],
            portrait=row["portrait"],
            audio=row["audio"],
            skeleton=row["skeleton"],
            prompt=row["prompt"],
            portrait_path=str(self.media_path(row["portrait"])),
            audio_path=str(self.media_path(row["audio"])),
            skeleton_path=str(self.media_path(row["skeleton"])) if row["skeleton"] else None,
        )

    def get_pair(self, pair_id: int) -> Pair:
        with self._read() as con:
            row = con.execute(
                "SELECT p.*, (SELECT COUNT(*) FROM votes v WHERE v.pair_id = p.id) AS n FROM pairs p WHERE p.id = ?",
                (pair_id,),
            ).fetchone()
        if row is None:
            raise KeyError(pair_id)
        return Pair(
            row["id"],
            row["uid"],
            row["conditions_id"],
            self.get_clip(row["clip_a"]),
            self.get_clip(row["clip_b"]),
            row["n"],
        )

    def next_pair(self, rater: str) -> Pair | None:
        """The pair with the fewest votes that this rater has not voted on (None when none is left)."""
        with self._read() as con:
            row = con.execute(
                """SELECT p.id, COUNT(v.id) AS n FROM pairs p LEFT JOIN votes v ON v.pair_id = p.id
                   WHERE NOT EXISTS (SELECT 1 FROM votes w WHERE w.pair_id = p.id AND w.rater = ?)
                   GROUP BY p.id ORDER BY n ASC, RANDOM() LIMIT 1""",
                (rater,),
            ).fetchone()
        return self.get_pair(row["id"]) if row else None

    def suspicious_votes(
        self, *, window_s: float = 60.0, max_rater_votes: int = 20, min_gap_s: float = 1.0, max_pair_raters: int = 10
    ) -> list[dict[str, Any]]:
        """Bursts that look like ballot stuffing, for review before training (nothing is deleted):

        - a rater casting more than `max_rater_votes` votes within `window_s` seconds, or two votes
          less than `min_gap_s` apart (faster than anyone can watch two clips);
        - a pair receiving votes from more than `max_pair_raters` raters within `window_s` seconds.
        Returns one dict per flag: kind ('rater' / 'pair'), the rater or pair id, the votes and why.
        """
        with self._read() as con:
            rows = [dict(r) for r in con.execute("SELECT id, pair_id, rater, created FROM votes ORDER BY created")]
        flags: list[dict[str, Any]] = []

        def bursts(times: list[float], limit: int) -> int:
            """The most events inside any window of window_s seconds (two pointers over sorted times)."""
            best, lo = 0, 0
            for hi, t in enumerate(times):
                while t - times[lo] > window_s:
                    lo += 1
                best = max(best, hi - lo + 1)
            return best

        by_rater: dict[str, list[dict]] = {}
        by_pair: dict[int, list[dict]] = {}
        for r in rows:
            by_rater.setdefault(r["rater"], []).append(r)
            by_pair.setdefault(r["pair_id"], []).append(r)
        for rater, votes in by_rater.items():
            times = [v["created"] for v in votes]
            peak = bursts(times, max_rater_votes)
            gaps = [b - a for a, b in zip(times, times[1:])]
            why = []
            if peak > max_rater_votes:
                why.append(f"{peak} votes within {window_s:g} s")
            if gaps and min(gaps) < min_gap_s:
                why.append(f"two votes {min(gaps):.2f} s apart")
            if why:
                flags.append(
                    {"kind": "rater", "rater": rater, "votes": [v["id"] for v in votes], "why": "; ".join(why)}
                )
        for pair_id, votes in by_pair.items():
            first: dict[str, float] = {}
            for v in votes:
                first.setdefault(v["rater"], v["created"])
            peak = bursts(sorted(first.values()), max_pair_raters)
            if peak > max_pair_raters:
                flags.append(
                    {
                        "kind": "pair",
                        "pair": pair_id,
                        "votes": [v["id"] for v in votes],
                        "why": f"{peak} raters voted within {window_s:g} s",
                    }
                )
        return flags

    def pending_pairs(self, max_votes: int = 0) -> list[int]:
        """Ids of pairs with at most `max_votes` votes."""
        with self._read() as con:
            rows = con.execute(
                """SELECT p.id FROM pairs p LEFT JOIN votes v ON v.pair_id = p.id
                                  GROUP BY p.id HAVING COUNT(v.id) <= ? ORDER BY p.id""",
                (max_votes,),
            ).fetchall()
        return [r[0] for r in rows]

    def win_rates(self) -> list[dict[str, Any]]:
        """Per system (engine/model@adapter): wins, losses, ties (tie + both_bad), votes, win rate."""
        with self._read() as con:
            rows = con.execute("""SELECT v.label, ca.engine AS ea, ca.model_id AS ma, ca.adapter AS aa,
                                         cb.engine AS eb, cb.model_id AS mb, cb.adapter AS ab
                                  FROM votes v JOIN clips ca ON ca.id = v.clip_a JOIN clips cb ON cb.id = v.clip_b
                                  WHERE v.label != 'skip'""").fetchall()
        stats: dict[str, dict[str, Any]] = {}

        def system(e, m, a):
            return e + (f"/{m}" if m else "") + (f"@{a}" if a else "")

        for r in rows:
            sa, sb = system(r["ea"], r["ma"], r["aa"]), system(r["eb"], r["mb"], r["ab"])
            for s in (sa, sb):
                stats.setdefault(s, {"system": s, "wins": 0, "losses": 0, "ties": 0, "votes": 0})
            if sa == sb:
                continue  # same system on both sides says nothing about systems
            stats[sa]["votes"] += 1
            stats[sb]["votes"] += 1
            if r["label"] == "a":
                stats[sa]["wins"] += 1
                stats[sb]["losses"] += 1
            elif r["label"] == "b":
                stats[sb]["wins"] += 1
                stats[sa]["losses"] += 1
            else:
                stats[sa]["ties"] += 1
                stats[sb]["ties"] += 1
        for s in stats.values():
            s["win_rate"] = round((s["wins"] + 0.5 * s["ties"]) / s["votes"], 4) if s["votes"] else None
        return sorted(stats.values(), key=lambda s: (-(s["win_rate"] or 0), s["system"]))

    def usable_pairs(self, exclude_round: str | None = None) -> list[UsablePair]:
        """Pairs with a decisive majority of a/b votes (ties, both_bad and skip carry no DPO signal)."""
        with self._read() as con:
            q = "SELECT pair_id, id, label FROM votes WHERE label IN ('a', 'b')"
            args: tuple = ()
            if exclude_round:
                q += " AND id NOT IN (SELECT vote_id FROM consumed WHERE round = ?)"
                args = (exclude_round,)
            rows = con.execute(q + " ORDER BY pair_id, id", args).fetchall()
        by_pair: dict[int, list[sqlite3.Row]] = {}
        for r in rows:
            by_pair.setdefault(r["pair_id"], []).append(r)
        out = []
        for pair_id, votes in by_pair.items():
            a = sum(v["label"] == "a" for v in votes)
            b = len(votes) - a
            if a == b:
                continue
            pair = self.get_pair(pair_id)
            winner, loser = (pair.clip_a, pair.clip_b) if a > b else (pair.clip_b, pair.clip_a)
            out.append(
                UsablePair(
                    pair_id,
                    winner,
                    loser,
                    self.get_conditions(pair.conditions_id),
                    abs(a - b) / len(votes),
                    [v["id"] for v in votes],
                )
            )
        return out

    def mark_consumed(self, vote_ids: list[int], round_name: str) -> None:
        with self._write() as con:
            con.executemany(
                "INSERT OR IGNORE INTO consumed(vote_id, round, created) VALUES (?,?,?)",
                [(v, round_name, time.time()) for v in vote_ids],
            )

    def prune_unvoted(self, older_than_s: float, now: float | None = None) -> dict[str, int]:
        """Delete pairs nobody voted on that are older than `older_than_s`, then clips, conditions and
        media files no longer referenced by anything (voted pairs and all they reference stay)."""
        cutoff = (time.time() if now is None else now) - older_than_s
        with self._write() as con:
            pairs = con.execute(
                "DELETE FROM pairs WHERE created < ? AND id NOT IN (SELECT pair_id FROM votes)", (cutoff,)
            ).rowcount
            clips = con.execute(
                """DELETE FROM clips WHERE created < ? AND id NOT IN (
                                       SELECT clip_a FROM pairs UNION SELECT clip_b FROM pairs UNION SELECT clip_a FROM votes
                                       UNION SELECT clip_b FROM votes UNION SELECT left_clip FROM votes)""",
                (cutoff,),
            ).rowcount
            conds = con.execute(
                """DELETE FROM conditions WHERE created < ? AND id NOT IN (
                                       SELECT conditions_id FROM clips UNION SELECT conditions_id FROM pairs)""",
                (cutoff,),
            ).rowcount
            gone = [
                dict(r)
                for r in con.execute(
                    """SELECT sha256, ext FROM media WHERE created < ? AND sha256 NOT IN (
                SELECT video FROM clips UNION SELECT portrait FROM conditions UNION SELECT audio FROM conditions
                UNION SELECT skeleton FROM conditions WHERE skeleton IS NOT NULL)""",
                    (cutoff,),
                )
            ]
            con.executemany("DELETE FROM media WHERE sha256 = ?", [(m["sha256"],) for m in gone])
        for m in gone:  # after the commit: a crash in between leaves a file without a row, never the reverse
            self.media_path(m["sha256"], m["ext"]).unlink(missing_ok=True)
        return {"pairs": pairs, "clips": clips, "conditions": conds, "media": len(gone)}

    def counts(self) -> dict[str, int]:
        """Row counts per table (cheap: for change detection)."""
        with self._read() as con:
            return {
                t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("media", "conditions", "clips", "pairs", "votes")
            }

    def stats(self) -> dict[str, Any]:
        with self._read() as con:
            counts = {
                t: con.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                for t in ("media", "conditions", "clips", "pairs", "votes")
            }
            labels = {r[0]: r[1] for r in con.execute("SELECT label, COUNT(*) FROM votes GROUP BY label")}
        return {
            "store": str(self.root),
            "schema_version": SCHEMA_VERSION,
            **counts,
            "labels": labels,
            "usable_pairs": len(self.usable_pairs()),
            "win_rates": self.win_rates(),
            "suspicious": [
                {k: v for k, v in f.items() if k != "votes"} | {"votes": len(f["votes"])}
                for f in self.suspicious_votes()
            ],
        }

    # -- export / import (Hugging Face dataset layout) ------------------------------------------
    def export_dataset(self, out_dir: str | Path) -> Path:
        """JSONL tables under data/ and media files under media/, plus a dataset card."""
        out = Path(out_dir)
        (out / "data").mkdir(parents=True, exist_ok=True)
        (out / "media").mkdir(exist_ok=True)
        with self._read() as con:
            media = [dict(r) for r in con.execute("SELECT * FROM media")]
            conds = {r["id"]: dict(r) for r in con.execute("SELECT * FROM conditions")}
            clips = {r["id"]: dict(r) for r in con.execute("SELECT * FROM clips")}
            pairs = {r["id"]: dict(r) for r in con.execute("SELECT * FROM pairs")}
            votes = [dict(r) for r in con.execute("SELECT * FROM votes")]
        for m in media:
            dst = out / "media" / f"{m['sha256']}{m['ext']}"
            if not dst.exists():
                shutil.copyfile(self.media_path(m["sha256"], m["ext"]), dst)

        def file_of(sha):
            return None if sha is None else f"media/{sha}{next(m['ext'] for m in media if m['sha256'] == sha)}"

        tables = {
            "conditions": [
                {
                    "uid": c["uid"],
                    "portrait": file_of(c["portrait"]),
                    "audio": file_of(c["audio"]),
                    "skeleton": file_of(c["skeleton"]),
                    "prompt": c["prompt"],
                    "created": c["created"],
                }
                for c in conds.values()
            ],
            "clips": [
                {
                    "uid": c["uid"],
                    "conditions": conds[c["conditions_id"]]["uid"],
                    "video": file_of(c["video"]),
                    "engine": c["engine"],
                    "model_id": c["model_id"],
                    "adapter": c["adapter"],
                    "parameters": json.loads(c["parameters"]),
                    "seed": c["seed"],
                    "timings": json.loads(c["timings"]),
                    "created": c["created"],
                }
                for c in clips.values()
            ],
            "pairs": [
                {
                    "uid": p["uid"],
                    "clip_a": clips[p["clip_a"]]["uid"],
                    "clip_b": clips[p["clip_b"]]["uid"],
                    "created": p["created"],
                }
                for p in pairs.values()
            ],
            "votes": [
                {
                    "uid": v["uid"],
                    "pair": pairs[v["pair_id"]]["uid"],
                    "left_clip": clips[v["left_clip"]]["uid"],
                    "label": v["label"],
                    "rater": v["rater"],
                    "created": v["created"],
                }
                for v in votes
            ],
        }
        for name, rows in tables.items():
            with open(out / "data" / f"{name}.jsonl", "w") as f:
                for row in rows:
                    f.write(json.dumps(row) + "\n")
        (out / "README.md").write_text(_DATASET_CARD.format(**{k: len(v) for k, v in tables.items()}))
        return out

    def import_dataset(self, in_dir: str | Path) -> dict[str, int]:
        """Merge an exported dataset; rows already present (same uid) are skipped."""
        src = Path(in_dir)
        if not (src / "data" / "votes.jsonl").exists():
            raise InputError(
                "dataset", "has no data/votes.jsonl", "Point at a folder written by export.", path=str(src)
            )

        def rows(name):
            out = []
            with open(src / "data" / f"{name}.jsonl") as f:
                for line in f:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass  # a line cut off by an upload that raced a rewrite: the next push has it
            return out

        added = {"conditions": 0, "clips": 0, "pairs": 0, "votes": 0}
        cond_ids, clip_ids, pair_ids = {}, {}, {}
        for c in rows("conditions"):
            p, a = self.add_media(src / c["portrait"]), self.add_media(src / c["audio"])
            s = self.add_media(src / c["skeleton"]) if c.get("skeleton") else None
            with self._write() as con:
                cur = con.execute(
                    "INSERT OR IGNORE INTO conditions(uid, portrait, audio, skeleton, prompt, created) VALUES (?,?,?,?,?,?)",
                    (c["uid"], p, a, s, c.get("prompt"), c["created"]),
                )
                added["conditions"] += cur.rowcount
                cond_ids[c["uid"]] = con.execute("SELECT id FROM conditions WHERE uid = ?", (c["uid"],)).fetchone()[0]
        for c in rows("clips"):
            if c.get("conditions") not in cond_ids:
                continue  # see rows(): a cut-off line
            sha = self.add_media(src / c["video"])
            with self._write() as con:
                cur = con.execute(
                    "INSERT OR IGNORE INTO clips(uid, conditions_id, video, engine, model_id, adapter, parameters, seed, timings, created)"
                    " VALUES (?,?,?,?,?,?,?,?,?,?)",
                    (
                        c["uid"],
                        cond_ids[c["conditions"]],
                        sha,
                        c["engine"],
                        c.get("model_id"),
                        c.get("adapter"),
                        json.dumps(c.get("parameters") or {}),
                        c.get("seed"),
                        json.dumps(c.get("timings") or {}),
                        c["created"],
                    ),
                )
                added["clips"] += cur.rowcount
                clip_ids[c["uid"]] = con.execute("SELECT id FROM clips WHERE uid = ?", (c["uid"],)).fetchone()[0]
        with self._write() as con:
            for p in rows("pairs"):
                if p.get("clip_a") not in clip_ids or p.get("clip_b") not in clip_ids:
                    continue  # see rows(): a cut-off line
                a, b = clip_ids[p["clip_a"]], clip_ids[p["clip_b"]]
                cid = con.execute("SELECT conditions_id FROM clips WHERE id = ?", (a,)).fetchone()[0]
                cur = con.execute(
                    "INSERT OR IGNORE INTO pairs(uid, conditions_id, clip_a, clip_b, created) VALUES (?,?,?,?,?)",
                    (p["uid"], cid, a, b, p["created"]),
                )
                added["pairs"] += cur.rowcount
                pair_ids[p["uid"]] = con.execute(
                    "SELECT id FROM pairs WHERE uid = ? OR (clip_a = ? AND clip_b = ?)", (p["uid"], a, b)
                ).fetchone()[0]
            for v in rows("votes"):
                if v.get("pair") not in pair_ids or v.get("left_clip") not in clip_ids:
                    continue  # its pair was in a cut-off line: it comes with the next push
                pid = pair_ids[v["pair"]]
                pr = con.execute("SELECT clip_a, clip_b FROM pairs WHERE id = ?", (pid,)).fetchone()
                cur = con.execute(
                    "INSERT OR IGNORE INTO votes(uid, pair_id, clip_a, clip_b, left_clip, label, rater, created) VALUES (?,?,?,?,?,?,?,?)",
                    (
                        v["uid"],
                        pid,
                        pr["clip_a"],
                        pr["clip_b"],
                        clip_ids[v["left_clip"]],
                        v["label"],
                        v["rater"],
                        v["created"],
                    ),
                )
                added["votes"] += cur.rowcount
        return added

    # -- optional push to the Hub -----------------------------------------------------------------
    @property
    def hub_sync_enabled(self) -> bool:
        return bool(self.hub_repo_id and self.hub_token)

    def sync_to_hub(self, every_minutes: float = 10.0, hf_api: Any = None):
        """Export into a folder that huggingface_hub's CommitScheduler pushes in the background.

        Off unless a dataset repo id and a token were configured; the scheduler is created on first use.
        """
        if not self.hub_sync_enabled:
            raise Hallo4Error(
                "Pushing votes to the Hub is not configured.",
                hint="Set HALLO4_HUB_DATASET and HF_TOKEN (a write token) to enable it.",
            )
        export = self.root / "hub_export"
        if self._scheduler is None:
            from huggingface_hub import CommitScheduler

            self._scheduler = CommitScheduler(
                repo_id=self.hub_repo_id,
                repo_type="dataset",
                folder_path=export,
                every=every_minutes,
                token=self.hub_token,
                private=True,
                hf_api=hf_api,
            )
        with self._scheduler.lock:
            self.export_dataset(export)
        return self._scheduler


def _storage_error(exc: sqlite3.OperationalError, root: Path) -> Exception:
    """SQLite's words for a read-only / full / unwritable folder become the app's clear storage message."""
    import errno

    from .paths import storage_error

    text = str(exc).lower()
    if "readonly" in text or "read-only" in text or "unable to open" in text:
        return storage_error(OSError(errno.EROFS, str(exc)), root) or exc
    if "disk is full" in text or "disk i/o" in text:
        return storage_error(OSError(errno.ENOSPC, str(exc)), root) or exc
    return exc


_DATASET_CARD = """---
configs:
- config_name: votes
  data_files: data/votes.jsonl
- config_name: pairs
  data_files: data/pairs.jsonl
- config_name: clips
  data_files: data/clips.jsonl
- config_name: conditions
  data_files: data/conditions.jsonl
---
# Hallo4 Studio A/B preferences

Exported from a Hallo4 Studio preference store: {conditions} conditions, {clips} clips, {pairs} pairs,
{votes} votes. A vote's `label` is relative to the pair's `clip_a` / `clip_b` ('a', 'b', 'tie',
'both_bad', 'skip'); `left_clip` says which clip was shown on the left. Media files are under `media/`,
named by their sha256. Raters are anonymous per-session ids.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hallo4.preferences", description="A/B preference store tools.")
    parser.add_argument("command", choices=["stats", "export", "import"])
    parser.add_argument("--store", required=True, help="store folder (data/store by default in the app)")
    parser.add_argument("--dir", help="dataset folder for export / import")
    args = parser.parse_args(argv)
    try:
        store = PreferenceStore(args.store)
        if args.command == "stats":
            print(json.dumps(store.stats(), indent=2))
        elif not args.dir:
            raise InputError("--dir", "is required for export and import", "Pass --dir FOLDER.")
        elif args.command == "export":
            print(store.export_dataset(args.dir))
        else:
            print(json.dumps(store.import_dataset(args.dir)))
    except Hallo4Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
