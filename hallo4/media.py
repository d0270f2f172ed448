"""Media I/O: load and validate portraits, audio and video; probe files; write browser-safe mp4.

ffmpeg is imageio-ffmpeg's packaged binary, so a fresh machine (or a Space) needs no system ffmpeg.
imageio-ffmpeg ships no ffprobe, so `probe` parses `ffmpeg -i` (the same data, on stderr).
Every failure a user can cause raises `InputError` naming the file, the problem and the fix.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import Hallo4Error, InputError

# Portrait limits: big enough for any phone photo, small enough to never exhaust memory.
MIN_IMAGE_SIDE = 64
MAX_IMAGE_SIDE = 8192
MAX_IMAGE_PIXELS = 40_000_000
SILENCE_PEAK = 1e-4
# `read_video` holds every decoded frame: refuse a video whose raw RGB frames would exceed this
# (1080p at 25 fps is ~155 MB/s, so ~13 s) rather than let the process be killed mid-way. The app's
# paths stream frames (`iter_frames`) instead and are bounded by the output (see hallo4.limits).
MAX_VIDEO_BYTES = 2 * 1024**3
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".webp", ".bmp"}


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    """Path of imageio-ffmpeg's bundled ffmpeg binary."""
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def check_ffmpeg() -> str:
    """Start-up check: the encoder runs and has libx264 + aac. Returns its version line."""
    try:
        out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:  # pragma: no cover - environment failure
        raise Hallo4Error(
            f"ffmpeg could not be started ({exc}).", hint="Reinstall imageio-ffmpeg: pip install -r requirements.txt"
        ) from exc
    if "libx264" not in out.stdout or " aac " not in out.stdout:
        raise Hallo4Error("The bundled ffmpeg lacks the libx264 or aac encoder.", hint="Reinstall imageio-ffmpeg.")
    ver = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, timeout=30).stdout
    return ver.splitlines()[0] if ver else "ffmpeg"


def _check_file(path: str | os.PathLike, name: str) -> Path:
    p = Path(path)
    if not p.exists():
        raise InputError(name, "file not found", "Upload the file again.", path=str(p))
    if not p.is_file():
        raise InputError(name, "is not a file", "Choose a file, not a folder.", path=str(p))
    if p.stat().st_size == 0:
        raise InputError(
            name, "the file is empty (0 bytes)", "Upload the file again; the upload may have failed.", path=str(p)
        )
    return p


