"""The lite engine's warp rig: landmark motion for one frame, then the warp and the painted mouth.

Rendering is a piecewise-affine warp over the face-mesh triangles plus two anchor rings (the head
moves, the background stays), and a synthesised mouth interior (lite_mouth.py) so an open mouth never
shows stretched lip pixels. Hand-written because no maintained library does landmark-driven portrait
warping; the heavy lifting is OpenCV (rasterising, remap) and scipy (Delaunay outside the face mesh).
"""

from __future__ import annotations

import math

import numpy as np

from .. import face as F
from ..head_pose import HeadTurn
from .lite_mesh import face_roll, rig_triangles, rotate
from .lite_mouth import MouthRenderer
from .lite_warp import PiecewiseAffineWarp
from .lite_weights import rig_weights

RING_HEAD = 1.45  # times the face oval: moves with the head (hair, ears)
RING_FIXED = 2.3  # times the face oval: stays (background, shoulders)
BROW_RAISE = 0.035  # brow travel of a full raise, in face heights
LABIODENTAL_LIFT = 0.012  # upper-lip lift of "f"/"v" at the inner edge, in face heights


def _anchor_rings(lm: np.ndarray, w: int, h: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two rings hugging the head (the face oval in polar form about its centre, scaled) and the frame border."""
    oval = lm[list(F.FACE_OVAL)]
    centre = oval.mean(0)
    rel = oval - centre
    oval_ang = np.mod(np.arctan2(rel[:, 1], rel[:, 0]), 2 * np.pi)
    order = np.argsort(oval_ang)
    oval_ang, oval_r = oval_ang[order], np.linalg.norm(rel, axis=1)[order]

    def ring(scale: float, count: int) -> np.ndarray:
        ang = np.linspace(0, 2 * np.pi, count, endpoint=False)
        r = np.interp(ang, oval_ang, oval_r, period=2 * np.pi)
        pts = (centre + (r * scale)[:, None] * np.stack([np.cos(ang), np.sin(ang)], 1)).astype(np.float32)
        inside = (pts[:, 0] > 1) & (pts[:, 0] < w - 2) & (pts[:, 1] > 1) & (pts[:, 1] < h - 2)
        return pts[inside]

    border = []
    for k in range(9):
        f = k / 8
        border += [(f * (w - 1), 0), (f * (w - 1), h - 1), (0, f * (h - 1)), (w - 1, f * (h - 1))]
    return ring(RING_HEAD, 28), ring(RING_FIXED, 28), np.array(border, np.float32)


def _detail_points(lm: np.ndarray, face_h: float) -> np.ndarray:
    """Points whose triangles crease (lips, eyelids, the nose's sides and nostrils under a head turn):
    warped exactly per pixel."""
    near_nose = np.linalg.norm(lm[:468] - lm[F.SUBNASALE], axis=1) < 0.12 * face_h
    groups = set(F.LIPS_OUTER) | set(F.LIPS_INNER) | set(F.LEFT_EYE) | set(F.RIGHT_EYE) | set(F.NOSE)
    return np.array(sorted(groups | set(np.flatnonzero(near_nose).tolist())), np.int64)


class FaceRig:
    """Precomputes the triangulation and per-landmark motion weights; renders one frame per call."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray, exact: bool = False):
        """`exact`: warp every pixel exactly (slow; for comparisons) instead of the half-res smooth parts."""
        self.image = np.ascontiguousarray(image)
        h, w = image.shape[:2]
        self.h, self.w = h, w
        lm = landmarks[:, :2].astype(np.float32)
        self.face_h = F.face_height(lm)
        self.iod = float(np.linalg.norm(lm[list(F.LEFT_EYE)].mean(0) - lm[list(F.RIGHT_EYE)].mean(0)))
        self.mouth_c = lm[[F.UPPER_LIP_INNER_MID, F.LOWER_LIP_INNER_MID]].mean(0)
        left, right = F.MOUTH_CORNERS
        self.mouth_half_w = float(np.linalg.norm(lm[left] - lm[right])) / 2 + 1e-6
        self.face_idx = np.arange(468, dtype=np.int64)  # irises excluded: they sit inside the lids
        self.n_face = len(self.face_idx)
        # Head pivot for roll: the neck, below the chin.
        self.pivot = lm[F.CHIN] + np.array([0.0, 0.25 * self.face_h], np.float32)
        ring1, ring2, border = _anchor_rings(lm, w, h)
        self.n_ring1 = len(ring1)
        pts = np.concatenate([lm[self.face_idx], ring1, ring2, border]).astype(np.float32)
        self.src = pts
        self.head_weight = np.zeros(len(pts), np.float32)
        self.head_weight[: self.n_face + self.n_ring1] = 1.0
        self.tri = rig_triangles(pts, self.n_face)  # face mesh + mouth hole + Delaunay outside the face
        # Jaw, lips and lids are worked out in the face's upright frame; `landmarks_at` rotates back.
        self.roll0 = face_roll(lm)
        self.weights = rig_weights(
            rotate(lm, self.mouth_c, -self.roll0).astype(np.float32), self.mouth_c, self.mouth_half_w, self.face_h
        )
        self.rest_gap = self.weights.rest_gap
        self.turn = HeadTurn(landmarks, pts, self.head_weight > 0, self.tri, F.FACE_OVAL)
        self.mouth = MouthRenderer(self.image, landmarks)
        # Pixels outside the triangles with a moving corner never change (the others map to themselves):
        # restrict all work to those triangles' bounding box, plus a pixel for the rounding.
        moving = pts[self.tri[(self.head_weight[self.tri] > 0).any(1)]].reshape(-1, 2)
        x0, y0 = np.floor(moving.min(0)).astype(int) - 1
        x1, y1 = np.ceil(moving.max(0)).astype(int) + 2
        self.roi = (max(0, x0), max(0, y0), min(w, x1), min(h, y1))
        self.warp = PiecewiseAffineWarp(
            self.image,
            pts,
            self.tri,
            self.roi,
            detail=_detail_points(lm, self.face_h),
            # The mesh leaves the eyes open: each eyeball moves with its corners (head motion, turns), so it
            # neither slides under the lids nor stretches when they close.
            holes=(F.LEFT_EYE, F.RIGHT_EYE),
            hole_anchors=(F.LEFT_EYE_CORNERS, F.RIGHT_EYE_CORNERS),
            scale=1 if exact else 2,
            static_points=self.head_weight == 0,  # the fixed ring and the frame border
        )

    def landmarks_at(
        self,
        open_amt: float,
        spread: float,
        blink: float,
        head: np.ndarray,
        labiodental: float = 0.0,
        brow: float = 0.0,
    ) -> np.ndarray:
        """Destination positions of all rig points for one frame (`labiodental`: "f"/"v", `brow`: raise, 0..1)."""
        dst = self.src.copy()
        n, wt = self.n_face, self.weights
        # The track is the absolute inner-lip gap; a portrait with parted lips closes below its rest gap.
        jaw = open_amt * 0.085 * self.face_h - self.rest_gap
        d = np.zeros((n, 2), np.float32)
        if jaw >= 0:
            d[:, 1] += wt.jaw * jaw - wt.lift * jaw
        else:
            d[:, 1] += wt.close_dy * (jaw / max(self.rest_gap, 1e-6))
        d[:, 1] += wt.pucker * (0.02 * self.face_h * max(-spread, 0.0) * min(open_amt / 0.2, 1.0))
        spread_px = (0.12 * max(spread, 0.0) + 0.34 * min(spread, 0.0) - 0.05 * open_amt) * self.mouth_half_w
        d[:, 0] += wt.spread * wt.spread_dir * spread_px
        d[:, 1] += wt.lid_dy * blink
        d[:, 1] -= wt.brow * (brow * BROW_RAISE * self.face_h)
        # "f"/"v": the upper lip lifts off the incisors (the lower lip rests on their edges).
        d[:, 1] -= wt.lift * (labiodental * LABIODENTAL_LIFT * self.face_h / 0.22)
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

    def render(self, open_amt: float, spread: float, blink: float, head: np.ndarray, **extra: float) -> np.ndarray:
        """One RGB frame: the warped portrait with the mouth interior painted in. `extra`: `landmarks_at`'s
        optional tracks by name (labiodental, brow)."""
        dst = self.landmarks_at(open_amt, spread, blink, head, **extra)
        frame = self.warp(dst)
        self.mouth.draw(frame, dst, bite=extra.get("labiodental", 0.0))
        return frame
