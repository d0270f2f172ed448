"""Retargeting accuracy and how well the lite engine follows a driving head's turns.

python bench/bench_retarget.py  ->  bench/results/retarget.json

For each direction (astronaut -> Grace Hopper and back): an 8 s talking clip of the driving portrait
with known head motion (yaw +-20 deg, pitch +-7, roll +-4, a little drift; mouth from real speech) is
made with `hallo4.motion_clips`, its skeleton extracted (mediapipe holistic), retargeted onto the other
portrait, and the lite engine renders that portrait with it. Measured:
- retarget error: frame 0's nose and eye keypoints vs the portrait's detected ones, % of face width;
- yaw / pitch / roll correlation between the driving skeleton's head pose and the lite output's head
  pose (both measured the same way: face mesh -> 68 points -> weak-perspective fit), and the gain
  (how many degrees the output turns per driving degree; a 2D warp shows less than a real turn).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import write  # noqa: E402
from hallo4 import face as F  # noqa: E402
from hallo4 import media  # noqa: E402
from hallo4.engines import GenerationRequest, get_engine  # noqa: E402
from hallo4.head_pose import depth_68, head_pose_track  # noqa: E402
from hallo4.motion_clips import talking_head_clip  # noqa: E402
from hallo4.skeleton import extract_skeleton, retarget  # noqa: E402
from hallo4.skeleton.extract import MESH_TO_68, face_points  # noqa: E402
from hallo4.skeleton.format import LEFT_EYE_68, RIGHT_EYE_68  # noqa: E402

PORTRAITS = ROOT / "examples" / "portraits"
SPEECH = ROOT / "examples" / "audio" / "story.wav"
SECONDS = 8.0


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def run(driver: str, target: str, tmp: Path) -> dict:
    clip = talking_head_clip(
        PORTRAITS / driver, tmp / f"drive_{driver}.mp4", seconds=SECONDS, audio=SPEECH, size=384, seed=5
    )
    t = time.perf_counter()
    seq = extract_skeleton(clip.video)
    extract_s = time.perf_counter() - t
    image = np.asarray(media.load_image(PORTRAITS / target))
    out = retarget(seq, image)
    lm = F.analyze_face(image, require=True).landmarks
    face_w = float(np.ptp(lm[list(F.FACE_OVAL), 0]))
    errors = {
        "nose": np.linalg.norm(out.face[0, 30, :2] - lm[MESH_TO_68[30], :2]),
        "right_eye": np.linalg.norm(out.face[0, RIGHT_EYE_68, :2].mean(0) - lm[list(F.RIGHT_EYE), :2].mean(0)),
        "left_eye": np.linalg.norm(out.face[0, LEFT_EYE_68, :2].mean(0) - lm[list(F.LEFT_EYE), :2].mean(0)),
    }
    skel = out.save(tmp / f"skel_{driver}.json")
    t = time.perf_counter()
    req = GenerationRequest(
        portrait=PORTRAITS / target,
        audio=SPEECH,
        skeleton=skel,
        seed=1,
        size=384,
        max_seconds=SECONDS,
        output=tmp / f"out_{driver}.mp4",
    )
    res = get_engine("lite").generate(req)
    lite_s = time.perf_counter() - t
    frames = media.read_video(res.video).frames
    with F.FaceMesher() as mesher:
        meshes = [mesher.process(f) for f in frames]
    depth = depth_68(meshes[0])
    pose_out = head_pose_track(np.stack([face_points(m) for m in meshes]), depth)
    n = len(pose_out)
    pose_in = head_pose_track(out.face, depth)[:n]
    gain = lambda a, b: float(np.polyfit(a, b, 1)[0])  # noqa: E731
    return {
        "driver": driver,
        "target": target,
        "frames": int(n),
        "extract_s": round(extract_s, 2),
        "lite_s": round(lite_s, 2),
        "retarget_error_pct_face_width": {k: round(100 * float(v) / face_w, 2) for k, v in errors.items()},
        "yaw_corr": round(_corr(pose_in[:, 0], pose_out[:, 0]), 3),
        "pitch_corr": round(_corr(pose_in[:, 1], pose_out[:, 1]), 3),
        "roll_corr": round(_corr(pose_in[:, 2], pose_out[:, 2]), 3),
        "yaw_gain": round(gain(pose_in[:, 0], pose_out[:, 0]), 2),
        "driving_yaw_range_deg": round(float(np.degrees(np.ptp(pose_in[:, 0]))), 1),
        "skeleton_vs_commanded_yaw_corr": round(_corr(head_pose_track(seq.face, depth)[:n, 0], clip.yaw[:n]), 3),
    }


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    rows = [run("astronaut.png", "grace_hopper.jpg", tmp), run("grace_hopper.jpg", "astronaut.png", tmp)]
    write(
        "retarget",
        {
            "clip": f"{SECONDS:g} s talking clip at 384 px, yaw +-20 deg, pitch +-7, roll +-4 (hallo4.motion_clips)",
            "runs": rows,
        },
    )


if __name__ == "__main__":
    main()