# ----------------------------------------------------------------------------------------------
# Images
# ----------------------------------------------------------------------------------------------
def load_image(path: str | os.PathLike, *, name: str = "portrait") -> Image.Image:
    """Load a portrait as RGB, EXIF-rotated, transparency flattened on white, with size guards."""
    p = _check_file(path, name)
    fix = "Use a PNG, JPEG, WebP or BMP photo."
    try:
        with Image.open(p) as probe_img:
            w, h = probe_img.size
            fmt = probe_img.format
    except Image.DecompressionBombError as exc:
        raise InputError(
            name,
            f"the image is too large to decode safely ({exc})",
            f"Use an image under {MAX_IMAGE_SIDE} px per side.",
            path=str(p),
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise InputError(name, "is not a readable image", fix, path=str(p)) from exc
    if fmt not in {"PNG", "JPEG", "WEBP", "BMP", "MPO"}:
        raise InputError(name, f"unsupported image format {fmt}", fix, path=str(p))
    if w < MIN_IMAGE_SIDE or h < MIN_IMAGE_SIDE:
        raise InputError(
            name,
            f"the image is only {w}x{h} pixels",
            f"Use a photo of at least {MIN_IMAGE_SIDE}x{MIN_IMAGE_SIDE} pixels (512 or more is best).",
            path=str(p),
        )
    if w > MAX_IMAGE_SIDE or h > MAX_IMAGE_SIDE or w * h > MAX_IMAGE_PIXELS:
        raise InputError(
            name,
            f"the image is {w}x{h} pixels, larger than the {MAX_IMAGE_SIDE} px / {MAX_IMAGE_PIXELS // 1_000_000} MP limit",
            "Downscale the photo (e.g. to 2048 px on the long side) and upload it again.",
            path=str(p),
        )
    try:
        with Image.open(p) as img:
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode in ("I", "F") or img.mode.startswith("I;16"):
                img = _to_8bit_gray(img)
            if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                img = Image.alpha_composite(background, rgba)
            return img.convert("RGB")
    except (OSError, SyntaxError, ValueError) as exc:
        raise InputError(
            name,
            f"the image file is damaged or truncated ({exc})",
            "Re-export or re-download the photo and upload it again.",
            path=str(p),
        ) from exc


def _to_8bit_gray(img: Image.Image) -> Image.Image:
    """16-bit / float grayscale -> 8-bit. Pillow's own convert("RGB") clips them to white."""
    arr = np.asarray(img, dtype=np.float32)
    peak = float(arr.max()) if arr.size else 0.0
    if img.mode == "F":
        scale = 255.0 if peak <= 1.0 else 1.0
    else:
        scale = 1.0 / 257.0 if peak > 255 else 1.0
    return Image.fromarray(np.clip(arr * scale + 0.5, 0, 255).astype(np.uint8))


# ----------------------------------------------------------------------------------------------
# Probe (parses `ffmpeg -i`: imageio-ffmpeg ships no ffprobe)
# ----------------------------------------------------------------------------------------------
@dataclass
class MediaInfo:
    path: str
    kind: str  # "image" | "audio" | "video"
    width: int = 0
    height: int = 0
    duration: float = 0.0
    fps: float = 0.0
    num_frames: int = 0
    has_audio: bool = False
    video_codec: str | None = None
    audio_codec: str | None = None
    sample_rate: int = 0
    channels: int = 0  # audio channels (0: no audio or not stated)
    pix_fmt: str | None = None
    container: str | None = None
    rotation: int = 0  # display rotation in degrees; width/height are already the displayed size

    def to_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        parts = [f"{self.path}: {self.kind}"]
        if self.width:
            parts.append(f"{self.width}x{self.height}")
        if self.kind != "image":
            parts.append(f"{self.duration:.3f} s")
        if self.kind == "video":
            parts.append(f"{self.fps:g} fps, {self.num_frames} frames, {self.video_codec} {self.pix_fmt}")
            if self.rotation:
                parts.append(f"rotated {self.rotation} deg (size shown upright)")
        if self.has_audio:
            channels = f" {self.channels} ch" if self.channels else ""
            parts.append(f"audio {self.audio_codec} {self.sample_rate} Hz{channels}")
        elif self.kind == "video":
            parts.append("no audio")
        return ", ".join(parts)


_DURATION_RE = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO_RE = re.compile(r"Stream #\S+?(?:\([^)]*\))?: Video: (\w+)([^\n]*)")
_AUDIO_RE = re.compile(r"Stream #\S+?(?:\([^)]*\))?: Audio: (\w+)[^\n]*?(\d+) Hz(?:, ([^,\n]+))?")
_CHANNEL_LAYOUTS = {
    "mono": 1,
    "stereo": 2,
    "2.1": 3,
    "3.0": 3,
    "quad": 4,
    "4.0": 4,
    "5.0": 5,
    "5.1": 6,
    "6.1": 7,
    "7.1": 8,
}
_INPUT_RE = re.compile(r"Input #0, ([\w,]+), from")
# Phone videos store landscape frames plus a display rotation; ffmpeg autorotates when decoding.
_ROTATION_RE = re.compile(r"(?:rotation of (-?[\d.]+) degrees|^\s*rotate\s*:\s*(-?\d+))", re.IGNORECASE | re.MULTILINE)


def _run(cmd: list[str], name: str, path: Path, timeout: float, **kw) -> subprocess.CompletedProcess:
    """Run ffmpeg; a file that makes it hang (damaged streams) becomes an InputError, not a traceback."""
    try:
        return subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
    except subprocess.TimeoutExpired as exc:
        raise InputError(
            name,
            f"took longer than {timeout:.0f} s to decode (damaged or very long file)",
            "Re-export it (shorter, in a common format) and upload it again.",
            path=str(path),
        ) from exc


def _ffmpeg_info(path: Path, name: str = "file") -> str:
    return _run([ffmpeg_exe(), "-hide_banner", "-i", str(path)], name, path, 60, text=True, errors="replace").stderr


def probe(path: str | os.PathLike, *, name: str = "file", count_frames: bool = True) -> MediaInfo:
    """What the project sees in a file: kind, size, duration, fps, frame count, codecs."""
    p = _check_file(path, name)
    if p.suffix.lower() in IMAGE_EXTENSIONS:
        img = load_image(p, name=name)
        return MediaInfo(str(p), "image", width=img.width, height=img.height, container=p.suffix.lower().lstrip("."))
    text = _ffmpeg_info(p, name)
    cont = _INPUT_RE.search(text)
    if not cont:
        raise InputError(
            name,
            "is not a media file ffmpeg can read (unknown or damaged container)",
            "Use a common format: mp4/mov/webm/mkv video or wav/mp3/m4a/flac/ogg audio.",
            path=str(p),
        )
    if cont.group(1) == "image2" or cont.group(1).endswith("_pipe"):
        # A still image under another name (uploads often lose their extension): probe it as one.
        img = load_image(p, name=name)
        return MediaInfo(str(p), "image", width=img.width, height=img.height, container=cont.group(1))
    info = MediaInfo(str(p), "audio", container=cont.group(1))
    m = _DURATION_RE.search(text)
    if m:
        info.duration = int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))
    v = _VIDEO_RE.search(text)
    if v and "attached pic" not in v.group(2):
        info.kind = "video"
        info.video_codec = v.group(1)
        rest = v.group(2)
        pix = re.match(r"\s*(?:\([^)]*\)\s*)*,\s*(\w+)", rest)
        info.pix_fmt = pix.group(1) if pix else None
        size = re.search(r",\s*(\d+)x(\d+)\b", rest)
        if size:
            info.width, info.height = int(size.group(1)), int(size.group(2))
        rot = _ROTATION_RE.search(text)
        if rot:
            info.rotation = int(round(float(rot.group(1) or rot.group(2)))) % 360
            if info.rotation in (90, 270):
                info.width, info.height = info.height, info.width
        fps = re.search(r"([\d.]+)(k?) fps", rest) or re.search(r"([\d.]+)(k?) tbr", rest)
        if fps:
            info.fps = float(fps.group(1)) * (1000 if fps.group(2) else 1)
        if count_frames:
            info.num_frames = _count_frames(p)
            if info.fps and info.num_frames and not info.duration:
                info.duration = info.num_frames / info.fps
        elif info.fps:
            info.num_frames = int(round(info.duration * info.fps))
    a = _AUDIO_RE.search(text)
    if a:
        info.has_audio = True
        info.audio_codec = a.group(1)
        info.sample_rate = int(a.group(2))
        layout = (a.group(3) or "").strip()
        n = re.match(r"(\d+) channels", layout)
        info.channels = int(n.group(1)) if n else _CHANNEL_LAYOUTS.get(layout.split("(")[0], 0)
    if info.kind == "audio" and not info.has_audio:
        raise InputError(
            name, "contains neither a video nor an audio stream", "Upload a video or an audio file.", path=str(p)
        )
    return info


