"""The `lite` engine: a talking portrait on the CPU with no downloaded weights.

It animates the uploaded photo itself: mediapipe's face mesh gives 478 landmarks; audio features give
per-frame jaw opening, lip spread/rounding; blinks follow a seeded natural schedule; head motion comes
from a skeleton sequence (retargeted) or idle motion. Rendering is a piecewise-affine warp over the
face-mesh triangles plus two anchor rings (the head moves, the background stays), and a synthesised
mouth interior (cavity, teeth, tongue) so an open mouth never shows stretched lip pixels.

Hand-written because no maintained library does landmark-driven portrait warping; the heavy lifting is
OpenCV (rasterising, remap) and scipy (Delaunay).
"""

from __future__ import annotations

import math
import secrets
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from scipy.spatial import Delaunay

from .. import face as F
from .. import media
from ..audio_features import attack_release, num_video_frames, speech_features
from ..errors import InputError
from ..paths import outputs_dir
from ..progress import Progress, ProgressCallback, as_progress
from .base import GenerationRequest, GenerationResult

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

    def __init__(self, output_dir: str | Path | None = None, expressiveness: float = 1.0):
        self.output_dir = Path(output_dir) if output_dir else None
        self.expressiveness = float(expressiveness)

    # ------------------------------------------------------------------------------------------
    def generate(self, request: GenerationRequest, progress: Progress | ProgressCallback | None = None) -> GenerationResult:
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
                "Use a front-facing photo where the face is clearly visible (at least ~100 px tall), "
                "or choose the hallo4 engine.",
                path=str(request.portrait),
            )
        warnings += analysis.warnings
        timings["landmarks"] = time.perf_counter() - t

        t = time.perf_counter()
        prog(0.05, "Analysing speech")
        n = num_video_frames(len(audio), SR, FPS)
        mouth = mouth_tracks(audio, SR, FPS, expressiveness)
        rng = np.random.default_rng(seed)
        blinks = blink_track(n, rng)
        head = self._head_motion(request, image, analysis, n, seed, audio, warnings, prog)
        head[:, :2] *= expressiveness
        head[:, 2] *= expressiveness
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
        params.update({"engine": self.name, "seed": seed, "width": w, "height": h, "fps": FPS, "expressiveness": expressiveness})
        return GenerationResult(video=Path(out), seed=seed, engine=self.name, timings=timings, parameters=params,
                                warnings=warnings, num_frames=n, fps=FPS)

    # ------------------------------------------------------------------------------------------
    def _head_motion(self, request, image, analysis, n, seed, audio, warnings, prog) -> np.ndarray:
        """(n, 3): x, y translation in inter-ocular distances and roll in radians, relative to frame 0."""
        seq = None
        skeleton = request.skeleton
        if skeleton is not None:
            from ..skeleton import SkeletonSequence, fit_length

            if isinstance(skeleton, (str, Path)):
                path = Path(skeleton)
                if path.suffix.lower() in {".mp4", ".mov", ".webm", ".mkv", ".avi"}:
                    warnings.append("A rendered skeleton video carries no keypoints for the lite engine; "
                                    "using idle head motion. Upload the skeleton JSON to drive the head.")
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
        return head_motion_from_skeleton(seq, n)


