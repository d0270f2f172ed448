"""The lite engine end to end on real photos and real speech."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from hallo4 import media
from hallo4.engines import GenerationRequest, get_engine
from hallo4.engines.lite import blink_track, mouth_tracks
from hallo4.errors import CancelledError, InputError
from hallo4.progress import Progress


def test_clip_is_a_playable_talking_video(lite_clip):
    info = media.probe(lite_clip.video)
    assert info.kind == "video" and info.video_codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.fps == pytest.approx(25)
    assert info.num_frames == lite_clip.num_frames == 75
    assert info.duration == pytest.approx(3.0, abs=0.08)
    assert info.has_audio and info.audio_codec == "aac"
    assert max(info.width, info.height) == 384
    assert lite_clip.seed == 7
    assert {"load", "landmarks", "render", "encode", "total"} <= set(lite_clip.timings)


def test_mouth_moves_with_speech_and_rest_of_image_stays(lite_clip, portrait_path):
    frames = media.read_video(lite_clip.video).frames
    from hallo4.metrics import mouth_openings

    opening = mouth_openings(frames)
    assert np.isfinite(opening).all()
    assert np.nanmax(opening) - np.nanmin(opening) > 0.03  # the jaw really opens and closes
    # Background corners stay put (only the head region is warped).
    corner = frames[:, :20, :20].astype(np.float32)
    assert np.abs(corner - corner[0]).max() < 12  # codec noise only


def test_same_seed_same_frames_other_seed_other_blinks(generate_clip, portrait_path, speech_path):
    req = dict(portrait=portrait_path, audio=speech_path, size=128, max_seconds=1.0)
    a, b = generate_clip(**req, seed=3), generate_clip(**req, seed=3)
    fa, fb = media.read_video(a.video).frames, media.read_video(b.video).frames
    assert np.array_equal(fa, fb)
    assert not np.array_equal(blink_track(250, np.random.default_rng(1)), blink_track(250, np.random.default_rng(2)))


def test_random_seed_is_returned(generate_clip, portrait_path, speech_path):
    res = generate_clip(portrait=portrait_path, audio=speech_path, size=128, max_seconds=0.5)
    assert isinstance(res.seed, int) and res.parameters["seed"] == res.seed


def test_mouth_tracks_follow_the_envelope(speech_path):
    audio = media.load_audio(speech_path)
    tracks = mouth_tracks(audio, 16000, 25.0)
    silence = np.zeros(16000, np.float32)
    quiet = mouth_tracks(np.concatenate([silence, audio]), 16000, 25.0)
    assert tracks["open"].max() > 0.5
    assert quiet["open"][:20].max() < 0.05  # lips closed during the leading second of silence


def test_blinks_are_natural():
    track = blink_track(25 * 60, np.random.default_rng(0))
    starts = np.flatnonzero((track[1:] > 0.5) & (track[:-1] <= 0.5))
    assert 8 <= len(starts) <= 30  # 8..30 blinks a minute
    assert track.max() == pytest.approx(1.0)


def test_no_face_is_a_clear_error(tmp_path, generate_clip, speech_path):
    from PIL import Image

    g = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    Image.fromarray(g).save(tmp_path / "wall.png")
    with pytest.raises(InputError, match=r"portrait .*no face.*lite engine"):
        generate_clip(portrait=tmp_path / "wall.png", audio=speech_path, size=128)


def test_bad_audio_is_a_clear_error(tmp_path, generate_clip, portrait_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF0000WAVEjunk" * 20)
    with pytest.raises(InputError, match=r"audio \(.*bad\.wav\): could not be decoded as audio.*Convert it to WAV"):
        generate_clip(portrait=portrait_path, audio=bad, size=128)


def test_cancel_stops_rendering(tmp_path, portrait_path, speech_path):
    cancel = threading.Event()
    seen = []

    def cb(fraction, message):
        seen.append(fraction)
        if fraction > 0.1:
            cancel.set()

    with pytest.raises(CancelledError):
        get_engine("lite").generate(
            GenerationRequest(portrait=portrait_path, audio=speech_path, size=128, output=tmp_path / "c.mp4"),
            Progress(cb, cancel),
        )
    assert seen and max(seen) < 0.5


def test_skeleton_drives_the_head(tmp_path, generate_clip, portrait_path, speech_path):
    """A skeleton whose head drifts right moves the face right; the background corner stays."""
    from hallo4 import face as F
    from hallo4.skeleton import SkeletonSequence, idle_skeleton

    img = np.asarray(media.load_image(portrait_path).resize((256, 256)))
    base = idle_skeleton(img, 25, seed=0)
    drift = np.linspace(0, 12, 25, dtype=np.float32)  # pixels, ~0.4 inter-ocular distances
    body, hands, face = (np.array(a, np.float32, copy=True) for a in (base.body, base.hands, base.face))
    for arr in (body, hands, face):
        arr[..., 0] += drift.reshape((-1,) + (1,) * (arr.ndim - 2))
    path = tmp_path / "drift.json"
    SkeletonSequence(body, hands, face, base.width, base.height, fps=25.0).save(path)
    res = generate_clip(portrait=portrait_path, audio=speech_path, skeleton=path, seed=1, size=256, max_seconds=1.0)
    frames = media.read_video(res.video).frames
    x_first = F.analyze_face(frames[0], require=True).landmarks[:, 0].mean()
    x_last = F.analyze_face(frames[-1], require=True).landmarks[:, 0].mean()
    assert x_last - x_first > 4  # the head followed the skeleton
    corner = frames[:, :16, :16].astype(np.float32)
    assert np.abs(corner - corner[0]).max() < 12
