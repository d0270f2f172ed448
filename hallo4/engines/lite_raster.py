"""Painting a piecewise-affine map triangle by triangle: the inner loop of the lite warp, compiled.

For every triangle, every pixel centre inside it gets the triangle's affine map (optionally clamped to the
triangle's source box). Done with OpenCV, this takes a triangle-id raster (one `fillConvexPoly` call per
triangle: ~2 us of call overhead each, ~1,200 triangles a frame) and then a 10-number gather per pixel; in
one compiled loop it is a few hundred microseconds a frame. Hand-written (with numba, already installed for
librosa) because no library paints a per-triangle affine map.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# A pixel centre counts as inside a triangle up to EDGE_SLACK (map pixels) beyond an edge: a centre exactly
# on a shared edge then belongs to both (the later triangle wins), so rounding leaves no gap between them.
EDGE_SLACK = 1e-3
# Where no triangle holds a centre (next to a sliver a head turn squashes, or a triangle folded over), the
# nearest triangle within GAP_SLACK extends its map there; a centre inside a triangle always wins over it.
GAP_SLACK = 0.5


# One signature, compiled when this module is first imported and cached beside it (about 2 s once per
# install, then ~0.4 s to load per process): maps may be views (any strides), the rest contiguous.
SIGNATURE = (
    "void(float32[:, :], float32[:, :], float64, float64, float64, float32[:, ::1], float32[:, ::1],"
    " int32[:, ::1], int32[::1], float32[:, ::1], float32[:, ::1], boolean)"
)


@njit(SIGNATURE, cache=True, nogil=True)
def paint_affine_map(
    map_x: np.ndarray,
    map_y: np.ndarray,
    x0: float,
    y0: float,
    step: float,
    dst: np.ndarray,
    src: np.ndarray,
    tri: np.ndarray,
    order: np.ndarray,
    box_lo: np.ndarray,
    box_hi: np.ndarray,
    clamp: bool,
) -> None:  # pragma: no cover - compiled; exercised through lite_warp's tests
    """Write, in place, the map of triangles `order` (later ones win) into `map_x`/`map_y`.

    Map pixel (i, j) sits at image point (x0 + j * step, y0 + i * step). Triangle k of `tri` (T, 3) maps its
    corners at `dst` (image points) to theirs at `src` by the one affine that does so; `clamp` keeps the
    result in the source box `box_lo[k]`..`box_hi[k]` (so a pixel on a thin triangle's edge never reaches far
    away). Pixels no triangle covers keep their values; triangles without area are skipped.
    """
    h, w = map_x.shape
    inv = 1.0 / step
    inside = np.zeros((h, w), np.bool_)  # painted by a triangle holding the centre (not just near it)
    for kk in range(order.shape[0]):
        k = order[kk]
        p, q, r = tri[k, 0], tri[k, 1], tri[k, 2]
        # The affine dst -> src: the adjugate of [[x y 1] per corner] over its determinant, times the sources.
        px0, py0, px1, py1, px2, py2 = dst[p, 0], dst[p, 1], dst[q, 0], dst[q, 1], dst[r, 0], dst[r, 1]
        det = px0 * (py1 - py2) - py0 * (px1 - px2) + (px1 * py2 - px2 * py1)
        if abs(det) <= 1e-6:
            continue
        w0, w1, w2 = (py1 - py2) / det, (py2 - py0) / det, (py0 - py1) / det
        c0 = w0 * src[p, 0] + w1 * src[q, 0] + w2 * src[r, 0]
        c1 = w0 * src[p, 1] + w1 * src[q, 1] + w2 * src[r, 1]
        w0, w1, w2 = (px2 - px1) / det, (px0 - px2) / det, (px1 - px0) / det
        c2 = w0 * src[p, 0] + w1 * src[q, 0] + w2 * src[r, 0]
        c3 = w0 * src[p, 1] + w1 * src[q, 1] + w2 * src[r, 1]
        w0 = (px1 * py2 - px2 * py1) / det
        w1 = (px2 * py0 - px0 * py2) / det
        w2 = (px0 * py1 - px1 * py0) / det
        c4 = w0 * src[p, 0] + w1 * src[q, 0] + w2 * src[r, 0]
        c5 = w0 * src[p, 1] + w1 * src[q, 1] + w2 * src[r, 1]
        ax, ay = (px0 - x0) * inv, (py0 - y0) * inv  # corners in map pixels
        bx, by = (px1 - x0) * inv, (py1 - y0) * inv
        cx, cy = (px2 - x0) * inv, (py2 - y0) * inv
        sign = 1.0 if det > 0 else -1.0  # det is twice the signed area: the corners' turning direction
        # Inward edge normals scaled to unit length: d >= 0 inside, d = distance (map pixels) from the edge.
        n0 = sign / max(math.hypot(bx - ax, by - ay), 1e-12)
        n1 = sign / max(math.hypot(cx - bx, cy - by), 1e-12)
        n2 = sign / max(math.hypot(ax - cx, ay - cy), 1e-12)
        i_lo = max(int(math.floor(min(ay, by, cy) - GAP_SLACK)), 0)
        i_hi = min(int(math.ceil(max(ay, by, cy) + GAP_SLACK)), h - 1)
        j_lo = max(int(math.floor(min(ax, bx, cx) - GAP_SLACK)), 0)
        j_hi = min(int(math.ceil(max(ax, bx, cx) + GAP_SLACK)), w - 1)
        lo_x, lo_y, hi_x, hi_y = box_lo[k, 0], box_lo[k, 1], box_hi[k, 0], box_hi[k, 1]
        for i in range(i_lo, i_hi + 1):
            py = float(i)
            # Each edge's distance is linear along the row, a * px + b: the row's span inside all three (near:
            # within GAP_SLACK of them, in: within EDGE_SLACK).
            near_l, near_r, in_l, in_r = float(j_lo), float(j_hi), float(j_lo), float(j_hi)
            for ex, ey, qx, qy, nn in (
                (bx - ax, by - ay, ax, ay, n0),
                (cx - bx, cy - by, bx, by, n1),
                (ax - cx, ay - cy, cx, cy, n2),
            ):
                a = -ey * nn
                b = (ex * (py - qy) + ey * qx) * nn
                if a > 1e-12:
                    near_l = max(near_l, -(b + GAP_SLACK) / a)
                    in_l = max(in_l, -(b + EDGE_SLACK) / a)
                elif a < -1e-12:
                    near_r = min(near_r, -(b + GAP_SLACK) / a)
                    in_r = min(in_r, -(b + EDGE_SLACK) / a)
                else:
                    if b + GAP_SLACK < 0:
                        near_r = near_l - 1.0
                    if b + EDGE_SLACK < 0:
                        in_r = in_l - 1.0
            if near_r < near_l:
                continue
            gy = y0 + py * step
            for j in range(int(math.ceil(near_l)), int(math.floor(near_r)) + 1):
                held = in_l <= j <= in_r
                if not held and inside[i, j]:
                    continue
                gx = x0 + float(j) * step
                u = c0 * gx + c2 * gy + c4
                v = c1 * gx + c3 * gy + c5
                if clamp:
                    u = min(max(u, lo_x), hi_x)
                    v = min(max(v, lo_y), hi_y)
                map_x[i, j] = u
                map_y[i, j] = v
                if held:
                    inside[i, j] = True