# ----------------------------------------------------------------------------------------------
# Motion tracks
# ----------------------------------------------------------------------------------------------
def mouth_tracks(audio: np.ndarray, sr: int, fps: float, expressiveness: float = 1.0) -> dict[str, np.ndarray]:
    """Per-frame jaw opening (0..1) and lip spread (-1 round .. +1 wide), smoothed like real speech.

    Attack/release: the jaw opens fast and closes a little slower; run forwards and backwards and
    averaged so the result has no lag (lip sync offset stays 0). Co-articulation: a short Gaussian.
    """
    feats = speech_features(audio, sr, fps)
    raw_open = np.clip(feats.envelope ** 0.9 * (0.55 + 0.45 * feats.voicing) * (1.0 - 0.35 * feats.brightness), 0, 1)
    raw_open[feats.envelope < 0.12] = 0.0  # silence and closures: lips meet
    spread = np.clip(feats.brightness * 1.2 - feats.roundness * 1.5, -1, 1) * np.clip(feats.envelope * 2, 0, 1)

    def smooth(x: np.ndarray) -> np.ndarray:
        fwd = attack_release(x, 0.75, 0.45)
        bwd = attack_release(x[::-1], 0.75, 0.45)[::-1]
        y = 0.5 * (fwd + bwd)
        return cv2.GaussianBlur(y.reshape(-1, 1).astype(np.float32), (1, 5), 0.9).ravel()

    return {
        "open": np.clip(smooth(raw_open) * expressiveness, 0, 1.2).astype(np.float32),
        "spread": np.clip(smooth(spread), -1, 1).astype(np.float32),
        "viseme": feats.viseme,
    }


