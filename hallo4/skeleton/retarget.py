"""The portrait's own pose and retargeting a driving skeleton onto it.

Different canvas aspects: the result always lives on the portrait's canvas (its width x height); the
driving video's own canvas only matters for `keep=True`, which letterboxes it with the Hallo4 fit rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import face as F
from ..constants import FPS
from ..errors import InputError
from .extract import body_from_pose, face_points
from .format import EYES_68, LEFT_EYE_68, RIGHT_EYE_68, SkeletonSequence


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
        # The face mesh places the nose and eyes more precisely than the body model: use it for them.
        body[0] = (*lm[F.NOSE_TIP, :2], 1.0)
        for k, idx in ((14, F.RIGHT_EYE), (15, F.LEFT_EYE)):
            body[k] = (*lm[list(idx), :2].mean(0), 1.0)
        if body[2, 2] < 0.5 or body[5, 2] < 0.5:  # no shoulders: synthesise them under the chin
            chin = lm[F.CHIN, :2]
            neck = chin + (0, 0.35 * fh)
            body[1] = (*neck, 0.6)
            body[2] = (neck[0] - 0.95 * fh, neck[1] + 0.25 * fh, 0.6)
            body[5] = (neck[0] + 0.95 * fh, neck[1] + 0.25 * fh, 0.6)
    if body[:, 2].max() < 0.5:
        raise InputError(
            "portrait",
            "no person (face or body) could be found",
            "Use a photo showing a person's face, front-facing and well lit.",
        )
    return SkeletonSequence(body[None], np.zeros((1, 2, 21, 3)), face[None], w, h, FPS)


def anchor(seq_body: np.ndarray) -> tuple[np.ndarray, float] | None:
    """(neck point, scale) of one frame's COCO-18 body: shoulder width, or eye distance x 2.6 when the
    shoulders are missing; None without either. Retargeting aligns by it, idle motion scales by it."""
    if seq_body[2, 2] > 0.3 and seq_body[5, 2] > 0.3:
        return (seq_body[2, :2] + seq_body[5, :2]) / 2, float(np.linalg.norm(seq_body[2, :2] - seq_body[5, :2]))
    if seq_body[14, 2] > 0.3 and seq_body[15, 2] > 0.3:
        eyes = (seq_body[14, :2] + seq_body[15, :2]) / 2
        d = float(np.linalg.norm(seq_body[14, :2] - seq_body[15, :2]))
        return eyes + (0, 1.9 * d), 2.6 * d
    return None


HEAD_BODY = (0, 14, 15, 16, 17)  # COCO-18 points that move with the head: nose, eyes, ears


@dataclass
class HeadFrame:
    """Where a head is and how it is turned in the image plane, from its face (or body) keypoints."""

    centre: np.ndarray  # (2,) the eyes' midpoint
    angle: float  # the eye line's angle (roll), radians
    size: float  # the eye distance, pixels


def head_frame(body: np.ndarray, face: np.ndarray) -> HeadFrame | None:
    """From the 68 face points (eye centres) when seen, else from COCO-18's eyes; None without eyes."""
    if face[EYES_68, 2].min() > 0.3:
        right, left = face[RIGHT_EYE_68, :2].mean(0), face[LEFT_EYE_68, :2].mean(0)
    elif body[14, 2] > 0.3 and body[15, 2] > 0.3:
        right, left = body[14, :2], body[15, :2]
    else:
        return None
    d = left - right
    return HeadFrame((left + right) / 2, float(np.arctan2(d[1], d[0])), float(np.linalg.norm(d)) + 1e-6)


def _rot(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]], np.float32)


def _shoulder_similarity(sb: np.ndarray, tb: np.ndarray) -> tuple[complex, complex] | None:
    """z -> a z + b taking the driving first frame's shoulders exactly onto the portrait's."""
    if min(sb[2, 2], sb[5, 2], tb[2, 2], tb[5, 2]) <= 0.3:
        return None
    s1, s2 = complex(*sb[2, :2]), complex(*sb[5, :2])
    d1, d2 = complex(*tb[2, :2]), complex(*tb[5, :2])
    a = (d2 - d1) / (s2 - s1) if abs(s2 - s1) > 1e-3 else complex(1, 0)
    return a, d1 - a * s1


def _apply(arr: np.ndarray, a: complex, b: complex) -> None:
    seen = arr[..., 2] > 0
    z = (arr[..., 0] + 1j * arr[..., 1]) * a + b
    arr[..., 0] = np.where(seen, z.real, arr[..., 0])
    arr[..., 1] = np.where(seen, z.imag, arr[..., 1])


