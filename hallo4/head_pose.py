"""Head pose (yaw, pitch, roll) from 2D face keypoints, and its 3D rotation on a 2D warp rig.

A skeleton carries only 2D keypoints, yet a head turn (yaw) shows in them: the nose swings towards
the turn and the far cheek shortens. With a depth for each keypoint (taken from the portrait's face
mesh, whose z is in pixels like x) the 2D points are explained by a scaled rotation of a 3D face:
an orthographic (weak-perspective) fit, solved by least squares and projected onto the nearest
rotation. Hand-written because no maintained library fits weak-perspective pose to an arbitrary
68-point set with a per-subject depth (OpenCV's solvePnP needs a camera model and a full 3D shape).

Angles follow one convention everywhere (renderer and estimator, so a measured yaw is the rendered one):
x right, y down, z away from the camera (mediapipe's z); R = Ry(yaw) @ Rx(pitch) @ Rz(roll) with
Ry(a) = [[cos a, 0, sin a], [0, 1, 0], [-sin a, 0, cos a]], Rx(b) = [[1, 0, 0], [0, cos b, -sin b], [0, sin b, cos b]].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .skeleton.extract import MESH_TO_68

# The rigid part of the 68 points: jaw, brows, nose, eyes (the mouth moves with speech, so it is left out).
RIGID_68 = tuple(range(0, 48))
# What a 2D warp can show without tearing (beyond this the far side of the face would fold over).
MAX_YAW = math.radians(28.0)
MAX_PITCH = math.radians(16.0)
MIN_AREA_KEPT = 0.05  # a triangle may shrink to 5% of its area (foreshortening), never fold over...
FOLD_MIN_AREA = 4.0  # ...unless it is smaller than 4 px^2 (a fold that small is invisible)
DEPTH_SMOOTHING = 3  # neighbour-averaging passes over the mesh's depth
BACK_PERCENTILE = 90.0  # depth percentile behind which the face moves as one plane


@dataclass
class HeadPoseLimits:
    yaw: float = MAX_YAW
    pitch: float = MAX_PITCH


def rotation(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """R = Ry(yaw) @ Rx(pitch) @ Rz(roll) (3x3)."""
    cy, sy = math.cos(yaw), math.sin(yaw)
    cp, sp = math.cos(pitch), math.sin(pitch)
    cr, sr = math.cos(roll), math.sin(roll)
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]], np.float64)
    rx = np.array([[1, 0, 0], [0, cp, -sp], [0, sp, cp]], np.float64)
    rz = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]], np.float64)
    return ry @ rx @ rz


def angles(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of R = Ry Rx Rz: R[:, 2] = (sin y cos p, -sin p, cos y cos p); roll from row 1."""
    yaw = math.atan2(r[0, 2], r[2, 2])
    pitch = math.asin(float(np.clip(-r[1, 2], -1, 1)))
    roll = math.atan2(r[1, 0], r[1, 1])
    return yaw, pitch, roll


def _iod(p68: np.ndarray) -> float:
    return float(np.linalg.norm(p68[36:42, :2].mean(0) - p68[42:48, :2].mean(0))) + 1e-6


def depth_68(mesh: np.ndarray) -> np.ndarray:
    """The face mesh's depth at the 68 keypoints in eye distances (so it fits any face's scale)."""
    p68 = np.asarray(mesh, np.float32)[MESH_TO_68]
    return (p68[:, 2] / _iod(p68)).astype(np.float32)


def fit_pose(model: np.ndarray, observed: np.ndarray) -> tuple[float, float, float, float]:
    """(yaw, pitch, roll, scale) of the weak-perspective rotation taking `model` (N, 3) onto `observed` (N, 2)."""
    x = model - model.mean(0)
    y = observed - observed.mean(0)
    m, *_ = np.linalg.lstsq(x, y, rcond=None)  # y ~ x @ m: m (3, 2); rows of the projection = m.T
    r1, r2 = m[:, 0], m[:, 1]
    s = (np.linalg.norm(r1) + np.linalg.norm(r2)) / 2 + 1e-12
    # Nearest orthonormal pair (SVD of the 2x3 projection), third row by the cross product.
    u, _, vt = np.linalg.svd(np.stack([r1, r2]), full_matrices=False)
    rows = u @ vt
    r = np.stack([rows[0], rows[1], np.cross(rows[0], rows[1])])
    return (*angles(r), float(s))


