"""Writing the browser-safe mp4 every engine returns: H.264 yuv420p, even dims, AAC, faststart.

Everything is written to hidden temporary names beside the output and renamed into place at the end
(atomic), so a crash or kill -9 never leaves a half-written video under the real name; hallo4.retention
removes stale hidden leftovers.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from ..constants import FPS
from ..errors import Hallo4Error, InputError
from .ffmpeg import quiet_cmd
from .info import probe

# Sample rates the AAC encoder accepts (MPEG-4 audio sampling frequency table).
AAC_SAMPLE_RATES = frozenset({96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350})


def write_mp4(
    path: str | os.PathLike,
    frames: Iterable[np.ndarray] | np.ndarray,
    *,
    fps: float = FPS,
    audio: str | os.PathLike | np.ndarray | None = None,
    audio_sr: int | None = None,
    crf: int = 18,
    preset: str = "veryfast",
    num_frames: int | None = None,
    threads: int | None = None,
) -> Path:
    """Encode RGB frames to an mp4 every browser plays: H.264 yuv420p, even dims, AAC, faststart.

    Audio is muxed as AAC, padded with silence or cut to the video's length. A file is the user's
    ORIGINAL audio: its own sample rate and channels are kept (every engine passes the uploaded file here,
    never the 16 kHz mono copy its models consume); a float array + `audio_sr` is written as mono. Frames
    are streamed to ffmpeg, so generators of any length use constant memory. `num_frames`, when the caller
    knows it: the audio is encoded in the same ffmpeg run as the frames (no second pass after the last frame);
    a different count is an error. `threads`: the H.264 encoder's threads (None: ffmpeg's choice, one per core
    and more); a caller rendering frames on one core while ffmpeg encodes on another passes 1, so the encoder's
    threads do not crowd out the renderer.
    """
    final_path = Path(path)
    final_path.parent.mkdir(parents=True, exist_ok=True)
    it = iter(frames)
    try:
        first = np.asarray(next(it))
    except StopIteration:
        raise ValueError("write_mp4 needs at least one frame") from None
    if first.ndim != 3 or first.shape[2] != 3:
        raise ValueError(f"frames must be (H, W, 3) RGB, got {first.shape}")
    out_path = _hidden(final_path, "part")
    if audio is not None and num_frames is not None:
        try:
            with _audio_input(audio, audio_sr) as (audio_in, rate_args):
                _encode_video(
                    _chain(first, it),
                    first.shape,
                    out_path,
                    final_path,
                    fps,
                    crf,
                    preset,
                    audio=(audio_in, rate_args, num_frames),
                    threads=threads,
                )
            os.replace(out_path, final_path)
        finally:
            out_path.unlink(missing_ok=True)
        return final_path
    # Pass 1 streams the frames into H.264. Pass 2 (with audio) muxes the audio, padded with silence
    # and cut to exactly frames / fps with -t: `-shortest` alone overshoots by up to ~0.5 s under load.
    video_path = out_path if audio is None else _hidden(final_path, "video")
    n = _encode_video(_chain(first, it), first.shape, video_path, final_path, fps, crf, preset, threads=threads)
    if audio is None:
        os.replace(out_path, final_path)
        return final_path
    try:
        _mux_audio(video_path, audio, audio_sr, n / fps, out_path, final_path)
        os.replace(out_path, final_path)
    finally:
        video_path.unlink(missing_ok=True)
        out_path.unlink(missing_ok=True)
    return final_path


def _hidden(final_path: Path, kind: str) -> Path:
    """A hidden temporary name beside the output (`.name.<random>.<kind>.mp4`)."""
    return final_path.with_name(f".{final_path.stem}.{uuid.uuid4().hex[:8]}.{kind}.mp4")


def _encode_video(
    frames: Iterator[np.ndarray],
    shape: tuple[int, ...],
    video_path: Path,
    final_path: Path,
    fps,
    crf,
    preset,
    audio: tuple[str, list[str], int] | None = None,
    threads: int | None = None,
) -> int:
    """Stream frames of `shape` into an H.264 file; returns the number of frames written. `audio`: (file, its
    rate options, the frame count): the audio is muxed in the same run, padded and cut to the frames."""
    h, w = shape[:2]
    cmd = quiet_cmd("-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{w}x{h}", "-r", f"{fps}", "-i", "-")
    if audio is not None:
        cmd += ["-i", audio[0], "-map", "0:v:0", "-map", "1:a:0"]
    # Even dimensions are required by yuv420p; pad by one pixel instead of distorting.
    cmd += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2", "-c:v", "libx264", "-preset", preset, "-crf", str(crf)]
    cmd += ["-pix_fmt", "yuv420p"] + ([] if threads is None else ["-threads", str(int(threads))])
    if audio is not None:
        cmd += _aac_output(audio[1], audio[2] / fps)
    cmd += ["-movflags", "+faststart", str(video_path)]
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    n = 0
    try:
        assert proc.stdin is not None
        for frame in frames:
            arr = np.ascontiguousarray(frame, dtype=np.uint8)
            if arr.shape != shape:
                raise ValueError(f"frame {n} has shape {arr.shape}, expected {shape}")
            if audio is not None and n == audio[2]:
                raise ValueError(f"more frames than the {audio[2]} announced (num_frames)")
            proc.stdin.write(arr.data)  # the contiguous buffer itself: no per-frame copy
            n += 1
        if audio is not None and n != audio[2]:
            raise ValueError(f"{n} frames were written, {audio[2]} were announced (num_frames)")
        proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        rc = proc.wait(timeout=600)
    except BaseException:  # a bad frame, a cancel or Ctrl-C: stop the encoder, drop its file, re-raise
        proc.kill()
        proc.wait()
        video_path.unlink(missing_ok=True)
        raise
    if rc != 0:
        video_path.unlink(missing_ok=True)
        _raise_encode_error(err, final_path)
    return n


def _mux_audio(
    video_path: Path, audio: str | os.PathLike | np.ndarray, audio_sr: int | None, seconds: float, out_path, final_path
) -> None:
    """Copy the video stream and add the audio as AAC, padded with silence and cut to `seconds`."""
    with _audio_input(audio, audio_sr) as (audio_in, rate_args):
        mux = quiet_cmd("-y", "-i", str(video_path), "-i", audio_in, "-map", "0:v:0", "-map", "1:a:0", "-c:v", "copy")
        mux += _aac_output(rate_args, seconds)
        mux += ["-movflags", "+faststart", str(out_path)]
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


def _aac_output(rate_args: list[str], seconds: float) -> list[str]:
    """The audio's output options: AAC, padded with silence and cut to exactly `seconds`."""
    return ["-af", "apad", "-c:a", "aac", "-b:a", "192k", *rate_args, "-t", f"{seconds:.6f}"]


