"""Media I/O on real files with the real (packaged) ffmpeg."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image

from hallo4 import media
from hallo4.constants import SAMPLE_RATE
from hallo4.errors import InputError


def _frames(n: int, w: int = 96, h: int = 64) -> np.ndarray:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    return np.stack([np.roll(base, i * 2, axis=1) for i in range(n)])


def _encode(path, n, fps, audio=None, w=96, h=64, num_frames=None):
    return media.write_mp4(path, _frames(n, w, h), fps=fps, audio=audio, num_frames=num_frames)


@pytest.mark.parametrize("announced", [None, 50], ids=["two-pass", "one-pass"])
def test_write_mp4_is_browser_safe_and_audio_cut(tmp_path, speech_path, announced):
    out = _encode(tmp_path / "a.mp4", 50, 25, audio=speech_path, num_frames=announced)  # 2 s video, 6 s audio
    info = media.probe(out)
    assert info.kind == "video"
    assert info.video_codec == "h264" and info.pix_fmt == "yuv420p"
    assert info.fps == pytest.approx(25)
    assert info.num_frames == 50
    assert info.has_audio and info.audio_codec == "aac"
    assert info.duration == pytest.approx(2.0, abs=0.03)  # audio cut to exactly the video length
    audio = media.load_audio(out)
    assert len(audio) / 16000 == pytest.approx(2.0, abs=0.1)


@pytest.mark.parametrize("announced", [None, 25], ids=["two-pass", "one-pass"])
def test_write_mp4_odd_dimensions_and_audio_array(tmp_path, announced):
    sr = 16000
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(sr) / sr).astype(np.float32)
    out = media.write_mp4(
        tmp_path / "odd.mp4", _frames(25, 95, 63), fps=25, audio=tone, audio_sr=sr, num_frames=announced
    )
    info = media.probe(out)
    assert (info.width, info.height) == (96, 64)
    assert info.has_audio


def test_write_mp4_one_pass_pads_short_audio_and_checks_the_count(tmp_path):
    sr = 16000
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(sr // 2) / sr).astype(np.float32)  # 0.5 s under 2 s of video
    out = media.write_mp4(tmp_path / "pad.mp4", _frames(50), fps=25, audio=tone, audio_sr=sr, num_frames=50)
    info = media.probe(out)
    assert info.num_frames == 50 and info.duration == pytest.approx(2.0, abs=0.03)
    assert len(media.load_audio(out)) / sr == pytest.approx(2.0, abs=0.1)  # padded with silence
    for n in (49, 51):  # a count other than the announced one is refused and leaves nothing behind
        with pytest.raises(ValueError, match="announced"):
            media.write_mp4(tmp_path / f"n{n}.mp4", _frames(n), fps=25, audio=tone, audio_sr=sr, num_frames=50)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pad.mp4"]


@pytest.mark.parametrize("fmt", ["mp3", "flac", "ogg", "m4a"])
def test_load_audio_formats(tmp_path, speech_path, fmt):
    dst = tmp_path / f"speech.{fmt}"
    subprocess.run([media.ffmpeg_exe(), "-v", "error", "-y", "-i", str(speech_path), str(dst)], check=True)
    ref = media.load_audio(speech_path, sr=16000)
    got = media.load_audio(dst, sr=16000)
    assert got.dtype == np.float32 and got.ndim == 1
    assert len(got) == pytest.approx(len(ref), rel=0.03)
    assert 0.3 < float(np.max(np.abs(got))) <= 1.0


def test_load_audio_resamples_and_limits(speech_path):
    a8 = media.load_audio(speech_path, sr=8000)
    a16 = media.load_audio(speech_path, sr=16000)
    assert len(a16) == pytest.approx(2 * len(a8), rel=0.01)
    short = media.load_audio(speech_path, sr=16000, max_seconds=1.5)
    assert len(short) == 24000


def test_audio_track_of_a_video(tmp_path, speech_path):
    out = _encode(tmp_path / "v.mp4", 75, 25, audio=speech_path)
    audio = media.load_audio(out)
    assert len(audio) / 16000 == pytest.approx(3.0, abs=0.1)


@pytest.mark.parametrize("src_fps,n", [(24, 48), (60, 120)])
def test_read_video_resamples_to_25fps(tmp_path, src_fps, n):
    out = _encode(tmp_path / f"v{src_fps}.mp4", n, src_fps)  # 2 s either way
    clip = media.read_video(out, fps=25)
    assert clip.source_fps == pytest.approx(src_fps)
    assert clip.fps == 25
    assert clip.num_frames == pytest.approx(50, abs=1)
    assert clip.frames.shape[1:] == (64, 96, 3)


def test_rotated_phone_video_is_read_upright(tmp_path):
    # Phones store landscape frames + a display rotation; ffmpeg autorotates, so the frame shape must follow.
    frames = np.zeros((10, 64, 96, 3), np.uint8)
    frames[:, :8, :, 0] = 255  # red band along the stored top edge
    src = media.write_mp4(tmp_path / "stored.mp4", frames, fps=25)
    rot = tmp_path / "rotated.mp4"
    subprocess.run(
        [media.ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", "90", "-i", str(src), "-c", "copy", str(rot)],
        check=True,
    )
    info = media.probe(rot)
    assert info.rotation in (90, 270) and (info.width, info.height) == (64, 96)
    clip = media.read_video(rot)
    assert clip.frames.shape == (10, 96, 64, 3)
    red = clip.frames[0, :, :, 0].astype(float)
    cols = red.mean(axis=0)
    assert max(cols[:8].mean(), cols[-8:].mean()) > 200  # the band is now a vertical edge column
    assert min(cols[:8].mean(), cols[-8:].mean()) < 30


def test_fit_to_canvas_round_trip():
    img = np.zeros((600, 512, 3), np.uint8)
    img[100:200, 50:150] = 255
    canvas, pl = media.fit_to_canvas(img, 832, 480)
    assert canvas.shape == (480, 832, 3)
    pts = np.array([[50.0, 100.0], [149.0, 199.0]])
    back = pl.from_canvas(pl.to_canvas(pts))
    assert np.allclose(back, pts, atol=1e-3)
    x, y = pl.to_canvas(np.array([100.0, 150.0]))
    assert canvas[int(y), int(x)].max() == 255  # the white square landed where the mapping says
    assert canvas[:, :100].max() == 0  # padded left with black
    cropped = pl.crop_back(canvas)
    assert cropped.shape[1] / cropped.shape[0] == pytest.approx(512 / 600, abs=0.01)
    wide, pl2 = media.fit_to_canvas(np.zeros((100, 1000, 3), np.uint8), 832, 480)
    assert wide.shape == (480, 832, 3) and pl2.offset_x < 0  # centre-cropped


def test_load_image_exif_and_alpha(tmp_path):
    rgba = Image.new("RGBA", (100, 80), (255, 0, 0, 0))
    rgba.save(tmp_path / "a.png")
    img = media.load_image(tmp_path / "a.png")
    assert img.mode == "RGB" and img.getpixel((0, 0)) == (255, 255, 255)  # transparent -> white
    rot = Image.new("RGB", (120, 80), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 CW on display
    rot.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert media.load_image(tmp_path / "r.jpg").size == (80, 120)


def test_load_image_16bit_gray_and_cmyk(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 128), (96, 1)).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "g16.png")  # 16-bit grayscale PNG (scanners, medical)
    got = np.asarray(media.load_image(tmp_path / "g16.png"))
    assert got.shape == (96, 128, 3) and got.dtype == np.uint8
    assert got[0, 0, 0] < 5 and got[0, -1, 0] > 250 and 110 < got[0, 64, 0] < 145  # a ramp, not clipped to white
    Image.new("CMYK", (80, 70), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # print-shop JPEG, red
    r, g, b = media.load_image(tmp_path / "cmyk.jpg").getpixel((40, 35))
    assert r > 200 and g < 60 and b < 60


# ---- bad input: each gives an InputError naming the input and saying what to do -------------
def test_not_an_image(tmp_path):
    p = tmp_path / "fake.png"
    p.write_text("this is not an image")
    with pytest.raises(InputError, match=r"portrait .*not a readable image.*PNG"):
        media.load_image(p)


@pytest.mark.parametrize("src", ["astronaut.png", "grace_hopper.jpg"])
def test_truncated_image(tmp_path, examples_dir, src):
    data = (examples_dir / "portraits" / src).read_bytes()
    p = tmp_path / f"trunc{(examples_dir / 'portraits' / src).suffix}"
    p.write_bytes(data[: len(data) // 3])
    with pytest.raises(
        InputError, match=r"portrait \(.*trunc\.(png|jpg)\): .*(damaged or truncated|not a readable image)"
    ):
        media.load_image(p)


def test_tiny_image(tmp_path):
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    with pytest.raises(InputError, match=r"only 1x1 pixels.*at least"):
        media.load_image(tmp_path / "one.png")


def _png_header_only(path, w, h):
    """A valid PNG of w x h made of one compressed row repeated: a few KB on disk, huge decoded."""

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * w
    idat = b"".join(comp.compress(row) for _ in range(h)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_huge_image_is_refused_without_decoding(tmp_path):
    p = tmp_path / "huge.png"
    _png_header_only(p, 20000, 20000)
    assert p.stat().st_size < 2_000_000
    with pytest.raises(InputError, match=r"(too large|larger than)"):
        media.load_image(p)


def test_zero_length_audio(tmp_path, write_wav):
    p = write_wav(tmp_path / "empty.wav", np.zeros(0, np.float32))
    with pytest.raises(InputError, match=r"audio .*(zero length|no audio)"):
        media.load_audio(p)


def test_silent_audio(tmp_path, write_wav):
    p = write_wav(tmp_path / "silence.wav", np.zeros(SAMPLE_RATE * 2, np.float32))
    with pytest.raises(InputError, match="is silent"):
        media.load_audio(p)


def test_corrupt_audio(tmp_path, speech_path):
    p = tmp_path / "broken.mp3"
    p.write_bytes(b"ID3" + bytes(np.random.default_rng(1).integers(0, 255, 4000, dtype=np.uint8)))
    with pytest.raises(InputError, match="audio"):
        media.load_audio(p)


def test_unsupported_container(tmp_path):
    p = tmp_path / "doc.xyz"
    p.write_text("plain text, not media " * 50)
    with pytest.raises(InputError, match="not a media file"):
        media.probe(p)
    with pytest.raises(InputError, match=r"video \(.*doc\.xyz\): is not a media file ffmpeg can read"):
        media.read_video(p)


def test_video_with_no_frames(tmp_path, speech_path):
    # An mp4 that holds only audio: a "video" upload with nothing to show.
    p = tmp_path / "noframes.mp4"
    subprocess.run(
        [media.ffmpeg_exe(), "-v", "error", "-y", "-i", str(speech_path), "-c:a", "aac", str(p)], check=True
    )
    with pytest.raises(InputError, match=r"video .*(no video stream|no video frames)"):
        media.read_video(p)


def test_read_video_probes_the_header_once(tmp_path, monkeypatch):
    out = _encode(tmp_path / "once.mp4", 10, 25)
    calls = []
    real = media.video.probe

    def counting_probe(*args, **kw):
        calls.append(args[0])
        return real(*args, **kw)

    monkeypatch.setattr(media.video, "probe", counting_probe)
    assert media.read_video(out).num_frames == 10
    assert len(calls) == 1  # the plan's header probe serves the decode too
    assert len(list(media.iter_frames(out))) == 10 and len(calls) == 2  # streaming probes once as well


def test_video_too_long_for_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    out = _encode(tmp_path / "long.mp4", 50, 25)  # 50 frames of 96x64: 0.9 MB decoded
    monkeypatch.setattr(media.video, "MAX_VIDEO_BYTES", 500_000)  # stand-in for a too-long real upload
    with pytest.raises(InputError, match=r"video \(.*long\.mp4\): is too long to load at 96x64.*Trim it to under"):
        media.read_video(out)
    assert media.read_video(out, max_frames=20).num_frames == 20  # a capped read still works


def test_video_without_audio_gives_clear_audio_error(tmp_path):
    out = _encode(tmp_path / "mute.mp4", 25, 25)
    with pytest.raises(InputError, match="has no audio track"):
        media.load_audio(out)


def test_probe_image_without_extension(tmp_path, portrait_path):
    p = tmp_path / "upload_without_suffix"
    p.write_bytes(portrait_path.read_bytes())
    info = media.probe(p)
    assert (info.kind, info.width, info.height) == ("image", 512, 512)


def test_probe_cli(tmp_path, speech_path):
    out = _encode(tmp_path / "c.mp4", 25, 25, audio=speech_path)
    res = subprocess.run([sys.executable, "-m", "hallo4.media", "probe", str(out)], capture_output=True, text=True)
    assert res.returncode == 0
    assert "video" in res.stdout and "25 fps" in res.stdout and "aac" in res.stdout
    bad = tmp_path / "bad.mp4"
    bad.write_text("nope")
    res = subprocess.run([sys.executable, "-m", "hallo4.media", "probe", str(bad)], capture_output=True, text=True)
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and "not a media file" in res.stderr


def test_write_mp4_encoder_threads(tmp_path):
    """x264 writes its settings into the stream (an SEI message): the thread count asked for is the one used."""
    one = media.write_mp4(tmp_path / "one.mp4", _frames(10), fps=25, threads=1).read_bytes()
    two = media.write_mp4(tmp_path / "two.mp4", _frames(10), fps=25, threads=2).read_bytes()
    assert b"x264 - core" in one and b" threads=1 " in one
    assert b" threads=2 " in two and b" threads=1 " not in two
