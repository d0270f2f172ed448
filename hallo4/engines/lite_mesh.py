"""Geometry shared by the lite engine's rig and mouth: the warp triangulation, polygon distances, roll.

Hand-written because the face mesh's own triangles (with a hole at the mouth) plus a Delaunay
triangulation outside the face is specific to this rig; scipy does the Delaunay part.
"""

from __future__ import annotations

import numpy as np

from .. import face as F


def polygon_signed_distance(poly: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Signed distance (pixels, > 0 inside) from each point (xs, ys) to a closed polygon.

    Exact (distance to every edge, even-odd inside test), vectorised over points and edges.
    """
    px = xs.reshape(-1, 1).astype(np.float32)
    py = ys.reshape(-1, 1).astype(np.float32)
    a = poly.astype(np.float32)
    b = np.roll(a, -1, axis=0)
    ax, ay = a[None, :, 0], a[None, :, 1]
    abx, aby = b[None, :, 0] - ax, b[None, :, 1] - ay
    apx, apy = px - ax, py - ay  # (N, E): x and y apart (reductions over a length-2 axis are slow)
    t = np.clip((apx * abx + apy * aby) / np.maximum(abx * abx + aby * aby, 1e-9), 0, 1)
    dx, dy = apx - t * abx, apy - t * aby
    d = np.sqrt((dx * dx + dy * dy).min(axis=1))
    ya, yb = ay, b[None, :, 1]
    crosses = (ya > py) != (yb > py)
    xint = ax + (py - ya) * abx / np.where(np.abs(yb - ya) < 1e-9, 1e-9, yb - ya)
    inside = (crosses & (px < xint)).sum(axis=1) % 2 == 1
    return np.where(inside, d, -d).reshape(xs.shape)


def polygon_signed_distance_grid(
    poly: np.ndarray, x0: int, y0: int, shape: tuple[int, int], band: float = 3.0
) -> np.ndarray:
    """`polygon_signed_distance` over the pixel grid (x0.., y0..) of `shape`: exact within `band` px of the
    edge (where anti-aliasing and feathering look), a distance transform deeper in (shading only).

    The exact distance tests every pixel against every edge; only the band needs that precision.
    """
    import cv2

    h, w = shape
    pts = np.round((poly - (x0, y0)) * 16).astype(np.int32)
    inside = np.zeros((h + 2, w + 2), np.uint8)  # a one-pixel margin so the box edge is "outside"
    cv2.fillPoly(inside[1:-1, 1:-1], [pts], 1, cv2.LINE_8, 4)
    d_in = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    d_out = cv2.distanceTransform(1 - inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    sd = np.where(inside[1:-1, 1:-1] > 0, d_in - 0.5, 0.5 - d_out).astype(np.float32)
    near = np.flatnonzero((np.abs(sd) < band + 1.5).ravel())  # the transform is off by up to ~1 px
    if len(near):
        ys, xs = np.divmod(near, w)
        sd.ravel()[near] = polygon_signed_distance(poly, (xs + x0).astype(np.float32), (ys + y0).astype(np.float32))
    return sd


def inner_lip_polygon(points: np.ndarray) -> np.ndarray:
    """The inner-lip loop (upper lip left to right, then lower lip right to left) from 478/rig points."""
    upper, lower = list(F.LIP_INNER_UPPER), list(F.LIP_INNER_LOWER[-2:0:-1])
    return np.concatenate([points[upper], points[lower]]).astype(np.float32)


def face_roll(points: np.ndarray) -> float:
    """Roll of the face (radians, image y down): the angle of the line from the right to the left eye."""
    d = points[list(F.LEFT_EYE), :2].mean(0) - points[list(F.RIGHT_EYE), :2].mean(0)
    return float(np.arctan2(d[1], d[0]))


def rotate(points: np.ndarray, centre: np.ndarray, angle: float) -> np.ndarray:
    """Points (..., 2) rotated by `angle` radians about `centre` (image coordinates)."""
    c, s = np.cos(angle), np.sin(angle)
    rel = points[..., :2] - centre
    return np.stack([c * rel[..., 0] - s * rel[..., 1], s * rel[..., 0] + c * rel[..., 1]], -1) + centre


def _face_mesh_triangles() -> np.ndarray:
    """mediapipe's face-mesh triangles (3-cycles of its tesselation edges); the mouth is a hole in it."""
    adj: dict[int, set[int]] = {}
    for a, b in F.TESSELATION_EDGES:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)
    tris = {tuple(sorted((a, b, c))) for a, b in F.TESSELATION_EDGES for c in adj[a] & adj[b]}
    return np.array(sorted(tris), np.int32)


def _mouth_hole_triangles() -> np.ndarray:
    """A strip between the upper and lower inner lip, corner to corner (both ordered left to right)."""
    up, lo = list(F.LIP_INNER_UPPER), list(F.LIP_INNER_LOWER)
    tris = []
    i = j = 0
    while i < len(up) - 1 or j < len(lo) - 1:
        if j >= len(lo) - 1 or (i < len(up) - 1 and (i + 1) / (len(up) - 1) <= (j + 1) / (len(lo) - 1)):
            tris.append((up[i], up[i + 1], lo[j]))
            i += 1
        else:
            tris.append((up[i], lo[j + 1], lo[j]))
            j += 1
    return np.array([t for t in tris if len(set(t)) == 3], np.int32)


def rig_triangles(points: np.ndarray, n_face: int = 468) -> np.ndarray:
    """Triangles for the warp: mouth hole first, then mediapipe's face mesh, then Delaunay outside the face.

    A Delaunay triangulation of all landmarks joins upper and lower lip across a closed mouth, and
    those triangles fold when the jaw opens (torn, jagged lips). The face mesh's own triangles never
    cross the lips. The hole comes first so that pixels on its edges are drawn by the lip triangles.
    """
    from scipy.spatial import Delaunay

    hole = _mouth_hole_triangles()
    face = _face_mesh_triangles()
    oval = list(F.FACE_OVAL)
    outer_idx = np.array(oval + list(range(n_face, len(points))), np.int32)
    sub = Delaunay(points[outer_idx]).simplices
    tris = outer_idx[sub]
    in_oval = np.isin(tris, oval).all(axis=1)
    centroid = points[tris].mean(axis=1)
    inside = polygon_signed_distance(points[oval], centroid[:, 0], centroid[:, 1]) > 0
    outer = tris[~(in_oval & inside)]
    return np.concatenate([hole, face, outer]).astype(np.int32)