@contextlib.contextmanager
def _audio_input(audio: str | os.PathLike | np.ndarray, audio_sr: int | None) -> Iterator[tuple[str, list[str]]]:
    """(file for ffmpeg, its output-rate options): a float array is written to a temporary 16-bit WAV (removed
    on exit); a file keeps its own rate unless AAC cannot store it (then 48 kHz)."""
    if not isinstance(audio, np.ndarray):
        audio_in = str(audio)
        rate = probe(audio_in, name="audio", count_frames=False).sample_rate
        yield audio_in, ([] if rate in AAC_SAMPLE_RATES else ["-ar", "48000"])
        return
    if not audio_sr:
        raise ValueError("audio_sr is required with an audio array")
    import soundfile as sf

    fd, tmp_audio = tempfile.mkstemp(suffix=".wav")
    os.close(fd)
    try:
        sf.write(tmp_audio, np.asarray(audio, dtype=np.float32).reshape(-1), int(audio_sr), subtype="PCM_16")
        yield tmp_audio, []
    finally:
        Path(tmp_audio).unlink(missing_ok=True)


def _raise_encode_error(stderr: str, path: Path, only_storage: bool = False) -> None:
    """ffmpeg's own words for a full disk / unwritable folder become our clear storage message."""
    from ..paths import storage_error

    for marker, code in (
        ("No space left", errno.ENOSPC),
        ("Read-only file system", errno.EROFS),
        ("Permission denied", errno.EACCES),
    ):
        if marker in stderr:
            raise storage_error(OSError(code, marker), path.parent)  # type: ignore[misc]
    if not only_storage:
        raise Hallo4Error(f"Video encoding failed: {stderr.strip()[-500:]}")


def _chain(first: np.ndarray, rest: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest
