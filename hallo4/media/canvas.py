"""The Hallo4 resize/pad rule (docs/MODEL.md section 3): how a source sits on the output canvas."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Placement:
    """How a source image sits on a canvas: x_canvas = x_src * scale + offset_x (same for y)."""

    scale: float
    offset_x: float
    offset_y: float
    src_width: int
    src_height: int
    width: int
    height: int

    def to_canvas(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float32).copy()
        xy[..., 0] = xy[..., 0] * self.scale + self.offset_x
        xy[..., 1] = xy[..., 1] * self.scale + self.offset_y
        return xy

    def from_canvas(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float32).copy()
        xy[..., 0] = (xy[..., 0] - self.offset_x) / self.scale
        xy[..., 1] = (xy[..., 1] - self.offset_y) / self.scale
        return xy

    def content_box(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the source's visible area on the canvas."""
        x0 = max(0, int(round(self.offset_x)))
        y0 = max(0, int(round(self.offset_y)))
        x1 = min(self.width, int(round(self.offset_x + self.src_width * self.scale)))
        y1 = min(self.height, int(round(self.offset_y + self.src_height * self.scale)))
        return x0, y0, x1, y1

    def crop_back(self, frame: np.ndarray) -> np.ndarray:
        """Undo the padding: the canvas region that shows the source (its aspect ratio)."""
        x0, y0, x1, y1 = self.content_box()
        return frame[..., y0:y1, x0:x1, :] if frame.ndim >= 3 else frame[y0:y1, x0:x1]


def fit_to_canvas(image: np.ndarray, width: int, height: int, fill: int | float = 0) -> tuple[np.ndarray, Placement]:
    """Scale so the height matches, pad left/right symmetrically with `fill`, centre-crop if wider."""
    import cv2

    image = np.asarray(image)
    sh, sw = image.shape[:2]
    scale = height / sh
    new_w = max(1, int(round(sw * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    resized = cv2.resize(image, (new_w, height), interpolation=interp)
    canvas = np.full((height, width) + image.shape[2:], fill, dtype=image.dtype)
    if new_w <= width:
        off = (width - new_w) // 2
        canvas[:, off : off + new_w] = resized
        offset_x = float(off)
    else:
        crop = (new_w - width) // 2
        canvas[:] = resized[:, crop : crop + width]
        offset_x = -float(crop)
    return canvas, Placement(scale, offset_x, 0.0, sw, sh, width, height)


def output_size(src_width: int, src_height: int, long_side: int, multiple: int = 2) -> tuple[int, int]:
    """(width, height) with the source's aspect, the long side = `long_side`, both multiples of `multiple`."""
    scale = long_side / max(src_width, src_height)
    w = max(multiple, int(round(src_width * scale / multiple)) * multiple)
    h = max(multiple, int(round(src_height * scale / multiple)) * multiple)
    return w, h
