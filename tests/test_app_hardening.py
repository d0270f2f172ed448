"""Issue 13 against the real app (python app.py + gradio_client): admin model, rater ids, clear
messages for hostile inputs, what is served, and start-up on a read-only / full data folder."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from hallo4.preferences import PreferenceStore
from hallo4.skeleton import SkeletonSequence

from .app_server import AppServer, generate_inputs


def _store_with_pair(data_dir: Path, video: Path, portrait: Path, audio: Path) -> int:
    st = PreferenceStore(data_dir / "store")
    cond = st.add_conditions(portrait, audio)
    a = st.add_clip(cond, video, "lite", model_id="expressiveness-0.7")
    b = st.add_clip(cond, video, "lite", model_id="expressiveness-1.3")
    return st.add_pair(a, b)


@pytest.fixture(scope="module")
def server(tmp_path_factory, lite_clip, portrait_path, speech_path):
    data = tmp_path_factory.mktemp("harden")
    _store_with_pair(data, lite_clip.video, portrait_path, speech_path)
    with AppServer(data, env={"HALLO4_NEW_RATERS_PER_HOUR": "2", "HALLO4_ADMIN_TOKEN": ""}) as srv:
        yield srv


def _err(fn, *args, **kwargs) -> str:
    """The app's own error message of a call that must fail (AppError: a gr.Error the app raised)."""
    with pytest.raises(AppError) as exc:
        fn(*args, **kwargs)
    msg = str(exc.value)
    assert "Something went wrong" not in msg and "Traceback" not in msg, msg
    return msg


# -- item 5: clear messages -----------------------------------------------------------------------
@pytest.mark.parametrize("seed,expected", [(-5, "seed: -5 is negative"), (2**64 + 3, "larger than 2^63-1")])
def test_bad_seed_messages(server, portrait_path, speech_path, seed, expected):
    c = Client(server.url, verbose=False)
    msg = _err(
        c.predict,
        *generate_inputs(portrait_path, speech_path, seed, 128, 1.0),
        api_name="/generate",
    )
    assert expected in msg


@pytest.mark.parametrize(
    "width,fps,value,expected",
    [
        (1_000_000, 25.0, 100.0, "claims a 1000000x1000000 canvas"),
        (512, 1e-6, 100.0, "frame rate 1e-06 fps is outside"),
        (512, 25.0, 1e30, "coordinates up to 1e+30 px"),
    ],
)
def test_hostile_skeleton_messages(server, tmp_path, width, fps, value, expected):
    pts = np.full((5, 128, 3), value, np.float32)
    pts[..., 2] = 1
    d = SkeletonSequence.from_points(pts, 16, 16).to_dict()
    d.update(width=width, height=width, fps=fps)
    f = tmp_path / "bad.json"
    f.write_text(json.dumps(d))
    c = Client(server.url, verbose=False)
    msg = _err(c.predict, handle_file(str(f)), None, True, "pingpong", None, api_name="/skeleton_load")
    assert expected in msg


def test_vote_on_a_pair_that_no_longer_exists(server):
    c = Client(server.url, verbose=False)
    c.predict(api_name="/arena_next")
    con = sqlite3.connect(server.data_dir / "store" / "preferences.sqlite3")
    pair_id = con.execute("SELECT MAX(id) FROM pairs").fetchone()[0]
    con.execute("PRAGMA foreign_keys = ON")
    row = con.execute("SELECT * FROM pairs WHERE id = ?", (pair_id,)).fetchone()
    con.execute("DELETE FROM pairs WHERE id = ?", (pair_id,))
    con.commit()
    try:
        msg = _err(c.predict, api_name="/vote_left")
        assert f"pair {pair_id} does not exist" in msg and "Next pair" in msg
    finally:
        con.execute("INSERT INTO pairs VALUES (?, ?, ?, ?, ?, ?)", tuple(row))
        con.commit()
        con.close()


# -- item 4: raters are issued by the server ------------------------------------------------------
def test_new_sessions_cannot_vote_as_many_raters(server):
    """Each gradio_client is a new session (a client-chosen session hash): only 2 get a rater id per hour."""
    db = server.data_dir / "store" / "preferences.sqlite3"
    before = sqlite3.connect(db).execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    outcomes = []
    for _ in range(4):
        c = Client(server.url, verbose=False)
        try:
            c.predict(api_name="/arena_next")
            c.predict(api_name="/vote_left")
            outcomes.append("voted")
        except AppError as exc:  # the app's refusal (anything else is a failure of the test)
            outcomes.append(str(exc))
    con = sqlite3.connect(db)
    after = con.execute("SELECT COUNT(*) FROM votes").fetchone()[0]
    raters = [r[0] for r in con.execute("SELECT rater FROM votes")]
    assert after - before <= 2, outcomes
    assert any("too many new voting sessions" in o for o in outcomes), outcomes
    assert all(r.startswith("r-") and len(r) == 26 for r in raters)  # random server ids, not session hashes


# -- item 3: admin ---------------------------------------------------------------------------------
def test_admin_open_on_loopback_without_token(server):
    c = Client(server.url, verbose=False)
    out = c.predict("none", "none", "", api_name="/models_save")
    assert "hallo4" in out


def test_admin_refused_on_all_interfaces_without_token(tmp_path):
    with AppServer(tmp_path, env={"GRADIO_SERVER_NAME": "0.0.0.0", "HALLO4_ADMIN_TOKEN": ""}) as srv:
        c = Client(srv.url, verbose=False)
        msg = _err(c.predict, "none", "none", "", api_name="/models_save")
        assert "0.0.0.0 (not loopback)" in msg and "HALLO4_ADMIN_TOKEN" in msg
        assert "HALLO4_ADMIN_TOKEN" in _err(c.predict, "", "hallo4", 10, 2500, 1e-4, 4, api_name="/train_start")
        assert not (tmp_path / "settings.json").exists()


def test_admin_token_guesses_are_rate_limited(tmp_path):
    with AppServer(tmp_path, env={"HALLO4_ADMIN_TOKEN": "right-token", "HALLO4_ADMIN_MAX_FAILURES": "3"}) as srv:
        c = Client(srv.url, verbose=False)
        for i in range(3):
            assert "wrong or missing admin token" in _err(
                c.predict, "none", "none", f"guess{i}", api_name="/models_save"
            )
        # Locked now: even the right token waits, so guessing cannot go on.
        assert "too many wrong admin tokens" in _err(c.predict, "none", "none", "right-token", api_name="/models_save")


# -- item 6: nothing with other users' paths is served ---------------------------------------------
def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_result_cache_metadata_is_not_served(server, portrait_path, speech_path):
    c = Client(server.url, verbose=False)
    c.predict(
        *generate_inputs(portrait_path, speech_path, 77, 128, 1.0),
        api_name="/generate",
    )
    cache = server.data_dir / "cache"
    metas = list(cache.rglob("*.json"))
    videos = list((cache / "results").glob("*.mp4"))
    assert metas and videos
    assert not list((cache / "results").glob("*.json"))  # never beside the served videos
    assert _get(f"{server.url}gradio_api/file={videos[0]}") == 200  # the serving route works...
    for meta in metas:
        assert str(portrait_path.name) in meta.read_text()  # ...this file holds upload paths...
        assert _get(f"{server.url}gradio_api/file={meta}") in (403, 404)  # ...and is never served


# -- item 5: start-up on a read-only / full data folder ------------------------------------------
def _mount_tmpfs(path: Path, options: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    return (
        subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True).returncode
        == 0
    )


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _start_fails(data: Path, log_dir: Path) -> str:
    env = {**os.environ, "HALLO4_DATA_DIR": str(data), "GRADIO_SERVER_PORT": "0", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "app.py"],
        cwd=Path(__file__).resolve().parents[1],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    return proc.stdout + proc.stderr


def test_read_only_data_folder_says_so_at_start(tmp_path):
    data = tmp_path / "ro"
    data.mkdir()
    if os.geteuid() == 0:
        if not _mount_tmpfs(data, "ro,size=1m"):
            pytest.skip("running as root without permission to mount a read-only tmpfs")
    else:
        data.chmod(0o555)
    try:
        out = _start_fails(data, tmp_path)
        assert f"The data folder {data} is read-only" in out and "HALLO4_DATA_DIR" in out, out[-2000:]
        assert "Traceback" not in out and "sqlite3" not in out
    finally:
        if os.geteuid() == 0:
            _umount(data)
        else:
            data.chmod(0o755)


def test_full_disk_gives_a_clear_message(tmp_path, portrait_path, speech_path):
    data = tmp_path / "full"
    data.mkdir()
    if not _mount_tmpfs(data, "size=8m"):
        pytest.skip("needs root to mount a small tmpfs as the data folder")
    try:
        out = _start_fails_or_fill(data, tmp_path, portrait_path, speech_path)
        assert f"The disk holding {data}" in out and "is full" in out, out
    finally:
        _umount(data)


def _start_fails_or_fill(data: Path, tmp_path: Path, portrait: Path, audio: Path) -> str:
    """Start on the small disk, fill it, then ask for a video: the error must name the full disk."""
    with AppServer(data, log_path=tmp_path / "app.log") as srv:  # the log must not sit on the full disk
        filler = data / "filler.bin"
        with open(filler, "wb", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 16))
            except OSError:
                pass
        c = Client(srv.url, verbose=False)
        # Upload from outside the full disk (Gradio's temp folder), save settings (an admin action on loopback).
        return _err(c.predict, "none", "none", "", api_name="/models_save")
