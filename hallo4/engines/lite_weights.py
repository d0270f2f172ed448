"""Per-landmark motion weights of the lite rig: how far each face-mesh point follows the jaw, the upper
lip, lip spread/rounding and the eyelids.

Worked out once per portrait in the face's upright frame (rotated by its roll about the mouth), so a
tilted head opens its jaw along the face, not straight down the image. Hand-written: the weights encode
facial anatomy (lips part along their inner line, the chin follows the jaw, lids close onto each other).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import face as F

UPPER = F.LIP_INNER_UPPER  # corner to corner, image left to right
LOWER = F.LIP_INNER_LOWER[1:-1]  # without the corners (they belong to the upper lip line)


@dataclass
class RigWeights:
    """Per face-mesh point (468,) weights, all in the face's upright frame."""

    jaw: np.ndarray  # vertical follow of the jaw drop
    lift: np.ndarray  # upper-lip lift per unit of jaw drop
    close_dy: np.ndarray  # rise that shuts a portrait's parted lips
    rest_gap: float  # the portrait's own inner-lip gap at the middle (px)
    spread: np.ndarray  # horizontal follow of lip spread (times `spread_dir`)
    spread_dir: np.ndarray  # signed distance from the mouth centre in mouth half-widths
    pucker: np.ndarray  # vertical bulge of the lips away from the opening when rounding
    lid_dy: np.ndarray  # eyelid travel for a full blink (px)
    brow: np.ndarray  # follow of a brow raise (1 on the brows, fading to the upper lids and up the forehead)


@dataclass
class _Lips:
    """Where each point sits relative to the lips."""

    below: np.ndarray  # 0 upper side .. 1 lower side of the mouth
    upper_y: np.ndarray  # the upper inner lip's height at each point's x
    lower_y: np.ndarray
    mid_y: np.ndarray
    u: np.ndarray  # x across the mouth: -1 .. 1 corner to corner
    taper: np.ndarray  # 1 in the middle of the lips, 0 at the corners and beyond


def _line_y(lm: np.ndarray, idx: tuple[int, ...], xs: np.ndarray) -> np.ndarray:
    return np.interp(xs, *zip(*sorted((lm[i, 0], lm[i, 1]) for i in idx + F.MOUTH_INNER_CORNERS)))


def _lips(lm: np.ndarray, p: np.ndarray, cx: float) -> _Lips:
    """Which side of the lips each point is on: the line midway between the inner lips (per column),
    not one height for the whole mouth (a smile's corners sit above its middle)."""
    upper_y, lower_y = _line_y(lm, UPPER, p[:, 0]), _line_y(lm, LOWER, p[:, 0])
    mid_y = 0.5 * (upper_y + lower_y)
    left, right = F.MOUTH_INNER_CORNERS
    inner_half_w = max(float(abs(lm[right, 0] - lm[left, 0])) / 2, 1.0)
    u = (p[:, 0] - cx) / inner_half_w
    # Between the lips the split is sharp (separate tissue); beside the corners it softens into the cheek.
    soft = 0.5 + 0.4 * inner_half_w * np.clip(np.abs(u) - 0.9, 0, 1)
    below = np.clip((p[:, 1] - mid_y + soft) / (2 * soft), 0, 1)
    below = below * below * (3 - 2 * below)  # smoothstep
    between = np.abs(u) <= 1.0  # within the corners, the inner lip lines decide exactly
    below[between & (p[:, 1] <= upper_y)] = 0.0
    below[between & (p[:, 1] >= lower_y)] = 1.0
    below[list(UPPER)] = 0.0  # on a closed mouth the two inner lips can swap heights
    below[list(LOWER)] = 1.0
    # The lips open as a lens, not a box: the drop tapers to the corners.
    taper = np.clip(1 - u**2, 0, 1) ** 0.6
    return _Lips(below, upper_y, lower_y, mid_y, u, taper)


def _jaw(lm: np.ndarray, p: np.ndarray, lips: _Lips, cx: float) -> np.ndarray:
    """Below the lower lip the whole jaw moves together, the chin a little less than the lip; near the
    lips the drop tapers to the corners, further down (chin) the jaw moves as one."""
    lower_in_y, chin_y = lm[F.LOWER_LIP_INNER_MID, 1], lm[F.CHIN, 1]
    beyond = np.clip((p[:, 1] - lower_in_y) / max(chin_y - lower_in_y, 1.0), 0, 1)
    jaw = lips.below * (1.0 - 0.2 * beyond)
    half_face_w = (p[:, 0].max() - p[:, 0].min()) / 2
    horiz = np.clip(1.0 - ((p[:, 0] - cx) / (half_face_w + 1e-6)) ** 2 * 0.7, 0.15, 1.0)
    lower_out_y = lm[F.LOWER_LIP_OUTER_MID, 1]
    to_chin = np.clip((p[:, 1] - lower_out_y) / max(0.5 * (chin_y - lower_out_y), 1.0), 0, 1)
    return (jaw * horiz * (lips.taper + (1 - lips.taper) * to_chin)).astype(np.float32)


def _close_dy(lm: np.ndarray, w_jaw: np.ndarray, rest_gap: float) -> np.ndarray:
    """Closing a portrait's parted lips: each lower inner-lip point rises by its own gap to the upper
    lip (so the lips meet along their whole length), the rest of the jaw by the centre gap."""
    up = lm[list(UPPER)]
    up = up[np.argsort(up[:, 0])]
    close_dy = w_jaw * rest_gap
    for i in LOWER:
        close_dy[i] = max(float(lm[i, 1] - np.interp(lm[i, 0], up[:, 0], up[:, 1])), 0.0)
    return close_dy


