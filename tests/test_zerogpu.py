"""ZeroGPU duration from the request (hallo4.zerogpu) and the app asking for a GPU only for hallo4."""

from __future__ import annotations

import importlib
import json
import sys
import types

import pytest

from hallo4 import zerogpu
from hallo4.errors import InputError


def secs(audio, **kw):
    kw.setdefault("steps", 25)
    return zerogpu.gpu_seconds(audio, results=None, **kw)


def test_duration_follows_audio_steps_mode_and_canvas():
    # 81 frames = one segment; 81..161 frames = two
    assert secs(3.0) == secs(3.2)
    assert secs(3.3) > secs(3.2)
    assert secs(10.0, steps=12) < secs(10.0, steps=25) < secs(10.0, steps=40)
    assert secs(10.0, precision="8bit") > secs(10.0) and secs(10.0, offload="group") > secs(10.0)
    assert secs(10.0, height=240, width=416) < secs(10.0)
    assert secs(10.0, guidance=1.0) < secs(10.0)
    saved = secs(10.0) - secs(10.0, prompt_cached=True, loaded=True)
    assert abs(saved - 1.25 * (zerogpu.LOAD_S + zerogpu.TEXT_ENCODER_S)) <= 1  # whole seconds, rounded up
    # the formula, spelled out for one case: 2 segments of 25 steps at 2.5 s + 12 s VAE, load, text encoder
    assert secs(6.0) == int(-(-(1.25 * (30 + 25 + 2 * (25 * 2.5 + 12)) + 10) // 1))
    assert secs(0.1, steps=1, prompt_cached=True, loaded=True, height=64, width=64) == zerogpu.MIN_S


def test_measured_step_times_replace_the_estimates(tmp_path):
    measured = tmp_path / "gpu_check.json"
    measured.write_text(
        json.dumps(
            {
                "dry_run": False,
                "device": "NVIDIA H200",
                "modes": [{"precision": "bf16", "offload": "none", "seconds_per_step": 1.0}],
                "vae": {"encode_16_skeleton_frames_s": 0.5, "encode_context_video_s": 1.0, "decode_segment_s": 2.0},
            }
        )
    )
    assert zerogpu.step_seconds("bf16", "none", measured) == (1.0, 6 * 0.5 + 1.0 + 2.0, "measured on NVIDIA H200")
    assert zerogpu.step_seconds("8bit", "group", measured)[2] == "estimated"
    dry = tmp_path / "dry.json"
    dry.write_text(
        json.dumps({"dry_run": True, "modes": [{"precision": "bf16", "offload": "none", "seconds_per_step": 9}]})
    )
    assert zerogpu.step_seconds("bf16", "none", dry)[2] == "estimated"  # a CPU dry run is no GPU measurement
    assert zerogpu.gpu_seconds(10, steps=25, results=measured) < zerogpu.gpu_seconds(10, steps=25, results=None)


def test_too_long_is_refused_before_asking_for_a_gpu(monkeypatch):
    monkeypatch.setenv("HALLO4_ZEROGPU_MAX_S", "300")
    assert zerogpu.check_request(3.0, steps=12, results=None) <= 300
    with pytest.raises(
        InputError,
        match=r"60\.0 s at these settings needs about \d+ s of GPU time, more than this "
        r"Space's 300 s.*at most \d+\.\d s of audio",
    ) as e:
        zerogpu.check_request(60.0, steps=25, results=None)
    fits = float(str(e.value).split("at most ")[1].split(" s")[0])
    assert (
        zerogpu.gpu_seconds(fits, steps=25, results=None)
        <= 300
        < zerogpu.gpu_seconds(fits + 3.3, steps=25, results=None)
    )


@pytest.fixture
def app_on_zerogpu(monkeypatch, tmp_path):
    """app.py imported with a stand-in `spaces` package (ZeroGPU exists only on Hugging Face): it records
    each GPU request's duration and runs the function."""
    calls = []

    def GPU(duration):
        def wrap(fn):
            def run(*args, **kwargs):
                calls.append(duration(*args, **kwargs))
                return fn(*args, **kwargs)

            return run

        return wrap

    monkeypatch.setitem(sys.modules, "spaces", types.SimpleNamespace(GPU=GPU))
    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path / "data"))
    sys.modules.pop("app", None)
    app = importlib.import_module("app")
    yield app, calls
    sys.modules.pop("app", None)


def test_lite_never_asks_for_a_gpu_and_hallo4_asks_for_its_duration(app_on_zerogpu, portrait_path, speech_path):
    import gradio as gr

    app, calls = app_on_zerogpu
    video, seed, info = app.generate_clip(
        str(portrait_path), str(speech_path), app.SKELETON_NONE, None, "lite", "fast", None, None, 1, 192, 1.0
    )
    assert info["engine"] == "lite" and calls == []
    with pytest.raises(gr.Error, match="hallo4 engine needs its weights"):  # no weights here: fails inside the call
        app.generate_clip(
            str(portrait_path), str(speech_path), app.SKELETON_NONE, None, "hallo4", "fast", None, None, 1, 384, 2.0
        )
    assert len(calls) == 1 and zerogpu.MIN_S <= calls[0] < 300
