"""Skeleton extraction with mediapipe holistic (body + hands + face mesh; models inside the wheel).

Index mapping (documented so sequences from other tools line up):
- body: mediapipe pose 33 -> COCO-18 via `POSE33_TO_COCO18`; the neck (1) is the shoulder midpoint.
- hands: mediapipe hand 21 = OpenPose hand 21 (same order); holistic's left/right are the subject's.
- face: mediapipe face mesh 478 -> iBUG-68 via `MESH_TO_68` (a widely used correspondence table:
  jaw from the face oval, brows, nose bridge/base, eye corners and lids, outer and inner lips).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.signal import savgol_filter

from .. import face as F
from .. import limits, media
from ..constants import FPS
from ..errors import InputError
from ..progress import Progress, ProgressCallback, as_progress
from .format import SkeletonSequence

# COCO-18 index -> mediapipe pose index (None = neck, computed).
POSE33_TO_COCO18 = [0, None, 12, 14, 16, 11, 13, 15, 24, 26, 28, 23, 25, 27, 5, 2, 8, 7]
# The mesh points face.py names are written by their names (chin, lip mid points, mouth corners).
_LEFT_CORNER, _RIGHT_CORNER = F.MOUTH_CORNERS  # the image-left (subject's right) corner first
# fmt: off
MESH_TO_68 = [
    127, 234, 93, 132, 58, 172, 136, 150, F.CHIN, 379, 365, 397, 288, 361, 323, 454, 356,  # jaw 0-16
    70, 63, 105, 66, 107,  # subject's right brow 17-21
    336, 296, 334, 293, 300,  # left brow 22-26
    168, 197, 5, 4,  # nose bridge 27-30
    75, 97, 2, 326, 305,  # nose base 31-35
    33, 160, 158, 133, 153, 144,  # right eye 36-41
    362, 385, 387, 263, 373, 380,  # left eye 42-47
    _LEFT_CORNER, 39, 37, F.UPPER_LIP_OUTER_MID, 267, 269, _RIGHT_CORNER,  # outer lips 48-54
    405, 314, F.LOWER_LIP_OUTER_MID, 84, 181,  # outer lips 55-59
    78, 82, F.UPPER_LIP_INNER_MID, 312, 308, 317, F.LOWER_LIP_INNER_MID, 87,  # inner lips 60-67
]
# fmt: on
assert len(MESH_TO_68) == 68


def body_from_pose(lms, w: int, h: int) -> np.ndarray:
    """mediapipe pose landmarks -> (18, 3) COCO-18 in pixels (confidence = visibility)."""
    out = np.zeros((18, 3), np.float32)
    if lms is None:
        return out
    pts = np.array([(p.x * w, p.y * h, p.visibility) for p in lms.landmark], np.float32)
    for k, src in enumerate(POSE33_TO_COCO18):
        if src is not None:
            out[k] = pts[src]
    out[1, :2] = (pts[11, :2] + pts[12, :2]) / 2
    out[1, 2] = min(pts[11, 2], pts[12, 2])
    # Points off the canvas count as missing (mediapipe extrapolates hidden joints).
    off = (out[:, 0] < 0) | (out[:, 0] >= w) | (out[:, 1] < 0) | (out[:, 1] >= h)
    out[off, 2] = 0.0
    return out


def hand_points(lms, w: int, h: int) -> np.ndarray:
    if lms is None:
        return np.zeros((21, 3), np.float32)
    return np.array([(p.x * w, p.y * h, 1.0) for p in lms.landmark], np.float32)


def face_points(mesh: np.ndarray | None) -> np.ndarray:
    """(478, >=2) mesh in pixels -> (68, 3)."""
    if mesh is None:
        return np.zeros((68, 3), np.float32)
    out = np.ones((68, 3), np.float32)
    out[:, :2] = mesh[MESH_TO_68, :2]
    return out


def _face_mesh_points(lms, w: int, h: int) -> np.ndarray | None:
    if lms is None:
        return None
    return np.array([(p.x * w, p.y * h) for p in lms.landmark], np.float32)


def fill_and_smooth(pts: np.ndarray, window: int = 7) -> np.ndarray:
    """Interpolate missing detections (linear inside, hold at the ends), then Savitzky-Golay smoothing.

    A joint never seen in the whole clip stays missing. A person who leaves mid-video is held at the
    last seen pose (documented recovery), which is what a user expects from a short dropout.
    """
    out = pts.copy()
    t = np.arange(len(pts))
    for j in range(pts.shape[1]):
        seen = pts[:, j, 2] > 0.3
        if not seen.any():
            out[:, j] = 0.0
            continue
        for c in (0, 1):
            out[:, j, c] = np.interp(t, t[seen], pts[seen, j, c])
        out[:, j, 2] = np.where(seen, pts[:, j, 2], 0.5)
    if len(pts) >= 5:
        win = min(window, len(pts) if len(pts) % 2 else len(pts) - 1)
        if win >= 5:
            out[:, :, :2] = savgol_filter(out[:, :, :2], win, 2, axis=0)
    return out


def extract_skeleton(
    video: str | Path, *, progress: Progress | ProgressCallback | None = None, max_side: int = 720, smooth: bool = True
) -> SkeletonSequence:
    """A 25 fps skeleton sequence from a driving video."""
    import mediapipe as mp

    prog = as_progress(progress)
    # Streamed frame by frame (constant memory); at most the longest clip the server makes.
    cap = limits.active().max_frames
    info = media.probe(video, name="driving video", count_frames=False)
    expected = max(1, min(cap, int(round(info.duration * FPS)) or cap))
    rows: list[np.ndarray] = []
    w = h = 0
    with mp.solutions.holistic.Holistic(
        static_image_mode=False,
        model_complexity=1,
        refine_face_landmarks=False,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    ) as holistic:
        for i, frame in enumerate(
            media.iter_frames(video, fps=FPS, max_frames=cap, name="driving video", max_side=max_side)
        ):
            if i % 5 == 0:
                prog(min(i / expected, 0.99), f"Extracting skeleton: frame {i + 1}/{max(expected, i + 1)}")
            h, w = frame.shape[:2]
            res = holistic.process(np.ascontiguousarray(frame))
            row = np.zeros((128, 3), np.float32)
            row[:18] = body_from_pose(res.pose_landmarks, w, h)
            row[18:39] = hand_points(res.left_hand_landmarks, w, h)
            row[39:60] = hand_points(res.right_hand_landmarks, w, h)
            row[60:] = face_points(_face_mesh_points(res.face_landmarks, w, h))
            rows.append(row)
    t_count = len(rows)
    if t_count < 3:
        raise InputError(
            "driving video",
            f"has only {t_count} frame(s) at {FPS:g} fps",
            "Use a video of at least a few seconds.",
            path=str(video),
        )
    pts = np.stack(rows)
    detected = (pts[:, :18, 2] > 0.5).sum(axis=1) >= 3
    if not detected.any():
        raise InputError(
            "driving video",
            "no person was found in any frame",
            "Use a video where a person's head and shoulders are clearly visible.",
            path=str(video),
        )
    if smooth:
        pts = fill_and_smooth(pts)
    prog(1.0, f"Extracted {t_count} frames ({detected.mean() * 100:.0f}% with a person)")
    return SkeletonSequence.from_points(pts, w, h, FPS)