def _pucker(lm: np.ndarray, p: np.ndarray, lips: _Lips, cx: float) -> np.ndarray:
    """Rounding ("oo") purses the lips: each lip bulges away from the opening, most in the middle, the
    inner edge fully, the outer edge half, the skin beyond fading out. The opening turns round."""
    mid = np.argmin(np.abs(p[:, 0] - cx))
    th_up = max(float(lips.upper_y[mid] - lm[F.UPPER_LIP_OUTER_MID, 1]), 1.0)
    th_lo = max(float(lm[F.LOWER_LIP_OUTER_MID, 1] - lips.lower_y[mid]), 1.0)
    f_up = np.clip(1 - 0.5 * (lips.upper_y - p[:, 1]) / th_up, 0, 1) * (p[:, 1] <= lips.upper_y)
    f_lo = np.clip(1 - 0.5 * (p[:, 1] - lips.lower_y) / th_lo, 0, 1) * (p[:, 1] >= lips.lower_y)
    f_up[list(UPPER)], f_lo[list(LOWER)] = 1.0, 1.0
    return ((f_lo * lips.below - f_up * (1 - lips.below)) * lips.taper).astype(np.float32)


def _lids(lm: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Eyelids: each upper-lid point travels to the lower-lid point at the same x; the skin just above
    the lid follows a little, so the lid does not fold."""
    lid_dy = np.zeros(len(p), np.float32)
    for loop in (F.LEFT_EYE, F.RIGHT_EYE):
        pts = lm[list(loop)]
        cy = pts[:, 1].mean()
        upper = [i for i in loop if lm[i, 1] < cy]
        lower = [i for i in loop if lm[i, 1] >= cy]
        for i in upper:
            j = min(lower, key=lambda k: abs(lm[k, 0] - lm[i, 0]))
            lid_dy[i] = 0.92 * (lm[j, 1] - lm[i, 1])
        ew = (pts[:, 0].max() - pts[:, 0].min()) / 2
        d = p - pts.mean(0)
        skin = (np.abs(d[:, 0]) < ew) & (-1.2 * ew < d[:, 1]) & (d[:, 1] < 0)
        skin[list(loop)] = False
        follow = 0.25 * (pts[:, 1].max() - pts[:, 1].min()) * (1 + d[:, 1] / (1.2 * ew))
        lid_dy = np.where(skin, np.maximum(lid_dy, follow), lid_dy).astype(np.float32)
    return lid_dy


def _brows(lm: np.ndarray, p: np.ndarray, face_h: float) -> np.ndarray:
    """Brow raise: the brows move fully, the skin above them less towards the hairline, the skin below
    them less towards the eye; lids, eyes and everything below the eyes stay."""
    w = np.zeros(len(p), np.float32)
    for brow, eye in ((F.LEFT_BROW, F.LEFT_EYE), (F.RIGHT_BROW, F.RIGHT_EYE)):
        b, e = lm[list(brow)], lm[list(eye)]
        brow_y = np.interp(p[:, 0], *zip(*sorted(zip(b[:, 0], b[:, 1]))))
        eye_top = float(e[:, 1].min())
        below = np.clip((eye_top - p[:, 1]) / np.maximum(eye_top - brow_y, 1.0), 0, 1)  # 0 at the lid, 1 at the brow
        above = np.clip(1 - (brow_y - p[:, 1]) / (0.3 * face_h), 0.35, 1)  # the forehead follows less
        margin = 0.3 * (b[:, 0].max() - b[:, 0].min())
        across = np.clip(1 - np.maximum(b[:, 0].min() - p[:, 0], p[:, 0] - b[:, 0].max()) / max(margin, 1.0), 0, 1)
        w = np.maximum(w, (np.where(p[:, 1] <= brow_y, above, below) * across).astype(np.float32))
    w[list(F.LEFT_EYE) + list(F.RIGHT_EYE)] = 0.0
    return w


def rig_weights(lm: np.ndarray, mouth_c: np.ndarray, mouth_half_w: float, face_h: float) -> RigWeights:
    """All weights for the 468 face-mesh points of upright landmarks `lm` (478, 2)."""
    p = lm[:468]
    cx = float(mouth_c[0])
    lips = _lips(lm, p, cx)
    w_jaw = _jaw(lm, p, lips, cx)
    # The upper lip lifts a little, most at its inner edge, nothing at the base of the nose.
    nose_y = lm[F.SUBNASALE, 1]
    t = np.clip((p[:, 1] - nose_y) / np.maximum(lips.mid_y - nose_y, 1.0), 0, 1) * (1 - lips.below)
    rest_gap = float(max(lm[F.LOWER_LIP_INNER_MID, 1] - lm[F.UPPER_LIP_INNER_MID, 1], 0.0))
    # Spread/rounding as a smooth field (flat over the lips, fading into the cheeks): per-index
    # weights moved lip points past their unlisted neighbours and folded the corners.
    dx = (p[:, 0] - cx) / (mouth_half_w * 1.8)
    dy = (p[:, 1] - mouth_c[1]) / (mouth_half_w * 1.0)
    return RigWeights(
        jaw=w_jaw,
        lift=(0.22 * t**1.5 * lips.taper).astype(np.float32),
        close_dy=_close_dy(lm, w_jaw, rest_gap),
        rest_gap=rest_gap,
        spread=np.clip(1.25 * np.exp(-(dx**4) - dy**2), 0, 1).astype(np.float32),
        spread_dir=((p[:, 0] - cx) / mouth_half_w).astype(np.float32),
        pucker=_pucker(lm, p, lips, cx),
        lid_dy=_lids(lm, p),
        brow=_brows(lm, p, face_h),
    )
