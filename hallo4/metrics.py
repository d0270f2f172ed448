"""Weight-free measures of generated clips.

SyncNet's weights cannot be had here, so lip sync is measured directly: the inner-lip opening from the
face mesh (normalised by face height) against the speech envelope, both at 25 fps, by normalised
cross-correlation over lags of +-10 frames.

Sign convention: `offset_frames` = k means the mouth follows the sound k frames LATE (video lags audio);
negative means the mouth moves before the sound. A well-synced clip reports 0 (+-1).

Limits: the face mesh needs a face of about 80 px or more; on smaller faces (and on a smiling,
teeth-showing source) the lip contour is misread and the numbers mean little.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import face as F
from . import media
from .audio_features import speech_envelope
from .cli import run
from .constants import FPS, SAMPLE_RATE

MAX_LAG = 10


@dataclass
class LipSyncReport:
    offset_frames: int  # best lag: + = video late, - = video early
    correlation: float  # normalised cross-correlation at that lag (-1..1)
    correlation_at_zero: float
    face_detected_share: float  # frames with a detected face / all frames
    num_frames: int
    lags: list[int]
    correlations: list[float]

    def to_dict(self) -> dict:
        return asdict(self)


def mouth_openings(frames: np.ndarray) -> np.ndarray:
    """Inner-lip opening / face height per frame (NaN where no face is found)."""
    out = np.full(len(frames), np.nan, np.float32)
    with F.FaceMesher() as mesher:
        for i, frame in enumerate(frames):
            lm = mesher.process(frame)
            if lm is not None:
                out[i] = F.mouth_opening(lm)
    return out


def cross_correlation(
    mouth: np.ndarray, envelope: np.ndarray, max_lag: int = MAX_LAG
) -> tuple[list[int], list[float]]:
    """Pearson correlation of mouth[t + k] with envelope[t] for k in [-max_lag, max_lag]."""
    n = min(len(mouth), len(envelope))
    mouth, envelope = mouth[:n], envelope[:n]
    lags, corrs = [], []
    for k in range(-max_lag, max_lag + 1):
        if k >= 0:
            m, e = mouth[k:], envelope[: n - k]
        else:
            m, e = mouth[: n + k], envelope[-k:]
        ok = np.isfinite(m) & np.isfinite(e)
        if ok.sum() < 8 or np.std(m[ok]) < 1e-6 or np.std(e[ok]) < 1e-6:
            c = 0.0
        else:
            c = float(np.corrcoef(m[ok], e[ok])[0, 1])
        lags.append(k)
        corrs.append(c)
    return lags, corrs


def lipsync(video: str | Path, audio: str | Path | None = None, max_lag: int = MAX_LAG) -> LipSyncReport:
    """Measure audio-visual sync of a clip (audio from the clip itself unless `audio` is given)."""
    clip = media.read_video(video, fps=FPS, name="video")
    sound = media.load_audio(audio if audio is not None else video, SAMPLE_RATE, name="audio")
    env = speech_envelope(sound, SAMPLE_RATE, FPS)
    mouth = mouth_openings(clip.frames)
    lags, corrs = cross_correlation(mouth, env, max_lag)
    best = int(np.argmax(corrs))
    return LipSyncReport(
        offset_frames=lags[best],
        correlation=round(corrs[best], 4),
        correlation_at_zero=round(corrs[lags.index(0)], 4),
        face_detected_share=round(float(np.isfinite(mouth).mean()), 4),
        num_frames=len(clip.frames),
        lags=lags,
        correlations=[round(c, 4) for c in corrs],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hallo4.metrics", description="Weight-free clip metrics.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("lipsync", help="audio-visual offset and correlation of a talking clip (JSON)")
    p.add_argument("video")
    p.add_argument("--audio", help="reference audio (default: the video's own track)")
    p.add_argument("--max-lag", type=int, default=MAX_LAG)
    args = parser.parse_args(argv)
    return run(lambda: print(json.dumps(lipsync(args.video, args.audio, args.max_lag).to_dict(), indent=2)))


if __name__ == "__main__":
    raise SystemExit(main())
