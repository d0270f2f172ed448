"""Skeleton extraction, format, rendering, retargeting, fitting and idle motion on real media."""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

from hallo4 import media
from hallo4.errors import InputError
from hallo4.skeleton import (
    SkeletonSequence,
    extract_skeleton,
    fit_length,
    idle_skeleton,
    load_skeleton_video,
    pingpong_indices,
    portrait_pose,
    render_skeleton,
    retarget,
)
from hallo4.skeleton.render import COLORS


@pytest.fixture(scope="module")
def astronaut(portrait_path):
    return np.asarray(media.load_image(portrait_path))


@pytest.fixture(scope="module")
def hopper(hopper_path):
    return np.asarray(media.load_image(hopper_path))


SHIFT = 3  # px per frame


def _driving_frames(img, n=25, fps_scale=1.0):
    return [
        cv2.warpAffine(
            img,
            np.float32([[1, 0, SHIFT * i / fps_scale - 30], [0, 1, 0]]),
            img.shape[1::-1],
            borderMode=cv2.BORDER_REPLICATE,
        )
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def driving_video(tmp_path_factory, astronaut):
    path = tmp_path_factory.mktemp("drive") / "drive.mp4"
    media.write_mp4(path, _driving_frames(astronaut), fps=25)
    return path


@pytest.fixture(scope="module")
def extracted(driving_video):
    return extract_skeleton(driving_video)


def test_extraction_lands_on_the_person_and_follows_motion(extracted, astronaut):
    seq = extracted
    assert seq.num_frames == 25 and seq.fps == 25 and (seq.width, seq.height) == (512, 512)
    base = portrait_pose(astronaut).body[0]
    # Frame i is the portrait shifted by SHIFT*i - 30 px.
    for i in (0, 12, 24):
        dx = SHIFT * i - 30
        assert seq.body[i, 0, 0] == pytest.approx(base[0, 0] + dx, abs=10)  # nose: on the face
        # Shoulders: on the body, below the chin and either side of the head (a spacesuit's shoulder
        # line is not sharp, so holistic and static pose differ by tens of pixels in y).
        chin_y, face_w = seq.face[i, 8, 1], seq.face[i, 16, 0] - seq.face[i, 0, 0]
        nose_x = seq.body[i, 0, 0]
        assert seq.body[i, 2, 2] > 0.5 and seq.body[i, 5, 2] > 0.5
        assert chin_y < seq.body[i, 2, 1] < chin_y + 2 * face_w and chin_y < seq.body[i, 5, 1] < chin_y + 2 * face_w
        assert seq.body[i, 2, 0] < nose_x - 0.6 * face_w and seq.body[i, 5, 0] > nose_x + 0.6 * face_w
        for k in (0, 14, 15):  # the head follows the motion (the suit hides where shoulders move)
            assert seq.body[i, k, 0] - seq.body[0, k, 0] == pytest.approx(SHIFT * i, abs=6)
            assert seq.body[i, k, 1] == pytest.approx(seq.body[0, k, 1], abs=9)
    # Face points sit inside the head: the jaw runs image-left to image-right and the chin is lowest.
    face = seq.face[0]
    assert face[0, 0] < face[8, 0] < face[16, 0] and face[8, 1] > face[30, 1] > face[27, 1]


def test_json_round_trip(tmp_path, extracted):
    path = extracted.save(tmp_path / "seq.json")
    loaded = SkeletonSequence.load(path)
    assert loaded.num_frames == extracted.num_frames and loaded.fps == 25
    assert np.abs(loaded.points() - extracted.points()).max() < 0.01
    data = json.loads(path.read_text())
    assert data["format"] == "hallo4.skeleton" and data["version"] == 1


def test_openpose_json_and_npy_folder(tmp_path, extracted):
    op = tmp_path / "openpose"
    op.mkdir()
    for i in range(3):
        person = {
            "pose_keypoints_2d": extracted.body[i].ravel().tolist(),
            "hand_left_keypoints_2d": extracted.hands[i, 0].ravel().tolist(),
            "hand_right_keypoints_2d": extracted.hands[i, 1].ravel().tolist(),
            "face_keypoints_2d": np.concatenate([extracted.face[i], np.zeros((2, 3))]).ravel().tolist(),
        }
        (op / f"frame_{i:06d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": [person]}))
    seq = SkeletonSequence.load(op)
    assert seq.num_frames == 3 and np.allclose(seq.body, extracted.body[:3], atol=1e-3)
    npy = tmp_path / "dwpose"
    npy.mkdir()
    (npy / "meta.json").write_text(json.dumps({"width": 512, "height": 512, "fps": 25}))
    for i in range(2):
        pts = extracted.points()[i].copy()
        pts[:, :2] /= 512
        np.save(npy / f"{i:04d}.npy", pts)
    seq = SkeletonSequence.load(npy)
    assert seq.num_frames == 2 and np.allclose(seq.body[:, :, :2], extracted.body[:2, :, :2], atol=1e-3)


