"""Every tab's API on a live app through gradio_client, bad inputs included, and a vote load test."""

from __future__ import annotations

import json
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError

from hallo4 import media

from .app_server import app_server_fixture, generate_inputs

# The vote load test's 20 sessions all come from 127.0.0.1: allow them all a rater id (hallo4.raters).
server = app_server_fixture("appdata", {"HALLO4_NEW_RATERS_PER_HOUR": "1000"})


@pytest.fixture
def client(server):
    return Client(server.url, verbose=False)


def _gen(client, portrait, audio, seed=4, size=192, seconds=1.2, **form):
    return client.predict(*generate_inputs(portrait, audio, seed, size, seconds, **form), api_name="/generate")


def test_generate_returns_video_seed_and_timings(client, portrait_path, speech_path):
    video, seed, info = _gen(client, portrait_path, speech_path)
    assert seed == "4" and info["engine"] == "lite" and info["frames"] == 30
    assert "total" in info["timings_s"]
    probe = media.probe(video)
    assert probe.video_codec == "h264" and probe.has_audio and probe.num_frames == 30


def test_same_seed_is_served_from_cache(client, portrait_path, speech_path):
    _gen(client, portrait_path, speech_path, seed=11)
    _, _, info = _gen(client, portrait_path, speech_path, seed=11)
    assert any("result cache" in w for w in info["warnings"])


def test_preview_is_one_second(client, portrait_path, speech_path):
    video = client.predict(handle_file(str(portrait_path)), handle_file(str(speech_path)), 1, api_name="/preview")
    assert media.probe(video).num_frames == 25


@pytest.mark.parametrize(
    "bad,match",
    [("portrait", "portrait .*not a readable image"), ("audio", r"audio .*(could not be decoded|is silent)")],
)
def test_bad_inputs_give_clear_errors(client, tmp_path, portrait_path, speech_path, bad, match):
    import re

    fake = tmp_path / ("fake.png" if bad == "portrait" else "fake.wav")
    fake.write_text("this is not media " * 30)
    args = (fake, speech_path) if bad == "portrait" else (portrait_path, fake)
    with pytest.raises(AppError) as exc:
        _gen(client, *args)
    msg = str(exc.value)
    assert re.search(match, msg) and "Traceback" not in msg


def test_silent_audio_and_no_face_errors(client, tmp_path, portrait_path):
    import numpy as np
    import soundfile as sf
    from PIL import Image

    sf.write(tmp_path / "silence.wav", np.zeros(16000, np.float32), 16000)
    with pytest.raises(AppError, match="is silent"):
        _gen(client, portrait_path, tmp_path / "silence.wav")
    wall = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    Image.fromarray(wall).save(tmp_path / "wall.png")
    with pytest.raises(AppError, match="no face could be detected"):
        _gen(client, tmp_path / "wall.png", portrait_path.parent.parent / "audio" / "hello.wav")


def test_cancel_stops_a_running_generation(client, portrait_path, examples_dir):
    """Cancel (same session) stops the job at its next progress report; nothing is returned."""
    import time

    job = client.submit(
        *generate_inputs(portrait_path, examples_dir / "audio" / "story.wav", 99, 640, None),
        api_name="/generate",
    )
    deadline = time.time() + 60
    while time.time() < deadline and not (job.status().progress_data or job.done()):
        time.sleep(0.1)  # wait until the engine reports progress: the job is really running
    assert not job.done(), "the generation finished before it could be cancelled"
    t0 = time.time()
    assert "Cancelled" in client.predict(api_name="/cancel")
    with pytest.raises(AppError, match="Cancelled"):  # the app's own message, not any failure
        job.result(timeout=30)
    assert time.time() - t0 < 15
    assert job.status().code.name in ("CANCELLED", "FINISHED")
    assert not job.outputs()  # no video came back


def test_hallo4_without_weights_says_what_to_do(client, portrait_path, speech_path):
    with pytest.raises(AppError, match=r"(?s)hallo4 engine needs its weights.*python -m hallo4.weights download"):
        _gen(client, portrait_path, speech_path, 1, 192, 1.0, engine="hallo4")


def test_skeleton_file_required_when_chosen(client, portrait_path, speech_path):
    with pytest.raises(AppError, match="Skeleton: no skeleton file"):
        _gen(client, portrait_path, speech_path, 1, 192, 1.0, skeleton_mode="uploaded file")


