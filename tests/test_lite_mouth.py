"""The lite engine's painted mouth interior, on the example portraits and variants they were not tuned on.

Ground truth is independent of the renderer: matplotlib's point-in-polygon test and OpenCV's
pointPolygonTest distances decide where the inner-lip polygon is.
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from matplotlib.path import Path as MplPath

from hallo4 import face as F
from hallo4 import media
from hallo4.engines.lite import FaceRig
from hallo4.engines.lite_mouth import inner_lip_polygon, mouth_warnings

NO_HEAD = np.zeros(3, np.float32)


def _painted(img: np.ndarray) -> np.ndarray:
    out = cv2.edgePreservingFilter(img, flags=cv2.RECURS_FILTER, sigma_s=50, sigma_r=0.35)
    return (out // 12 * 12 + 6).astype(np.uint8)


@pytest.fixture(scope="module")
def rigs(portrait_path, hopper_path):
    """name -> FaceRig for a closed mouth (Hopper), a toothy smile (astronaut) and a painted variant."""
    out = {}
    hopper = np.asarray(media.load_image(hopper_path).resize((436, 512)))
    astro = np.asarray(media.load_image(portrait_path))
    for name, img in (("hopper", hopper), ("astronaut", astro), ("painted", _painted(hopper))):
        out[name] = FaceRig(img, F.analyze_face(img, require=True).landmarks)
    return out


SHAPES = [(0.3, 0.0), (0.6, 0.0), (1.0, 0.0), (0.5, 1.0), (0.5, -1.0), (1.2, -0.5)]


def _pixels_and_truth(lay, poly):
    h, w = lay.cavity.shape
    ys, xs = np.mgrid[lay.y0 : lay.y0 + h, lay.x0 : lay.x0 + w]
    pts = np.stack([xs.ravel(), ys.ravel()], 1).astype(np.float64)
    inside = MplPath(poly.astype(np.float64)).contains_points(pts).reshape(h, w)
    contour = poly.reshape(-1, 1, 2).astype(np.float32)
    dist = np.array([cv2.pointPolygonTest(contour, (float(x), float(y)), True) for x, y in pts]).reshape(h, w)
    return inside, dist


@pytest.mark.parametrize("name", ["hopper", "astronaut", "painted"])
def test_cavity_stays_inside_the_inner_lips_with_no_holes(rigs, name):
    rig = rigs[name]
    for open_amt, spread in SHAPES:
        dst = rig.landmarks_at(open_amt, spread, 0.0, NO_HEAD)
        lay = rig.mouth.layers(dst, (rig.h, rig.w))
        assert lay is not None, (name, open_amt)
        poly = inner_lip_polygon(dst)
        inside, dist = _pixels_and_truth(lay, poly)
        # No cavity pixel outside the polygon: the lips keep every one of their pixels.
        assert lay.cavity[~inside].max(initial=0.0) == 0.0, (name, open_amt, spread)
        # No holes: everything more than the feather width inside is fully interior.
        deep = dist > rig.mouth.feather + 0.5
        assert deep.any() or open_amt < 0.6, (name, open_amt)
        assert lay.cavity[deep].min(initial=1.0) == pytest.approx(1.0), (name, open_amt, spread)
        # Drawing touches nothing outside the polygon.
        frame = rig.warp(dst)
        before = frame.copy()
        rig.mouth.draw(frame, dst)
        h, w = lay.cavity.shape
        changed = np.zeros(frame.shape[:2], bool)
        changed |= (frame != before).any(axis=2)
        box = changed[lay.y0 : lay.y0 + h, lay.x0 : lay.x0 + w]
        assert not box[~inside].any() and changed.sum() == box.sum()


@pytest.mark.parametrize("name", ["hopper", "painted"])
def test_cavity_edge_is_anti_aliased_and_follows_the_contour(rigs, name):
    """Alpha is a function of the distance to the lip contour: no stair steps, no torn pixels."""
    rig = rigs[name]
    for open_amt, spread in SHAPES:
        dst = rig.landmarks_at(open_amt, spread, 0.0, NO_HEAD)
        lay = rig.mouth.layers(dst, (rig.h, rig.w))
        inside, dist = _pixels_and_truth(lay, inner_lip_polygon(dst))
        edge = inside & (dist < rig.mouth.feather)
        assert edge.sum() > 20
        # Anti-aliased: the edge pixels take intermediate values, not 0/1.
        a = lay.cavity[edge]
        assert np.mean((a > 0.02) & (a < 0.98)) > 0.5, (name, open_amt)
        # Alpha grows with the distance from the lip contour, whatever the direction: a jagged or
        # blurred-raster mask has pixels nearer the lips that are more opaque than pixels further in.
        order = np.argsort(dist[edge], kind="stable")
        a_sorted = a[order]
        assert (np.maximum.accumulate(a_sorted) - a_sorted).max() < 0.05, (name, open_amt, spread)
        # One piece with no holes.
        solid = (lay.cavity > 0.5).astype(np.uint8)
        n, _ = cv2.connectedComponents(solid)
        assert n == 2
        flood = solid.copy()
        cv2.floodFill(flood, np.zeros((solid.shape[0] + 2, solid.shape[1] + 2), np.uint8), (0, 0), 2)
        assert not (flood == 0).any()  # no background pixel enclosed by the cavity


def test_teeth_only_inside_the_cavity_and_only_when_open_enough(rigs):
    rig = rigs["hopper"]
    fh = rig.face_h
    for open_amt in (0.1, 0.5, 1.0):
        dst = rig.landmarks_at(open_amt, 0.0, 0.0, NO_HEAD)
        lay = rig.mouth.layers(dst, (rig.h, rig.w))
        assert (lay.teeth <= lay.cavity + 1e-6).all() and (lay.tongue <= lay.cavity + 1e-6).all()
        gap = (dst[14, 1] - dst[13, 1]) / fh
        if gap < 0.012:
            assert lay.teeth.max() == 0.0  # barely parted lips show no teeth
        if open_amt == 0.5:
            assert lay.teeth.max() > 0.5 and lay.tongue.max() == 0.0  # tongue only on wide openings
        if open_amt == 1.0:
            assert lay.tongue.max() > 0.3
    # Upper teeth hang from the upper lip: in every column where they show, their top is the lip line.
    dst = rig.landmarks_at(0.8, 0.0, 0.0, NO_HEAD)
    lay = rig.mouth.layers(dst, (rig.h, rig.w))
    inside, _ = _pixels_and_truth(lay, inner_lip_polygon(dst))
    cols = np.flatnonzero((lay.teeth > 0.5).any(axis=0))
    assert len(cols) > 0.4 * lay.teeth.shape[1]
    for c in cols:
        top_teeth = np.flatnonzero(lay.teeth[:, c] > 0.5)[0]
        top_lip = np.flatnonzero(inside[:, c])[0]
        assert top_teeth - top_lip <= 2, c
    # The teeth are not a flat band: brighter in the middle than towards the corners.
    mid = lay.rgb[:, cols[len(cols) // 2]][lay.teeth[:, cols[len(cols) // 2]] > 0.9].mean()
    side = lay.rgb[:, cols[2]][lay.teeth[:, cols[2]] > 0.5].mean()
    assert mid > side + 10


def test_lips_keep_their_colour_when_the_mouth_opens(rigs):
    """The lower lip moves with the jaw but keeps its own pixels (no smearing, no painted colour)."""
    rig = rigs["hopper"]
    src = rig.image
    lm = rig.src
    for open_amt in (0.5, 1.0):
        dst = rig.landmarks_at(open_amt, 0.0, 0.0, NO_HEAD)
        frame = rig.render(open_amt, 0.0, 0.0, NO_HEAD)
        dy = int(round(dst[17, 1] - lm[17, 1]))
        x0, x1 = int(lm[87, 0]), int(lm[317, 0])
        y0, y1 = int(lm[14, 1]) + 2, int(lm[17, 1]) - 1  # the lower lip's body in the portrait
        before = src[y0:y1, x0:x1].reshape(-1, 3).astype(float).mean(0)
        after = frame[y0 + dy : y1 + dy, x0:x1].reshape(-1, 3).astype(float).mean(0)
        assert np.abs(before - after).max() < 12, (open_amt, before, after)


def test_jaw_moves_chin_and_lower_lip_not_the_upper_face(rigs):
    rig = rigs["hopper"]
    d = rig.landmarks_at(1.0, 0.0, 0.0, NO_HEAD) - rig.src
    lip, chin = d[17, 1], d[F.CHIN, 1]
    assert lip > 0.05 * rig.face_h and 0.5 * lip < chin <= lip
    assert abs(d[F.NOSE_TIP, 1]) < 0.5 and abs(d[F.FOREHEAD, 1]) < 0.5
    assert d[13, 1] <= 0  # the upper lip lifts, never drops


def test_a_tilted_head_opens_along_the_face(rigs):
    """Rolled 20 degrees, the jaw drops along the face's own down direction and teeth still hang from the lip."""
    src = rigs["hopper"].image
    h, w = src.shape[:2]
    img = cv2.warpAffine(
        src,
        cv2.getRotationMatrix2D((w / 2, h / 2), 20.0, 1.0),
        (w, h),
        flags=cv2.INTER_CUBIC,
        borderMode=cv2.BORDER_REFLECT,
    )
    rig = FaceRig(img, F.analyze_face(img, require=True).landmarks)
    d = rig.landmarks_at(1.0, 0.0, 0.0, NO_HEAD) - rig.src
    eyes = rig.src[list(F.LEFT_EYE)].mean(0) - rig.src[list(F.RIGHT_EYE)].mean(0)
    down = np.array([-eyes[1], eyes[0]]) / np.linalg.norm(eyes)  # perpendicular to the eye line, towards the chin
    for i in (14, 17, F.CHIN):
        cos = float(np.dot(d[i], down) / np.linalg.norm(d[i]))
        assert cos > np.cos(np.radians(6)), (i, np.degrees(np.arccos(cos)))
    dst = rig.landmarks_at(0.8, 0.0, 0.0, NO_HEAD)
    lay = rig.mouth.layers(dst, (rig.h, rig.w))
    assert (lay.teeth <= lay.cavity + 1e-6).all() and lay.teeth.max() > 0.5


