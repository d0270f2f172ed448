"""Where the mouth is, frame by frame: its box and inner-lip geometry in the face's upright frame, and
whether the face is large and frontal enough for a clean painted interior (`mouth_warnings`).

Split from lite_mouth.py (which paints the interior) so each module holds one concern.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import face as F
from .lite_mesh import face_roll, inner_lip_polygon, polygon_signed_distance_grid, rotate

UPPER_INNER = F.LIP_INNER_UPPER  # corner to corner, image left to right
LOWER_INNER = F.LIP_INNER_LOWER

# Below these sizes the painted mouth has too few pixels to read as teeth and lips (see `mouth_warnings`).
MIN_FACE_PX = 110.0
MAX_YAW = 0.35  # nose offset from the eye midline, in inter-ocular distances (~25 degrees)


def mouth_warnings(landmarks: np.ndarray) -> list[str]:
    """Say when the face is too small or turned too far for a clean painted mouth."""
    lm = landmarks[:, :2]
    out = []
    fh = F.face_height(lm)
    if fh < MIN_FACE_PX:
        out.append(
            f"The face is small ({fh:.0f} px from forehead to chin; {MIN_FACE_PX:.0f}+ looks best): "
            "the lite engine's mouth will be soft. Use a larger output size or a closer crop."
        )
    left, right = lm[list(F.LEFT_EYE)].mean(0), lm[list(F.RIGHT_EYE)].mean(0)
    iod = float(np.linalg.norm(left - right)) + 1e-6
    axis = (left - right) / iod
    yaw = float(np.dot(lm[F.NOSE_TIP] - (left + right) / 2, axis)) / iod
    if abs(yaw) > MAX_YAW:
        out.append(
            "The face is turned to the side: the lite engine paints the open mouth as if seen from the front, "
            "which shows on a turned face. A front-facing portrait works best."
        )
    return out


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


@dataclass
class MouthGeometry:
    """One frame's mouth box, laid out in the face's upright frame (a tilted head tilts teeth and tongue)."""

    x0: int
    y0: int
    sd: np.ndarray  # signed distance to the inner-lip polygon (> 0 inside)
    img_xs: np.ndarray  # pixel coordinates in the image (the photo's own interior is sampled there)
    img_ys: np.ndarray
    xs: np.ndarray  # the same pixels in the upright frame
    ys: np.ndarray
    u: np.ndarray  # -1 .. 1 corner to corner
    v: np.ndarray  # 0 at the upper lip, 1 at the lower lip
    top: np.ndarray  # smooth upper / lower inner-lip curves at each pixel's x (the lip points wobble)
    bottom: np.ndarray
    local_gap: np.ndarray
    gap: float  # the opening at the middle (px)
    open_rel: float  # gap in face heights (~0.1 is a wide "ah")
    half_w: float


def mouth_geometry(points: np.ndarray, image_shape: tuple[int, int], face_h: float) -> MouthGeometry | None:
    poly = inner_lip_polygon(points)
    centre = points[[F.UPPER_LIP_INNER_MID, F.LOWER_LIP_INNER_MID], :2].mean(0).astype(np.float32)
    roll = face_roll(points)
    upright = rotate(points[: F.NUM_LANDMARKS - 10], centre, -roll)
    gap = float(upright[F.LOWER_LIP_INNER_MID, 1] - upright[F.UPPER_LIP_INNER_MID, 1])
    if gap < 0.75:
        return None
    h, w = image_shape
    x0, y0 = np.floor(poly.min(0)).astype(int)
    x1, y1 = np.ceil(poly.max(0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
    if x1 - x0 < 2 or y1 - y0 < 1:
        return None
    img_ys, img_xs = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    sd = polygon_signed_distance_grid(poly, x0, y0, img_xs.shape)
    xs, ys = np.moveaxis(rotate(np.stack([img_xs, img_ys], -1), centre, -roll), -1, 0)
    upoly = rotate(poly, centre, -roll)
    half_w = max(float(upoly[:, 0].max() - upoly[:, 0].min()) / 2, 1.0)
    up, lo = upright[list(UPPER_INNER)], upright[list(LOWER_INNER)]
    top = np.polyval(np.polyfit(up[:, 0], up[:, 1], 2), xs)
    bottom = np.polyval(np.polyfit(lo[:, 0], lo[:, 1], 2), xs)
    local_gap = np.maximum(bottom - top, 1e-3)
    return MouthGeometry(
        x0=int(x0),
        y0=int(y0),
        sd=sd,
        img_xs=img_xs,
        img_ys=img_ys,
        xs=xs,
        ys=ys,
        u=(xs - float(centre[0])) / half_w,
        v=np.clip((ys - top) / local_gap, 0, 1),
        top=top,
        bottom=bottom,
        local_gap=local_gap,
        gap=gap,
        open_rel=gap / face_h,
        half_w=half_w,
    )