@pytest.mark.parametrize(
    "content,match",
    [
        ("{not json", "not valid JSON"),
        (
            json.dumps(
                {
                    "format": "hallo4.skeleton",
                    "version": 1,
                    "width": 64,
                    "height": 64,
                    "fps": 25,
                    "frames": [{"body": [[0, 0, 1]] * 17, "hands": [[[0, 0, 1]] * 21] * 2, "face": [[0, 0, 1]] * 68}],
                }
            ),
            r"body has shape \[17, 3\], expected \[18, 3\]",
        ),
        (json.dumps({"hello": "world"}), "not a skeleton we know"),
    ],
)
def test_bad_skeleton_files(tmp_path, content, match):
    p = tmp_path / "bad.json"
    p.write_text(content)
    with pytest.raises(InputError, match=match):
        SkeletonSequence.load(p)


def test_render_style(extracted):
    frames = render_skeleton(extracted, 512, 512)
    assert frames.shape == (25, 512, 512, 3)
    f = frames[0]
    assert (f.reshape(-1, 3).sum(1) == 0).mean() > 0.85  # mostly black background
    # No white face dots on the mouth (lip motion must come from audio), white dots on the eyes.
    for k in range(48, 68):
        x, y = extracted.face[0, k, :2].astype(int)
        assert f[y - 1 : y + 2, x - 1 : x + 2].min(axis=2).max() < 150
    x, y = extracted.face[0, 36, :2].astype(int)
    assert (f[y - 2 : y + 3, x - 2 : x + 3].min(axis=2) > 200).any()
    # OpenPose limb colours: neck->right shoulder is red (255, 0, 0), blended at 0.6 over black.
    mid = ((extracted.body[0, 1, :2] + extracted.body[0, 2, :2]) / 2).astype(int)
    px = f[mid[1], mid[0]].astype(int)
    assert px[0] > 120 and px[1] < 60 and px[2] < 60
    assert COLORS[0] == (255, 0, 0)


def test_render_letterboxes_other_aspects(extracted):
    frames = render_skeleton(extracted.slice(0, 1), 832, 480)
    assert frames.shape == (1, 480, 832, 3)
    assert frames[0, :, :150].max() == 0 and frames[0, :, -150:].max() == 0  # square canvas centred


def test_retarget_puts_shoulders_on_the_portrait(extracted, hopper):
    target = portrait_pose(hopper).body[0]
    out = retarget(extracted, hopper)
    assert (out.width, out.height) == (hopper.shape[1], hopper.shape[0])
    for k in (2, 5):
        assert np.linalg.norm(out.body[0, k, :2] - target[k, :2]) < 3.0
    kept = retarget(extracted, hopper, keep=True)
    assert (kept.width, kept.height) == (hopper.shape[1], hopper.shape[0])


def test_fit_length_modes(extracted):
    seq = extracted.slice(0, 10)
    looped, msg = fit_length(seq, 25, "pingpong")
    assert looped.num_frames == 25 and "ping-pong" in msg
    jumps = np.abs(np.diff(looped.body[:, 0, 0]))
    assert jumps.max() <= np.abs(np.diff(seq.body[:, 0, 0])).max() + 1e-3  # no jump at the turn
    held, msg = fit_length(seq, 15, "hold")
    assert np.allclose(held.body[10:], seq.body[-1]) and "held" in msg
    trimmed, msg = fit_length(extracted, 5, "pingpong")
    assert trimmed.num_frames == 5 and "trimmed" in msg
    with pytest.raises(InputError, match="fit mode: unknown mode 'bogus'. Use pingpong, hold or trim"):
        fit_length(seq, 5, "bogus")


def test_idle_motion_is_deterministic_and_alive(astronaut, speech_path):
    audio = media.load_audio(speech_path)
    a = idle_skeleton(astronaut, 100, seed=3, audio=audio)
    b = idle_skeleton(astronaut, 100, seed=3, audio=audio)
    c = idle_skeleton(astronaut, 100, seed=4, audio=audio)
    assert np.array_equal(a.points(), b.points())
    assert not np.array_equal(a.points(), c.points())
    nose = a.body[:, 0, :2]
    assert 1.0 < np.ptp(nose[:, 0]) < 60  # the head moves, a little
    lid_gap = a.face[:, 41, 1] - a.face[:, 37, 1]
    assert lid_gap.min() < 0.5 * lid_gap.max()  # at least one blink in 4 s


def test_headshot_gets_synthesised_shoulders(astronaut):
    face_only = np.ascontiguousarray(astronaut[40:230, 140:320])
    pose = portrait_pose(face_only).body[0]
    assert pose[2, 2] > 0 and pose[5, 2] > 0 and pose[2, 0] < pose[5, 0]