@pytest.fixture(scope="module")
def skeleton_json(tmp_path_factory, portrait_path):
    import numpy as np
    from PIL import Image

    from hallo4 import skeleton as sk

    seq = sk.idle_skeleton(np.asarray(Image.open(portrait_path).convert("RGB")), 40, seed=3)
    return seq.save(tmp_path_factory.mktemp("sk") / "idle.json")


def test_skeleton_load_preview_fit_and_use_in_generate(client, portrait_path, speech_path, skeleton_json):
    preview, skel, notes = client.predict(
        handle_file(str(skeleton_json)),
        handle_file(str(portrait_path)),
        True,
        "pingpong",
        handle_file(str(speech_path)),
        api_name="/skeleton_load",
    )
    assert "40 frames" in notes and "Retargeted" in notes
    info = media.probe(preview)
    assert info.kind == "video" and info.num_frames == int(np.ceil(media.probe(speech_path).duration * 25))
    assert skel.endswith(".json")
    video, _, gen = _gen(
        client, portrait_path, speech_path, 2, 160, 1.2, skeleton_mode="uploaded file", skeleton_file=skel
    )
    assert media.probe(video).num_frames == 30 and gen["parameters"]["skeleton"] == Path(skel).name


def test_skeleton_extract_from_a_driving_video(client, portrait_path, speech_path):
    """A talking clip as the driving video: extracted, retargeted, looped to the speech, previewed."""
    video, _, _ = _gen(client, portrait_path, speech_path, seed=21, size=256, seconds=1.2)
    preview, skel, notes = client.predict(
        handle_file(video),
        handle_file(str(portrait_path)),
        True,
        "pingpong",
        handle_file(str(speech_path)),
        api_name="/skeleton_extract",
    )
    assert notes.startswith("30 frames at 25 fps") and "Retargeted" in notes
    assert media.probe(preview).num_frames == int(np.ceil(media.probe(speech_path).duration * 25))
    from hallo4.skeleton import SkeletonSequence

    seq = SkeletonSequence.load(skel)
    assert seq.num_frames == media.probe(preview).num_frames and (seq.body[..., 2] > 0).any()


def test_skeleton_bad_inputs(client, tmp_path, portrait_path):
    bad = tmp_path / "broken.json"
    bad.write_text("{not json")
    with pytest.raises(AppError, match=r"skeleton \(broken\.json\): is not valid JSON") as exc:
        client.predict(handle_file(str(bad)), None, True, "keep", None, api_name="/skeleton_load")
    assert "Traceback" not in str(exc.value) and "/tmp" not in str(exc.value)  # the upload's name, no server path
    with pytest.raises(AppError, match="Driving video: missing"):
        client.predict(None, handle_file(str(portrait_path)), True, "keep", None, api_name="/skeleton_extract")


def test_arena_pair_vote_reveal_and_win_rates(client, server, portrait_path, speech_path):
    left, right, status = client.predict(
        handle_file(str(portrait_path)), handle_file(str(speech_path)), api_name="/arena_new_pair"
    )
    assert media.probe(left).kind == "video" and media.probe(right).kind == "video" and "pair" in status.lower()
    status, rates = client.predict(api_name="/vote_left")
    assert "Recorded 'A better'" in status and "A was **lite motion model, base**" in status  # words, not ids
    # No lite round is active: both clips come from the base motion model (different seeds), so the vote
    # teaches the next round but counts for no system's win rate.
    assert [row[0] for row in rates["data"]] == ["lite motion model, base"] and rates["data"][0][4] == 0
    with sqlite3.connect(server.data_dir / "store" / "preferences.sqlite3") as con:
        records = [
            json.loads(p)["lite_motion"]
            for (p,) in con.execute("SELECT parameters FROM clips WHERE model_id = 'lite-motion'")
        ]
    assert len(records) >= 2 and {r["round"] for r in records} == {"base"}
    assert len({r["seed"] for r in records}) == len(records)  # each clip its own seed, recorded to rebuild it
    with pytest.raises(AppError, match="no pair on screen"):  # one vote per pair on screen
        client.predict(api_name="/vote_right")
    with sqlite3.connect(server.data_dir / "store" / "preferences.sqlite3") as con:
        assert con.execute("SELECT COUNT(*) FROM votes").fetchone()[0] >= 1


