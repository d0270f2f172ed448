"""Every engine muxes the user's ORIGINAL audio (its sample rate and channels, AAC, cut to the video),
never the 16 kHz mono copy the models consume. Input: 48 kHz stereo with different channels."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from hallo4 import media


@pytest.fixture(scope="module")
def stereo_48k(tmp_path_factory, speech_path, write_wav):
    """Speech on the left, the same speech at a third of the level plus a 3 kHz tone on the right."""
    speech = media.load_audio(speech_path, 48000, max_seconds=2.0)
    t = np.arange(len(speech)) / 48000
    right = speech / 3 + 0.1 * np.sin(2 * np.pi * 3000 * t)
    path = tmp_path_factory.mktemp("audio") / "stereo48k.wav"
    return write_wav(path, np.stack([speech, right], 1), 48000, subtype="PCM_16")


def _decode(path, sr, channels):
    cmd = [
        media.ffmpeg_exe(),
        "-v",
        "error",
        "-i",
        str(path),
        "-f",
        "f32le",
        "-ac",
        str(channels),
        "-ar",
        str(sr),
        "-",
    ]
    out = subprocess.run(cmd, capture_output=True, check=True).stdout
    return np.frombuffer(out, np.float32).reshape(-1, channels)


def _check_original(video, source, seconds):
    info = media.probe(video)
    assert info.has_audio and info.audio_codec == "aac"
    assert info.sample_rate == 48000 and info.channels == 2
    got = _decode(video, 48000, 2)
    assert abs(len(got) / 48000 - seconds) < 0.05  # cut to the video's length
    src = _decode(source, 48000, 2)[: len(got)]
    # the channels stay apart: the right one has the 3 kHz tone the left one lacks
    spec = np.abs(np.fft.rfft(got[:48000], axis=0))
    tone = int(3000 * min(48000, len(got)) / 48000)
    assert spec[tone, 1] > 20 * spec[tone, 0]
    # the level is the original's (a 16 kHz mono downmix would halve nothing but lose the tone above)
    assert 0.5 < np.sqrt(np.mean(got[:, 0] ** 2)) / np.sqrt(np.mean(src[:, 0] ** 2)) < 1.5


def test_lite_keeps_48k_stereo(stereo_48k, portrait_path, generate_clip):
    res = generate_clip(portrait=portrait_path, audio=stereo_48k, seed=1, size=128, max_seconds=1.2)
    assert res.num_frames == 30
    _check_original(res.video, stereo_48k, 1.2)


def test_hallo4_keeps_48k_stereo(stereo_48k, portrait_path, tmp_path, monkeypatch, tiny_pipeline_dir, generate_clip):
    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path / "data"))
    res = generate_clip(
        "hallo4",
        engine_kwargs={"model": str(tiny_pipeline_dir), "output_dir": tmp_path},
        output=None,  # the engine names the file in its output_dir
        portrait=portrait_path,
        audio=stereo_48k,
        seed=2,
        max_seconds=0.5,
        options={"steps": 1, "frames_per_segment": 13, "height": 32, "width": 32},
    )
    assert res.num_frames == 13
    _check_original(res.video, stereo_48k, 0.52)


def test_unusual_rate_is_resampled_for_aac(tmp_path, write_wav):
    path = write_wav(tmp_path / "odd.wav", 0.2 * np.sin(np.arange(37800) / 5.0), 37800)
    out = media.write_mp4(tmp_path / "o.mp4", np.zeros((25, 16, 16, 3), np.uint8), fps=25.0, audio=path)
    info = media.probe(out)
    assert info.sample_rate == 48000 and info.channels == 1
