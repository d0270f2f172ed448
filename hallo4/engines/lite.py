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

import math
import secrets
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from .. import face as F
from .. import media
from ..articulation import articulate
from ..audio_features import num_video_frames
from ..errors import InputError
from ..paths import outputs_dir
from ..progress import Progress, ProgressCallback, as_progress
from .base import GenerationRequest, GenerationResult
from .lite_mouth import MouthRenderer, face_roll, mouth_warnings, rig_triangles, rotate

FPS = 25.0
SR = 16000

UPPER_INNER = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
LOWER_INNER = (95, 88, 178, 87, 14, 317, 402, 318, 324)
UPPER_OUTER = (185, 40, 39, 37, 0, 267, 269, 270, 409)
LOWER_OUTER = (146, 91, 181, 84, 17, 314, 405, 321, 375)
IRIS = tuple(range(468, 478))


class LiteEngine:
    """CPU landmark-warp engine. `expressiveness` scales mouth and head motion (1.0 = natural)."""

    name = "lite"

    def __init__(self, output_dir: str | Path | None = None, expressiveness: float = 1.0, motion: Any = None):
        """`motion`: None = rule-based motion; "base", a saved round's folder or a `hallo4.lite_motion.LiteMotion`
        = motion sampled from the lite motion model (request.options["motion"] overrides it)."""
        self.output_dir = Path(output_dir) if output_dir else None
        self.expressiveness = float(expressiveness)
        self.motion = motion

    # ------------------------------------------------------------------------------------------
    def generate(
        self, request: GenerationRequest, progress: Progress | ProgressCallback | None = None
    ) -> GenerationResult:
        prog = as_progress(progress)
        timings: dict[str, float] = {}
        warnings: list[str] = []
        t0 = time.perf_counter()
        seed = int(request.seed) if request.seed is not None else secrets.randbelow(2**31 - 1)
        size = int(request.size or 512)  # None: the lite engine's default long side
        if not 64 <= size <= 2048:
            raise InputError("size", f"{size} px is out of range", "Choose a size between 64 and 2048 pixels.")
        expressiveness = float(request.options.get("expressiveness", self.expressiveness))

        prog(0.0, "Loading inputs")
        portrait = media.load_image(request.portrait, name="portrait")
        w, h = media.output_size(portrait.width, portrait.height, size, multiple=2)
        image = np.asarray(portrait.resize((w, h), resample=3 if w < portrait.width else 2))  # LANCZOS / BILINEAR
        audio = media.load_audio(request.audio, SR, name="audio", max_seconds=request.max_seconds)
        timings["load"] = time.perf_counter() - t0

        t = time.perf_counter()
        prog(0.02, "Finding the face")
        analysis = F.analyze_face(image, require=False)
        if not analysis.found:
            raise InputError(
                "portrait",
                "no face could be detected, and the lite engine animates a visible face",
                "Use a front-facing photo where the face is clearly visible (at least ~100 px tall).",
                path=str(request.portrait),
            )
        warnings += analysis.warnings + mouth_warnings(analysis.landmarks)
        timings["landmarks"] = time.perf_counter() - t

        t = time.perf_counter()
        prog(0.05, "Analysing speech")
        n = num_video_frames(len(audio), SR, FPS)
        motion = request.options.get("motion", self.motion)
        if motion is not None:  # the lite motion model (hallo4.lite_motion) instead of the rules
            from ..lite_motion import LiteMotion

            motion = motion if isinstance(motion, LiteMotion) else LiteMotion(None if motion == "base" else motion)
            mouth, blinks, head = motion.tracks(audio, SR, FPS, n, seed)
            mouth["open"] = np.clip(mouth["open"] * expressiveness, 0, 1.2)
            if request.skeleton is not None:  # a skeleton still drives the head
                head = self._head_motion(request, image, analysis, n, seed, audio, warnings, prog)
        else:
            mouth = mouth_tracks(audio, SR, FPS, expressiveness)
            rng = np.random.default_rng(seed)
            blinks = blink_track(n, rng)
            head = self._head_motion(request, image, analysis, n, seed, audio, warnings, prog)
        head[:, :2] *= expressiveness
        head[:, 2:] *= expressiveness  # roll, yaw, pitch
        timings["motion"] = time.perf_counter() - t

        t = time.perf_counter()
        rig = FaceRig(image, analysis.landmarks)
        timings["rig"] = time.perf_counter() - t

        out = request.output or (self.output_dir or outputs_dir()) / f"lite_{int(time.time() * 1000)}_{seed}.mp4"
        render_time = [0.0]

        def frames():
            for i in range(n):
                if i % 5 == 0:
                    prog(0.08 + 0.9 * i / n, f"Rendering frame {i + 1}/{n}")
                tr = time.perf_counter()
                frame = rig.render(mouth["open"][i], mouth["spread"][i], blinks[i], head[i])
                render_time[0] += time.perf_counter() - tr
                yield frame

        t = time.perf_counter()
        media.write_mp4(out, frames(), fps=FPS, audio=request.audio)  # the original audio, cut to the video
        timings["render"] = render_time[0]
        timings["encode"] = time.perf_counter() - t - render_time[0]
        timings["total"] = time.perf_counter() - t0
        prog(1.0, "Done")
        params = request.to_dict()
        params.update(
            {
                "engine": self.name,
                "seed": seed,
                "width": w,
                "height": h,
                "fps": FPS,
                "expressiveness": expressiveness,
                "motion": "rules" if motion is None else str(motion.model.config.get("_name_or_path") or "model"),
            }
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

    # ------------------------------------------------------------------------------------------
    def _head_motion(self, request, image, analysis, n, seed, audio, warnings, prog) -> np.ndarray:
        """(n, 5): x, y translation in inter-ocular distances, roll, yaw and pitch in radians, relative to frame 0."""
        seq = None
        skeleton = request.skeleton
        if skeleton is not None:
            from ..skeleton import SkeletonSequence, fit_length

            if isinstance(skeleton, (str, Path)):
                path = Path(skeleton)
                if path.suffix.lower() in {".mp4", ".mov", ".webm", ".mkv", ".avi"}:
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


# ----------------------------------------------------------------------------------------------
# Motion tracks
# ----------------------------------------------------------------------------------------------
def mouth_tracks(audio: np.ndarray, sr: int, fps: float, expressiveness: float = 1.0) -> dict[str, np.ndarray]:
    """Per-frame jaw opening (0..1), lip spread (-1 round .. +1 wide) and closure: see hallo4.articulation."""
    return articulate(audio, sr, fps, expressiveness).as_tracks()


def blink_track(n: int, rng: np.random.Generator, fps: float = FPS, rate: float = 1.0) -> np.ndarray:
    """Eyelid closure 0..1 per frame: blinks every ~2-6 s / `rate` (gamma-distributed), ~200 ms each."""
    track = np.zeros(n, np.float32)
    shape = np.array([0.35, 0.85, 1.0, 0.7, 0.35, 0.1], np.float32)  # fast close, slower open
    t = int(rng.uniform(0.6, 2.5) * fps)
    while t < n:
        seg = shape[: max(0, min(len(shape), n - t))]
        track[t : t + len(seg)] = np.maximum(track[t : t + len(seg)], seg)
        t += len(shape) + int(rng.gamma(4.0, 0.9 / rate) * fps)
    return track


def head_motion_from_skeleton(seq, n: int) -> np.ndarray:
    """Head translation (in inter-ocular distances) and roll from eye/nose keypoints, relative to frame 0."""
    face = np.asarray(seq.face, np.float32)[:n]
    body = np.asarray(seq.body, np.float32)[:n]
    conf_face = face[:, 36:48, 2].mean(axis=1)
    if np.mean(conf_face > 0.3) > 0.5:
        right = face[:, 36:42, :2].mean(axis=1)
        left = face[:, 42:48, :2].mean(axis=1)
        nose = face[:, 30, :2]
    else:  # COCO-18: 0 nose, 14 right eye, 15 left eye
        right, left, nose = body[:, 14, :2], body[:, 15, :2], body[:, 0, :2]
    iod = np.linalg.norm(left[0] - right[0]) + 1e-6
    centre = (left + right) / 2 * 0.5 + nose * 0.5
    d = left - right
    roll = np.arctan2(d[:, 1], d[:, 0])
    out = np.zeros((len(face), 3), np.float32)
    out[:, :2] = (centre - centre[:1]) / iod
    out[:, 2] = roll - roll[0]
    out = np.clip(out, [-0.6, -0.6, -0.35], [0.6, 0.6, 0.35])
    if len(out) < n:
        out = np.concatenate([out, np.repeat(out[-1:], n - len(out), axis=0)])
    return out


# ----------------------------------------------------------------------------------------------
# The warp rig
# ----------------------------------------------------------------------------------------------
class FaceRig:
    """Precomputes the triangulation and per-landmark motion weights; renders one frame per call."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray):
        self.image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        self.h, self.w = h, w
        lm = landmarks[:, :2].astype(np.float32)
        self.face_h = F.face_height(lm)
        self.iod = float(np.linalg.norm(lm[list(F.LEFT_EYE)].mean(0) - lm[list(F.RIGHT_EYE)].mean(0)))
        self.mouth_c = lm[[13, 14]].mean(0)
        self.mouth_half_w = float(np.linalg.norm(lm[61] - lm[291])) / 2 + 1e-6
        face_idx = np.array([i for i in range(468)], np.int64)  # irises excluded: they sit inside the lids
        self.face_idx = face_idx
        centre = lm[list(F.FACE_OVAL)].mean(0)
        oval = lm[list(F.FACE_OVAL)]
        # Head pivot for roll: the neck, below the chin.
        self.pivot = lm[F.CHIN] + np.array([0.0, 0.25 * self.face_h], np.float32)

        # The face oval in polar form around its centre, sorted by angle: the rings hug the head.
        rel = oval - centre
        oval_ang = np.mod(np.arctan2(rel[:, 1], rel[:, 0]), 2 * np.pi)
        order = np.argsort(oval_ang)
        oval_ang, oval_r = oval_ang[order], np.linalg.norm(rel, axis=1)[order]

        def ring(scale: float, count: int) -> np.ndarray:
            ang = np.linspace(0, 2 * np.pi, count, endpoint=False)
            r = np.interp(ang, oval_ang, oval_r, period=2 * np.pi)
            pts = centre + (r * scale)[:, None] * np.stack([np.cos(ang), np.sin(ang)], 1)
            return pts.astype(np.float32)

        ring1 = ring(1.45, 28)  # moves with the head (hair, ears)
        ring2 = ring(2.3, 28)  # fixed: background / shoulders
        border = []
        for k in range(9):
            f = k / 8
            border += [(f * (w - 1), 0), (f * (w - 1), h - 1), (0, f * (h - 1)), (w - 1, f * (h - 1))]
        border = np.array(border, np.float32)
        inside = lambda p: (p[:, 0] > 1) & (p[:, 0] < w - 2) & (p[:, 1] > 1) & (p[:, 1] < h - 2)
        ring1 = ring1[inside(ring1)]
        ring2 = ring2[inside(ring2)]
        self.n_face = len(face_idx)
        self.n_ring1 = len(ring1)
        pts = np.concatenate([lm[face_idx], ring1, ring2, border]).astype(np.float32)
        self.src = pts
        self.head_weight = np.zeros(len(pts), np.float32)
        self.head_weight[: self.n_face + self.n_ring1] = 1.0
        self.tri = rig_triangles(pts, self.n_face)  # face mesh + mouth hole + Delaunay outside the face
        big = np.float32(1e9)  # id -1 (no triangle): identity, unclamped
        self._src_lo = np.concatenate([pts[self.tri].min(1) - 1.0, [[-big, -big]]]).astype(np.float32)
        self._src_hi = np.concatenate([pts[self.tri].max(1) + 1.0, [[big, big]]]).astype(np.float32)
        self._local_weights(lm)
        from ..head_pose import HeadTurn

        self.turn = HeadTurn(landmarks, pts, self.head_weight > 0, self.tri, F.FACE_OVAL)
        self.mouth = MouthRenderer(self.image, landmarks)
        # Pixels outside the moving area never change: restrict all work to its bounding box.
        moving = pts[: self.n_face + self.n_ring1]
        pad = int(0.6 * self.face_h)
        x0, y0 = np.floor(moving.min(0)).astype(int) - pad
        x1, y1 = np.ceil(moving.max(0)).astype(int) + pad
        self.roi = (max(0, x0), max(0, y0), min(w, x1), min(h, y1))
        rx0, ry0, rx1, ry1 = self.roi
        gy, gx = np.mgrid[ry0:ry1, rx0:rx1].astype(np.float32)
        self.gx, self.gy = gx, gy

    def _local_weights(self, lm: np.ndarray) -> None:
        """Per-landmark weights for jaw drop, upper-lip lift, lip spread and eyelid closure.

        Worked out in the face's upright frame (rotated by its roll about the mouth), so a tilted head
        opens its jaw along the face, not straight down the image; `landmarks_at` rotates back.
        """
        n = self.n_face
        self.roll0 = face_roll(lm)
        lm = rotate(lm[:, :2], self.mouth_c, -self.roll0).astype(np.float32)
        p = lm[self.face_idx]
        lower_in_y = lm[14, 1]
        chin_y = lm[F.CHIN, 1]
        cx = self.mouth_c[0]
        half_face_w = (p[:, 0].max() - p[:, 0].min()) / 2
        # Which side of the lips each point is on: the line midway between the inner lips (per column),
        # not one height for the whole mouth (a smile's corners sit above its middle).
        inner = lm[list(F.LIPS_INNER)]
        order = np.argsort(inner[:, 0])
        xs_in = inner[order, 0]
        mid_y = np.interp(p[:, 0], xs_in, inner[order, 1])  # upper/lower points share x: their mean
        upper_y = np.interp(p[:, 0], *zip(*sorted((lm[i, 0], lm[i, 1]) for i in UPPER_INNER + (78, 308))))
        lower_y = np.interp(p[:, 0], *zip(*sorted((lm[i, 0], lm[i, 1]) for i in LOWER_INNER + (78, 308))))
        mid_y = 0.5 * (upper_y + lower_y) if len(xs_in) else mid_y
        inner_half_w = max(float(abs(lm[308, 0] - lm[78, 0])) / 2, 1.0)
        u = (p[:, 0] - cx) / inner_half_w
        # Between the lips the split is sharp (separate tissue); beside the corners it softens into the cheek.
        soft = 0.5 + 0.4 * inner_half_w * np.clip(np.abs(u) - 0.9, 0, 1)
        below = np.clip((p[:, 1] - mid_y + soft) / (2 * soft), 0, 1)
        below = below * below * (3 - 2 * below)  # smoothstep
        between = np.abs(u) <= 1.0  # within the corners, the inner lip lines decide exactly
        below[between & (p[:, 1] <= upper_y)] = 0.0
        below[between & (p[:, 1] >= lower_y)] = 1.0
        below[list(UPPER_INNER)] = 0.0  # on a closed mouth the two inner lips can swap heights
        below[list(LOWER_INNER)] = 1.0
        # Below the lower lip the whole jaw moves together; the chin a little less than the lip.
        beyond = np.clip((p[:, 1] - lower_in_y) / max(chin_y - lower_in_y, 1.0), 0, 1)
        jaw = below * (1.0 - 0.2 * beyond)
        horiz = np.clip(1.0 - ((p[:, 0] - cx) / (half_face_w + 1e-6)) ** 2 * 0.7, 0.15, 1.0)
        # The lips open as a lens, not a box: near the lips the drop tapers to the corners, further
        # down (chin) the jaw moves as one.
        taper = np.clip(1 - u**2, 0, 1) ** 0.6
        lower_out_y = lm[17, 1]
        to_chin = np.clip((p[:, 1] - lower_out_y) / max(0.5 * (chin_y - lower_out_y), 1.0), 0, 1)
        self.w_jaw = (jaw * horiz * (taper + (1 - taper) * to_chin)).astype(np.float32)
        # The upper lip lifts a little, most at its inner edge, nothing at the base of the nose.
        nose_y = lm[2, 1]
        t = np.clip((p[:, 1] - nose_y) / np.maximum(mid_y - nose_y, 1.0), 0, 1) * (1 - below)
        self.w_lift = (0.22 * t**1.5 * taper).astype(np.float32)
        # Closing a portrait's parted lips: each lower inner-lip point rises by its own gap to the upper
        # lip (so the lips meet along their whole length), the rest of the jaw by the centre gap.
        self.rest_gap = float(max(lm[14, 1] - lm[13, 1], 0.0))
        up = lm[list(UPPER_INNER)]
        up = up[np.argsort(up[:, 0])]
        self.close_dy = self.w_jaw * self.rest_gap
        for i in LOWER_INNER:
            self.close_dy[i] = max(float(lm[i, 1] - np.interp(lm[i, 0], up[:, 0], up[:, 1])), 0.0)
        # Spread/rounding as a smooth field (flat over the lips, fading into the cheeks): per-index
        # weights moved lip points past their unlisted neighbours and folded the corners.
        dx = (p[:, 0] - cx) / (self.mouth_half_w * 1.8)
        dy = (p[:, 1] - self.mouth_c[1]) / (self.mouth_half_w * 1.0)
        self.w_spread = np.clip(1.25 * np.exp(-(dx**4) - dy**2), 0, 1).astype(np.float32)
        self.spread_dir = ((p[:, 0] - cx) / self.mouth_half_w).astype(np.float32)
        # Rounding ("oo") also purses the lips: each lip bulges away from the opening, most in the middle,
        # the inner edge fully, the outer edge half, the skin beyond fading out. The opening turns round.
        th_up = max(float(upper_y[np.argmin(np.abs(p[:, 0] - cx))] - lm[0, 1]), 1.0)
        th_lo = max(float(lm[17, 1] - lower_y[np.argmin(np.abs(p[:, 0] - cx))]), 1.0)
        f_up = np.clip(1 - 0.5 * (upper_y - p[:, 1]) / th_up, 0, 1) * (p[:, 1] <= upper_y)
        f_lo = np.clip(1 - 0.5 * (p[:, 1] - lower_y) / th_lo, 0, 1) * (p[:, 1] >= lower_y)
        f_up[list(UPPER_INNER)], f_lo[list(LOWER_INNER)] = 1.0, 1.0
        self.w_pucker = ((f_lo * below - f_up * (1 - below)) * taper).astype(np.float32)
        # Eyelids: each upper-lid point travels to the lower-lid point at the same x.
        self.lid_dy = np.zeros(n, np.float32)
        for loop in (F.LEFT_EYE, F.RIGHT_EYE):
            pts = lm[list(loop)]
            cy = pts[:, 1].mean()
            upper = [i for i in loop if lm[i, 1] < cy]
            lower = [i for i in loop if lm[i, 1] >= cy]
            for i in upper:
                j = min(lower, key=lambda k: abs(lm[k, 0] - lm[i, 0]))
                gap = lm[j, 1] - lm[i, 1]
                self.lid_dy[i] = 0.92 * gap
            # Skin just above the lid follows a little, so the lid does not fold.
            for idx in range(n):
                if idx in loop:
                    continue
                d = p[idx] - pts.mean(0)
                ew = (pts[:, 0].max() - pts[:, 0].min()) / 2
                if abs(d[0]) < ew and -1.2 * ew < d[1] < 0:
                    self.lid_dy[idx] = max(
                        self.lid_dy[idx], 0.25 * (pts[:, 1].max() - pts[:, 1].min()) * (1 + d[1] / (1.2 * ew))
                    )

    def landmarks_at(self, open_amt: float, spread: float, blink: float, head: np.ndarray) -> np.ndarray:
        """Destination positions of all rig points for one frame."""
        dst = self.src.copy()
        n = self.n_face
        # The track is the absolute inner-lip gap; a portrait with parted lips closes below its rest gap.
        jaw = open_amt * 0.085 * self.face_h - self.rest_gap
        d = np.zeros((n, 2), np.float32)
        if jaw >= 0:
            d[:, 1] += self.w_jaw * jaw - self.w_lift * jaw
        else:
            d[:, 1] += self.close_dy * (jaw / max(self.rest_gap, 1e-6))
        d[:, 1] += self.w_pucker * (0.02 * self.face_h * max(-spread, 0.0) * min(open_amt / 0.2, 1.0))
        spread_px = (0.12 * max(spread, 0.0) + 0.28 * min(spread, 0.0) - 0.05 * open_amt) * self.mouth_half_w
        d[:, 0] += self.w_spread * self.spread_dir * spread_px
        d[:, 1] += self.lid_dy * blink
        dst[:n] += rotate(d, np.zeros(2, np.float32), self.roll0)  # back from the face's upright frame
        if len(head) >= 5:  # yaw and pitch: a 3D turn with the mesh's depth (hallo4.head_pose)
            dst = self.turn.apply(dst, float(head[3]), float(head[4]))
        # Rigid head motion: roll about the neck pivot, then translate.
        tx, ty, roll = float(head[0]) * self.iod, float(head[1]) * self.iod, float(head[2])
        c, s = math.cos(roll), math.sin(roll)
        m = self.head_weight > 0
        rel = dst[m] - self.pivot
        dst[m] = self.pivot + np.stack([c * rel[:, 0] - s * rel[:, 1], s * rel[:, 0] + c * rel[:, 1]], 1) + (tx, ty)
        return dst

    def render(self, open_amt: float, spread: float, blink: float, head: np.ndarray) -> np.ndarray:
        dst = self.landmarks_at(open_amt, spread, blink, head)
        frame = self.warp(dst)
        self.mouth.draw(frame, dst)
        return frame

    def warp(self, dst: np.ndarray) -> np.ndarray:
        """Backward piecewise-affine warp: each destination triangle samples its source triangle."""
        rx0, ry0, rx1, ry1 = self.roi
        tri = self.tri
        ids = np.full((ry1 - ry0, rx1 - rx0), -1, np.int32)
        local = np.round((dst - (rx0, ry0)) * 16).astype(np.int32)  # 4 fractional bits
        polys = local[tri]
        for k in range(len(tri)):
            cv2.fillConvexPoly(ids, polys[k], int(k), lineType=cv2.LINE_8, shift=4)
        # Affine dst -> src per triangle: [x y 1] @ A = [sx sy]. The 3x3 inverse is written out (adjugate
        # over determinant): batched LAPACK solves of a thousand 3x3 systems cost more than the warp.
        P = dst[tri].astype(np.float64)
        x0, y0, x1, y1, x2, y2 = P[:, 0, 0], P[:, 0, 1], P[:, 1, 0], P[:, 1, 1], P[:, 2, 0], P[:, 2, 1]
        det = x0 * (y1 - y2) - y0 * (x1 - x2) + (x1 * y2 - x2 * y1)
        ok = np.abs(det) > 1e-6
        inv_det = np.where(ok, 1.0 / np.where(ok, det, 1.0), 0.0)
        adj = (
            np.stack(
                [
                    np.stack([y1 - y2, y2 - y0, y0 - y1], 1),
                    np.stack([x2 - x1, x0 - x2, x1 - x0], 1),
                    np.stack([x1 * y2 - x2 * y1, x2 * y0 - x0 * y2, x0 * y1 - x1 * y0], 1),
                ],
                1,
            )
            * inv_det[:, None, None]
        )  # inverse of D = [[x y 1] per vertex]
        A = np.einsum("nij,njk->nik", adj, self.src[tri].astype(np.float64)).astype(np.float32)
        A[~ok] = np.array([[1, 0], [0, 1], [0, 0]], np.float32)
        # One gather per pixel: the affine (6 numbers) and, so that a pixel rasterised into a thin
        # neighbour triangle cannot extrapolate its map to a far-away pixel (a bright speck at the mouth
        # corner), the source triangle's box grown by a pixel (4 numbers). Id -1: identity, unclamped.
        table = np.concatenate([A.reshape(len(tri), 6), self._src_lo[:-1], self._src_hi[:-1]], axis=1)
        table = np.concatenate([table, np.array([[1, 0, 0, 1, 0, 0, -1e9, -1e9, 1e9, 1e9]], np.float32)]).astype(
            np.float32
        )
        sel = table[ids]  # (H, W, 10)
        map_x = self.gx * sel[..., 0] + self.gy * sel[..., 2] + sel[..., 4]
        map_y = self.gx * sel[..., 1] + self.gy * sel[..., 3] + sel[..., 5]
        np.clip(map_x, sel[..., 6], sel[..., 8], out=map_x)
        np.clip(map_y, sel[..., 7], sel[..., 9], out=map_y)
        frame = self.image.copy()
        frame[ry0:ry1, rx0:rx1] = cv2.remap(
            self.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
        return frame


def generate(
    request: GenerationRequest, progress: Progress | ProgressCallback | None = None, **kwargs: Any
) -> GenerationResult:
    """Convenience: LiteEngine(**kwargs).generate(request, progress)."""
    return LiteEngine(**kwargs).generate(request, progress)