def head_pose_track(face68: np.ndarray, depth: np.ndarray | None = None) -> np.ndarray:
    """(T, 3) yaw, pitch, roll (radians) of each frame relative to the first frame with a face.

    `face68` (T, 68, 3) in pixels with confidences; `depth` (68,) from `depth_68` (a face mesh's depth in
    eye distances: the portrait's serves for any driving face). Frames without a face keep the previous
    frame's pose (0 before the first). Without a depth only roll can be measured (yaw and pitch are 0).
    """
    face68 = np.asarray(face68, np.float32)
    t = len(face68)
    out = np.zeros((t, 3), np.float32)
    seen = face68[:, RIGID_68, 2].mean(1) > 0.3
    if not seen.any():
        return out
    ref_i = int(np.argmax(seen))
    ref = face68[ref_i, RIGID_68, :2].astype(np.float64)
    if depth is None:
        z = np.zeros(len(RIGID_68))
    else:
        z = np.asarray(depth, np.float64)[list(RIGID_68)]
        z = (z - z.mean()) * _iod(face68[ref_i])
    model = np.concatenate([ref, z[:, None]], 1)
    idx = np.flatnonzero(seen)
    fitted = fit_poses(model, face68[idx][:, RIGID_68, :2].astype(np.float64))
    if depth is None:
        fitted[:, :2] = 0.0
    # Frames without a face keep the previous frame's pose (0 before the first).
    last = np.maximum.accumulate(np.where(seen, np.arange(t), -1))
    out[last >= 0] = fitted[np.searchsorted(idx, last[last >= 0])]
    return out


