"""Face detection and the 478-point face mesh (mediapipe, models packaged in the wheel: no downloads).

`analyze_face` is what the engines and the skeleton code call on a portrait. With no face it falls
back to the whole image and says so (or raises, with `require=True`); with several faces it takes
the largest and says so. Index groups are derived from mediapipe's own connection sets, ordered into
closed loops so they can be drawn and filled as polygons.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np

from .errors import InputError

# ----------------------------------------------------------------------------------------------
# Landmark index groups (mediapipe 478-point topology)
# ----------------------------------------------------------------------------------------------


def _ordered_loop(connections: frozenset[tuple[int, int]]) -> tuple[int, ...]:
    """Order an undirected ring of edges into a closed loop of vertex indices."""
    adj: dict[int, list[int]] = {}
    for a, b in connections:
        adj.setdefault(a, []).append(b)
        adj.setdefault(b, []).append(a)
    start = min(adj)
    loop = [start]
    prev, cur = None, start
    while True:
        nxt = [n for n in adj[cur] if n != prev]
        if not nxt or nxt[0] == start:
            break
        prev, cur = cur, nxt[0]
        loop.append(cur)
        if len(loop) > len(adj):
            break
    return tuple(loop)


def _groups():
    from mediapipe.python.solutions import face_mesh_connections as fmc

    lips = fmc.FACEMESH_LIPS
    # mediapipe gives both lip rings in one set; split by the ring through 61 (outer corner) and 78 (inner).
    adj: dict[int, set[int]] = {}
    for a, b in lips:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set()).add(a)

    def component(seed: int) -> frozenset[tuple[int, int]]:
        seen, stack = {seed}, [seed]
        while stack:
            for n in adj[stack.pop()]:
                if n not in seen:
                    seen.add(n)
                    stack.append(n)
        return frozenset((a, b) for a, b in lips if a in seen)

    return {
        "LIPS_OUTER": _ordered_loop(component(61)),
        "LIPS_INNER": _ordered_loop(component(78)),
        "FACE_OVAL": _ordered_loop(fmc.FACEMESH_FACE_OVAL),
        "LEFT_EYE": _ordered_loop(fmc.FACEMESH_LEFT_EYE),
        "RIGHT_EYE": _ordered_loop(fmc.FACEMESH_RIGHT_EYE),
        "LEFT_IRIS": _ordered_loop(fmc.FACEMESH_LEFT_IRIS),
        "RIGHT_IRIS": _ordered_loop(fmc.FACEMESH_RIGHT_IRIS),
        "LEFT_BROW": tuple(sorted({i for e in fmc.FACEMESH_LEFT_EYEBROW for i in e})),
        "RIGHT_BROW": tuple(sorted({i for e in fmc.FACEMESH_RIGHT_EYEBROW for i in e})),
        "NOSE": tuple(sorted({i for e in fmc.FACEMESH_NOSE for i in e})),
        "TESSELATION": tuple(sorted(fmc.FACEMESH_TESSELATION)),
    }


_G = _groups()
LIPS_OUTER: tuple[int, ...] = _G["LIPS_OUTER"]
LIPS_INNER: tuple[int, ...] = _G["LIPS_INNER"]
FACE_OVAL: tuple[int, ...] = _G["FACE_OVAL"]
LEFT_EYE: tuple[int, ...] = _G["LEFT_EYE"]  # the subject's left eye (image right)
RIGHT_EYE: tuple[int, ...] = _G["RIGHT_EYE"]
LEFT_IRIS: tuple[int, ...] = _G["LEFT_IRIS"]
RIGHT_IRIS: tuple[int, ...] = _G["RIGHT_IRIS"]
LEFT_BROW: tuple[int, ...] = _G["LEFT_BROW"]
RIGHT_BROW: tuple[int, ...] = _G["RIGHT_BROW"]
NOSE: tuple[int, ...] = _G["NOSE"]
TESSELATION_EDGES: tuple[tuple[int, int], ...] = _G["TESSELATION"]
UPPER_LIP_INNER_MID = 13
LOWER_LIP_INNER_MID = 14
UPPER_LIP_OUTER_MID = 0
LOWER_LIP_OUTER_MID = 17
MOUTH_CORNERS = (61, 291)
CHIN = 152
FOREHEAD = 10
NOSE_TIP = 1
LEFT_EYE_LIDS = (386, 374)  # upper, lower lid mid points of the subject's left eye
RIGHT_EYE_LIDS = (159, 145)
LEFT_EYE_CORNERS = (362, 263)  # inner, outer corner of the subject's left eye (they stay put on a blink)
RIGHT_EYE_CORNERS = (133, 33)
MOUTH_INNER_CORNERS = (78, 308)  # where the inner lip lines meet (image left, image right)
SUBNASALE = 2  # the base of the nose, above the upper lip's middle
FACE_SIDES = (234, 454)  # the widest points of the face oval (image left, image right)
NUM_LANDMARKS = 478
IRISES: tuple[int, ...] = tuple(range(468, NUM_LANDMARKS))  # both iris rings with their centres


def _lip_line(loop: tuple[int, ...], through: int) -> tuple[int, ...]:
    """The part of a lip loop from the image-left corner to the image-right corner passing `through`."""
    left, right = MOUTH_INNER_CORNERS if MOUTH_INNER_CORNERS[0] in loop else MOUTH_CORNERS
    i, j = loop.index(left), loop.index(right)
    forward = loop[i : j + 1] if i < j else loop[i:] + loop[: j + 1]
    backward = (loop[j : i + 1] if j < i else loop[j:] + loop[: i + 1])[::-1]
    return forward if through in forward else backward


# The inner and outer lip lines, each corner to corner, image left to right (corners included).
LIP_INNER_UPPER: tuple[int, ...] = _lip_line(LIPS_INNER, UPPER_LIP_INNER_MID)
LIP_INNER_LOWER: tuple[int, ...] = _lip_line(LIPS_INNER, LOWER_LIP_INNER_MID)
LIP_OUTER_UPPER: tuple[int, ...] = _lip_line(LIPS_OUTER, UPPER_LIP_OUTER_MID)
LIP_OUTER_LOWER: tuple[int, ...] = _lip_line(LIPS_OUTER, LOWER_LIP_OUTER_MID)


def face_height(landmarks: np.ndarray) -> float:
    """Forehead-to-chin distance: the scale every mouth/eye measure is normalised by."""
    return float(np.linalg.norm(landmarks[FOREHEAD, :2] - landmarks[CHIN, :2])) + 1e-6


def mouth_opening(landmarks: np.ndarray) -> float:
    """Inner-lip gap divided by face height (0 = closed, ~0.1 = wide open)."""
    gap = np.linalg.norm(landmarks[UPPER_LIP_INNER_MID, :2] - landmarks[LOWER_LIP_INNER_MID, :2])
    return float(gap) / face_height(landmarks)


def eye_opening(landmarks: np.ndarray) -> float:
    """Mean lid gap of both eyes / face height (blink detection)."""
    gaps = [np.linalg.norm(landmarks[a, :2] - landmarks[b, :2]) for a, b in (LEFT_EYE_LIDS, RIGHT_EYE_LIDS)]
    return float(np.mean(gaps)) / face_height(landmarks)


# ----------------------------------------------------------------------------------------------
# Detection + mesh
# ----------------------------------------------------------------------------------------------
@dataclass
class FaceAnalysis:
    landmarks: np.ndarray | None  # (478, 3) float32, pixels (z scaled like x)
    box: tuple[int, int, int, int]  # (x0, y0, x1, y1)
    num_faces: int
    width: int
    height: int
    warnings: list[str] = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.landmarks is not None


_lock = threading.Lock()
_solutions: dict[str, object] = {}


def _solution(kind: str):
    """Per-process cached mediapipe graphs (building one takes ~100 ms; they are not thread-safe)."""
    import mediapipe as mp

    if kind not in _solutions:
        if kind == "detect_far":
            _solutions[kind] = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=0.5
            )
        elif kind == "detect_near":
            _solutions[kind] = mp.solutions.face_detection.FaceDetection(
                model_selection=0, min_detection_confidence=0.5
            )
        elif kind == "mesh":
            _solutions[kind] = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True, min_detection_confidence=0.3
            )
        else:  # pragma: no cover
            raise KeyError(kind)
    return _solutions[kind]


def close_cached_graphs() -> None:
    """Close this process's cached mediapipe graphs (they are rebuilt on next use)."""
    with _lock:
        graphs = list(_solutions.values())
        _solutions.clear()
    for graph in graphs:
        graph.close()