def blink_track(n: int, rng: np.random.Generator, fps: float = FPS) -> np.ndarray:
    """Eyelid closure 0..1 per frame: blinks every ~2-6 s (gamma-distributed), ~200 ms each."""
    track = np.zeros(n, np.float32)
    shape = np.array([0.35, 0.85, 1.0, 0.7, 0.35, 0.1], np.float32)  # fast close, slower open
    t = int(rng.uniform(0.6, 2.5) * fps)
    while t < n:
        seg = shape[: max(0, min(len(shape), n - t))]
        track[t:t + len(seg)] = np.maximum(track[t:t + len(seg)], seg)
        t += len(shape) + int(rng.gamma(4.0, 0.9) * fps)
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
        # Exact duplicates (possible on tiny images) are left out of every simplex by qhull: harmless.
        self.tri = Delaunay(pts).simplices.astype(np.int32)
        self._local_weights(lm)
        # Pixels outside the moving area never change: restrict all work to its bounding box.
        moving = pts[: self.n_face + self.n_ring1]
        pad = int(0.6 * self.face_h)
        x0, y0 = np.floor(moving.min(0)).astype(int) - pad
        x1, y1 = np.ceil(moving.max(0)).astype(int) + pad
        self.roi = (max(0, x0), max(0, y0), min(w, x1), min(h, y1))
        rx0, ry0, rx1, ry1 = self.roi
        gy, gx = np.mgrid[ry0:ry1, rx0:rx1].astype(np.float32)
        self.gx, self.gy = gx, gy
        skin = self.image[int(lm[1, 1]) - 3:int(lm[1, 1]) + 3, int(lm[1, 0]) - 3:int(lm[1, 0]) + 3].reshape(-1, 3).mean(0)
        self.skin = skin.astype(np.float32)

    def _local_weights(self, lm: np.ndarray) -> None:
        """Per-landmark weights for jaw drop, upper-lip lift, lip spread and eyelid closure."""
        n = self.n_face
        p = lm[self.face_idx]
        corners_y = (lm[61, 1] + lm[291, 1]) / 2
        lower_in_y = lm[14, 1]
        chin_y = lm[F.CHIN, 1]
        cx = self.mouth_c[0]
        half_face_w = (p[:, 0].max() - p[:, 0].min()) / 2
        below = np.clip((p[:, 1] - corners_y) / max(lower_in_y - corners_y, 1.0), 0, 1)
        below = below * below * (3 - 2 * below)  # smoothstep
        # Below the lower lip the whole jaw moves together; the chin a little less than the lip.
        beyond = np.clip((p[:, 1] - lower_in_y) / max(chin_y - lower_in_y, 1.0), 0, 1)
        jaw = below * (1.0 - 0.2 * beyond)
        horiz = np.clip(1.0 - ((p[:, 0] - cx) / (half_face_w + 1e-6)) ** 2 * 0.7, 0.15, 1.0)
        self.w_jaw = (jaw * horiz).astype(np.float32)
        self.w_jaw[list(LOWER_INNER)] = 1.0
        lift = np.zeros(n, np.float32)
        lift[list(UPPER_INNER)] = 0.22
        lift[list(UPPER_OUTER)] = 0.12
        lift[[61, 291, 78, 308]] = 0.0
        self.w_lift = lift
        lips = np.zeros(n, np.float32)
        lips_idx = list(set(F.LIPS_OUTER) | set(F.LIPS_INNER))
        lips[lips_idx] = 1.0
        near = np.exp(-(((p[:, 0] - cx) / (self.mouth_half_w * 1.6)) ** 2 + ((p[:, 1] - self.mouth_c[1]) / (self.mouth_half_w * 0.9)) ** 2))
        self.w_spread = np.maximum(lips, 0.6 * near).astype(np.float32)
        self.spread_dir = ((p[:, 0] - cx) / self.mouth_half_w).astype(np.float32)
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
                    self.lid_dy[idx] = max(self.lid_dy[idx], 0.25 * (pts[:, 1].max() - pts[:, 1].min()) * (1 + d[1] / (1.2 * ew)))

    def landmarks_at(self, open_amt: float, spread: float, blink: float, head: np.ndarray) -> np.ndarray:
        """Destination positions of all rig points for one frame."""
        dst = self.src.copy()
        n = self.n_face
        open_px = open_amt * 0.085 * self.face_h
        d = np.zeros((n, 2), np.float32)
        d[:, 1] += self.w_jaw * open_px - self.w_lift * open_px
        spread_px = (0.10 * spread - 0.05 * open_amt) * self.mouth_half_w
        d[:, 0] += self.w_spread * self.spread_dir * spread_px
        d[:, 1] += self.lid_dy * blink
        dst[:n] += d
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
        self._draw_mouth(frame, dst, open_amt)
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
        # Affine dst -> src per triangle: [x y 1] @ A = [sx sy]
        D = np.concatenate([dst[tri], np.ones((len(tri), 3, 1), np.float32)], axis=2)
        S = self.src[tri]
        det = np.linalg.det(D)
        ok = np.abs(det) > 1e-6
        A = np.zeros((len(tri), 3, 2), np.float32)
        A[ok] = np.linalg.solve(D[ok], S[ok])
        A[~ok] = np.array([[1, 0], [0, 1], [0, 0]], np.float32)
        A = np.concatenate([A, np.array([[[1, 0], [0, 1], [0, 0]]], np.float32)])  # id -1 -> identity
        sel = A[ids]  # (H, W, 3, 2)
        map_x = self.gx * sel[..., 0, 0] + self.gy * sel[..., 1, 0] + sel[..., 2, 0]
        map_y = self.gx * sel[..., 0, 1] + self.gy * sel[..., 1, 1] + sel[..., 2, 1]
        frame = self.image.copy()
        frame[ry0:ry1, rx0:rx1] = cv2.remap(self.image, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return frame

    def _draw_mouth(self, frame: np.ndarray, dst: np.ndarray, open_amt: float) -> None:
        """Paint the mouth interior inside the inner-lip polygon: cavity, upper teeth, tongue."""
        inner = dst[list(F.LIPS_INNER)]
        gap = float(dst[14, 1] - dst[13, 1])
        if gap < 1.5:
            return
        x0, y0 = np.floor(inner.min(0)).astype(int) - 2
        x1, y1 = np.ceil(inner.max(0)).astype(int) + 3
        x0, y0 = max(x0, 0), max(y0, 0)
        x1, y1 = min(x1, self.w), min(y1, self.h)
        if x1 - x0 < 3 or y1 - y0 < 3:
            return
        mask = np.zeros((y1 - y0, x1 - x0), np.uint8)
        cv2.fillPoly(mask, [np.round((inner - (x0, y0)) * 16).astype(np.int32)], 255, lineType=cv2.LINE_AA, shift=4)
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
        cx = float(dst[[13, 14], 0].mean())
        half_w = max(float(np.ptp(inner[:, 0])) / 2, 1.0)
        # Lip lines per column, so teeth and tongue follow the curve of the lips (not a flat band).
        up = dst[list(UPPER_INNER)]
        lo = dst[list(LOWER_INNER)]
        up = up[np.argsort(up[:, 0])]
        lo = lo[np.argsort(lo[:, 0])]
        xs = np.arange(x0, x1, dtype=np.float32)
        # A parabola through each lip line: the inner lip points are noisy (cupid's bow), teeth are not.
        top = np.polyval(np.polyfit(up[:, 0], up[:, 1], 2), xs)[None, :]
        bottom = np.polyval(np.polyfit(lo[:, 0], lo[:, 1], 2), xs)[None, :]
        horiz = np.clip(1 - ((xx - cx) / half_w) ** 2, 0, 1)
        shade = 0.55 + 0.45 * horiz  # darker towards the corners
        lum = float(self.skin.mean()) / 180.0
        cavity = np.array([52, 18, 22], np.float32) * (0.8 + 0.2 * lum)
        out = np.empty((y1 - y0, x1 - x0, 3), np.float32)
        out[:] = cavity
        # Tongue: a soft ellipse resting low in the mouth, visible once the jaw is well open.
        ty = float(dst[14, 1]) - 0.15 * gap
        tongue = np.clip(1 - ((xx - cx) / (0.6 * half_w)) ** 2 - ((yy - ty) / (0.38 * gap + 1)) ** 2, 0, 1)
        tongue_amt = float(np.clip((gap / self.face_h - 0.03) / 0.04, 0, 1))
        out += (np.array([140, 58, 64], np.float32) - cavity) * (np.sqrt(tongue) * 0.8 * tongue_amt)[..., None]
        # Upper teeth: a band just under the upper lip, a hint of a few millimetres, not a white block.
        teeth_h = min(0.3 * gap, 0.03 * self.face_h)
        band = np.clip((top + teeth_h - yy) / 1.2, 0, 1) * np.clip(1 - ((xx - cx) / (0.8 * half_w)) ** 2, 0, 1) ** 0.5
        teeth = np.array([236, 226, 206], np.float32) * (0.8 + 0.2 * lum)
        out = out * (1 - band[..., None]) + (teeth * (0.72 + 0.28 * horiz[..., None])) * band[..., None]
        # Lower teeth: a fainter, thinner edge above the lower lip when the mouth is wide open.
        low_h = teeth_h * 0.45 * float(np.clip((gap / self.face_h - 0.045) / 0.03, 0, 1))
        lband = np.clip((yy - (bottom - low_h)) / 1.2, 0, 1) * np.clip(1 - ((xx - cx) / (0.55 * half_w)) ** 2, 0, 1)
        out = out * (1 - 0.6 * lband[..., None]) + teeth * 0.8 * (0.6 * lband[..., None])
        out *= shade[..., None] * 0.3 + 0.7
        # Shadow cast by the lips onto the interior: darkest right at the lip line.
        depth = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
        out *= (0.72 + 0.28 * np.clip(depth / max(1.5, 0.12 * gap), 0, 1))[..., None]
        alpha = cv2.GaussianBlur(mask, (3, 3), 0).astype(np.float32) / 255.0
        # Fade in with the jaw: a photo with parted lips keeps its own mouth at rest.
        alpha *= float(np.clip((gap - 1.5) / 3.0, 0, 1) * np.clip(open_amt / 0.1, 0, 1))
        region = frame[y0:y1, x0:x1].astype(np.float32)
        frame[y0:y1, x0:x1] = np.clip(region * (1 - alpha[..., None]) + out * alpha[..., None], 0, 255).astype(np.uint8)


def generate(request: GenerationRequest, progress: Progress | ProgressCallback | None = None, **kwargs: Any) -> GenerationResult:
    """Convenience: LiteEngine(**kwargs).generate(request, progress)."""
    return LiteEngine(**kwargs).generate(request, progress)
