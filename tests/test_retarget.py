"""Retargeting a real driving clip onto a different portrait, and the lite engine following head turns.

The driving footage is made from one example portrait (astronaut) with known head motion
(`hallo4.motion_clips`), its skeleton extracted with the real extractor, and retargeted onto the other
(Grace Hopper, a different face size, place and canvas).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hallo4 import face as F
from hallo4 import media
from hallo4.head_pose import _signed_area, depth_68, fit_pose, head_pose_track, rotation
from hallo4.motion_clips import talking_head_clip
from hallo4.skeleton import extract_skeleton, retarget
from hallo4.skeleton.extract import MESH_TO_68, face_points


@pytest.fixture(scope="module")
def hopper(hopper_path):
    return np.asarray(media.load_image(hopper_path))


@pytest.fixture(scope="module")
def driving(tmp_path_factory, portrait_path, speech_path):
    clip = talking_head_clip(
        portrait_path, tmp_path_factory.mktemp("drive") / "talk.mp4", seconds=2.0, audio=speech_path, size=384, seed=3
    )
    return clip, extract_skeleton(clip.video)


def test_first_frame_lands_on_the_portraits_face(driving, hopper):
    _, seq = driving
    out = retarget(seq, hopper)
    lm = F.analyze_face(hopper, require=True).landmarks
    face_w = float(np.ptp(lm[list(F.FACE_OVAL), 0]))
    tol = 0.03 * face_w
    right_eye, left_eye = lm[list(F.RIGHT_EYE), :2].mean(0), lm[list(F.LEFT_EYE), :2].mean(0)
    # Face keypoints (68): nose tip and the eye centres; body keypoints (COCO): nose and eyes.
    assert np.linalg.norm(out.face[0, 30, :2] - lm[MESH_TO_68[30], :2]) < tol
    assert np.linalg.norm(out.face[0, 36:42, :2].mean(0) - right_eye) < tol
    assert np.linalg.norm(out.face[0, 42:48, :2].mean(0) - left_eye) < tol
    assert np.linalg.norm(out.body[0, 0, :2] - lm[F.NOSE_TIP, :2]) < tol
    assert np.linalg.norm(out.body[0, 14, :2] - right_eye) < tol
    assert np.linalg.norm(out.body[0, 15, :2] - left_eye) < tol
    # The whole face outline sits on the portrait's (not only the anchor points).
    jaw = out.face[0, :17, :2] - face_points(lm)[:17, :2]
    assert np.linalg.norm(jaw, axis=1).max() < 2 * tol


def test_motion_is_relative_to_the_first_frame(driving, hopper):
    clip, seq = driving
    out = retarget(seq, hopper)
    src_iod = np.linalg.norm(seq.face[0, 36:42, :2].mean(0) - seq.face[0, 42:48, :2].mean(0))
    dst_iod = np.linalg.norm(out.face[0, 36:42, :2].mean(0) - out.face[0, 42:48, :2].mean(0))
    # The nose's path, scaled by the eye distances, is the driving one.
    src_path = (seq.face[:, 30, :2] - seq.face[0, 30, :2]) / src_iod
    dst_path = (out.face[:, 30, :2] - out.face[0, 30, :2]) / dst_iod
    assert np.abs(src_path).max() > 0.1  # the clip really moves
    assert np.abs(dst_path - src_path).max() < 0.1

    # The head's roll is carried over as is.
    def roll(f):
        d = f[:, 42:48, :2].mean(1) - f[:, 36:42, :2].mean(1)
        return np.arctan2(d[:, 1], d[:, 0])

    assert np.abs((roll(out.face) - roll(out.face)[0]) - (roll(seq.face) - roll(seq.face)[0])).max() < 0.02
    # The driving roll is what the clip was made with (the extractor sees it).
    assert np.corrcoef(roll(seq.face) - roll(seq.face)[0], clip.roll)[0, 1] > 0.9
    # Shoulders stay on the portrait's shoulders in the first frame; the neck is between them.
    assert np.allclose(out.body[:, 1, :2], (out.body[:, 2, :2] + out.body[:, 5, :2]) / 2, atol=1e-3)


def test_pose_fit_recovers_a_known_rotation():
    rng = np.random.default_rng(0)
    model = rng.normal(size=(48, 3)) * [60, 70, 30]
    for yaw, pitch, roll in ((0.3, -0.1, 0.05), (-0.2, 0.15, -0.1)):
        seen = (model @ rotation(yaw, pitch, roll).T)[:, :2] * 1.3 + (40, -7)
        got = fit_pose(model, seen)
        assert got[:3] == pytest.approx((yaw, pitch, roll), abs=1e-6) and got[3] == pytest.approx(1.3, abs=1e-6)


def test_head_pose_track_follows_the_driving_turn(driving, portrait_path):
    clip, seq = driving
    lm = F.analyze_face(np.asarray(media.load_image(portrait_path)), require=True).landmarks
    pose = head_pose_track(seq.face, depth_68(lm))
    assert np.corrcoef(pose[:, 0], clip.yaw)[0, 1] > 0.8
    assert np.abs(head_pose_track(seq.face)[:, :2]).max() == 0  # no depth: no yaw or pitch claimed


def test_turn_never_folds_the_rig(hopper):
    from hallo4.engines.lite import FaceRig

    lm = F.analyze_face(hopper, require=True).landmarks
    rig = FaceRig(hopper, lm)
    before = _signed_area(rig.src[rig.turn.tri])
    for yaw, pitch in ((math.radians(28), math.radians(16)), (-math.radians(28), -math.radians(16)), (1.2, 0.0)):
        dst = rig.turn.apply(rig.src.copy(), yaw, pitch)
        after = _signed_area(dst[rig.turn.tri])
        big = np.abs(before) >= 4
        assert (after[big] * np.sign(before[big]) > 0).all()
    moved = rig.turn.apply(rig.src.copy(), math.radians(20), 0.0)
    assert np.abs(moved[4, 0] - rig.src[4, 0]) > 2  # the nose does swing


@pytest.mark.slow
def test_lite_follows_the_driving_yaw(driving, tmp_path, hopper_path, speech_path, generate_clip):
    """The lite engine on another portrait turns its head when the driving head turns."""
    clip, seq = driving
    skel = seq.save(tmp_path / "drive.json")
    res = generate_clip(portrait=hopper_path, audio=speech_path, skeleton=skel, seed=1, size=384, max_seconds=2.0)
    frames = media.read_video(res.video).frames
    with F.FaceMesher() as mesher:
        meshes = [mesher.process(f) for f in frames]
    face68 = np.stack([face_points(m) for m in meshes])
    yaw_out = head_pose_track(face68, depth_68(meshes[0]))[:, 0]
    yaw_in = head_pose_track(seq.face, depth_68(meshes[0]))[: len(yaw_out), 0]
    assert np.corrcoef(yaw_out, yaw_in)[0, 1] > 0.7