def _rgb(image: np.ndarray) -> np.ndarray:
    """uint8 RGB for mediapipe: grayscale (H, W) / (H, W, 1) is expanded, alpha dropped."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}")
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    return np.ascontiguousarray(arr[..., :3], dtype=np.uint8)


def detect_faces(image: np.ndarray) -> list[tuple[int, int, int, int, float]]:
    """Face boxes (x0, y0, x1, y1, score), largest first."""
    image = _rgb(image)
    h, w = image.shape[:2]
    boxes: list[tuple[int, int, int, int, float]] = []
    with _lock:
        for kind in ("detect_far", "detect_near"):
            res = _solution(kind).process(image)
            if res.detections:
                for det in res.detections:
                    bb = det.location_data.relative_bounding_box
                    x0 = int(max(0, bb.xmin * w))
                    y0 = int(max(0, bb.ymin * h))
                    x1 = int(min(w, (bb.xmin + bb.width) * w))
                    y1 = int(min(h, (bb.ymin + bb.height) * h))
                    if x1 > x0 and y1 > y0:
                        boxes.append((x0, y0, x1, y1, float(det.score[0])))
    # Two models (far/near range) see different faces; merge their boxes, dropping duplicates.
    boxes.sort(key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), reverse=True)
    kept: list[tuple[int, int, int, int, float]] = []
    for b in boxes:
        if all(_iou(b, k) < 0.3 for k in kept):
            kept.append(b)
    return kept


def _iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _mesh(image: np.ndarray) -> np.ndarray | None:
    image = np.ascontiguousarray(image)
    h, w = image.shape[:2]
    with _lock:
        res = _solution("mesh").process(image)
    if not res.multi_face_landmarks:
        return None
    lm = res.multi_face_landmarks[0].landmark
    return np.array([(p.x * w, p.y * h, p.z * w) for p in lm], dtype=np.float32)


def analyze_face(image: np.ndarray, *, require: bool = False, name: str = "portrait") -> FaceAnalysis:
    """Largest face's 478 landmarks and box; whole-image fallback (with a warning) when none."""
    image = _rgb(image)
    h, w = image.shape[:2]
    boxes = detect_faces(image)
    warnings: list[str] = []
    landmarks = None
    if boxes:
        x0, y0, x1, y1, _ = boxes[0]
        if len(boxes) > 1:
            warnings.append(f"{len(boxes)} faces found in the {name}; animating the largest one.")
        # Mesh on a generous crop around the largest face so other faces cannot be picked.
        bw, bh = x1 - x0, y1 - y0
        cx0, cy0 = max(0, int(x0 - bw * 0.6)), max(0, int(y0 - bh * 0.8))
        cx1, cy1 = min(w, int(x1 + bw * 0.6)), min(h, int(y1 + bh * 0.6))
        crop_lm = _mesh(image[cy0:cy1, cx0:cx1])
        if crop_lm is not None:
            crop_lm[:, 0] += cx0
            crop_lm[:, 1] += cy0
            landmarks = crop_lm
    if landmarks is None:
        # The detector can miss large close-up faces the mesh still finds (and the crop can cut a
        # face the mesh needs whole): try the mesh on the full image before giving up.
        landmarks = _mesh(image)
        if landmarks is not None and not boxes:
            boxes = [_box_of(landmarks, w, h) + (1.0,)]
    if landmarks is None:
        if require:
            raise InputError(
                name,
                "no face could be detected",
                "Use a well-lit, front-facing photo where the face is clearly visible and not too small (at least ~100 px tall).",
            )
        warnings.append(f"No face detected in the {name}; using the whole image. Results may not look like talking.")
        return FaceAnalysis(None, (0, 0, w, h), 0, w, h, warnings)
    box = _box_of(landmarks, w, h)
    return FaceAnalysis(landmarks, box, max(1, len(boxes)), w, h, warnings)