def fit_poses(model: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """`fit_pose` for many frames at once: (T, 3) yaw, pitch, roll of `observed` (T, N, 2) against `model` (N, 3).

    One pseudo-inverse of the model serves every frame; SVDs and angles are batched (a per-frame loop
    of small lstsq/svd calls cost as much as the rest of the motion step).
    """
    x = model - model.mean(0)
    y = observed - observed.mean(1, keepdims=True)
    m = np.einsum("kn,tnc->tkc", np.linalg.pinv(x), y)  # (T, 3, 2): y ~ x @ m per frame
    u, _, vt = np.linalg.svd(np.transpose(m, (0, 2, 1)), full_matrices=False)  # rows of the projection
    rows = u @ vt
    r = np.concatenate([rows, np.cross(rows[:, 0], rows[:, 1])[:, None]], 1)
    yaw = np.arctan2(r[:, 0, 2], r[:, 2, 2])
    pitch = np.arcsin(np.clip(-r[:, 1, 2], -1, 1))
    roll = np.arctan2(r[:, 1, 0], r[:, 1, 1])
    return np.stack([yaw, pitch, roll], 1).astype(np.float32)


def head_turn_track(seq, n: int, depth: np.ndarray | None, limits: HeadPoseLimits | None = None) -> np.ndarray:
    """(n, 2) yaw and pitch (radians, relative to frame 0) a skeleton asks of the head, clipped to what a
    2D warp can show, lightly smoothed (the fit is noisier than the keypoints). Held at the end when short."""
    limits = limits or HeadPoseLimits()
    face = np.asarray(seq.face, np.float32)[:n]
    if depth is None or len(face) == 0 or np.mean(face[:, 36:48, 2].mean(1) > 0.3) <= 0.5:
        return np.zeros((n, 2), np.float32)
    pose = head_pose_track(face, depth)[:, :2]
    if len(pose) >= 5:
        from scipy.ndimage import gaussian_filter1d

        pose = gaussian_filter1d(pose, 1.0, axis=0, mode="nearest")
    pose = np.clip(pose, [-limits.yaw, -limits.pitch], [limits.yaw, limits.pitch]).astype(np.float32)
    if len(pose) < n:
        pose = np.concatenate([pose, np.repeat(pose[-1:], n - len(pose), axis=0)])
    return pose


class HeadTurn:
    """Yaw/pitch of a 2D warp rig: its moving points are rotated in 3D about the head centre using the
    face mesh's depth (points outside the mesh, such as the hair ring, get the face outline's depth) and
    projected back. A turn that would fold a triangle over (tearing) is scaled down until none does."""

    def __init__(
        self, mesh: np.ndarray, points: np.ndarray, moving: np.ndarray, triangles: np.ndarray, outline: tuple[int, ...]
    ):
        mesh = np.asarray(mesh, np.float32)
        n_mesh = min(len(mesh), len(points), 468)
        self.moving = np.asarray(moving, bool)
        z = np.zeros(len(points), np.float32)
        if mesh.shape[1] > 2:
            # The mesh's fine depth detail (nostrils, lips, the cheek's curve towards the ear) would fold
            # small triangles over at the first degrees: smooth it over the mesh's edges, and let
            # everything behind the median depth (sides of the face, hair ring) move as one back plane.
            zm = _smooth_on_mesh(mesh[:n_mesh, 2].astype(np.float64), DEPTH_SMOOTHING)
            back = float(np.percentile(zm, BACK_PERCENTILE))
            z[:] = back
            z[:n_mesh] = np.minimum(zm, back)
        self.z = z
        # The centre the skeleton's head translation is measured at (eyes and nose tip, see
        # lite.head_motion_from_skeleton): turning about it leaves that point where the translation puts it.
        p68 = mesh[MESH_TO_68]
        if mesh.shape[1] > 2:
            self.centre = 0.25 * p68[36:42, :3].mean(0) + 0.25 * p68[42:48, :3].mean(0) + 0.5 * p68[30, :3]
        else:
            self.centre = np.array([*p68[30, :2], 0.0], np.float32)
        self.tri = triangles[self.moving[triangles].any(axis=1)]

    def apply(self, dst: np.ndarray, yaw: float, pitch: float) -> np.ndarray:
        """`dst` (N, 2) with its moving points turned; returns a new array."""
        if abs(yaw) < 1e-4 and abs(pitch) < 1e-4:
            return dst
        m = self.moving
        p3 = np.concatenate([dst[m], self.z[m, None]], 1).astype(np.float64) - self.centre
        before = _signed_area(dst[self.tri])
        tiny = np.abs(before) < FOLD_MIN_AREA
        for _ in range(8):
            r = rotation(yaw, pitch)
            out = dst.copy()
            out[m] = (p3 @ r.T)[:, :2] + self.centre[:2]
            area = _signed_area(out[self.tri])
            if np.all(tiny | (area * np.sign(before) > MIN_AREA_KEPT * np.abs(before))):
                return out
            yaw, pitch = 0.8 * yaw, 0.8 * pitch
        return dst


def _smooth_on_mesh(values: np.ndarray, passes: int) -> np.ndarray:
    """Each pass: halfway towards the mean of the mesh neighbours (mediapipe's tessellation edges)."""
    from .face import TESSELATION_EDGES

    edges = np.array(TESSELATION_EDGES)
    edges = edges[(edges < len(values)).all(1)]
    for _ in range(passes):
        total = np.zeros_like(values)
        count = np.zeros_like(values)
        for a, b in ((0, 1), (1, 0)):
            np.add.at(total, edges[:, a], values[edges[:, b]])
            np.add.at(count, edges[:, a], 1)
        values = 0.5 * values + 0.5 * total / np.maximum(count, 1)
    return values


def _signed_area(tri_pts: np.ndarray) -> np.ndarray:
    a, b, c = tri_pts[:, 0], tri_pts[:, 1], tri_pts[:, 2]
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))
