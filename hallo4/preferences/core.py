"""The store's core: connections (WAL, busy timeout, BEGIN IMMEDIATE writers), migrations, media,
conditions, clips and pairs, and reading them back.

Each call opens its own connection (cheap with SQLite), so the store is safe across threads and
processes; writers use BEGIN IMMEDIATE and a busy timeout so concurrent votes queue instead of failing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

from ..constants import file_sha256
from ..errors import Hallo4Error, InputError
from .schema import DB_NAME, MIGRATIONS, SCHEMA_VERSION, Clip, Conditions, Pair, sqlite_storage_error


class StoreCore:
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
            raise sqlite_storage_error(exc, self.root) from exc
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
                raise sqlite_storage_error(exc, self.root) from exc
        finally:
            con.close()

    def _migrate(self) -> None:
        try:
            self._migrate_unchecked()
        except sqlite3.OperationalError as exc:
            raise sqlite_storage_error(exc, self.root) from exc

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
        sha = file_sha256(src)
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
            return insert_conditions(con, uid, p, a, s, prompt, time.time())[0]

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
        row = {
            "uid": uuid.uuid4().hex,
            "engine": engine,
            "model_id": model_id,
            "adapter": adapter,
            "parameters": parameters,
            "seed": seed,
            "timings": timings,
            "created": time.time(),
        }
        with self._write() as con:
            return insert_clip(con, row, conditions_id, sha)[0]

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

    # -- reading --------------------------------------------------------------------------------
    def _clip(self, row: sqlite3.Row) -> Clip:
        return Clip(
            **_columns(row, Clip),
            parameters=json.loads(row["parameters"]),
            timings=json.loads(row["timings"]),
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
            **_columns(row, Conditions),
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


def _columns(row: sqlite3.Row, record: type, *, computed: tuple[str, ...] = ("parameters", "timings")) -> dict:
    """A row's columns that are plain fields of `record` (same name, stored as is): one mapping for every
    record read from its row. `computed` fields (JSON text in the table) are decoded by the caller."""
    names = set(row.keys())
    return {f.name: row[f.name] for f in fields(record) if f.name in names and f.name not in computed}


def insert_conditions(
    con: sqlite3.Connection,
    uid: str,
    portrait: str,
    audio: str,
    skeleton: str | None,
    prompt: str | None,
    created: float,
) -> tuple[int, int]:
    """(id, rows added) of the conditions with this uid, inserted unless present (add_conditions and import)."""
    cur = con.execute(
        "INSERT OR IGNORE INTO conditions(uid, portrait, audio, skeleton, prompt, created) VALUES (?,?,?,?,?,?)",
        (uid, portrait, audio, skeleton, prompt, created),
    )
    return con.execute("SELECT id FROM conditions WHERE uid = ?", (uid,)).fetchone()[0], cur.rowcount


def insert_clip(con: sqlite3.Connection, clip: dict, conditions_id: int, video_sha: str) -> tuple[int, int]:
    """(id, rows added) of the clip with clip["uid"], inserted unless present (add_clip and import)."""
    cur = con.execute(
        "INSERT OR IGNORE INTO clips(uid, conditions_id, video, engine, model_id, adapter, parameters, seed, timings, created)"
        " VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            clip["uid"],
            conditions_id,
            video_sha,
            clip["engine"],
            clip.get("model_id"),
            clip.get("adapter"),
            json.dumps(clip.get("parameters") or {}, default=str),
            clip.get("seed"),
            json.dumps(clip.get("timings") or {}),
            clip["created"],
        ),
    )
    return con.execute("SELECT id FROM clips WHERE uid = ?", (clip["uid"],)).fetchone()[0], cur.rowcount
