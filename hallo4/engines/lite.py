"""The `lite` engine: a talking portrait on the CPU with no downloaded weights.

It animates the uploaded photo itself: mediapipe's face mesh gives 478 landmarks; the speech gives
per-frame jaw opening, lip spread/rounding and closures (hallo4.articulation); blinks follow a seeded natural schedule; head motion comes
from a skeleton sequence (retargeted) or idle motion. Rendering is a piecewise-affine warp over the
face-mesh triangles plus two anchor rings (the head moves, the background stays), and a synthesised
mouth interior (cavity, teeth, tongue; lite_mouth.py) so an open mouth never shows stretched lip pixels.

Hand-written because no maintained library does landmark-driven portrait warping; the heavy lifting is
OpenCV (rasterising, remap) and scipy (Delaunay outside the face mesh).
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from typing import Any

import numpy as np

from .. import face as F
from .. import media
from ..constants import FPS, SAMPLE_RATE, VIDEO_SUFFIXES, num_video_frames
from ..errors import InputError
from ..paths import outputs_dir
from ..progress import Progress, ProgressCallback, as_progress
from .base import GenerationRequest, GenerationResult
from .lite_mouth_geometry import mouth_warnings
from .lite_rig import FaceRig
from .lite_tracks import blink_track, head_motion_from_skeleton, mouth_tracks

SR = SAMPLE_RATE  # kept for importers (hallo4.motion_clips)
__all__ = [
    "FPS",
    "SR",
    "FaceRig",
    "LiteEngine",
    "blink_track",
    "generate",
    "head_motion_from_skeleton",
    "mouth_tracks",
]


class LiteEngine:
    """CPU landmark-warp engine. `expressiveness` scales mouth and head motion (1.0 = natural)."""

    name = "lite"

    def __init__(self, output_dir: str | Path | None = None, expressiveness: float = 1.0, motion: Any = None):
        """`motion`: None or "rules" = rule-based motion; "base", a saved round's folder or a
        `hallo4.lite_motion.LiteMotion` = motion sampled from the lite motion model (request.options["motion"] overrides it)."""
        self.output_dir = Path(output_dir) if output_dir else None
        self.expressiveness = float(expressiveness)
        self.motion = motion

    # ------------------------------------------------------------------------------------------
    def generate(
        self, request: GenerationRequest, progress: Progress | ProgressCallback | None = None
    ) -> GenerationResult:
        """Steps: 1. inputs, 2. face, 3. motion tracks, 4. rig, 5. render + encode (streamed)."""
        prog = as_progress(progress)
        timings: dict[str, float] = {}
        warnings: list[str] = []
        t0 = time.perf_counter()
        seed = int(request.seed) if request.seed is not None else secrets.randbelow(2**31 - 1)
        expressiveness = float(request.options.get("expressiveness", self.expressiveness))
        prog(0.0, "Loading inputs")
        image, audio = _load_inputs(request)
        h, w = image.shape[:2]
        timings["load"] = time.perf_counter() - t0

        t = time.perf_counter()
        prog(0.02, "Finding the face")
        analysis = self._find_face(image, request)
        warnings += analysis.warnings + mouth_warnings(analysis.landmarks)
        timings["landmarks"] = time.perf_counter() - t

        t = time.perf_counter()
        prog(0.05, "Analysing speech")
        n = num_video_frames(len(audio), SR, FPS)
        motion = request.options.get("motion", self.motion)
        motion = None if motion == "rules" else motion  # options["motion"] = "rules": the rule-based motion
        motion, tracks = self._tracks(request, motion, image, analysis, audio, n, seed, expressiveness, warnings, prog)
        timings["motion"] = time.perf_counter() - t

        t = time.perf_counter()
        rig = FaceRig(image, analysis.landmarks)
        timings["rig"] = time.perf_counter() - t

        out = request.output or (self.output_dir or outputs_dir()) / f"lite_{int(time.time() * 1000)}_{seed}.mp4"
        t = time.perf_counter()
        render_time = _render(rig, tracks, n, prog, out, request.audio)
        timings["render"] = render_time
        timings["encode"] = time.perf_counter() - t - render_time
        timings["total"] = time.perf_counter() - t0
        prog(1.0, "Done")
        params = dict(
            request.to_dict(),
            engine=self.name,
            seed=seed,
            width=w,
            height=h,
            fps=FPS,
            expressiveness=expressiveness,
            motion="rules" if motion is None else str(motion.model.config.get("_name_or_path") or "model"),
        )
        return GenerationResult(
            video=Path(out),
            seed=seed,
            engine=self.name,
            timings=timings,
            parameters=params,
            warnings=warnings,
            num_frames=n,
            fps=FPS,
        )

    @staticmethod
    def _find_face(image: np.ndarray, request: GenerationRequest):
        analysis = F.analyze_face(image, require=False)
        if not analysis.found:
            raise InputError(
                "portrait",
                "no face could be detected, and the lite engine animates a visible face",
                "Use a front-facing photo where the face is clearly visible (at least ~100 px tall).",
                path=str(request.portrait),
            )
        return analysis

    def _tracks(self, request, motion, image, analysis, audio, n, seed, expressiveness, warnings, prog):
        """(motion model or None, per-frame tracks): mouth keys, "blink" and "head" (n, 5)."""
        if motion is not None:  # the lite motion model (hallo4.lite_motion) instead of the rules
            from ..lite_motion import LiteMotion

            motion = motion if isinstance(motion, LiteMotion) else LiteMotion(None if motion == "base" else motion)
            mouth, blinks, head = motion.tracks(audio, SR, FPS, n, seed)
            mouth["open"] = np.clip(mouth["open"] * expressiveness, 0, 1.2)
            if request.skeleton is not None:  # a skeleton still drives the head
                head = self._head_motion(request, image, analysis, n, seed, audio, warnings, prog)
        else:
            mouth = mouth_tracks(audio, SR, FPS, expressiveness)
            blinks = blink_track(n, np.random.default_rng(seed))
            head = self._head_motion(request, image, analysis, n, seed, audio, warnings, prog)
        head[:, :2] *= expressiveness
        head[:, 2:] *= expressiveness  # roll, yaw, pitch
        tracks = dict(mouth, blink=blinks, head=head)
        tracks["labiodental"] = _optional_track(mouth, "labiodental", n)  # the motion model has no "f"/"v" yet
        tracks["brow"] = _optional_track(mouth, "brow", n)  # the motion model may raise brows; the rules do not
        return motion, tracks

    # ------------------------------------------------------------------------------------------
    def _head_motion(self, request, image, analysis, n, seed, audio, warnings, prog) -> np.ndarray:
        """(n, 5): x, y translation in inter-ocular distances, roll, yaw and pitch in radians, relative to frame 0."""
        seq = None
        skeleton = request.skeleton
        if skeleton is not None:
            from ..skeleton import SkeletonSequence, fit_length

            if isinstance(skeleton, (str, Path)):
                path = Path(skeleton)
                if path.suffix.lower() in VIDEO_SUFFIXES:
                    warnings.append(
                        "A rendered skeleton video carries no keypoints for the lite engine; "
                        "using idle head motion. Upload the skeleton JSON to drive the head."
                    )
                else:
                    seq = SkeletonSequence.load(path)
            else:
                seq = skeleton
            if seq is not None:
                seq, message = fit_length(seq.resample(FPS) if abs(seq.fps - FPS) > 1e-3 else seq, n, "pingpong")
                if message:
                    warnings.append(message)
        if seq is None:
            from ..skeleton import idle_skeleton

            seq = idle_skeleton(image, n, seed=seed, audio=audio, sr=SR, fps=FPS)
        from ..head_pose import depth_68, head_turn_track

        # x, y, roll from the eyes and nose; yaw and pitch from a 3D fit with the portrait's mesh depth.
        turn = head_turn_track(seq, n, depth_68(analysis.landmarks))
        return np.concatenate([head_motion_from_skeleton(seq, n), turn], 1)


def _optional_track(tracks: dict, key: str, n: int) -> np.ndarray:
    """A 0..1 track of length n from `tracks[key]`, held at its last value when short; zeros when absent."""
    x = np.clip(np.asarray(tracks.get(key, np.zeros(0)), np.float32).reshape(-1)[:n], 0, 1)
    if len(x) == 0:
        return np.zeros(n, np.float32)
    return np.pad(x, (0, n - len(x)), mode="edge") if len(x) < n else x


def _render(rig: FaceRig, tracks: dict, n: int, prog, out: Path, audio_path) -> float:
    """Render the frames straight into the encoder; returns the seconds spent rendering (not encoding)."""
    render_time = 0.0

    def frames():
        nonlocal render_time
        for i in range(n):
            if i % 5 == 0:
                prog(0.08 + 0.9 * i / n, f"Rendering frame {i + 1}/{n}")
            t = time.perf_counter()
            frame = rig.render(
                tracks["open"][i],
                tracks["spread"][i],
                tracks["blink"][i],
                tracks["head"][i],
                labiodental=float(tracks["labiodental"][i]),
                brow=float(tracks["brow"][i]),
            )
            render_time += time.perf_counter() - t
            yield frame

    # The original audio, cut to the video, muxed in the same ffmpeg run. One encoder thread: it keeps pace with
    # the renderer from the second core, and more threads only take turns with the renderer (10 s at 512 px:
    # 2.1-2.2 s with one, 2.4-3.2 s with ffmpeg's default; BENCHMARKS.md).
    media.write_mp4(out, frames(), fps=FPS, audio=audio_path, num_frames=n, threads=1)
    return render_time


def generate(
    request: GenerationRequest, progress: Progress | ProgressCallback | None = None, **kwargs: Any
) -> GenerationResult:
    """Convenience: LiteEngine(**kwargs).generate(request, progress)."""
    return LiteEngine(**kwargs).generate(request, progress)


def _load_inputs(request: GenerationRequest) -> tuple[np.ndarray, np.ndarray]:
    """The portrait resized to the request's long side (even sides; RGB uint8) and the speech at SR."""
    size = int(request.size or 512)  # None: the lite engine's default long side
    if not 64 <= size <= 2048:
        raise InputError("size", f"{size} px is out of range", "Choose a size between 64 and 2048 pixels.")
    portrait = media.load_image(request.portrait, name="portrait")
    w, h = media.output_size(portrait.width, portrait.height, size, multiple=2)
    image = np.asarray(portrait.resize((w, h), resample=3 if w < portrait.width else 2))  # LANCZOS / BILINEAR
    audio = media.load_audio(request.audio, SR, name="audio", max_seconds=request.max_seconds)
    return image, audio