def _count_frames(path: Path) -> int:
    """Exact frame count by decoding (null muxer); cheap for the short clips the app handles."""
    out = _run(
        [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
        "video",
        path,
        300,
        text=True,
        errors="replace",
    )
    counts = re.findall(r"frame=\s*(\d+)", out.stderr)
    return int(counts[-1]) if counts else 0


def _header_duration(path: Path, name: str) -> float | None:
    """The duration a file's header claims (no decoding), or None when it states none."""
    m = _DURATION_RE.search(_ffmpeg_info(path, name))
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def _clock(seconds: float) -> str:
    s = int(round(seconds))
    return (
        f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
        if s >= 3600
        else f"{s // 60}:{s % 60:02d} min"
        if s >= 60
        else f"{seconds:.1f} s"
    )


# ----------------------------------------------------------------------------------------------
# Audio
# ----------------------------------------------------------------------------------------------
def load_audio(
    path: str | os.PathLike,
    sr: int = 16000,
    *,
    name: str = "audio",
    max_seconds: float | None = None,
    allow_silence: bool = False,
) -> np.ndarray:
    """Decode any ffmpeg-readable audio (or a video's audio track) to mono float32 at `sr`.

    Bounded before decoding: without `max_seconds`, a file whose header says it is longer than the
    active cap (`hallo4.limits.active().max_audio_seconds`) is refused; and ffmpeg never decodes more
    than the cap (`-t`), so a lying header cannot make us hold more either.
    """
    from . import limits

    p = _check_file(path, name)
    cap = limits.active().max_audio_seconds
    if max_seconds is None:
        duration = _header_duration(p, name)
        if duration is not None and duration > cap + 0.5:
            raise InputError(
                name,
                f"is {_clock(duration)} long, more than the {cap:g} s this server accepts",
                f"Trim it to {cap:g} s or less (or set a shorter maximum length) and upload it again.",
                path=str(p),
            )
    seconds = cap if max_seconds is None else min(float(max_seconds), cap)
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-i",
        str(p),
        "-map",
        "0:a:0",
        "-vn",
        "-ac",
        "1",
        "-ar",
        str(int(sr)),
    ]
    cmd += ["-t", f"{seconds:.3f}", "-f", "f32le", "-"]
    out = _run(cmd, name, p, 600)
    err = out.stderr.decode(errors="replace")
    if out.returncode != 0:
        if "matches no streams" in err or "Stream map" in err:
            raise InputError(
                name,
                "has no audio track",
                "Upload a file with speech in it (wav/mp3/m4a/flac/ogg, or a video with sound).",
                path=str(p),
            )
        raise InputError(
            name,
            "could not be decoded as audio (damaged file or unsupported format)",
            "Convert it to WAV or MP3 and upload it again.",
            path=str(p),
        )
    audio = np.frombuffer(out.stdout, dtype=np.float32).copy()
    if audio.size < sr // 25:
        raise InputError(
            name,
            "contains no audio (zero length)",
            "Upload a recording with speech, at least a second long.",
            path=str(p),
        )
    if not np.all(np.isfinite(audio)):
        audio = np.nan_to_num(audio)
    if not allow_silence and float(np.max(np.abs(audio))) < SILENCE_PEAK:
        raise InputError(
            name, "is silent", "Upload a recording with audible speech (check the microphone level).", path=str(p)
        )
    return np.clip(audio, -1.0, 1.0)