def _box_of(landmarks: np.ndarray, w: int, h: int) -> tuple[int, int, int, int]:
    x0, y0 = np.floor(landmarks[:, :2].min(0)).astype(int)
    x1, y1 = np.ceil(landmarks[:, :2].max(0)).astype(int)
    return (int(max(0, x0)), int(max(0, y0)), int(min(w, x1)), int(min(h, y1)))


def face_crop_box(analysis: FaceAnalysis, margin: float = 0.5, square: bool = True) -> tuple[int, int, int, int]:
    """A crop around the face with `margin` (fraction of the face size) on each side, clipped."""
    x0, y0, x1, y1 = analysis.box
    if not analysis.found:
        return (0, 0, analysis.width, analysis.height)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    hw, hh = (x1 - x0) * (0.5 + margin), (y1 - y0) * (0.5 + margin)
    if square:
        hw = hh = max(hw, hh)
    return (
        int(max(0, cx - hw)),
        int(max(0, cy - hh)),
        int(min(analysis.width, cx + hw)),
        int(min(analysis.height, cy + hh)),
    )


class FaceMesher:
    """Face mesh for video frames (tracking mode: faster and steadier than per-image detection)."""

    def __init__(self, refine_landmarks: bool = True, static: bool = False):
        import mediapipe as mp

        self._mesh = mp.solutions.face_mesh.FaceMesh(
            static_image_mode=static,
            max_num_faces=1,
            refine_landmarks=refine_landmarks,
            min_detection_confidence=0.3,
            min_tracking_confidence=0.3,
        )

    def process(self, frame: np.ndarray) -> np.ndarray | None:
        """(478, 3) pixel landmarks of the frame's face, or None when no face is seen."""
        frame = _rgb(frame)
        h, w = frame.shape[:2]
        res = self._mesh.process(frame)
        if not res.multi_face_landmarks:
            return None
        lm = res.multi_face_landmarks[0].landmark
        return np.array([(p.x * w, p.y * h, p.z * w) for p in lm], dtype=np.float32)

    def close(self) -> None:
        self._mesh.close()

    def __enter__(self) -> FaceMesher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
