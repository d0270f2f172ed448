"""The packaged ffmpeg binary and the checks every media reader shares.

ffmpeg is imageio-ffmpeg's packaged binary, so a fresh machine (or a Space) needs no system ffmpeg.
A file that makes ffmpeg hang, or a path that is not a usable file, becomes an `InputError` here, once.
"""

from __future__ import annotations

import os
import subprocess
from functools import lru_cache
from pathlib import Path

from ..errors import Hallo4Error, InputError


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


def check_file(path: str | os.PathLike, name: str) -> Path:
    """The path as a Path when it is a non-empty file; else an InputError naming the input `name`."""
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


def run_ffmpeg(cmd: list[str], name: str, path: Path, timeout: float, **kw) -> subprocess.CompletedProcess:
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


def quiet_cmd(*args: str) -> list[str]:
    """An ffmpeg command line that prints only errors and never reads the terminal."""
    return [ffmpeg_exe(), "-hide_banner", "-nostdin", "-v", "error", *args]