# ----------------------------------------------------------------------------------------------
# Video
# ----------------------------------------------------------------------------------------------
@dataclass
class VideoClip:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    fps: float
    source_fps: float
    path: str = ""

    @property
    def duration(self) -> float:
        return len(self.frames) / self.fps if self.fps else 0.0

    @property
    def num_frames(self) -> int:
        return int(len(self.frames))


def _video_plan(p: Path, name: str, fps: float | None, max_side: int | None) -> tuple[MediaInfo, int, int, list[str]]:
    """Probe (header only) and check the claimed size before decoding; the decode size and filters."""
    from . import limits

    info = probe(p, name=name, count_frames=False)
    if info.kind != "video" or not info.width:
        raise InputError(name, "has no video stream", "Upload a video file (mp4, mov, webm, mkv, avi).", path=str(p))
    cap = limits.active().max_video_side
    if max(info.width, info.height) > cap:
        raise InputError(
            name,
            f"is {info.width}x{info.height} pixels, larger than the {cap} px this server decodes",
            f"Downscale it to {cap} px or less on the long side and upload it again.",
            path=str(p),
        )
    w, h = info.width, info.height
    filters = []
    if fps:
        filters.append(f"fps={fps}")
    if max_side and max(w, h) > max_side:
        scale = max_side / max(w, h)
        w, h = max(2, int(round(w * scale / 2)) * 2), max(2, int(round(h * scale / 2)) * 2)
        filters.append(f"scale={w}:{h}")
    return info, w, h, filters


