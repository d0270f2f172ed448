"""What the project sees in a media file: `probe` -> `MediaInfo`.

imageio-ffmpeg ships no ffprobe, so this parses `ffmpeg -i` (the same data, on stderr).
"""

from __future__ import annotations

import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from ..constants import IMAGE_SUFFIXES
from ..errors import InputError
from .ffmpeg import check_file, ffmpeg_exe, run_ffmpeg
from .image import load_image


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


def _ffmpeg_info(path: Path, name: str = "file") -> str:
    cmd = [ffmpeg_exe(), "-hide_banner", "-i", str(path)]
    return run_ffmpeg(cmd, name, path, 60, text=True, errors="replace").stderr


def _duration(text: str) -> float | None:
    """The `Duration: h:mm:ss.ss` of ffmpeg's header dump, in seconds (None when it states none)."""
    m = _DURATION_RE.search(text)
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3)) if m else None


def probe(path: str | os.PathLike, *, name: str = "file", count_frames: bool = True) -> MediaInfo:
    """What the project sees in a file: kind, size, duration, fps, frame count, codecs."""
    p = check_file(path, name)
    if p.suffix.lower() in IMAGE_SUFFIXES:
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
    info.duration = _duration(text) or 0.0
    _read_video_stream(info, text, p, count_frames)
    _read_audio_stream(info, text)
    if info.kind == "audio" and not info.has_audio:
        raise InputError(
            name, "contains neither a video nor an audio stream", "Upload a video or an audio file.", path=str(p)
        )
    return info


def _read_video_stream(info: MediaInfo, text: str, p: Path, count_frames: bool) -> None:
    """Fill the video fields (codec, upright size, rotation, fps, frame count) from the header dump."""
    v = _VIDEO_RE.search(text)
    if not v or "attached pic" in v.group(2):
        return
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


def _read_audio_stream(info: MediaInfo, text: str) -> None:
    """Fill the audio fields (codec, sample rate, channels) from the header dump."""
    a = _AUDIO_RE.search(text)
    if not a:
        return
    info.has_audio = True
    info.audio_codec = a.group(1)
    info.sample_rate = int(a.group(2))
    layout = (a.group(3) or "").strip()
    n = re.match(r"(\d+) channels", layout)
    info.channels = int(n.group(1)) if n else _CHANNEL_LAYOUTS.get(layout.split("(")[0], 0)


def _count_frames(path: Path) -> int:
    """Exact frame count by decoding (null muxer); cheap for the short clips the app handles."""
    cmd = [ffmpeg_exe(), "-hide_banner", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"]
    out = run_ffmpeg(cmd, "video", path, 300, text=True, errors="replace")
    counts = re.findall(r"frame=\s*(\d+)", out.stderr)
    return int(counts[-1]) if counts else 0


def header_duration(path: Path, name: str) -> float | None:
    """The duration a file's header claims (no decoding), or None when it states none."""
    return _duration(_ffmpeg_info(path, name))
