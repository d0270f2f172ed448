"""Issue 13, item 2 against the real app: one visitor flooding the queue does not lock others out, and
a job stops (its ffmpeg child processes die) when its client disconnects or cancels."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError, ValidationError

from .app_server import AppServer, app_server_fixture, generate_inputs

server = app_server_fixture("fair", {"HALLO4_MAX_JOBS_PER_SESSION": "2"})


@pytest.fixture(scope="module")
def long_audio(tmp_path_factory, write_wav) -> Path:
    """40 s of a voiced tone with a syllable rhythm: long enough that a lite job runs for a while."""
    t = np.arange(40 * 16000) / 16000
    wav = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t))
    return write_wav(tmp_path_factory.mktemp("audio") / "long.wav", wav, 16000)


def _ffmpeg_children(srv: AppServer) -> list[psutil.Process]:
    try:
        kids = psutil.Process(srv.proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    out = []
    for k in kids:
        try:
            if "ffmpeg" in k.name():
                out.append(k)
        except psutil.NoSuchProcess:
            pass
    return out


def _encoders(srv: AppServer) -> list[psutil.Process]:
    """The job's video encoder (media.write_mp4: raw frames on stdin), not a short probe or audio decode."""
    out = []
    for p in _ffmpeg_children(srv):
        try:
            if "rawvideo" in p.cmdline() and "-y" in p.cmdline():
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def _stops(srv: AppServer) -> int:
    return srv.log_path.read_text(errors="replace").count("INFO:hallo4.jobs:Stopping generate_clip")


def _wait(pred, timeout: float, step: float = 0.2) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return True
        time.sleep(step)
    return False


@pytest.mark.slow
def test_a_flooding_visitor_does_not_lock_out_another(server, portrait_path, speech_path):
    flooder = Client(server.url, verbose=False)
    other = Client(server.url, verbose=False)
    flood = [
        flooder.submit(*generate_inputs(portrait_path, speech_path, 100 + i, 160, 2.0), api_name="/generate")
        for i in range(8)
    ]
    time.sleep(1.0)
    mine = other.submit(*generate_inputs(portrait_path, speech_path, 5, 160, 1.0), api_name="/generate")
    _, seed, info = mine.result(timeout=240)
    assert seed == "5" and info["frames"] == 25  # the app shows the seed used as text
    outcomes = []
    for job in flood:
        try:
            job.result(timeout=240)
            outcomes.append("ok")
        except ValidationError as exc:  # the queue's refusal (a validator)
            outcomes.append(str(exc))
        except AppError as exc:
            # A flooder's queued job whose event stream the client stopped reading is cancelled as a page that
            # went away (the app's "stops when its user goes away"); seen once in CI with 8 streams from one client.
            if "the request was cancelled or its page was closed" not in str(exc):
                raise
            outcomes.append("stopped")
    refused = [o for o in outcomes if "jobs waiting or running (the limit is 2 per visitor)" in o]
    assert len(refused) >= 5, outcomes  # the flooder got a clear message instead of 8 places in the queue
    # no job failed for another reason
    assert outcomes.count("ok") + outcomes.count("stopped") + len(refused) == len(flood), outcomes


def _running_job_script(url: str, portrait: Path, audio: Path) -> str:
    return textwrap.dedent(f"""
        import time
        from gradio_client import Client, handle_file
        c = Client({url!r}, verbose=False)
        job = c.submit(handle_file({str(portrait)!r}), handle_file({str(audio)!r}), "none (idle motion)", None, "lite",
                       "fast", None, None, 9, 512, 40.0, api_name="/generate")
        print("SUBMITTED", flush=True)
        time.sleep(600)
    """)


@pytest.mark.slow
def test_job_stops_when_its_client_disconnects(server, portrait_path, long_audio):
    client = subprocess.Popen(
        [sys.executable, "-c", _running_job_script(server.url, portrait_path, long_audio)],
        stdout=subprocess.PIPE,
        text=True,
    )
    stops = _stops(server)
    try:
        assert _wait(lambda: _encoders(server), 120), "the job never started encoding"
        client.kill()  # the browser tab goes away: no cancel, just a dropped connection
        client.wait()
        # Before: the job (and its ffmpeg) kept running to the end (~1000 frames); now it stops at its next
        # progress report once Gradio notices the dropped connection (its heartbeat: up to ~15 s).
        assert _wait(lambda: _stops(server) > stops and not _ffmpeg_children(server), 45), [
            p.cmdline()[:3] for p in _ffmpeg_children(server)
        ]
    finally:
        if client.poll() is None:
            client.kill()


@pytest.mark.slow
def test_job_stops_when_cancelled(server, portrait_path, long_audio):
    c = Client(server.url, verbose=False)
    job = c.submit(
        *generate_inputs(portrait_path, long_audio, 10, 512, 40.0),
        api_name="/generate",
    )
    stops = _stops(server)
    assert _wait(lambda: _encoders(server), 120), "the job never started encoding"
    job.cancel()
    assert _wait(lambda: _stops(server) > stops and not _ffmpeg_children(server), 20), (
        [p.cmdline() for p in _ffmpeg_children(server)],
        server.log_path.read_text()[-600:],
    )
    # The server is free again: a short job right after is served.
    out = c.predict(
        *generate_inputs(portrait_path, long_audio, 11, 128, 1.0),
        api_name="/generate",
    )
    assert out[2]["frames"] == 25


def test_generate_and_arena_have_separate_slots(monkeypatch, tmp_path):
    """Before, the arena's event shared Generate's concurrency id with a lower limit (so Generate's real limit was 2)."""
    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path))
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import app

    demo = app.build_demo()
    fns = {f.name: f for f in demo.fns.values()}
    gen, arena = fns["generate_clip"], fns["arena_generate"]
    assert gen.concurrency_id != arena.concurrency_id
    assert (gen.concurrency_limit, arena.concurrency_limit) == (3, 2)