def retarget(seq: SkeletonSequence, portrait: np.ndarray, *, keep: bool = False) -> SkeletonSequence:
    """Put the driving motion on the portrait's own body and face; the result is on the portrait's canvas.

    1. Body (shoulders, arms, hands, hips): the similarity taking the driving video's first-frame shoulders
       onto the portrait's (scale, rotation, offset from the portrait), applied to every frame.
    2. Head (the 68 face points and COCO's nose/eyes/ears): the portrait's own detected points, moved by
       the driving head's motion relative to its first frame: the head frame (eye midpoint, eye-line
       angle) is followed in translation (scaled by the eye-distance ratio) and roll, and each point's
       own change in the driving head's frame (a turn, a blink, a zoom) is added, scaled the same way.
       Frame 0 is therefore exactly the portrait's pose: the skeleton lands on the face it animates.
    3. The neck is the midpoint of the retargeted shoulders. Points the driving video never saw stay missing.

    `keep=True` only moves the canvas (a letterbox onto the portrait), for users who want raw motion.
    """
    h, w = np.asarray(portrait).shape[:2]
    out = seq.copy()
    if keep:
        from .render import placement_for

        pl = placement_for(seq, w, h)
        for arr in (out.body, out.hands, out.face):
            _apply(arr, complex(pl.scale, 0), complex(pl.offset_x, pl.offset_y))
        out.width, out.height = w, h
        return out
    target = portrait_pose(portrait)
    tb, tf = target.body[0], target.face[0]
    # 1. Body by the shoulders (or by the eyes' anchor when shoulders are missing on either side).
    sim = _body_similarity(seq.body[0], tb)
    for arr in (out.body, out.hands, out.face):
        _apply(arr, *sim)
    # 2. Head: the portrait's own points, moved as the driving head moves.
    _move_head(seq, out, tb, tf)
    # 3. Neck between the shoulders.
    both = (out.body[:, 2, 2] > 0) & (out.body[:, 5, 2] > 0)
    out.body[both, 1, :2] = (out.body[both, 2, :2] + out.body[both, 5, :2]) / 2
    out.width, out.height = w, h
    return out


def _body_similarity(sb: np.ndarray, tb: np.ndarray) -> tuple[complex, complex]:
    """z -> a z + b for the body: by the shoulders, else by the eyes' anchor (scale and offset only)."""
    sim = _shoulder_similarity(sb, tb)
    if sim is not None:
        return sim
    src, dst = anchor(sb), anchor(tb)
    if src is None or dst is None:
        raise InputError(
            "skeleton",
            "the first frame has no shoulders or eyes to align with the portrait",
            "Trim the driving video so the person is visible from the first frame, or turn retargeting off.",
        )
    a = complex(dst[1] / max(src[1], 1e-3), 0)
    return a, complex(*(dst[0] - src[0] * a.real))


def _move_head(seq: SkeletonSequence, out: SkeletonSequence, tb: np.ndarray, tf: np.ndarray) -> None:
    """Step 2 of `retarget`: the portrait's head points (tb, tf) moved in `out` as the driving head moves."""
    ref_i = next((i for i in range(seq.num_frames) if head_frame(seq.body[i], seq.face[i]) is not None), None)
    target_head = head_frame(tb, tf)
    if ref_i is None or target_head is None:
        return
    ref = head_frame(seq.body[ref_i], seq.face[ref_i])
    k = target_head.size / ref.size
    r_t = _rot(target_head.angle)
    for i in range(seq.num_frames):
        cur = head_frame(seq.body[i], seq.face[i]) or ref
        d_angle = cur.angle - ref.angle
        centre = target_head.centre + k * (cur.centre - ref.centre)
        r_now = _rot(target_head.angle + d_angle)
        for src_arr, ref_arr, tgt, dst_arr, idx in (
            (seq.face[i], seq.face[ref_i], tf, out.face[i], slice(None)),
            (seq.body[i], seq.body[ref_i], tb, out.body[i], list(HEAD_BODY)),
        ):
            s_now, s_ref, tg = src_arr[idx], ref_arr[idx], tgt[idx]
            # Each point in its head's own frame (eye midpoint, eye line), in driving eye distances.
            local_now = (s_now[:, :2] - cur.centre) @ _rot(-cur.angle).T / ref.size
            local_ref = (s_ref[:, :2] - ref.centre) @ _rot(-ref.angle).T / ref.size
            local_tgt = (tg[:, :2] - target_head.centre) @ r_t / target_head.size  # r_t.T^-1 = r_t
            # The portrait's point plus the driving change where both exist; else the driving point.
            use_delta = (tg[:, 2] > 0.3) & (s_ref[:, 2] > 0)
            local = np.where(use_delta[:, None], local_tgt + (local_now - local_ref), local_now)
            pos = centre + (local * target_head.size) @ r_now.T
            res = dst_arr[idx]
            seen = s_now[:, 2] > 0
            res[seen, :2] = pos[seen]
            dst_arr[idx] = res
