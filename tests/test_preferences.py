"""The SQLite A/B store: flow, scheduler, win rates, export/import, concurrency and crash safety."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import sqlite3
import subprocess
import sys

import pytest

from hallo4.errors import Hallo4Error, InputError
from hallo4.preferences import SCHEMA_VERSION, PreferenceStore


@pytest.fixture
def media_files(tmp_path, portrait_path, speech_path):
    clips = []
    for i in range(4):
        p = tmp_path / f"clip{i}.mp4"
        p.write_bytes(os.urandom(256) + bytes([i]))  # distinct contents -> distinct hashes
        clips.append(p)
    return portrait_path, speech_path, clips


def _filled(root, media_files, engines=("lite", "hallo4", "lite", "hallo4")):
    portrait, audio, clips = media_files
    store = PreferenceStore(root)
    cid = store.add_conditions(portrait, audio)
    ids = [
        store.add_clip(cid, c, engine=e, seed=i, parameters={"size": 256})
        for i, (c, e) in enumerate(zip(clips, engines))
    ]
    pairs = [store.add_pair(ids[0], ids[1]), store.add_pair(ids[2], ids[3]), store.add_pair(ids[0], ids[3])]
    return store, cid, ids, pairs


def test_schema_and_media_are_content_addressed(tmp_path, media_files):
    store, cid, ids, _ = _filled(tmp_path / "s", media_files)
    assert store.schema_version == SCHEMA_VERSION
    with sqlite3.connect(store.db_path) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    portrait, audio, clips = media_files
    assert store.add_conditions(portrait, audio) == cid  # same inputs -> same conditions row
    sha = store.add_media(clips[0])
    assert store.add_media(clips[0]) == sha
    path = store.media_path(sha)
    assert path.read_bytes() == clips[0].read_bytes() and path.parent.name == sha[:2]
    clip = store.get_clip(ids[0])
    assert clip.parameters == {"size": 256} and clip.seed == 0 and clip.engine == "lite"


def test_reopen_migrates_nothing_twice_and_refuses_newer(tmp_path, media_files):
    store, *_ = _filled(tmp_path / "s", media_files)
    again = PreferenceStore(tmp_path / "s")
    assert again.stats()["clips"] == 4
    with sqlite3.connect(store.db_path) as con:
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(Hallo4Error, match="newer than this program"):
        PreferenceStore(tmp_path / "s")


def test_old_schema_is_migrated(tmp_path):
    from hallo4.preferences import MIGRATIONS

    root = tmp_path / "old"
    root.mkdir()
    with sqlite3.connect(root / "preferences.sqlite3") as con:
        for stmt in MIGRATIONS[0].split(";"):
            if stmt.strip():
                con.execute(stmt)
        con.execute("PRAGMA user_version = 1")
    store = PreferenceStore(root)
    assert store.schema_version == SCHEMA_VERSION
    with sqlite3.connect(store.db_path) as con:
        assert con.execute("SELECT name FROM sqlite_master WHERE name = 'consumed'").fetchone()


def test_pairs_need_same_conditions(tmp_path, media_files, hopper_path):
    store, cid, ids, _ = _filled(tmp_path / "s", media_files)
    portrait, audio, clips = media_files
    other = store.add_conditions(hopper_path, audio)
    foreign = store.add_clip(other, clips[0], engine="lite")
    with pytest.raises(InputError, match="different portrait/audio"):
        store.add_pair(ids[0], foreign)
    with pytest.raises(InputError, match="same clip"):
        store.add_pair(ids[0], ids[0])
    assert store.add_pair(ids[1], ids[0]) == store.add_pair(ids[0], ids[1])


def test_vote_flow_scheduler_and_win_rates(tmp_path, media_files):
    store, _, ids, pairs = _filled(tmp_path / "s", media_files)
    seen = set()
    for _ in range(3):
        pair = store.next_pair("rater-1")
        assert pair is not None and pair.id not in seen  # never the same pair twice for one rater
        seen.add(pair.id)
        store.record_vote(pair.id, "a", pair.clip_a.id, "rater-1")
    assert store.next_pair("rater-1") is None
    # Another rater is served the least-voted pairs first.
    store.record_vote(pairs[0], "b", ids[1], "rater-2")
    nxt = store.next_pair("rater-3")
    assert nxt.id != pairs[0]
    with pytest.raises(InputError, match="already voted"):
        store.record_vote(pairs[0], "tie", ids[0], "rater-2")
    with pytest.raises(InputError, match="unknown label"):
        store.record_vote(pairs[1], "maybe", ids[2], "rater-9")
    with pytest.raises(InputError, match="not part of this pair"):
        store.record_vote(pairs[1], "a", ids[0], "rater-9")
    assert store.vote_count() == 4
    rates = {r["system"]: r for r in store.win_rates()}
    # lite (clip_a of every pair) won 3 of 4 decisive votes against hallo4.
    assert rates["lite"]["wins"] == 3 and rates["lite"]["losses"] == 1
    assert rates["hallo4"]["wins"] == 1 and rates["lite"]["win_rate"] == 0.75


def test_label_for_choice_maps_screen_to_pair(tmp_path, media_files):
    store, _, ids, pairs = _filled(tmp_path / "s", media_files)
    pair = store.get_pair(pairs[0])
    assert store.label_for_choice(pair, pair.clip_b.id, "left") == "b"  # clip_b shown left and chosen
    assert store.label_for_choice(pair, pair.clip_b.id, "right") == "a"
    assert store.label_for_choice(pair, pair.clip_a.id, "left") == "a"
    assert store.label_for_choice(pair, pair.clip_a.id, "tie") == "tie"


def test_usable_pairs_drop_ties_and_weigh_margins(tmp_path, media_files):
    store, _, ids, pairs = _filled(tmp_path / "s", media_files)
    store.record_vote(pairs[0], "a", ids[0], "r1")
    store.record_vote(pairs[0], "a", ids[1], "r2")
    store.record_vote(pairs[0], "b", ids[0], "r3")
    store.record_vote(pairs[1], "tie", ids[2], "r1")
    store.record_vote(pairs[1], "both_bad", ids[2], "r2")
    store.record_vote(pairs[2], "skip", ids[0], "r1")
    usable = store.usable_pairs()
    assert [u.pair_id for u in usable] == [pairs[0]]
    u = usable[0]
    assert u.winner.id == ids[0] and u.loser.id == ids[1]
    assert u.weight == pytest.approx(1 / 3) and len(u.vote_ids) == 3
    assert os.path.exists(u.conditions.portrait_path) and os.path.exists(u.winner.video_path)
    store.mark_consumed(u.vote_ids, "round-001")
    assert store.usable_pairs(exclude_round="round-001") == []


def test_export_import_round_trip_is_idempotent(tmp_path, media_files):
    store, _, ids, pairs = _filled(tmp_path / "s", media_files)
    store.record_vote(pairs[0], "a", ids[0], "r1")
    store.record_vote(pairs[1], "b", ids[3], "r1")
    out = store.export_dataset(tmp_path / "ds")
    assert (out / "data" / "votes.jsonl").read_text().count("\n") == 2
    assert "configs:" in (out / "README.md").read_text()
    other = PreferenceStore(tmp_path / "other")
    first = other.import_dataset(out)
    assert first == {"conditions": 1, "clips": 4, "pairs": 3, "votes": 2}
    assert other.import_dataset(out) == {"conditions": 0, "clips": 0, "pairs": 0, "votes": 0}
    assert {r["system"]: r["wins"] for r in other.win_rates()} == {r["system"]: r["wins"] for r in store.win_rates()}
    assert [u.winner.uid for u in other.usable_pairs()] == [u.winner.uid for u in store.usable_pairs()]


def test_hub_push_is_off_by_default(tmp_path):
    store = PreferenceStore(tmp_path / "s")
    assert not store.hub_sync_enabled and store._scheduler is None
    with pytest.raises(Hallo4Error, match="not configured"):
        store.sync_to_hub()


def _voter(root, pair_ids, left_ids, worker, n):
    store = PreferenceStore(root)
    for i in range(n):
        k = i % len(pair_ids)
        store.record_vote(pair_ids[k], "ab"[i % 2], left_ids[k], f"w{worker}-r{i}")


def test_concurrent_votes_from_8_processes(tmp_path, media_files):
    store, _, ids, pairs = _filled(tmp_path / "s", media_files)
    lefts = [store.get_pair(p).clip_a.id for p in pairs]
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_voter, args=(str(tmp_path / "s"), pairs, lefts, w, 200)) for w in range(8)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    assert store.vote_count() == 1600
    assert store.integrity_check() == "ok"


_KILLED_WRITER = r"""
import sqlite3, sys, time, uuid
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")
for i in range(500):
    con.execute("INSERT INTO votes(uid, pair_id, clip_a, clip_b, left_clip, label, rater, created) VALUES (?,?,?,?,?,?,?,?)",
                (uuid.uuid4().hex, int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[3]), 'a', f'k{i}', time.time()))
