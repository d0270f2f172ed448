"""The portrait's own pose, retargeting, length fitting and idle (audio-only) motion."""

from __future__ import annotations

import numpy as np

from .. import face as F
from ..audio_features import speech_envelope
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


def fit_length(seq: SkeletonSequence, num_frames: int, mode: str = "pingpong") -> tuple[SkeletonSequence, str]:
    """Make the sequence `num_frames` long, and say what was done (never silently)."""
    n = seq.num_frames
    if num_frames <= 0:
        raise InputError("length", "must be at least one frame", "Use audio of at least 40 ms.")
    if mode not in ("pingpong", "hold", "trim", "loop"):
        raise InputError("fit mode", f"unknown mode {mode!r}", "Use pingpong, hold or trim.")
    if n == num_frames:
        return seq, ""
    if num_frames < n:
        return seq.slice(0, num_frames), f"Skeleton trimmed from {n} to {num_frames} frames to match the audio."
    if mode == "trim":
        return seq, f"Skeleton ({n} frames) is shorter than the audio ({num_frames} frames); kept as is (trim mode)."
    if mode == "hold" or n == 1:
        idx = np.concatenate([np.arange(n), np.full(num_frames - n, n - 1)])
        msg = f"Skeleton ({n} frames) was shorter than the audio; the last pose is held for {num_frames - n} frames."
    elif mode == "loop":
        idx = np.arange(num_frames) % n
        msg = f"Skeleton ({n} frames) looped to {num_frames} frames."
    else:
        cycle = np.concatenate([np.arange(n), np.arange(n - 2, 0, -1)])  # 0..n-1..1: no jump at the turn
        idx = cycle[np.arange(num_frames) % len(cycle)]
        msg = f"Skeleton ({n} frames) was shorter than the audio; played back and forth (ping-pong) to {num_frames} frames."
    out = SkeletonSequence(seq.body[idx], seq.hands[idx], seq.face[idx], seq.width, seq.height, seq.fps)
    return out, msg


def idle_skeleton(portrait: np.ndarray, num_frames: int, *, seed: int = 0, audio: np.ndarray | None = None,
                  sr: int = 16000, fps: float = 25.0) -> SkeletonSequence:
    """Audio-only mode: natural idle motion around the portrait's own pose, deterministic for a seed.

    Breathing (shoulders rise ~0.25 Hz), slow head sway and roll, nods loosely following speech energy,
    and blinks on a random schedule.
    """
    base = portrait_pose(portrait)
    rng = np.random.default_rng(seed)
    t = np.arange(num_frames) / fps
    anchor = _anchor(base.body[0])
    unit = anchor[1] if anchor else 0.25 * base.width  # shoulder width
    pivot = anchor[0] if anchor else np.array([base.width / 2, base.height * 0.8], np.float32)

    def wave(amp: float, freqs=(0.11, 0.23, 0.41)) -> np.ndarray:
        return sum(amp / len(freqs) * np.sin(2 * np.pi * f * rng.uniform(0.8, 1.25) * t + rng.uniform(0, 2 * np.pi)) for f in freqs)

    breath = 0.012 * unit * np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * t + rng.uniform(0, 2 * np.pi))
    sway_x = wave(0.05 * unit)
    sway_y = wave(0.02 * unit)
    roll = wave(np.radians(3.0))
    if audio is not None and len(audio):
        env = speech_envelope(audio, sr, fps)
        env = np.pad(env, (0, max(0, num_frames - len(env))))[:num_frames]
        from scipy.ndimage import gaussian_filter1d

        energy = gaussian_filter1d(env.astype(np.float32), 5.0, mode="nearest")
        sway_y = sway_y + 0.05 * unit * (energy - energy.mean())  # nod down on emphasis
    blink = np.zeros(num_frames, np.float32)
    k = int(rng.uniform(0.5, 2.5) * fps)
    while k < num_frames:
        blink[k:k + 4] = np.array([0.6, 1.0, 0.7, 0.3], np.float32)[: max(0, num_frames - k)]
        k += 4 + int(rng.gamma(4.0, 0.9) * fps)

    body = np.repeat(base.body, num_frames, 0)
    face = np.repeat(base.face, num_frames, 0)
    hands = np.zeros((num_frames, 2, 21, 3), np.float32)
    head_idx = [0, 14, 15, 16, 17]
    for i in range(num_frames):
        c, s = np.cos(roll[i]), np.sin(roll[i])
        rot = np.array([[c, -s], [s, c]], np.float32)
        move = np.array([sway_x[i], sway_y[i]], np.float32)
        for arr, idx in ((body[i], head_idx), (face[i], slice(None))):
            rel = arr[idx, :2] - pivot
            arr[idx, :2] = pivot + rel @ rot.T + move
        body[i, [1, 2, 5], 1] -= breath[i]
        if blink[i] > 0 and face[i, 36:48, 2].min() > 0:
            for up, low in ((37, 41), (38, 40), (43, 47), (44, 46)):
                face[i, up, 1] += blink[i] * 0.9 * (face[i, low, 1] - face[i, up, 1])
    return SkeletonSequence(body, hands, face, base.width, base.height, fps)