def iter_frames(
    path: str | os.PathLike,
    *,
    fps: float | None = 25.0,
    max_frames: int | None = None,
    name: str = "video",
    max_side: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield RGB frames one at a time (constant memory), resampled to `fps`, at most `max_frames`.

    The ffmpeg decoder is a child process reading ahead into a pipe; closing the generator (or an
    exception in the consumer, e.g. a cancel) kills it at once, so nothing keeps decoding.
    """
    p = _check_file(path, name)
    _, w, h, filters = _video_plan(p, name, fps, max_side)
    frame_bytes = w * h * 3
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", "-i", str(p), "-map", "0:v:0"]
    if filters:
        cmd += ["-vf", ",".join(filters)]
    if max_frames:
        cmd += ["-frames:v", str(int(max_frames))]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n = 0
    try:
        assert proc.stdout is not None
        while True:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                break
            n += 1
            yield np.frombuffer(buf, dtype=np.uint8).reshape(h, w, 3)
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        rc = proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for f in (proc.stdout, proc.stderr):
            if f is not None:
                f.close()
    if n == 0:
        if rc != 0:
            raise InputError(
                name,
                f"could not be decoded (damaged file or unsupported codec: {err.strip()[-200:]})",
                "Re-export it as an H.264 mp4 and upload it again.",
                path=str(p),
            )
        raise InputError(
            name,
            "contains no video frames",
            "Upload a video that plays and is at least a few frames long.",
            path=str(p),
        )


def read_video(
    path: str | os.PathLike,
    *,
    fps: float | None = 25.0,
    max_frames: int | None = None,
    name: str = "video",
    max_side: int | None = None,
) -> VideoClip:
    """Read RGB frames, resampled to `fps` with ffmpeg's fps filter (None keeps the source rate).

    Holds every frame: refused before decoding when the header's duration would need more than
    MAX_VIDEO_BYTES (pass `max_frames` to read only a prefix; use `iter_frames` to stream)."""
    p = _check_file(path, name)
    info, w, h, _ = _video_plan(p, name, fps, max_side)
    frame_bytes = w * h * 3
    est_frames = info.duration * (fps or info.fps or 25.0)
    if max_frames:
        est_frames = min(est_frames, max_frames)
    if est_frames * frame_bytes > MAX_VIDEO_BYTES:
        fit = MAX_VIDEO_BYTES / (frame_bytes * (fps or info.fps or 25.0))
        raise InputError(
            name,
            f"is too long to load at {w}x{h}: {info.duration:.1f} s would need "
            f"{est_frames * frame_bytes / 1024**3:.1f} GB of memory",
            f"Trim it to under {fit:.0f} s or lower its resolution, and upload it again.",
            path=str(p),
        )
    # A header can lie about the duration: never read more frames than the budget holds.
    budget_frames = max(1, MAX_VIDEO_BYTES // frame_bytes)
    limit = min(max_frames or budget_frames, budget_frames)
    # np.empty only reserves address space: pages are committed as frames are written, so the
    # resident size is the frames actually read (no second copy as np.stack of a list would make).
    out = np.empty((limit, h, w, 3), np.uint8)
    n = 0
    for n, frame in enumerate(iter_frames(p, fps=fps, max_frames=limit, name=name, max_side=max_side), start=1):
        out[n - 1] = frame
    return VideoClip(frames=out[:n], fps=float(fps) if fps else info.fps, source_fps=info.fps, path=str(p))


# Sample rates the AAC encoder accepts (MPEG-4 audio sampling frequency table).
AAC_SAMPLE_RATES = frozenset({96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350})


def write_mp4(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray] | np.ndarray,
    *,
    fps: float = 25.0,
    audio: str | os.PathLike | np.ndarray | None = None,
    audio_sr: int | None = None,
    crf: int = 18,
    preset: str = "veryfast",
) -> Path:
    """Encode RGB frames to an mp4 every browser plays: H.264 yuv420p, even dims, AAC, faststart.

    Audio is muxed as AAC, padded with silence or cut to the video's length. A file is the user's
    ORIGINAL audio: its own sample rate and channels are kept (every engine passes the uploaded file here,
    never the 16 kHz mono copy its models consume); a float array + `audio_sr` is written as mono. Frames
    are streamed to ffmpeg, so generators of any length use constant memory.
    """
    out_path = Path(path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    it = iter(frames)
    try:
        first = np.asarray(next(it))
    except StopIteration:
        raise ValueError("write_mp4 needs at least one frame") from None
    if first.ndim != 3 or first.shape[2] != 3:
        raise ValueError(f"frames must be (H, W, 3) RGB, got {first.shape}")
    h, w = first.shape[:2]
    # Everything is written to hidden temporary names beside the output and renamed into place at
    # the end (atomic), so a crash or kill -9 never leaves a half-written video under the real name;
    # hallo4.retention removes stale hidden leftovers.
    final_path = out_path
    out_path = final_path.with_name(f".{final_path.stem}.{uuid.uuid4().hex[:8]}.part.mp4")
    # Pass 1 streams the frames into H.264. Pass 2 (with audio) muxes the audio, padded with silence
    # and cut to exactly frames / fps with -t: `-shortest` alone overshoots by up to ~0.5 s under load.
    video_path = (
        out_path if audio is None else final_path.with_name(f".{final_path.stem}.{uuid.uuid4().hex[:8]}.video.mp4")
    )
    cmd = [
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-v",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{w}x{h}",
        "-r",
        f"{fps}",
        "-i",
        "-",
        # Even dimensions are required by yuv420p; pad by one pixel instead of distorting.
        "-vf",
        "pad=ceil(iw/2)*2:ceil(ih/2)*2",
        "-c:v",
        "libx264",
        "-preset",
        preset,
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        "-movflags",
        "+faststart",
        str(video_path),
    ]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    n = 0
    try:
        assert proc.stdin is not None
        for frame in _chain(first, it):
            arr = np.ascontiguousarray(frame, dtype=np.uint8)
            if arr.shape != first.shape:
                raise ValueError(f"frame {n} has shape {arr.shape}, expected {first.shape}")
            proc.stdin.write(arr.tobytes())
            n += 1
        proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        rc = proc.wait(timeout=600)
    except BaseException:
        proc.kill()
        proc.wait()
        video_path.unlink(missing_ok=True)
        raise
    if rc != 0:
        video_path.unlink(missing_ok=True)
        _raise_encode_error(err, final_path)
    if audio is None:
        os.replace(out_path, final_path)
        return final_path
    tmp_audio: str | None = None
    try:
        if isinstance(audio, np.ndarray):
            if not audio_sr:
                raise ValueError("audio_sr is required with an audio array")
            import soundfile as sf

            fd, tmp_audio = tempfile.mkstemp(suffix=".wav")
            os.close(fd)
            sf.write(tmp_audio, np.asarray(audio, dtype=np.float32).reshape(-1), int(audio_sr), subtype="PCM_16")
            audio_in = tmp_audio
            rate_args: list[str] = []
        else:
            audio_in = str(audio)
            rate = probe(audio_in, name="audio", count_frames=False).sample_rate
            # keep the original rate unless AAC cannot store it (then 48 kHz)
            rate_args = [] if rate in AAC_SAMPLE_RATES else ["-ar", "48000"]
        mux = [
            ffmpeg_exe(),
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-i",
            str(video_path),
            "-i",
            audio_in,
            "-map",
            "0:v:0",
            "-map",
            "1:a:0",
            "-c:v",
            "copy",
            "-af",
            "apad",
            "-c:a",
            "aac",
            "-b:a",
            "192k",
            *rate_args,
            "-t",
            f"{n / fps:.6f}",
            "-movflags",
            "+faststart",
            str(out_path),
        ]
        res = subprocess.run(mux, capture_output=True, timeout=600)
        if res.returncode != 0:
            out_path.unlink(missing_ok=True)
            _raise_encode_error(res.stderr.decode(errors="replace"), final_path, only_storage=True)
            raise InputError(
                "audio",
                f"could not be muxed into the video ({res.stderr.decode(errors='replace').strip()[-300:]})",
                "Convert the audio to WAV or MP3 and try again.",
                path=audio_in,
            )
        os.replace(out_path, final_path)
    finally:
        video_path.unlink(missing_ok=True)
        out_path.unlink(missing_ok=True)
        if tmp_audio:
            Path(tmp_audio).unlink(missing_ok=True)
    return final_path


def _raise_encode_error(stderr: str, path: Path, only_storage: bool = False) -> None:
    """ffmpeg's own words for a full disk / unwritable folder become our clear storage message."""
    import errno

    from .paths import storage_error

    for marker, code in (
        ("No space left", errno.ENOSPC),
        ("Read-only file system", errno.EROFS),
        ("Permission denied", errno.EACCES),
    ):
        if marker in stderr:
            raise storage_error(OSError(code, marker), path.parent)  # type: ignore[misc]
    if not only_storage:
        raise Hallo4Error(f"Video encoding failed: {stderr.strip()[-500:]}")


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]):
    yield first
    yield from rest


