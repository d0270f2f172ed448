"""Render skeleton sequences in the DWPose / OpenPose style Hallo4 was trained on.

Coloured body limbs (OpenPose's 17 limbs and 18 colours), rainbow finger bones (as controlnet_aux's
draw_handpose), face landmarks as white dots WITHOUT the mouth (lip motion must come from audio), on
black, laid out on the target canvas with the same resize/pad rule as the reference portrait.
"""

from __future__ import annotations

import colorsys
from pathlib import Path

import cv2
import numpy as np

from .. import limits, media
from ..constants import FPS
from .format import MOUTH, SkeletonSequence

# OpenPose limb pairs (0-based COCO-18) and colours (RGB), as in OpenPose / controlnet_aux.
LIMBS = [
    (1, 2),
    (1, 5),
    (2, 3),
    (3, 4),
    (5, 6),
    (6, 7),
    (1, 8),
    (8, 9),
    (9, 10),
    (1, 11),
    (11, 12),
    (12, 13),
    (1, 0),
    (0, 14),
    (14, 16),
    (0, 15),
    (15, 17),
]
COLORS = [
    (255, 0, 0),
    (255, 85, 0),
    (255, 170, 0),
    (255, 255, 0),
    (170, 255, 0),
    (85, 255, 0),
    (0, 255, 0),
    (0, 255, 85),
    (0, 255, 170),
    (0, 255, 255),
    (0, 170, 255),
    (0, 85, 255),
    (0, 0, 255),
    (85, 0, 255),
    (170, 0, 255),
    (255, 0, 255),
    (255, 0, 170),
    (255, 0, 85),
]
HAND_EDGES = [
    (0, 1),
    (1, 2),
    (2, 3),
    (3, 4),
    (0, 5),
    (5, 6),
    (6, 7),
    (7, 8),
    (0, 9),
    (9, 10),
    (10, 11),
    (11, 12),
    (0, 13),
    (13, 14),
    (14, 15),
    (15, 16),
    (0, 17),
    (17, 18),
    (18, 19),
    (19, 20),
]
HAND_COLORS = [
    tuple(int(c * 255) for c in colorsys.hsv_to_rgb(i / len(HAND_EDGES), 1.0, 1.0)) for i in range(len(HAND_EDGES))
]
FACE_DRAWN = tuple(i for i in range(68) if i not in MOUTH)
CONF = 0.3
# Stroke sizes at the release's proportions: in the authors' own 768x768 example skeleton video, body limbs
# are about 8 px wide and face dots about 7 px across. Sizes scale with the canvas's long side.
REFERENCE_CANVAS = 768
LIMB_WIDTH = 8.0  # px at 768
FACE_DOT = 7.0  # px across at 768
HAND_LINE = 2.0  # px at 768 (DWPose's hand lines)


def stroke_sizes(width: int, height: int) -> dict[str, int]:
    """Pixel sizes for a canvas: limb half-width (ellipse minor axis) and body-joint radius, face-dot
    radius, hand line thickness and hand-joint radius. At 768x768: limbs 8 px wide, face dots 7 px."""
    s = max(width, height) / REFERENCE_CANVAS
    limb_half = max(1, int(np.floor(LIMB_WIDTH * s / 2)))
    return {
        "limb_half": limb_half,  # an ellipse of minor axis a is 2a + 1 px across (9 at 768, as DWPose's 4)
        "joint": limb_half,
        "face": max(1, int(round((FACE_DOT * s - 1) / 2))),  # a radius-r disc is 2r + 1 px across
        "hand_line": max(1, int(round(HAND_LINE * s))),
        "hand_joint": max(1, int(round(HAND_LINE * s))),
    }


def placement_for(seq: SkeletonSequence, width: int, height: int) -> media.Placement:
    """Where the skeleton's canvas lands on the target canvas (the reference portrait's rule)."""
    _, pl = media.fit_to_canvas(np.zeros((seq.height, seq.width), np.uint8), width, height)
    return pl


