"""The newcomer-facing helpers of hallo4.ui on real files: upload checks, empty = preset, sizes, wording."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from hallo4 import media, ui
from hallo4.errors import InputError


def test_optional_number_empty_means_preset():
    assert ui.optional_number("", "steps") is None and ui.optional_number(None, "steps") is None
    assert ui.optional_number("  ", "steps") is None
    assert ui.optional_number("0", "CFG scale", lo=0, hi=20) == 0.0  # typed 0 is a real 0
    assert ui.optional_number("25", "steps", integer=True, lo=1, hi=100) == 25
    with pytest.raises(InputError, match="steps: 'abc' is not a number"):
        ui.optional_number("abc", "steps")
    with pytest.raises(InputError, match="out of range.*leave it empty"):
        ui.optional_number("0", "steps", integer=True, lo=1, hi=100)
    with pytest.raises(InputError, match="not a whole number"):
        ui.optional_number("2.5", "steps", integer=True)


def test_public_message_hides_server_paths():
    exc = InputError(
        "portrait", "is not a readable image", "Upload a PNG.", path="/tmp/gradio/3f9a0c/holiday photo.png"
    )
    msg = ui.public_message(exc)
    assert "holiday photo.png" in msg and "/tmp" not in msg and "gradio" not in msg
    msg = ui.public_message("weights not in /home/u/.cache/hallo4/models/hallo4 (missing)")
    assert msg == "weights not in hallo4 (missing)"
    assert ui.public_message("Upload wav/mp3/m4a/flac/ogg.") == "Upload wav/mp3/m4a/flac/ogg."


def test_missing_inputs_names_all_of_them():
    assert "the portrait photo and the speech recording" in ui.missing_inputs(None, None)
    assert ui.missing_inputs("p.png", None).startswith("Missing: the speech recording.")
    assert ui.missing_inputs("p.png", "a.wav") is None


def test_check_audio(tmp_path, speech_path):
    ok, msg = ui.check_audio(speech_path)
    assert ok and msg.startswith("✓ hello.wav:") and " s of audio" in msg
    empty = tmp_path / "my talk.wav"
    empty.write_bytes(b"")
    ok, msg = ui.check_audio(empty)
    assert not ok and "my talk.wav" in msg and "0 bytes" in msg and str(tmp_path) not in msg
    junk = tmp_path / "notes.mp3"
    junk.write_text("not audio at all " * 50)
    ok, msg = ui.check_audio(junk)
    assert not ok and "notes.mp3" in msg and "could not be decoded" in msg and str(tmp_path) not in msg


def test_leading_silence_is_found_and_cut(tmp_path, speech_path):
    speech = media.load_audio(speech_path, 16000)
    padded = np.concatenate([np.zeros(3 * 16000, np.float32), speech])
    path = tmp_path / "late.wav"
    sf.write(path, padded, 16000)
    onset = ui.speech_onset(padded)
    assert 2.8 <= onset <= 3.4
    assert "speech starts at 3." in ui.check_audio(path)[1]
    cut = ui.speech_window(path, 1.5, tmp_path / "out")
    clip = media.load_audio(cut, 16000)
    assert len(clip) == pytest.approx(1.5 * 16000, abs=160)
    assert ui.speech_onset(clip) < 0.5  # the clip starts with speech, not the pause


def test_check_portrait(tmp_path, portrait_path):
    ok, msg = ui.check_portrait(portrait_path)
    assert ok and msg.startswith("✓ astronaut.png: face found")
    land = tmp_path / "landscape.jpg"
    Image.fromarray(np.tile(np.linspace(0, 255, 320, dtype=np.uint8)[None, :, None], (200, 1, 3))).save(land)
    ok, msg = ui.check_portrait(land, hallo4_ready=False)
    assert not ok and "landscape.jpg: no face found" in msg and "hallo4" not in msg
    assert "hallo4" in ui.check_portrait(land, hallo4_ready=True)[1]
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"\x89PNG not really")
    ok, msg = ui.check_portrait(bad)
    assert not ok and "broken.png" in msg and str(tmp_path) not in msg


def test_lite_size_keeps_a_sensible_size(tmp_path):
    tall = tmp_path / "tall.png"
    Image.new("RGB", (1024, 1536), (90, 90, 90)).save(tall)
    size = ui.lite_size(768, tall)
    assert media.output_size(1024, 1536, size) == (512, 768)  # not 256x384
    small = tmp_path / "small.png"
    Image.new("RGB", (300, 200)).save(small)
    assert ui.lite_size(768, small) == 300  # never upscaled


def test_system_labels_are_words():
    assert ui.system_label("lite/expressiveness-1.3") == "lite, expressive head motion"
    assert ui.system_label("lite/expressiveness-0.7") == "lite, calm head motion"
    assert ui.system_label("hallo4") == "hallo4 diffusion"
    assert ui.system_label("lite/lite-motion") == "lite motion model, base"
    assert ui.system_label("lite/lite-motion@round-003") == "lite motion model, lite round round-003"
    assert ui.system_label("hallo4@/data/rounds/round-002") == "hallo4 diffusion, trained round round-002"
