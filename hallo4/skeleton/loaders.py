"""Reading skeleton files into a `SkeletonSequence`: our JSON, OpenPose JSON, DWPose .npy folders.

Every reader checks what a file claims (size on disk, canvas, fps, frame count) before converting
frames, and every result is validated (`SkeletonSequence.validate`) before it is returned.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import limits
from ..constants import FPS
from ..errors import InputError
from .format import BODY25_TO_COCO18, FORMAT, N_BODY, N_FACE, N_HAND, VERSION, SkeletonSequence, check_canvas


def load_sequence(path: str | Path) -> SkeletonSequence:
    """Our JSON, OpenPose JSON (file or folder), or a folder of DWPose-style .npy files."""
    p = Path(path)
    if not p.exists():
        raise InputError("skeleton", "file not found", "Upload the skeleton file again.", path=str(p))
    if p.is_dir():
        return _load_folder(p).validate(p)
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


def _load_folder(p: Path) -> SkeletonSequence:
    """A folder of DWPose .npy files, or of OpenPose per-frame JSON files."""
    if sorted(p.glob("*.npy")):
        return _load_npy_folder(p)
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
    return _load_openpose([_read_json(f) for f in files], p)


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


def _numbers(value, dtype, what: str, frame: int, p: Path, fix: str) -> np.ndarray:
    """`value` as a numeric array, or an InputError naming the frame and the part that is not numbers."""
    try:
        return np.asarray(value, dtype)
    except (ValueError, TypeError) as exc:
        raise InputError("skeleton", f"frame {frame}: {what} is not a list of numbers", fix, path=str(p)) from exc


def _arr(value, shape: tuple[int, ...], what: str, frame: int, p: Path) -> np.ndarray:
    a = _numbers(value, np.float32, what, frame, p, "Re-export the skeleton.")
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
        w, h, fps = float(data["width"]), float(data["height"]), float(data.get("fps", FPS))
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
    check_canvas(w, h, str(p))
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
    a = _numbers(flat, np.float64, what, frame, p, "Use OpenPose's JSON output.")
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
    return SkeletonSequence(body, hands, face, w, h, FPS)


def _load_npy_folder(p: Path) -> SkeletonSequence:
    meta = {"width": 512, "height": 512, "fps": FPS}
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
