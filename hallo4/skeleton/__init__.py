"""Skeleton sequences: the keypoint format, extraction from video, DWPose-style rendering,
retargeting onto the portrait, length fitting and idle motion for audio-only generation."""

from .extract import MESH_TO_68, POSE33_TO_COCO18, extract_skeleton
from .fit import fit_length, pingpong_indices
from .format import SkeletonSequence
from .idle import idle_skeleton
from .loaders import load_sequence
from .render import iter_render_skeleton, iter_skeleton_video, load_skeleton_video, render_skeleton
from .retarget import anchor, portrait_pose, retarget

# `SkeletonSequence.load(path)` stays the public way to read a file: bound here, where both halves are
# imported, so format.py (the data) never imports loaders.py (which builds sequences): no import circle.
SkeletonSequence.load = staticmethod(load_sequence)  # type: ignore[attr-defined]

__all__ = [
    "SkeletonSequence",
    "load_sequence",
    "extract_skeleton",
    "render_skeleton",
    "iter_render_skeleton",
    "load_skeleton_video",
    "iter_skeleton_video",
    "retarget",
    "fit_length",
    "pingpong_indices",
    "idle_skeleton",
    "portrait_pose",
    "anchor",
    "MESH_TO_68",
    "POSE33_TO_COCO18",
]
