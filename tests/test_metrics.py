"""The weight-free lip-sync meter on clips whose offset we control."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from hallo4 import media
from hallo4.constants import FPS, SAMPLE_RATE
from hallo4.metrics import lipsync


@pytest.fixture(scope="module")
def clip_audio(lite_clip):
    return media.load_audio(lite_clip.video, SAMPLE_RATE)


def test_synced_clip(lite_clip):
    r = lipsync(lite_clip.video)
    assert abs(r.offset_frames) <= 1
    assert r.correlation > 0.6
    assert r.face_detected_share == 1.0
    assert len(r.lags) == 21


@pytest.mark.parametrize("k", [3, -4])
def test_reports_a_controlled_offset(tmp_path, lite_clip, clip_audio, k, write_wav):
    # Delaying the sound by k frames means the mouth moves k frames earlier than it already does: the
    # lite engine's mouth leads its sound by design (coarticulation), so offsets are relative to the clip's.
    base = lipsync(lite_clip.video).offset_frames
    path = write_wav(tmp_path / "shifted.wav", clip_audio, shift=k / FPS)
    r = lipsync(lite_clip.video, audio=path)
    assert r.offset_frames == base - k


def test_still_mouth_control_scores_low(tmp_path, lite_clip, portrait_path, speech_path):
    still = np.asarray(media.load_image(portrait_path).resize((384, 384)))
    control = media.write_mp4(tmp_path / "still.mp4", [still] * 75, fps=25, audio=speech_path)
    r_control = lipsync(control)
    r_clip = lipsync(lite_clip.video)
    assert r_control.correlation < 0.35
    assert r_clip.correlation > r_control.correlation + 0.3


def test_cli_prints_json(lite_clip):
    res = subprocess.run(
        [sys.executable, "-m", "hallo4.metrics", "lipsync", str(lite_clip.video)], capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    data = json.loads(res.stdout)
    assert {"offset_frames", "correlation", "face_detected_share"} <= set(data)


def test_cli_bad_file_is_a_clear_error(tmp_path):
    bad = tmp_path / "not-a-clip.mp4"
    bad.write_text("no video here " * 20)
    res = subprocess.run([sys.executable, "-m", "hallo4.metrics", "lipsync", str(bad)], capture_output=True, text=True)
    assert res.returncode == 2 and res.stderr.startswith("error: video")
    assert "not a media file" in res.stderr and "Traceback" not in res.stderr
