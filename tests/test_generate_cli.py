"""python -m hallo4.generate, as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys

from hallo4 import media


def run(*args):
    return subprocess.run([sys.executable, "-m", "hallo4.generate", *map(str, args)], capture_output=True, text=True)


def test_generate_lite(tmp_path, portrait_path, speech_path):
    out = tmp_path / "out.mp4"
    res = run(
        "--portrait",
        portrait_path,
        "--audio",
        speech_path,
        "--engine",
        "lite",
        "-o",
        out,
        "--seed",
        5,
        "--size",
        160,
        "--max-seconds",
        1.2,
    )
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert summary["seed"] == 5 and summary["engine"] == "lite"
    info = media.probe(out)
    assert info.num_frames == 30 and info.has_audio and max(info.width, info.height) == 160


def test_generate_bad_input_exits_2_without_traceback(tmp_path, speech_path):
    fake = tmp_path / "fake.jpg"
    fake.write_text("not a photo")
    res = run("--portrait", fake, "--audio", speech_path, "-o", tmp_path / "x.mp4")
    assert res.returncode == 2
    assert "Traceback" not in res.stderr
    assert "portrait" in res.stderr and "not a readable image" in res.stderr
