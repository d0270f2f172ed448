"""The skeleton keypoint format (the loaders of files in these formats live in `loaders`).

`SkeletonSequence` holds, per frame, in pixel coordinates of a `width` x `height` canvas:
- body (T, 18, 3): OpenPose COCO-18 order: 0 nose, 1 neck, 2 r_shoulder, 3 r_elbow, 4 r_wrist,
  5 l_shoulder, 6 l_elbow, 7 l_wrist, 8 r_hip, 9 r_knee, 10 r_ankle, 11 l_hip, 12 l_knee,
  13 l_ankle, 14 r_eye, 15 l_eye, 16 r_ear, 17 l_ear ("r"/"l" = the subject's right/left);
- hands (T, 2, 21, 3): [0] = left hand, [1] = right hand, OpenPose/mediapipe hand order (0 wrist,
  1-4 thumb, 5-8 index, 9-12 middle, 13-16 ring, 17-20 pinky);
- face (T, 68, 3): iBUG-68 order (jaw 0-16, brows 17-26, nose 27-35, eyes 36-47, mouth 48-67);
the third value is a confidence in [0, 1] (0 = missing).

Files: our JSON (`{"format": "hallo4.skeleton", "version": 1, ...}`), OpenPose's per-frame JSON
(one file or a folder of them, `people[0].pose_keypoints_2d` / `hand_left_keypoints_2d` /
`hand_right_keypoints_2d` / `face_keypoints_2d`; 25-point BODY_25 is reduced to COCO-18), and a folder
of DWPose-style `.npy` files: one per frame, each (128, 3) in our order (18 body, 21 left hand,
21 right hand, 68 face), x/y normalised to [0, 1] (as DWPose's `candidate` arrays are); the canvas
size comes from a `meta.json` beside them ({"width": W, "height": H, "fps": F}) or defaults to 512x512.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import limits
from ..constants import FPS
from ..errors import InputError

FORMAT = "hallo4.skeleton"
VERSION = 1
N_BODY, N_HAND, N_FACE = 18, 21, 68
MOUTH = tuple(range(48, 68))
# iBUG-68 eye groups (subject's right eye first) and the upper / lower lid point pairs that close in a blink.
RIGHT_EYE_68, LEFT_EYE_68, EYES_68 = slice(36, 42), slice(42, 48), slice(36, 48)
EYELID_PAIRS_68 = ((37, 41), (38, 40), (43, 47), (44, 46))
# BODY_25 -> COCO-18 (BODY_25 has mid-hip at 8 and feet 19-24; COCO-18 has neither).
BODY25_TO_COCO18 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]


@dataclass
class SkeletonSequence:
    body: np.ndarray
    hands: np.ndarray
    face: np.ndarray
    width: int
    height: int
    fps: float = FPS

    def __post_init__(self) -> None:
        self.body = np.asarray(self.body, np.float32).reshape(-1, N_BODY, 3)
        t = len(self.body)
        self.hands = np.asarray(self.hands, np.float32).reshape(t, 2, N_HAND, 3)
        self.face = np.asarray(self.face, np.float32).reshape(t, N_FACE, 3)
        self.width, self.height, self.fps = int(self.width), int(self.height), float(self.fps)

    @property
    def num_frames(self) -> int:
        return int(len(self.body))

    @property
    def duration(self) -> float:
        return self.num_frames / self.fps

    @classmethod
    def empty(cls, num_frames: int, width: int, height: int, fps: float = FPS) -> SkeletonSequence:
        return cls(
            np.zeros((num_frames, N_BODY, 3)),
            np.zeros((num_frames, 2, N_HAND, 3)),
            np.zeros((num_frames, N_FACE, 3)),
            width,
            height,
            fps,
        )

    def copy(self) -> SkeletonSequence:
        return SkeletonSequence(
            self.body.copy(), self.hands.copy(), self.face.copy(), self.width, self.height, self.fps
        )

    def points(self) -> np.ndarray:
        """All keypoints of each frame as one (T, 128, 3) array (body, left hand, right hand, face)."""
        return np.concatenate([self.body, self.hands.reshape(-1, 2 * N_HAND, 3), self.face], axis=1)

    @classmethod
    def from_points(cls, pts: np.ndarray, width: int, height: int, fps: float = FPS) -> SkeletonSequence:
        pts = np.asarray(pts, np.float32)
        return cls(
            pts[:, :N_BODY],
            pts[:, N_BODY : N_BODY + 2 * N_HAND].reshape(-1, 2, N_HAND, 3),
            pts[:, N_BODY + 2 * N_HAND :],
            width,
            height,
            fps,
        )

    def slice(self, start: int, stop: int) -> SkeletonSequence:
        return SkeletonSequence(
            self.body[start:stop], self.hands[start:stop], self.face[start:stop], self.width, self.height, self.fps
        )

    def resample(self, fps: float) -> SkeletonSequence:
        """Linear interpolation in time to `fps` (confidence: the lower of the two neighbours)."""
        if abs(fps - self.fps) < 1e-6 or self.num_frames < 2:
            out = self.copy()
            out.fps = fps
            return out
        pts = self.points()
        n_out = max(1, int(round(self.num_frames / self.fps * fps)))
        cap = limits.active().max_skeleton_frames
        if n_out > cap:
            raise InputError(
                "skeleton",
                f"{self.num_frames} frames at {self.fps:g} fps become {n_out} frames at {fps:g} fps, "
                f"more than the {cap} this server handles",
                "Use a shorter skeleton or a normal frame rate (25 fps).",
            )
        t = np.arange(n_out) * self.fps / fps
        i0 = np.clip(np.floor(t).astype(int), 0, self.num_frames - 1)
        i1 = np.clip(i0 + 1, 0, self.num_frames - 1)
        w = (t - i0)[:, None, None].astype(np.float32)
        xy = pts[i0, :, :2] * (1 - w) + pts[i1, :, :2] * w
        conf = np.minimum(pts[i0, :, 2:], pts[i1, :, 2:])
        return SkeletonSequence.from_points(np.concatenate([xy, conf], axis=2), self.width, self.height, fps)

    def validate(self, path: str | Path | None = None) -> SkeletonSequence:
        """Refuse what would cost unbounded memory or time later (checked right after parsing, before
        anything is resampled or rendered): canvas, frame count, fps, duration and coordinates."""
        lim = limits.active()
        where = str(path) if path else None
        lim.check_fps(self.fps, "skeleton", where)
        if self.num_frames > lim.max_skeleton_frames or self.duration > lim.max_skeleton_frames / FPS:
            raise InputError(
                "skeleton",
                f"has {self.num_frames} frames ({self.duration:.0f} s), more than the "
                f"{lim.max_skeleton_frames} frames ({lim.max_skeleton_frames / FPS:.0f} s) this server handles",
                "Trim the skeleton (only as long as the audio is needed).",
                path=where,
            )
        xy = self.points()[..., :2]
        far = float(np.abs(xy).max()) if xy.size else 0.0
        if not np.isfinite(far) or far > 4 * lim.max_skeleton_side:
            raise InputError(
                "skeleton",
                f"has coordinates up to {far:.3g} px, far outside any canvas "
                f"(the limit is {4 * lim.max_skeleton_side} px)",
                "Keypoints must be pixel positions on the video's canvas; re-export the skeleton.",
                path=where,
            )
        check_canvas(self.width, self.height, where)
        return self

    # -- files ----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
            "num_frames": self.num_frames,
            "frames": [
                {
                    "body": np.round(self.body[i], 2).tolist(),
                    "hands": np.round(self.hands[i], 2).tolist(),
                    "face": np.round(self.face[i], 2).tolist(),
                }
                for i in range(self.num_frames)
            ],
        }

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.part")
        tmp.write_text(json.dumps(self.to_dict(), separators=(",", ":")))
        tmp.replace(path)  # atomic: never a half-written skeleton under the real name
        return path


def check_canvas(width: float, height: float, where: str | None) -> None:
    """The canvas a skeleton claims must be finite and at most `max_skeleton_side` a side."""
    side = limits.active().max_skeleton_side
    if not (np.isfinite(width) and np.isfinite(height) and 1 <= width <= side and 1 <= height <= side):
        raise InputError(
            "skeleton",
            f"claims a {width:.0f}x{height:.0f} canvas, larger than {side} px a side",
            f"Re-export it on a canvas of at most {side}x{side}.",
            path=where,
        )