# ----------------------------------------------------------------------------------------------
# The Hallo4 resize/pad rule (docs/MODEL.md section 3)
# ----------------------------------------------------------------------------------------------
@dataclass
class Placement:
    """How a source image sits on a canvas: x_canvas = x_src * scale + offset_x (same for y)."""

    scale: float
    offset_x: float
    offset_y: float
    src_width: int
    src_height: int
    width: int
    height: int

    def to_canvas(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float32).copy()
        xy[..., 0] = xy[..., 0] * self.scale + self.offset_x
        xy[..., 1] = xy[..., 1] * self.scale + self.offset_y
        return xy

    def from_canvas(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float32).copy()
        xy[..., 0] = (xy[..., 0] - self.offset_x) / self.scale
        xy[..., 1] = (xy[..., 1] - self.offset_y) / self.scale
        return xy

    def content_box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the source's visible area on the canvas."""
        x0 = max(0, int(round(self.offset_x)))
        y0 = max(0, int(round(self.offset_y)))
        x1 = min(self.width, int(round(self.offset_x + self.src_width * self.scale)))
        y1 = min(self.height, int(round(self.offset_y + self.src_height * self.scale)))
        return x0, y0, x1, y1

    def crop_back(self, frame: np.ndarray) -> np.ndarray:
        """Undo the padding: the canvas region that shows the source (its aspect ratio)."""
        x0, y0, x1, y1 = self.content_box()
        return frame[..., y0:y1, x0:x1, :] if frame.ndim >= 3 else frame[y0:y1, x0:x1]


