"""Video decoding: stream RGB frames (`iter_frames`) or read a bounded clip (`read_video`).

Both probe the header once, check the claimed size against `hallo4.limits` before decoding, and let
ffmpeg resample to the wanted fps and shrink to `max_side`.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..constants import FPS
from ..errors import InputError
from .ffmpeg import check_file, quiet_cmd
from .info import MediaInfo, probe

# `read_video` holds every decoded frame: refuse a video whose raw RGB frames would exceed this
# (1080p at 25 fps is ~155 MB/s, so ~13 s) rather than let the process be killed mid-way. The app's
# paths stream frames (`iter_frames`) instead and are bounded by the output (see hallo4.limits).
MAX_VIDEO_BYTES = 2 * 1024**3


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


@dataclass
class _Plan:
    """What one decode will produce: the probed header, the output frame size and ffmpeg's filters."""

    info: MediaInfo
    width: int
    height: int
    filters: list[str]


def _video_plan(p: Path, name: str, fps: float | None, max_side: int | None) -> _Plan:
    """Probe (header only) and check the claimed size before decoding; the decode size and filters."""
    from .. import limits

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
    return _Plan(info, w, h, filters)


def iter_frames(
    path: str | os.PathLike,
    *,
    fps: float | None = FPS,
    max_frames: int | None = None,
    name: str = "video",
    max_side: int | None = None,
) -> Iterator[np.ndarray]:
    """Yield RGB frames one at a time (constant memory), resampled to `fps`, at most `max_frames`.

    The ffmpeg decoder is a child process reading ahead into a pipe; closing the generator (or an
    exception in the consumer, e.g. a cancel) kills it at once, so nothing keeps decoding.
    """
    p = check_file(path, name)
    yield from _decode(p, name, _video_plan(p, name, fps, max_side), max_frames)


def _decode(p: Path, name: str, plan: _Plan, max_frames: int | None) -> Iterator[np.ndarray]:
    """Run the planned decode as a child process and yield its frames; kill it when the consumer stops."""
    w, h = plan.width, plan.height
    frame_bytes = w * h * 3
    cmd = quiet_cmd("-i", str(p), "-map", "0:v:0")
    if plan.filters:
        cmd += ["-vf", ",".join(plan.filters)]
    if max_frames:
        cmd += ["-frames:v", str(int(max_frames))]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    n = 0
    try:
        assert proc.stdout is not None
        while len(buf := proc.stdout.read(frame_bytes)) == frame_bytes:
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
    fps: float | None = FPS,
    max_frames: int | None = None,
    name: str = "video",
    max_side: int | None = None,
) -> VideoClip:
    """Read RGB frames, resampled to `fps` with ffmpeg's fps filter (None keeps the source rate).

    Holds every frame: refused before decoding when the header's duration would need more than
    MAX_VIDEO_BYTES (pass `max_frames` to read only a prefix; use `iter_frames` to stream)."""
    p = check_file(path, name)
    plan = _video_plan(p, name, fps, max_side)
    info, w, h = plan.info, plan.width, plan.height
    frame_bytes = w * h * 3
    rate = fps or info.fps or FPS
    est_frames = info.duration * rate
    if max_frames:
        est_frames = min(est_frames, max_frames)
    if est_frames * frame_bytes > MAX_VIDEO_BYTES:
        raise InputError(
            name,
            f"is too long to load at {w}x{h}: {info.duration:.1f} s would need "
            f"{est_frames * frame_bytes / 1024**3:.1f} GB of memory",
            f"Trim it to under {MAX_VIDEO_BYTES / (frame_bytes * rate):.0f} s or lower its resolution, "
            "and upload it again.",
            path=str(p),
        )
    # A header can lie about the duration: never read more frames than the budget holds.
    budget_frames = max(1, MAX_VIDEO_BYTES // frame_bytes)
    limit = min(max_frames or budget_frames, budget_frames)
    # np.empty only reserves address space: pages are committed as frames are written, so the
    # resident size is the frames actually read (no second copy as np.stack of a list would make).
    out = np.empty((limit, h, w, 3), np.uint8)
    n = 0
    for n, frame in enumerate(_decode(p, name, plan, limit), start=1):
        out[n - 1] = frame
    return VideoClip(frames=out[:n], fps=float(fps) if fps else info.fps, source_fps=info.fps, path=str(p))