def test_closed_track_closes_a_portraits_parted_lips(rigs):
    """A smiling portrait with its teeth showing still shuts its lips on a closure (open = 0)."""
    rig = rigs["astronaut"]
    dst = rig.landmarks_at(0.0, 0.0, 0.0, NO_HEAD)
    upper = dst[[82, 13, 312], 1]
    lower = dst[[87, 14, 317], 1]
    assert np.abs(lower - upper).max() < 0.004 * rig.face_h
    assert rig.mouth.layers(dst, (rig.h, rig.w)) is None


def test_small_or_turned_faces_are_warned_about(rigs, generate_clip, portrait_path, speech_path):
    assert mouth_warnings(rigs["hopper"].src) == []
    turned = rigs["hopper"].src.copy()
    iod = np.linalg.norm(turned[list(F.LEFT_EYE)].mean(0) - turned[list(F.RIGHT_EYE)].mean(0))
    turned[F.NOSE_TIP, 0] += 0.5 * iod
    assert any("turned" in w for w in mouth_warnings(turned))
    res = generate_clip(portrait=portrait_path, audio=speech_path, size=256, max_seconds=0.4, seed=0)
    assert any("face is small" in w for w in res.warnings)


def test_a_closed_smile_has_no_dark_corners(rigs):
    """Shutting the astronaut's toothy smile (a ~110 px face): no pixel inside the outer lips stays as
    dark as the photo's mouth corners; the line where the lips meet is lip-coloured."""
    rig = rigs["astronaut"]
    dst = rig.landmarks_at(0.0, 0.0, 0.0, NO_HEAD)
    frame = rig.render(0.0, 0.0, 0.0, NO_HEAD)
    inside = np.zeros(frame.shape[:2], np.uint8)
    cv2.fillPoly(inside, [np.round(dst[list(F.LIPS_OUTER), :2] * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    weights = np.array([0.299, 0.587, 0.114])
    lum = frame.astype(np.float64) @ weights
    lip = float(rig.mouth.lip @ weights)
    dark = (inside > 0) & (lum < 0.55 * lip)
    assert dark.sum() <= 1, np.argwhere(dark)


def test_brow_raise_moves_the_brows_not_the_eyes(rigs):
    """The optional brow track (the motion model's "brow", 0..1): brows up, the skin above them less,
    eyelids, eyes and mouth where they were; 0 (or no track) is exactly the old rig."""
    rig = rigs["hopper"]
    rest = rig.landmarks_at(0.3, 0.0, 0.0, NO_HEAD)
    assert np.array_equal(rest, rig.landmarks_at(0.3, 0.0, 0.0, NO_HEAD, brow=0.0))
    up = rig.landmarks_at(0.3, 0.0, 0.0, NO_HEAD, brow=1.0)
    rise = (rest - up)[:, 1] / rig.face_h
    brows = list(F.LEFT_BROW) + list(F.RIGHT_BROW)
    assert rise[brows].mean() > 0.025, rise[brows]
    still = list(F.LEFT_EYE) + list(F.RIGHT_EYE) + list(F.LIPS_OUTER) + [F.CHIN, F.NOSE_TIP]
    assert np.abs(up[still] - rest[still]).max() < 0.05
    frame = rig.render(0.3, 0.0, 0.0, NO_HEAD, brow=1.0)
    assert np.abs(frame.astype(int) - rig.render(0.3, 0.0, 0.0, NO_HEAD).astype(int)).max() > 30