def fit_to_canvas(image: np.ndarray, width: int, height: int, fill: int | float = 0) -> tuple[np.ndarray, Placement]:
    """Scale so the height matches, pad left/right symmetrically with `fill`, centre-crop if wider."""
    import cv2

    image = np.asarray(image)
    sh, sw = image.shape[:2]
    scale = height / sh
    new_w = max(1, int(round(sw * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, (new_w, height), interpolation=interp)
    canvas = np.full((height, width) + image.shape[2:], fill, dtype=image.dtype)
    if new_w <= width:
        off = (width - new_w) // 2
        canvas[:, off : off + new_w] = resized
        offset_x = float(off)
    else:
        crop = (new_w - width) // 2
        canvas[:] = resized[:, crop : crop + width]
        offset_x = -float(crop)
    return canvas, Placement(scale, offset_x, 0.0, sw, sh, width, height)


def output_size(src_width: int, src_height: int, long_side: int, multiple: int = 2) -> tuple[int, int]:
    """(width, height) with the source's aspect, the long side = `long_side`, both multiples of `multiple`."""
    scale = long_side / max(src_width, src_height)
    w = max(multiple, int(round(src_width * scale / multiple)) * multiple)
    h = max(multiple, int(round(src_height * scale / multiple)) * multiple)
    return w, h


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hallo4.media", description="Media tools of Hallo4 Studio.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_probe = sub.add_parser("probe", help="print what the project sees in a file")
    p_probe.add_argument("file")
    p_probe.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    try:
        info = probe(args.file)
    except Hallo4Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info.to_dict(), indent=2) if args.json else info.describe())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
