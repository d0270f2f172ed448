"""Real mediapipe face detection and mesh on the example photos."""

from __future__ import annotations

import numpy as np
import pytest

from hallo4 import face, media
from hallo4.errors import InputError


@pytest.fixture(scope="module")
def portraits(examples_dir):
    return {p.name: np.asarray(media.load_image(p)) for p in sorted((examples_dir / "portraits").iterdir())}


def test_landmark_groups_are_closed_loops():
    assert len(face.LIPS_OUTER) == 20 and len(face.LIPS_INNER) == 20
    assert 13 in face.LIPS_INNER and 14 in face.LIPS_INNER and 61 in face.LIPS_OUTER
    assert not set(face.LIPS_INNER) & set(face.LIPS_OUTER)
    assert len(face.FACE_OVAL) == 36 and face.CHIN in face.FACE_OVAL


@pytest.mark.parametrize("name", ["astronaut.png", "grace_hopper.jpg"])
def test_mesh_on_real_portraits(portraits, name):
    img = portraits[name]
    res = face.analyze_face(img, require=True)
    assert res.found and res.num_faces == 1 and res.warnings == []
    lm = res.landmarks
    assert lm.shape == (478, 3)
    x0, y0, x1, y1 = res.box
    assert 60 < x1 - x0 < img.shape[1] and 60 < y1 - y0 < img.shape[0]
    eyes_y = lm[list(face.LEFT_EYE) + list(face.RIGHT_EYE), 1].mean()
    mouth_y = lm[list(face.LIPS_OUTER), 1].mean()
    nose_y = lm[face.NOSE_TIP, 1]
    assert eyes_y < nose_y < mouth_y < lm[face.CHIN, 1]
    # The subject's left eye is on the image's right.
    assert lm[list(face.LEFT_EYE), 0].mean() > lm[list(face.RIGHT_EYE), 0].mean()
    assert 0.0 <= face.mouth_opening(lm) < 0.15
    assert 0.01 < face.eye_opening(lm) < 0.1


def test_no_face_falls_back_with_warning():
    g = np.tile(np.linspace(0, 255, 256, dtype=np.uint8)[None, :, None], (256, 1, 3))
    res = face.analyze_face(g)
    assert not res.found and res.box == (0, 0, 256, 256)
    assert any("No face detected" in w for w in res.warnings)
    with pytest.raises(InputError, match="no face could be detected"):
        face.analyze_face(g, require=True)


def test_two_faces_takes_largest_with_warning(portraits):
    big = portraits["grace_hopper.jpg"][:512]  # a close-up: the larger face
    other = portraits["astronaut.png"]  # the same canvas size, a smaller face
    canvas = np.concatenate([big, other], axis=1)
    res = face.analyze_face(canvas)
    assert res.num_faces == 2
    assert any("2 faces" in w for w in res.warnings)
    assert res.box[2] <= 512  # the mesh is on Grace Hopper (left), the larger face


def test_face_mesher_tracks_video_frames(portraits):
    img = portraits["astronaut.png"]
    with face.FaceMesher() as fm:
        pts = [fm.process(np.roll(img, s, axis=1)) for s in (0, 4, 8)]
    assert all(p is not None for p in pts)
    shift = pts[2][face.NOSE_TIP, 0] - pts[0][face.NOSE_TIP, 0]
    assert shift == pytest.approx(8, abs=3)


def test_grayscale_and_rgba_portraits(portraits):
    img = portraits["astronaut.png"]
    ref = face.analyze_face(img, require=True)
    gray = np.asarray(img, np.float32).mean(axis=2).astype(np.uint8)  # (H, W): a black-and-white photo
    res = face.analyze_face(gray, require=True)
    assert res.landmarks.shape == (478, 3)
    assert np.abs(res.landmarks[face.NOSE_TIP, :2] - ref.landmarks[face.NOSE_TIP, :2]).max() < 12
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=2)
    assert face.analyze_face(rgba, require=True).box == ref.box
    with pytest.raises(ValueError, match="shape"):
        face.analyze_face(np.zeros((4, 64, 64, 3), np.uint8))


def test_lip_lines_are_derived_from_the_mesh_loops():
    """The named lip lines (used by the lite rig instead of raw indices) split each lip loop at its corners."""
    from hallo4 import face as F

    for upper, lower, loop, mids, corners in (
        (F.LIP_INNER_UPPER, F.LIP_INNER_LOWER, F.LIPS_INNER, (13, 14), F.MOUTH_INNER_CORNERS),
        (F.LIP_OUTER_UPPER, F.LIP_OUTER_LOWER, F.LIPS_OUTER, (0, 17), F.MOUTH_CORNERS),
    ):
        assert (upper[0], upper[-1]) == (lower[0], lower[-1]) == corners
        assert mids[0] in upper and mids[1] in lower
        assert set(upper) | set(lower) == set(loop) and len(upper) + len(lower) == len(loop) + 2
    assert F.LIP_INNER_UPPER == (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308)
    assert F.LIP_INNER_LOWER == (78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308)
