"""The skeleton keypoint format and its loaders.

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
from ..errors import InputError

FORMAT = "hallo4.skeleton"
VERSION = 1
N_BODY, N_HAND, N_FACE = 18, 21, 68
MOUTH = tuple(range(48, 68))
# BODY_25 -> COCO-18 (BODY_25 has mid-hip at 8 and feet 19-24; COCO-18 has neither).
BODY25_TO_COCO18 = [0, 1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]


@dataclass
class SkeletonSequence:
    body: np.ndarray
    hands: np.ndarray
    face: np.ndarray
    width: int
    height: int
    fps: float = 25.0

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
    def empty(cls, num_frames: int, width: int, height: int, fps: float = 25.0) -> SkeletonSequence:
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
    def from_points(cls, pts: np.ndarray, width: int, height: int, fps: float = 25.0) -> SkeletonSequence:
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
        if self.num_frames > lim.max_skeleton_frames or self.duration > lim.max_skeleton_frames / limits.FPS:
            raise InputError(
                "skeleton",
                f"has {self.num_frames} frames ({self.duration:.0f} s), more than the "
                f"{lim.max_skeleton_frames} frames ({lim.max_skeleton_frames / limits.FPS:.0f} s) this server handles",
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
        if not (1 <= self.width <= lim.max_skeleton_side and 1 <= self.height <= lim.max_skeleton_side):
            raise InputError(
                "skeleton",
                f"claims a {self.width}x{self.height} canvas, larger than {lim.max_skeleton_side} px a side",
                f"Re-export it on a canvas of at most {lim.max_skeleton_side}x{lim.max_skeleton_side}.",
                path=where,
            )
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

    @classmethod
    def load(cls, path: str | Path) -> SkeletonSequence:
        """Our JSON, OpenPose JSON (file or folder), or a folder of DWPose-style .npy files."""
        p = Path(path)
        if not p.exists():
            raise InputError("skeleton", "file not found", "Upload the skeleton file again.", path=str(p))
        if p.is_dir():
            if sorted(p.glob("*.npy")):
                return _load_npy_folder(p).validate(p)
            files = sorted(p.glob("*.json"))
            if not files:
                raise InputError(
                    "skeleton",
                    "the folder has no .json or .npy keypoint files",
                    "Point at our skeleton JSON, OpenPose's JSON output folder or a folder of DWPose .npy files.",
                    path=str(p),
                )
            if len(files) > limits.active().max_skeleton_frames:
                raise InputError(
                    "skeleton",
                    f"the folder has {len(files)} frame files, more than {limits.active().max_skeleton_frames}",
                    "Use a shorter sequence.",
                    path=str(p),
                )
            return _load_openpose([_read_json(f) for f in files], p).validate(p)
        data = _read_json(p)
        if isinstance(data, dict) and data.get("format") == FORMAT:
            return _from_ours(data, p).validate(p)
        if isinstance(data, dict) and "people" in data:
            return _load_openpose([data], p).validate(p)
        if isinstance(data, list) and data and isinstance(data[0], dict) and "people" in data[0]:
            return _load_openpose(data, p).validate(p)
        raise InputError(
            "skeleton",
            "is JSON but not a skeleton we know (neither hallo4.skeleton nor OpenPose)",
            "Export it again from the Skeleton tab, or use OpenPose's --write_json output.",
            path=str(p),
        )


def _read_json(p: Path):
    cap = limits.active().max_skeleton_bytes
    if p.stat().st_size > cap:
        raise InputError(
            "skeleton",
            f"the file is {p.stat().st_size / 1024**2:.0f} MB, more than the {cap / 1024**2:.0f} MB allowed",
            "Use a shorter skeleton sequence.",
            path=str(p),
        )
    try:
        return json.loads(p.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            "skeleton", f"is not valid JSON ({exc})", "Upload the file as it was saved, unmodified.", path=str(p)
        ) from exc


def _arr(value, shape: tuple[int, ...], what: str, frame: int, p: Path) -> np.ndarray:
    try:
        a = np.asarray(value, np.float32)
    except (ValueError, TypeError) as exc:
        raise InputError(
            "skeleton", f"frame {frame}: {what} is not a list of numbers", "Re-export the skeleton.", path=str(p)
        ) from exc
    if a.shape != shape:
        raise InputError(
            "skeleton",
            f"frame {frame}: {what} has shape {list(a.shape)}, expected {list(shape)}",
            f"Each frame needs {N_BODY} body, 2x{N_HAND} hand and {N_FACE} face points as [x, y, confidence].",
            path=str(p),
        )
    if not np.all(np.isfinite(a)):
        raise InputError(
            "skeleton",
            f"frame {frame}: {what} contains NaN or infinite values",
            "Re-export the skeleton.",
            path=str(p),
        )
    return a


def _from_ours(data: dict, p: Path) -> SkeletonSequence:
    if data.get("version") != VERSION:
        raise InputError(
            "skeleton",
            f"has format version {data.get('version')}, this program reads version {VERSION}",
            "Update Hallo4 Studio or re-export the skeleton.",
            path=str(p),
        )
    try:
        w, h, fps = float(data["width"]), float(data["height"]), float(data.get("fps", 25.0))
        frames = data["frames"]
    except (KeyError, TypeError, ValueError, OverflowError) as exc:
        raise InputError("skeleton", f"is missing a field ({exc})", "Re-export the skeleton.", path=str(p)) from exc
    if not (w > 0 and h > 0 and fps > 0) or not isinstance(frames, list) or not frames:
        raise InputError(
            "skeleton", "has no frames or a non-positive canvas size / fps", "Re-export the skeleton.", path=str(p)
        )
    lim = limits.active()
    # Cheap header checks before converting every frame (the canvas / fps a file claims).
    lim.check_fps(fps, "skeleton", str(p))
    if max(w, h) > lim.max_skeleton_side or not (np.isfinite(w) and np.isfinite(h)):
        raise InputError(
            "skeleton",
            f"claims a {w:.0f}x{h:.0f} canvas, larger than {lim.max_skeleton_side} px a side",
            f"Re-export it on a canvas of at most {lim.max_skeleton_side}x{lim.max_skeleton_side}.",
            path=str(p),
        )
    if len(frames) > lim.max_skeleton_frames:
        raise InputError(
            "skeleton",
            f"has {len(frames)} frames, more than the {lim.max_skeleton_frames} this server handles",
            "Trim the skeleton (only as long as the audio is needed).",
            path=str(p),
        )
    w, h = int(w), int(h)
    if not all(isinstance(f, dict) for f in frames):
        raise InputError(
            "skeleton", "its frames are not objects with body / hands / face", "Re-export the skeleton.", path=str(p)
        )
    body = np.stack([_arr(f.get("body"), (N_BODY, 3), "body", i, p) for i, f in enumerate(frames)])
    hands = np.stack([_arr(f.get("hands"), (2, N_HAND, 3), "hands", i, p) for i, f in enumerate(frames)])
    face = np.stack([_arr(f.get("face"), (N_FACE, 3), "face", i, p) for i, f in enumerate(frames)])
    return SkeletonSequence(body, hands, face, w, h, fps)


def _openpose_points(flat, n: int, what: str, frame: int, p: Path) -> np.ndarray:
    if not flat:
        return np.zeros((n, 3), np.float32)
    try:
        a = np.asarray(flat, np.float64)
    except (ValueError, TypeError) as exc:
        raise InputError(
            "skeleton", f"frame {frame}: {what} is not a list of numbers", "Use OpenPose's JSON output.", path=str(p)
        ) from exc
    if not np.all(np.isfinite(a)) or (a.size and np.abs(a).max() > 4 * limits.active().max_skeleton_side):
        raise InputError(
            "skeleton",
            f"frame {frame}: {what} has coordinates that are not finite or far outside any canvas "
            f"(up to {np.abs(a).max():.3g})",
            "Keypoints must be pixel positions; re-run OpenPose.",
            path=str(p),
        )
    a = a.astype(np.float32)
    if a.size % 3 or a.size // 3 not in (n, 25 if what == "pose" else n):
        raise InputError(
            "skeleton",
            f"frame {frame}: {what} has {a.size} values, expected {n * 3}",
            "Use OpenPose's JSON output (COCO-18 or BODY_25 body model).",
            path=str(p),
        )
    a = a.reshape(-1, 3)
    if what == "pose" and len(a) == 25:
        a = a[BODY25_TO_COCO18]
    return a


def _load_openpose(frames: list, p: Path) -> SkeletonSequence:
    body, hands, face = [], [], []
    for i, fr in enumerate(frames):
        people = fr.get("people") or []
        person = people[0] if people else {}
        body.append(_openpose_points(person.get("pose_keypoints_2d"), N_BODY, "pose", i, p))
        hands.append(
            np.stack(
                [
                    _openpose_points(person.get("hand_left_keypoints_2d"), N_HAND, "left hand", i, p),
                    _openpose_points(person.get("hand_right_keypoints_2d"), N_HAND, "right hand", i, p),
                ]
            )
        )
        face.append(
            _openpose_points(person.get("face_keypoints_2d"), N_FACE + 2, "face", i, p)[:N_FACE]
            if person.get("face_keypoints_2d") and len(person["face_keypoints_2d"]) == 70 * 3
            else _openpose_points(person.get("face_keypoints_2d"), N_FACE, "face", i, p)
        )
    body, hands, face = np.stack(body), np.stack(hands), np.stack(face)
    pts = np.concatenate([body.reshape(-1, 3), hands.reshape(-1, 3), face.reshape(-1, 3)])
    seen = pts[pts[:, 2] > 0]
    if len(seen) == 0:
        raise InputError(
            "skeleton",
            "no person in any frame of the OpenPose output",
            "Run OpenPose on a video with a visible person.",
            path=str(p),
        )
    # OpenPose JSON has no canvas size: take the smallest 16-aligned box holding every point.
    w = int(np.ceil((seen[:, 0].max() + 1) / 16) * 16)
    h = int(np.ceil((seen[:, 1].max() + 1) / 16) * 16)
    return SkeletonSequence(body, hands, face, w, h, 25.0)


def _load_npy_folder(p: Path) -> SkeletonSequence:
    meta = {"width": 512, "height": 512, "fps": 25.0}
    if (p / "meta.json").exists():
        meta.update(_read_json(p / "meta.json"))
    frames = []
    for i, f in enumerate(sorted(p.glob("*.npy"))):
        try:
            a = np.load(f, allow_pickle=False)  # never unpickle user files
        except ValueError as exc:
            raise InputError(
                "skeleton",
                f"{f.name} is not a plain numeric .npy array",
                "Save keypoints with numpy.save.",
                path=str(f),
            ) from exc
        frames.append(_arr(a, (N_BODY + 2 * N_HAND + N_FACE, 3), f"{f.name}", i, p))
    pts = np.stack(frames)
    pts[..., 0] *= meta["width"]
    pts[..., 1] *= meta["height"]
    return SkeletonSequence.from_points(pts, meta["width"], meta["height"], meta["fps"])
