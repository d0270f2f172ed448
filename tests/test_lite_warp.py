"""The lite rig's fast warp (half-res map where smooth, exact per pixel around lips, lids and nostrils)
against the exact per-pixel warp, over a motion sequence with speech, blinks and head turns."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from hallo4 import face as F
from hallo4 import media
from hallo4.engines.lite import FaceRig


@pytest.fixture(scope="module")
def pair(hopper_path):
    img = np.asarray(media.load_image(hopper_path).resize((512, 512)))
    lm = F.analyze_face(img, require=True).landmarks
    return FaceRig(img, lm), FaceRig(img, lm, exact=True)


def _sequence(n: int = 40):
    """Speech-like opening, spread/rounding, one blink, a slow head turn and roll."""
    t = np.arange(n)
    open_amt = np.clip(0.55 + 0.5 * np.sin(t / 2.3), 0, 1.1)
    spread = 0.8 * np.sin(t / 3.7)
    blink = np.interp(t, [10, 12, 14, 17], [0, 1, 1, 0])
    head = np.stack(
        [0.04 * np.sin(t / 9), 0.02 * np.cos(t / 7), 0.12 * np.sin(t / 8), 0.3 * np.sin(t / 11), 0.1 * np.cos(t / 6)],
        1,
    )
    return [(open_amt[i], spread[i], blink[i], head[i]) for i in range(n)]


def test_fast_warp_matches_the_exact_warp(pair):
    fast, exact = pair
    errors, frame_diffs = [], []
    for pose in _sequence():
        dst = fast.landmarks_at(*pose)
        (fx, fy), (ex, ey) = fast.warp.maps(dst), exact.warp.maps(dst)
        errors.append(np.hypot(fx - ex, fy - ey))
        frame_diffs.append(np.abs(fast.warp(dst).astype(np.int16) - exact.warp(dst).astype(np.int16)).mean())
    err = np.stack(errors)
    # Sub-pixel almost everywhere; off by more than a pixel only on a handful of pixels per frame, in
    # triangles a head turn squashes to a sliver (where even the exact map changes by pixels across a pixel).
    assert np.percentile(err, 99.9) < 0.6, np.percentile(err, 99.9)
    assert (err > 1.0).sum(axis=(1, 2)).max() <= 25, (err > 1.0).sum(axis=(1, 2))
    # No speck: a pixel no triangle holds (beside a squashed sliver) takes its nearest triangle's map.
    assert err.max() < 6.0, err.max()
    assert max(frame_diffs) < 0.3, max(frame_diffs)


def test_lips_and_lids_are_exact(pair):
    """Where the mesh creases (the mouth opening, closing lids) the map is the exact one, to float precision."""
    fast, exact = pair
    for pose in _sequence()[8:16]:
        dst = fast.landmarks_at(*pose)
        (fx, fy), (ex, ey) = fast.warp.maps(dst), exact.warp.maps(dst)
        rx0, ry0 = fast.roi[:2]
        for group in (F.LIPS_OUTER, F.LEFT_EYE, F.RIGHT_EYE):
            # Inside the lips' (the lids') outline, a pixel in from its edge.
            inside = np.zeros(fx.shape, np.uint8)
            cv2.fillPoly(inside, [np.round(dst[list(group)] - (rx0, ry0)).astype(np.int32)], 1)
            inside = cv2.erode(inside, np.ones((3, 3), np.uint8)).astype(bool)
            assert inside.sum() > 20 or group is not F.LIPS_OUTER  # (closed lids leave next to nothing)
            err = np.hypot(fx - ex, fy - ey)[inside]
            assert err.max(initial=0.0) < 0.05, (group[:3], err.max(initial=0.0))


def test_region_of_interest_holds_every_moving_pixel(pair, hopper_path):
    """The rig warps only inside its region (the triangles with a moving corner): the same exact warp over the
    whole frame changes no pixel outside it."""
    from hallo4.engines.lite_warp import PiecewiseAffineWarp

    _, exact = pair
    h, w = exact.image.shape[:2]
    holes = tuple(tuple(h.tolist()) for h in exact.warp.holes)
    anchors = tuple(tuple(a.tolist()) for a in exact.warp.hole_anchors)
    whole = PiecewiseAffineWarp(
        exact.image, exact.src, exact.tri, (0, 0, w, h), holes=holes, hole_anchors=anchors, scale=1
    )
    rx0, ry0, rx1, ry1 = exact.roi
    assert (rx1 - rx0) * (ry1 - ry0) < 0.75 * w * h  # the region is a real saving on this portrait
    outside = np.ones((h, w), bool)
    outside[ry0:ry1, rx0:rx1] = False
    for pose in _sequence()[::4]:
        dst = exact.landmarks_at(*pose)
        full = whole(dst)
        assert np.array_equal(full[outside], exact.image[outside])
        assert np.array_equal(full, exact.warp(dst))


@pytest.mark.parametrize("exact_warp", [False, True], ids=["fast", "exact"])
def test_eyeballs_move_with_the_head(pair, hopper_path, exact_warp):
    """The eyes are holes in the mesh: each is carried by the similarity of its corners, so under head motion
    the iris goes with the head instead of staying where it was in the portrait (sliding under the lids)."""
    rig = pair[1] if exact_warp else pair[0]
    img = np.asarray(media.load_image(hopper_path).resize((512, 512)))
    lm = F.analyze_face(img, require=True).landmarks[:, :2]
    tx, ty, roll = 0.15, -0.05, 0.05
    dst = rig.landmarks_at(0.0, 0.0, 0.0, np.array([tx, ty, roll, 0.0, 0.0]))
    map_x, map_y = rig.warp.maps(dst)
    rx0, ry0 = rig.roi[:2]
    c, s = np.cos(roll), np.sin(roll)
    for iris in (F.LEFT_IRIS, F.RIGHT_IRIS):
        centre = lm[list(iris)].mean(0)
        # Where the rigid head motion takes the iris centre, and the source pixel the warp samples there.
        rel = centre - rig.pivot
        moved = rig.pivot + (c * rel[0] - s * rel[1], s * rel[0] + c * rel[1]) + np.array([tx, ty]) * rig.iod
        x, y = np.round(moved).astype(int)
        sampled = np.array([map_x[y - ry0, x - rx0], map_y[y - ry0, x - rx0]])
        rel = np.array([x, y], float) - np.array([tx, ty]) * rig.iod - rig.pivot
        expected = rig.pivot + (c * rel[0] + s * rel[1], -s * rel[0] + c * rel[1])
        assert np.hypot(*(moved - centre)) > 5  # the head really moved the eye
        assert np.abs(sampled - expected).max() < 0.3, (sampled, expected)
