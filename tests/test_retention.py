"""Issue 13, items 4 and 6: retention limits, no partial files after kill -9, burst flags, admin rule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hallo4 import admin, retention
from hallo4.preferences import PreferenceStore

ROOT = Path(__file__).resolve().parents[1]


def _file(path: Path, size: int, age_s: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    t = time.time() - age_s
    os.utime(path, (t, t))
    return path


def test_sweep_by_age_size_and_partial(tmp_path):
    d = tmp_path / "outputs"
    old = _file(d / "old.mp4", 10, 3 * 3600)
    new = [_file(d / f"new{i}.mp4", 100, 600 + i) for i in range(5)]
    fresh = _file(d / "fresh.mp4", 1000, 5)  # being written / served right now: never touched
    part = _file(d / ".x.1234.part.mp4", 10, 2 * 3600)
    young_part = _file(d / ".y.5678.part.mp4", 10, 600)
    removed = retention.sweep_dir(d, max_age_s=2 * 3600, max_bytes=1300, partial_age_s=3600)
    assert old in removed and part in removed and young_part not in removed
    assert fresh.exists()
    # 1000 (fresh) + 10 (young part) + 5 x 100 > 1300: the oldest of the new ones go first.
    assert new[4] in removed and new[3] in removed and new[0].exists()
    assert sum(p.stat().st_size for p in d.iterdir()) <= 1300


def test_sweep_prunes_unvoted_arena_clips_but_keeps_voted(
    tmp_path, monkeypatch, lite_clip, portrait_path, speech_path
):
    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path))
    from hallo4 import studio

    st = studio.store()
    cond = st.add_conditions(portrait_path, speech_path)
    a, b = st.add_clip(cond, lite_clip.video, "lite"), st.add_clip(cond, lite_clip.video, "lite", model_id="m")
    voted = st.add_pair(a, b)
    st.record_vote(voted, "a", a, "r-1")
    other = tmp_path / "other.mp4"
    other.write_bytes(lite_clip.video.read_bytes() + b"\0")  # a different clip (other content)
    c = st.add_clip(cond, other, "lite", model_id="n")
    st.add_pair(a, c)  # nobody votes on this one
    media_before = len(list((st.root / "media").rglob("*.mp4")))
    out = retention.sweep(retention.Policy(unvoted_hours=1), now=time.time() + 2 * 3600)
    assert out["unvoted"] == 1  # the unvoted clip's file
    assert len(list((st.root / "media").rglob("*.mp4"))) == media_before - 1
    assert st.vote_count() == 1 and st.get_pair(voted).clip_a.id == a
    assert Path(st.get_clip(a).video_path).is_file()


_KILL_ME = r"""
import sys, numpy as np
from hallo4 import media
def frames():
    for i in range(100000):
        if i == 50:
            print("ENCODING", flush=True)
        yield np.full((256, 256, 3), i % 255, np.uint8)
media.write_mp4(sys.argv[1], frames(), fps=25)
"""


def test_kill_during_encode_leaves_no_file_under_the_real_name(tmp_path):
    out = tmp_path / "outputs" / "clip.mp4"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_ME, str(out)], stdout=subprocess.PIPE, text=True, cwd=ROOT, start_new_session=True
    )
    assert proc.stdout.readline().strip() == "ENCODING"
    time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # the app and its ffmpeg, as kill -9 of the server's process group
    proc.wait()
    assert not out.exists()  # before: a truncated clip.mp4 a later request could serve
    leftovers = list(out.parent.iterdir())
    assert leftovers and all(p.name.startswith(".clip.") for p in leftovers)
    for p in leftovers:
        os.utime(p, (time.time() - 7200, time.time() - 7200))
    assert set(retention.sweep_dir(out.parent, partial_age_s=3600)) == set(leftovers)


def test_burst_flags(tmp_path, lite_clip, portrait_path, speech_path):
    st = PreferenceStore(tmp_path / "s")
    cond = st.add_conditions(portrait_path, speech_path)
    clips = [st.add_clip(cond, lite_clip.video, "lite", model_id=str(i)) for i in range(8)]
    pairs = [st.add_pair(clips[0], c) for c in clips[1:]]
    for p in pairs:  # one rater, seven votes back to back
        st.record_vote(p, "a", clips[0], "r-fast")
    for k in range(4):  # four raters on one pair at once
        st.record_vote(pairs[0], "b", clips[0], f"r-crowd{k}")
    flags = st.suspicious_votes(max_rater_votes=5, max_pair_raters=3)
    kinds = {(f["kind"], f.get("rater") or f.get("pair")) for f in flags}
    assert ("rater", "r-fast") in kinds and ("pair", pairs[0]) in kinds
    assert not any(f.get("rater", "").startswith("r-crowd") for f in flags if f["kind"] == "rater")
    assert st.stats()["suspicious"]


@pytest.mark.parametrize(
    "host,env,token,ok",
    [
        ("127.0.0.1", {}, "", True),
        ("0.0.0.0", {}, "", False),
        ("192.168.1.5", {}, "anything", False),
        ("127.0.0.1", {"SPACE_ID": "me/x"}, "", False),
        ("0.0.0.0", {"HALLO4_ADMIN_TOKEN": "t0k"}, "t0k", True),
        ("0.0.0.0", {"HALLO4_ADMIN_TOKEN": "t0k"}, "nope", False),
    ],
)
def test_admin_rule(monkeypatch, host, env, token, ok):
    for k in ("SPACE_ID", "HALLO4_SHARE", "HALLO4_ADMIN_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    admin.reset_failures()
    monkeypatch.setattr(admin, "_listen_host", host)
    assert admin.allowed(token, client="c1") is ok


def test_admin_decorator_passes_the_request_and_counts_failures(monkeypatch):
    monkeypatch.setenv("HALLO4_ADMIN_TOKEN", "t0k")
    monkeypatch.setattr(admin, "MAX_FAILURES", 2)
    admin.reset_failures()

    class Req:
        client = type("C", (), {"host": "10.0.0.9"})()
        headers: dict = {}

    @admin.required("Test action")
    def act(token, x, request=None):
        return x, request

    assert act("t0k", 3, request=Req)[0] == 3
    for _ in range(2):
        with pytest.raises(admin.AdminError, match="Test action: wrong or missing admin token"):
            act("bad", 1, request=Req)
    with pytest.raises(admin.AdminError, match="too many wrong admin tokens"):
        act("t0k", 1, request=Req)
    assert admin.allowed("t0k", client="10.0.0.10")  # another client is not locked out
    admin.reset_failures()
