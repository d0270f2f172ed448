"""Votes on pairs and what they add up to: recording, next pair for a rater, ballot-stuffing flags,
win rates, the DPO trainer's usable pairs, retention pruning and counts."""

from __future__ import annotations

import sqlite3
import time
import uuid
from typing import Any

from ..errors import InputError
from .schema import LABELS, SCHEMA_VERSION, Pair, UsablePair


class VotesMixin:
    """Vote-side methods of PreferenceStore (needs StoreCore's _read/_write/get_pair/get_conditions)."""

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
        counts = self.counts()
        with self._read() as con:
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