print('inside', flush=True)
time.sleep(60)
"""


def test_writer_killed_mid_transaction_leaves_store_consistent(tmp_path, media_files):
    store, _, ids, pairs = _filled(tmp_path / "s", media_files)
    store.record_vote(pairs[0], "a", ids[0], "before")
    pair = store.get_pair(pairs[0])
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            _KILLED_WRITER,
            str(store.db_path),
            str(pair.id),
            str(pair.clip_a.id),
            str(pair.clip_b.id),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "inside"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert store.integrity_check() == "ok"
    assert store.vote_count() == 1  # the killed transaction left nothing behind
    store.record_vote(pairs[0], "b", ids[1], "after")  # and the store takes writes again at once
    assert store.vote_count() == 2


def test_cli_stats_and_export(tmp_path, media_files):
    store, _, ids, pairs = _filled(tmp_path / "s", media_files)
    res = subprocess.run(
        [sys.executable, "-m", "hallo4.preferences", "stats", "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0 and '"pairs": 3' in res.stdout
    res = subprocess.run(
        [sys.executable, "-m", "hallo4.preferences", "export", "--store", str(tmp_path / "s")],
        capture_output=True,
        text=True,
    )
    assert res.returncode == 2 and "--dir" in res.stderr and "Traceback" not in res.stderr
