"""Skeleton condition frames at the release's proportions: at 768x768 (the authors' example skeleton
video) body limbs are about 8 px wide and face dots about 7 px across; both scale with the canvas."""

from __future__ import annotations

import numpy as np
import pytest

from hallo4.skeleton.render import render_frame, stroke_sizes


def _measure(size_w: int, size_h: int) -> tuple[int, int]:
    """(limb width, face-dot width) in px of one horizontal limb and one face dot."""
    body, hands, face = np.zeros((18, 3)), np.zeros((2, 21, 3)), np.zeros((68, 3))
    body[1] = [0.2 * size_w, 0.5 * size_h, 1.0]
    body[2] = [0.8 * size_w, 0.5 * size_h, 1.0]  # limb 0: neck -> right shoulder, horizontal
    face[0] = [0.5 * size_w, 0.2 * size_h, 1.0]  # a jaw point (drawn; the mouth is not)
    frame = render_frame(body, hands, face, size_w, size_h).max(-1)
    column = frame[int(0.35 * size_h) : int(0.65 * size_h), size_w // 2]
    row = frame[int(0.2 * size_h), int(0.35 * size_w) : int(0.65 * size_w)]
    return int((column > 30).sum()), int((row > 30).sum())


def test_widths_at_the_release_example_canvas():
    limb, dot = _measure(768, 768)
    assert 8 <= limb <= 9  # the release: ~8 px (DWPose's stick of half-width 4)
    assert dot == 7


@pytest.mark.parametrize("w, h", [(384, 384), (832, 480), (480, 832), (1536, 1536)])
def test_widths_scale_with_the_canvas(w, h):
    s = max(w, h) / 768
    limb, dot = _measure(w, h)
    assert abs(limb - 8 * s) <= 1.5 and abs(dot - 7 * s) <= 1.5
    sizes = stroke_sizes(w, h)
    assert sizes["hand_line"] == max(1, round(2 * s))