def test_video_without_a_person(tmp_path):
    frames = [np.tile(np.linspace(0, 255, 128, dtype=np.uint8)[None, :, None], (128, 1, 3)) for _ in range(10)]
    p = media.write_mp4(tmp_path / "wall.mp4", frames, fps=25)
    with pytest.raises(InputError, match="no person"):
        extract_skeleton(p)


def test_three_frame_video(tmp_path, astronaut):
    small = cv2.resize(astronaut, (256, 256))
    # Three frames is the shortest clip accepted (too short to smooth; gaps still filled)...
    seq = extract_skeleton(media.write_mp4(tmp_path / "three.mp4", [small] * 3, fps=25))
    assert seq.num_frames == 3 and (seq.body[:, 1, 2] > 0).all()
    # ...two is refused with a message naming the frame count.
    with pytest.raises(InputError, match="frame"):
        extract_skeleton(media.write_mp4(tmp_path / "two.mp4", [small] * 2, fps=25))


@pytest.mark.parametrize("fps,n", [(24, 24), (60, 60)])
def test_other_frame_rates_come_out_at_25(tmp_path, astronaut, fps, n):
    small = cv2.resize(astronaut, (256, 256))
    p = media.write_mp4(tmp_path / f"v{fps}.mp4", _driving_frames(small, n, fps / 25), fps=fps)  # 1 s either way
    seq = extract_skeleton(p)
    assert seq.fps == 25 and seq.num_frames == pytest.approx(25, abs=1)


def test_person_leaving_the_frame_is_held(tmp_path, astronaut):
    small = cv2.resize(astronaut, (256, 256))
    blank = np.full_like(small, 200)
    p = media.write_mp4(tmp_path / "leave.mp4", [small] * 12 + [blank] * 8, fps=25)
    seq = extract_skeleton(p)
    assert seq.num_frames == 20
    assert np.allclose(seq.body[-1, 0, :2], seq.body[8, 0, :2], atol=4)  # last seen pose held


def test_load_skeleton_video_letterboxes(tmp_path, extracted):
    frames = render_skeleton(extracted.slice(0, 5), 256, 256)
    p = media.write_mp4(tmp_path / "skel.mp4", frames, fps=25)
    out = load_skeleton_video(p, 832, 480)
    assert out.shape == (5, 480, 832, 3)


def test_cli(tmp_path, driving_video, portrait_path):
    seq = tmp_path / "seq.json"
    r = subprocess.run(
        [sys.executable, "-m", "hallo4.skeleton", "extract", str(driving_video), "-o", str(seq)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    vid = tmp_path / "skel.mp4"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "hallo4.skeleton",
            "render",
            str(seq),
            "-o",
            str(vid),
            "--portrait",
            str(portrait_path),
            "--overlay",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert media.probe(vid).num_frames == 25
    idle = tmp_path / "idle.json"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "hallo4.skeleton",
            "idle",
            "--portrait",
            str(portrait_path),
            "--seconds",
            "2",
            "-o",
            str(idle),
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and SkeletonSequence.load(idle).num_frames == 50
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    r = subprocess.run(
        [sys.executable, "-m", "hallo4.skeleton", "render", str(bad), "-o", str(vid)], capture_output=True, text=True
    )
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_resample_and_trim_mode(extracted):
    seq = extracted.slice(0, 10)
    up = seq.resample(50.0)
    assert up.fps == 50.0 and up.num_frames == 20
    assert np.allclose(up.body[2, :, :2], seq.body[1, :, :2], atol=1e-4)  # even frames are the originals
    mid = (seq.body[1, :, :2] + seq.body[2, :, :2]) / 2
    assert np.allclose(up.body[3, :, :2], mid, atol=1e-4)  # odd frames halfway between
    back = up.resample(25.0)
    assert back.num_frames == 10 and np.allclose(back.body[:, :, :2], seq.body[:, :, :2], atol=1e-3)
    kept, msg = fit_length(seq, 25, "trim")
    assert kept.num_frames == 10 and "trim" in msg  # trim never lengthens, and says so


def test_pingpong_indices_turn_without_repeating_a_frame():
    assert pingpong_indices(4, 10).tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3]  # 0..3..1, again
    assert pingpong_indices(1, 3).tolist() == [0, 0, 0]  # one frame: held
    assert pingpong_indices(6, 4).tolist() == [0, 1, 2, 3]  # longer than needed: a prefix
    seq = SkeletonSequence.empty(4, 8, 8)
    seq.body[:, 0, 0] = np.arange(4)
    looped, _ = fit_length(seq, 10, "pingpong")
    assert looped.body[:, 0, 0].tolist() == pingpong_indices(4, 10).tolist()  # fit_length loops with it
