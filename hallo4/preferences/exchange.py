"""Export / import in the Hugging Face dataset layout, and the optional background push to the Hub."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from ..errors import Hallo4Error, InputError
from .core import insert_clip, insert_conditions

log = logging.getLogger("hallo4.preferences")


class ExchangeMixin:
    """Dataset export/import methods of PreferenceStore (needs StoreCore)."""

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

        tables = _export_tables(media, conds, clips, pairs, votes)
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
        added = {"conditions": 0, "clips": 0, "pairs": 0, "votes": 0}
        cond_ids: dict[str, int] = {}
        for c in _jsonl_rows(src, "conditions"):
            p, a = self.add_media(src / c["portrait"]), self.add_media(src / c["audio"])
            s = self.add_media(src / c["skeleton"]) if c.get("skeleton") else None
            with self._write() as con:
                cond_ids[c["uid"]], n = insert_conditions(con, c["uid"], p, a, s, c.get("prompt"), c["created"])
            added["conditions"] += n
        clip_ids: dict[str, int] = {}
        for c in _jsonl_rows(src, "clips"):
            if c.get("conditions") not in cond_ids:
                continue  # see _jsonl_rows: a cut-off line
            sha = self.add_media(src / c["video"])
            with self._write() as con:
                clip_ids[c["uid"]], n = insert_clip(con, c, cond_ids[c["conditions"]], sha)
            added["clips"] += n
        with self._write() as con:
            pair_ids = _import_pairs(con, _jsonl_rows(src, "pairs"), clip_ids, added)
            _import_votes(con, _jsonl_rows(src, "votes"), pair_ids, clip_ids, added)
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


def _jsonl_rows(src: Path, name: str) -> list[dict[str, Any]]:
    """The rows of data/<name>.jsonl; a line cut off by an upload that raced a rewrite is skipped (logged):
    the next push has it."""
    out = []
    with open(src / "data" / f"{name}.jsonl") as f:
        for n, line in enumerate(f, 1):
            try:
                out.append(json.loads(line))
            except ValueError:
                log.warning("Skipping a cut-off line %d of %s.jsonl in %s", n, name, src)
    return out


def _import_pairs(con, rows: list[dict], clip_ids: dict[str, int], added: dict[str, int]) -> dict[str, int]:
    pair_ids: dict[str, int] = {}
    for p in rows:
        if p.get("clip_a") not in clip_ids or p.get("clip_b") not in clip_ids:
            continue  # see _jsonl_rows: a cut-off line
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
    return pair_ids


def _import_votes(con, rows: list[dict], pair_ids: dict[str, int], clip_ids: dict[str, int], added: dict) -> None:
    for v in rows:
        if v.get("pair") not in pair_ids or v.get("left_clip") not in clip_ids:
            continue  # its pair was in a cut-off line: it comes with the next push
        pid = pair_ids[v["pair"]]
        pr = con.execute("SELECT clip_a, clip_b FROM pairs WHERE id = ?", (pid,)).fetchone()
        cur = con.execute(
            "INSERT OR IGNORE INTO votes(uid, pair_id, clip_a, clip_b, left_clip, label, rater, created)"
            " VALUES (?,?,?,?,?,?,?,?)",
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


def _export_tables(media: list[dict], conds: dict, clips: dict, pairs: dict, votes: list[dict]) -> dict[str, list]:
    """The dataset's rows, ids replaced by uids and media by their file names under media/."""
    ext = {m["sha256"]: m["ext"] for m in media}

    def file_of(sha):
        return None if sha is None else f"media/{sha}{ext[sha]}"

    return {
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