def test_train_and_models_endpoints(client, server):
    overview, rounds = client.predict("hallo4", api_name="/train_overview")
    assert "Usable pairs" in overview and rounds["choices"][0][0] == "(base model)"
    with sqlite3.connect(server.data_dir / "store" / "preferences.sqlite3") as con:
        decisive = con.execute("SELECT COUNT(*) FROM votes WHERE label IN ('a', 'b')").fetchone()[0]
    # The first thing a round lacks here: decisive votes (when none were cast yet), else the hallo4 weights.
    expected = "Training needs the hallo4 weights" if decisive else "there are no usable pairs yet"
    with pytest.raises(AppError, match=expected):
        client.predict("", "hallo4", 5, 2500, 1e-4, 4, api_name="/train_start")
    with pytest.raises(AppError, match=r"'sd' .*is not in the list of choices: \['lite', 'hallo4'\]"):  # the Radio
        client.predict("", "sd", 5, 2500, 1e-4, 4, api_name="/train_start")
    assert client.predict("", api_name="/train_stop") == "No round is running."
    assert "base model" in client.predict("", "hallo4", "(base model)", api_name="/train_activate")  # roll back
    assert "base model" in client.predict("", "hallo4", api_name="/train_rollback")
    status = client.predict(api_name="/models_status")
    assert "| lite | ready" in status and "**weights missing**" in status
    assert "hf download fudan-generative-ai/hallo4" in status and "python -m hallo4.weights download" in status


def test_train_metrics_plot_reads_a_rounds_metrics(client, server):
    rd = server.data_dir / "rounds" / "round-001"
    rd.mkdir(parents=True, exist_ok=True)
    rows = [{"step": i, "loss": 0.69 - 0.01 * i, "implicit_acc": 0.5 + 0.02 * i} for i in range(1, 6)]
    (rd / "metrics.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows) + '{"step": 6, "lo'
    )  # a line mid-write
    _, rounds = client.predict("hallo4", api_name="/train_overview")
    assert ["round-001", "round-001"] in rounds["choices"]
    plot = client.predict("hallo4", "round-001", api_name="/train_metrics")
    values = plot["value"] if "value" in plot else plot
    assert len(values["data"]) == 10 and {r[2] for r in values["data"]} == {"loss", "implicit_acc"}
    with pytest.raises(AppError, match="round-001 has no adapter_model.safetensors"):
        client.predict("", "hallo4", "round-001", api_name="/train_activate")


def test_files_outside_the_app_are_not_served(server):
    import urllib.error
    import urllib.request

    secret = [
        server.data_dir / "store" / "preferences.sqlite3",
        server.data_dir / "settings.json",
        server.data_dir / "app.log",
    ]
    for path in [
        "gradio_api/file=/etc/passwd",
        "gradio_api/file=" + str(Path(__file__).resolve().parents[1] / "README.md"),
    ] + [f"gradio_api/file={p}" for p in secret if p.exists()]:
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(server.url + path, timeout=10)


def test_load_500_votes_from_20_sessions(server, generate_clip, portrait_path, speech_path):
    """20 concurrent clients x 25 votes -> exactly 500 rows, none lost or duplicated."""
    from hallo4.preferences import PreferenceStore

    store = PreferenceStore(server.data_dir / "store")
    before = store.vote_count()
    cond = store.add_conditions(portrait_path, speech_path)
    clips = []
    for seed in range(8):  # 8 real clips -> 28 possible pairs
        res = generate_clip(portrait=portrait_path, audio=speech_path, seed=seed, size=96, max_seconds=1.2)
        clips.append(store.add_clip(cond, res.video, engine="lite", seed=seed))
    pairs = [store.add_pair(a, b) for i, a in enumerate(clips) for b in clips[i + 1 :]][:25]
    assert len(set(pairs)) == 25

    def session(_):
        c = Client(server.url, verbose=False)
        n = 0
        for _ in range(25):
            left, right, status = c.predict(api_name="/arena_next")
            assert left is not None, status
            c.predict(api_name="/vote_left")
            n += 1
        return n

    with ThreadPoolExecutor(20) as pool:
        done = sum(pool.map(session, range(20)))
    assert done == 500
    assert store.vote_count() - before == 500
    with sqlite3.connect(store.db_path) as con:
        dup = con.execute(
            "SELECT COUNT(*) FROM (SELECT pair_id, rater FROM votes GROUP BY pair_id, rater HAVING COUNT(*) > 1)"
        ).fetchone()[0]
        assert dup == 0
    assert store.integrity_check() == "ok"