def render_frame(
    body: np.ndarray,
    hands: np.ndarray,
    face: np.ndarray,
    width: int,
    height: int,
    background: np.ndarray | None = None,
) -> np.ndarray:
    """One frame; points already in target-canvas pixels."""
    canvas = (
        np.zeros((height, width, 3), np.uint8)
        if background is None
        else np.ascontiguousarray(background, np.uint8).copy()
    )
    sizes = stroke_sizes(width, height)
    stick = sizes["limb_half"]
    limbs = canvas.copy()
    for k, (a, b) in enumerate(LIMBS):
        if body[a, 2] < CONF or body[b, 2] < CONF:
            continue
        (x0, y0), (x1, y1) = body[a, :2], body[b, :2]
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        length = float(np.hypot(x1 - x0, y1 - y0))
        angle = float(np.degrees(np.arctan2(y1 - y0, x1 - x0)))
        poly = cv2.ellipse2Poly((int(mx), int(my)), (int(length / 2), stick), int(angle), 0, 360, 1)
        cv2.fillConvexPoly(limbs, poly, COLORS[k])
    canvas = cv2.addWeighted(canvas, 0.4, limbs, 0.6, 0)
    for k in range(18):
        if body[k, 2] >= CONF:
            cv2.circle(canvas, (int(body[k, 0]), int(body[k, 1])), sizes["joint"], COLORS[k], -1, lineType=cv2.LINE_AA)
    for hand in hands:
        for e, (a, b) in enumerate(HAND_EDGES):
            if hand[a, 2] >= CONF and hand[b, 2] >= CONF:
                cv2.line(
                    canvas,
                    (int(hand[a, 0]), int(hand[a, 1])),
                    (int(hand[b, 0]), int(hand[b, 1])),
                    HAND_COLORS[e],
                    sizes["hand_line"],
                    lineType=cv2.LINE_AA,
                )
        for k in range(21):
            if hand[k, 2] >= CONF:
                cv2.circle(canvas, (int(hand[k, 0]), int(hand[k, 1])), sizes["hand_joint"], (0, 0, 255), -1)
    for k in FACE_DRAWN:
        if face[k, 2] >= CONF:
            cv2.circle(canvas, (int(face[k, 0]), int(face[k, 1])), sizes["face"], (255, 255, 255), -1)
    return canvas


def iter_render_skeleton(seq: SkeletonSequence, width: int, height: int, *, background: np.ndarray | None = None):
    """Rendered frames one at a time (constant memory: for previews and streaming encodes)."""
    pl = placement_for(seq, width, height)
    bg = None
    if background is not None:
        bg, _ = media.fit_to_canvas(np.asarray(background)[..., :3], width, height)
    for i in range(seq.num_frames):
        body = seq.body[i].copy()
        hands = seq.hands[i].copy()
        face = seq.face[i].copy()
        body[:, :2] = pl.to_canvas(body[:, :2])
        hands[..., :2] = pl.to_canvas(hands[..., :2])
        face[:, :2] = pl.to_canvas(face[:, :2])
        yield render_frame(body, hands, face, width, height, bg)


def render_skeleton(
    seq: SkeletonSequence, width: int, height: int, *, background: np.ndarray | None = None
) -> np.ndarray:
    """(T, H, W, 3) uint8 frames. `background` (an image) is letterboxed the same way, for overlays.

    Holds T frames of the OUTPUT canvas (T is bounded by the audio, see hallo4.limits)."""
    out = np.empty((seq.num_frames, height, width, 3), np.uint8)
    for i, frame in enumerate(iter_render_skeleton(seq, width, height, background=background)):
        out[i] = frame
    return out


def iter_skeleton_video(path: str | Path, width: int, height: int, max_frames: int | None = None):
    """A rendered skeleton video's frames at 25 fps, each letterboxed onto the canvas as it is decoded
    (the source resolution is never held for more than one frame)."""
    cap = limits.active().max_frames
    n = cap if max_frames is None else min(int(max_frames), cap)
    for frame in media.iter_frames(path, fps=FPS, max_frames=n, name="skeleton video"):
        yield media.fit_to_canvas(frame, width, height)[0]


def load_skeleton_video(path: str | Path, width: int, height: int, max_frames: int | None = None) -> np.ndarray:
    """A rendered skeleton video (Hallo4's own examples are these), at 25 fps, letterboxed like the portrait.

    At most `max_frames` (default: the longest allowed clip) frames of the canvas are held."""
    return np.stack(list(iter_skeleton_video(path, width, height, max_frames)))
