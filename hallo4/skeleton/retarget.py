"""The portrait's own pose and retargeting a driving skeleton onto it.

Different canvas aspects: the result always lives on the portrait's canvas (its width x height); the
driving video's own canvas only matters for `keep=True`, which letterboxes it with the Hallo4 fit rule.
"""

from __future__ import annotations

import numpy as np

from .. import face as F
from ..errors import InputError
from .extract import body_from_pose, face_points
from .format import SkeletonSequence


def portrait_pose(image: np.ndarray) -> SkeletonSequence:
    """A one-frame sequence of the portrait's pose (mediapipe pose + face mesh).

    Headshots without visible shoulders get plausible ones synthesised below the face, so motion can
    still be retargeted and idle motion made.
    """
    import mediapipe as mp

    image = np.ascontiguousarray(np.asarray(image)[..., :3], np.uint8)
    h, w = image.shape[:2]
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1) as pose:
        res = pose.process(image)
    body = body_from_pose(res.pose_landmarks, w, h)
    analysis = F.analyze_face(image)
    face = face_points(analysis.landmarks)
    if analysis.found:
        lm = analysis.landmarks
        fh = F.face_height(lm)
        if body[0, 2] < 0.5:
            body[0] = (*lm[F.NOSE_TIP, :2], 1.0)
        for k, idx in ((14, F.RIGHT_EYE), (15, F.LEFT_EYE)):
            if body[k, 2] < 0.5:
                body[k] = (*lm[list(idx), :2].mean(0), 1.0)
        if body[2, 2] < 0.5 or body[5, 2] < 0.5:  # no shoulders: synthesise them under the chin
            chin = lm[F.CHIN, :2]
            neck = chin + (0, 0.35 * fh)
            body[1] = (*neck, 0.6)
            body[2] = (neck[0] - 0.95 * fh, neck[1] + 0.25 * fh, 0.6)
            body[5] = (neck[0] + 0.95 * fh, neck[1] + 0.25 * fh, 0.6)
    if body[:, 2].max() < 0.5:
        raise InputError("portrait", "no person (face or body) could be found",
                         "Use a photo showing a person's face, front-facing and well lit.")
    return SkeletonSequence(body[None], np.zeros((1, 2, 21, 3)), face[None], w, h, 25.0)


def _anchor(seq_body: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(neck point, scale) of one frame: shoulder width, or eye distance x 2.6 when shoulders are missing."""
    if seq_body[2, 2] > 0.3 and seq_body[5, 2] > 0.3:
        return (seq_body[2, :2] + seq_body[5, :2]) / 2, float(np.linalg.norm(seq_body[2, :2] - seq_body[5, :2]))
    if seq_body[14, 2] > 0.3 and seq_body[15, 2] > 0.3:
        eyes = (seq_body[14, :2] + seq_body[15, :2]) / 2
        d = float(np.linalg.norm(seq_body[14, :2] - seq_body[15, :2]))
        return eyes + (0, 1.9 * d), 2.6 * d
    return None


def retarget(seq: SkeletonSequence, portrait: np.ndarray, *, keep: bool = False) -> SkeletonSequence:
    """Scale and move the sequence so its first frame's shoulders/neck sit on the portrait's own.

    The result is on the portrait's canvas (its width x height), whatever the driving video's aspect.
    `keep=True` only moves the canvas (a letterbox onto the portrait), for users who want raw motion.
    """
    target = portrait_pose(portrait)
    h, w = np.asarray(portrait).shape[:2]
    out = seq.copy()
    if keep:
        from .render import placement_for

        pl = placement_for(seq, w, h)
        a, b = complex(pl.scale, 0), complex(pl.offset_x, pl.offset_y)
    else:
        sb, tb = seq.body[0], target.body[0]
        if min(sb[2, 2], sb[5, 2], tb[2, 2], tb[5, 2]) > 0.3:
            # Similarity (scale + rotation + shift) taking both shoulders exactly onto the portrait's.
            s1, s2 = complex(*sb[2, :2]), complex(*sb[5, :2])
            d1, d2 = complex(*tb[2, :2]), complex(*tb[5, :2])
            a = (d2 - d1) / (s2 - s1) if abs(s2 - s1) > 1e-3 else complex(1, 0)
            b = d1 - a * s1
        else:
            src = _anchor(sb)
            dst = _anchor(tb)
            if src is None or dst is None:
                raise InputError("skeleton", "the first frame has no shoulders or eyes to align with the portrait",
                                 "Trim the driving video so the person is visible from the first frame, or turn retargeting off.")
            a = complex(dst[1] / max(src[1], 1e-3), 0)
            b = complex(*(dst[0] - src[0] * a.real))
    for arr in (out.body, out.hands, out.face):
        seen = arr[..., 2] > 0
        z = (arr[..., 0] + 1j * arr[..., 1]) * a + b
        arr[..., 0] = np.where(seen, z.real, arr[..., 0])
        arr[..., 1] = np.where(seen, z.imag, arr[..., 1])
    out.width, out.height = w, h
    return out
