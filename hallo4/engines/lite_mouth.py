"""The lite engine's mouth interior: cavity, teeth and tongue painted inside the warped inner lips.

When the rig opens the jaw, the pixels between the inner lips are stretched photo pixels (the line
where the lips met). This module paints over them, and only there:

- the cavity is an exact signed-distance mask of the inner-lip polygon: zero at and outside the
  polygon (the lips keep their own colour and texture), feathered over a pixel or two inside it, so
  its edge is anti-aliased and follows the lip contour with no holes and no stray pixels;
- the cavity is shaded dark with depth (darker away from the lips and towards the corners, a shadow
  under the upper lip), in colours taken from the portrait's own lips so a painting or a
  black-and-white photo gets a matching interior;
- the upper teeth hang from a smooth curve through the upper inner lip, appear only once the mouth
  is open enough, are shaded (lip shadow on top, darker towards the corners as the arch turns away,
  faint gaps between incisors) and take their colour from the portrait's own teeth when it shows
  them;
- the lower teeth edge and the tongue appear only on wide openings.

Hand-written because no library renders a mouth interior; the work is numpy over the mouth's
bounding box only (a few thousand pixels), so it costs well under a millisecond per frame at 512 px.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import face as F
from .lite_mesh import inner_lip_polygon, polygon_signed_distance
from .lite_mouth_geometry import (  # noqa: F401  (mouth_warnings: re-exported for tests)
    LOWER_INNER,
    UPPER_INNER,
    MouthGeometry,
    mouth_geometry,
    mouth_warnings,
    smoothstep,
)


@dataclass
class MouthLayers:
    """One frame's interior over the box (x0, y0)-(x0 + w, y0 + h): colour and the masks, 0..1."""

    x0: int
    y0: int
    rgb: np.ndarray  # (h, w, 3) float32
    cavity: np.ndarray  # (h, w) alpha of the whole interior
    teeth: np.ndarray  # (h, w) upper + lower teeth coverage (already inside `cavity`)
    tongue: np.ndarray  # (h, w)


class MouthRenderer:
    """Paints the interior of the mouth for a rig frame; colours are measured once from the portrait."""

    def __init__(self, image: np.ndarray, landmarks: np.ndarray):
        lm = landmarks[:, :2].astype(np.float32)
        self.face_h = F.face_height(lm)
        img = image.astype(np.float32)
        h, w = image.shape[:2]
        outer = lm[list(F.LIPS_OUTER)]
        x0, y0 = np.floor(outer.min(0)).astype(int)
        x1, y1 = np.ceil(outer.max(0)).astype(int) + 1
        x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, w), min(y1, h)
        ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float32) + 0.0
        d_in = polygon_signed_distance(inner_lip_polygon(lm), xs, ys)
        d_out = polygon_signed_distance(outer, xs, ys)
        box = img[y0:y1, x0:x1].reshape(-1, 3)
        self._measure_colours(img, lm, box[((d_out > 1) & (d_in < -1)).ravel()], box)
        self._measure_teeth(img[y0:y1, x0:x1], box[(d_in > 1).ravel()], d_in, xs, lm)
        self.rest_gap = float(np.linalg.norm(lm[F.UPPER_LIP_INNER_MID] - lm[F.LOWER_LIP_INNER_MID]))
        # A portrait with its mouth open keeps its own interior: the part above the middle of the opening
        # travels with the upper lip, the part below with the lower lip, and the gap between them is
        # painted. At rest this reproduces the photo exactly, so opening never jumps to a painted look.
        self.photo_interior = self.photo_teeth or self.rest_gap > 0.03 * self.face_h
        if self.photo_interior:
            self._keep_photo_interior(image, lm, d_in, xs, ys, (x0, y0))
        self.feather = float(max(1.0, 0.008 * self.face_h))
        self.cavity_deep = self._tint(self.lip * 0.09 + np.array([4, 1, 1], np.float32))
        self.cavity_edge = self._tint(self.lip * 0.42)
        tongue = self.lip * np.array([0.82, 0.62, 0.64], np.float32) + np.array([18, 0, 4], np.float32)
        self.tongue_rgb = self._tint(tongue)
        self.teeth = self._tint(self.teeth)

    def _measure_colours(self, img: np.ndarray, lm: np.ndarray, lip_px: np.ndarray, box: np.ndarray) -> None:
        """Skin (at the nose tip), lips (between the lip contours) and how colourful the portrait is."""
        h, w = img.shape[:2]
        nx, ny = int(lm[F.NOSE_TIP, 0]), int(lm[F.NOSE_TIP, 1])
        skin = img[max(ny - 3, 0) : ny + 3, max(nx - 3, 0) : nx + 3].reshape(-1, 3)
        self.skin = np.median(skin, 0) if len(skin) else np.full(3, 170.0, np.float32)
        self.lip = np.median(lip_px, 0) if len(lip_px) > 4 else self.skin * np.array([0.85, 0.6, 0.6], np.float32)
        # Black-and-white photos and monochrome paintings get a grey interior.
        top, bottom = int(lm[F.FOREHEAD, 1]), int(lm[F.CHIN, 1])
        left, right = int(lm[F.FACE_SIDES[0], 0]), int(lm[F.FACE_SIDES[1], 0])
        face = img[top:bottom, left:right].reshape(-1, 3) if h and w else box
        chroma = float(np.mean(face.max(1) - face.min(1))) / 255.0 if len(face) else 0.2
        self.colourful = float(np.clip(chroma / 0.12, 0, 1))

    def _measure_teeth(self, crop: np.ndarray, inside: np.ndarray, d_in: np.ndarray, xs: np.ndarray, lm) -> None:
        """The portrait's own teeth when it shows them (bright, low-saturation pixels inside the inner
        lips: their colour and visible length), else ivory under the portrait's light."""
        toothlike = (inside.min(1) > 0.6 * inside.max(1)) & (inside.mean(1) > 0.9 * self.skin.mean())
        teeth_px = inside[toothlike] if len(inside) else inside
        lum = float(self.skin.mean()) / 170.0
        cast = (self.skin / max(float(self.skin.max()), 1.0)) ** 0.4  # the skin's colour cast
        ivory = np.array([236, 230, 218], np.float32) * cast * float(np.clip(0.9 + 0.2 * (lum - 1), 0.55, 1.05))
        self.photo_teeth = len(teeth_px) >= 12
        self.teeth = np.median(teeth_px, 0) if self.photo_teeth else ivory
        self.teeth_len = 0.034 * self.face_h
        if self.photo_teeth:  # the visible tooth length, measured down the middle column
            col = (
                (d_in > 0)
                & (np.abs(xs - lm[F.UPPER_LIP_INNER_MID, 0]) < 2)
                & (crop.min(2) > 0.6 * crop.max(2))
                & (crop.mean(2) > 0.9 * self.skin.mean())
            )
            rows = np.flatnonzero(col.any(1))
            if len(rows):
                self.teeth_len = float(np.clip(rows.max() - rows.min() + 1, 0.02 * self.face_h, 0.06 * self.face_h))

    def _keep_photo_interior(self, image, lm, d_in, xs, ys, origin: tuple[int, int]) -> None:
        """Split the photo's own interior at the middle of the opening into an upper and a lower half."""
        self._src = image
        self._src_up = lm[list(UPPER_INNER)].copy()
        self._src_lo = lm[list(LOWER_INNER)].copy()
        mid_x = 0.5 * (self._src_up[:, 0] + self._src_lo[:, 0])
        mid_y = 0.5 * (self._src_up[:, 1] + self._src_lo[:, 1])
        mid = np.interp(xs, *zip(*sorted(zip(mid_x, mid_y))))
        inside_src = d_in > 0
        self._src_box = origin
        self._src_upper = (inside_src & (ys <= mid)).astype(np.float32)
        self._src_lower = (inside_src & (ys > mid)).astype(np.float32)

    def _tint(self, rgb: np.ndarray) -> np.ndarray:
        grey = float(np.dot(rgb, [0.299, 0.587, 0.114]))
        return (self.colourful * rgb + (1 - self.colourful) * grey).astype(np.float32)

    # ------------------------------------------------------------------------------------------
    def layers(self, points: np.ndarray, image_shape: tuple[int, int], bite: float = 0.0) -> MouthLayers | None:
        """The interior for rig/landmark positions `points` (478+ x 2), or None when the lips are shut.

        `bite` 0..1: the lower lip against the upper teeth ("f", "v"): the teeth show however narrow the
        opening and reach down to the lower lip."""
        g = mouth_geometry(points, image_shape, self.face_h)
        if g is None:
            return None
        # 1. Cavity alpha: 0 on and outside the polygon, feathered inwards (never spills onto the lips).
        feather = min(self.feather, max(0.6, 0.35 * g.gap))
        cavity = smoothstep(g.sd / feather)
        rgb = self._shade_cavity(g)
        tongue = self._tongue(g, rgb)
        teeth = self._upper_teeth(g, rgb, bite)
        teeth = np.maximum(teeth, self._lower_teeth(g, rgb))
        if self.photo_interior:
            img_up, img_lo = points[list(UPPER_INNER), :2], points[list(LOWER_INNER), :2]
            low_mask = self._carry(rgb, g.img_xs, g.img_ys, img_lo, self._src_lo, self._src_lower, upper=False)
            up_mask = self._carry(rgb, g.img_xs, g.img_ys, img_up, self._src_up, self._src_upper, upper=True)
            teeth = np.maximum(teeth, np.maximum(up_mask, low_mask))
        return MouthLayers(
            g.x0,
            g.y0,
            rgb.astype(np.float32),
            cavity.astype(np.float32),
            (teeth * cavity).astype(np.float32),
            (tongue * cavity).astype(np.float32),
        )

    def _shade_cavity(self, g: MouthGeometry) -> np.ndarray:
        """Lip-coloured near the lips, near black deep inside and at the corners, a shadow under the upper lip."""
        depth = smoothstep(g.sd / max(1.5, 0.45 * g.gap))
        depth = np.maximum(depth, smoothstep(np.abs(g.u) * 1.1 - 0.1))
        rgb = self.cavity_edge[None, None] * (1 - depth[..., None]) + self.cavity_deep[None, None] * depth[..., None]
        rgb *= (0.75 + 0.25 * smoothstep((g.ys - g.top) / max(2.0, 0.35 * g.gap)))[..., None]
        return rgb

    def _tongue(self, g: MouthGeometry, rgb: np.ndarray) -> np.ndarray:
        """Wide openings: a rounded mound on the floor of the mouth, lit on top (composited into `rgb`)."""
        amount = float(smoothstep(np.array((g.open_rel - 0.058) / 0.035)))
        if amount <= 0:
            return np.zeros_like(g.sd)
        mound = 1 - g.u**2 / 0.5 - ((g.v - 1.0) / 0.42) ** 2
        tongue = smoothstep(mound / 0.25) * amount
        lit = (0.55 + 0.45 * np.clip((1 - g.v) / 0.4, 0, 1))[..., None]  # top of the mound catches light
        colour = self.tongue_rgb * lit * (1 - 0.5 * g.u[..., None] ** 2)
        rgb[:] = rgb * (1 - tongue[..., None]) + colour * tongue[..., None]
        return tongue

    def _upper_teeth(self, g: MouthGeometry, rgb: np.ndarray, bite: float) -> np.ndarray:
        """Hang from the upper lip curve, shorter towards the corners, only when open enough (or biting)."""
        if self.photo_interior:
            return np.zeros_like(g.sd)
        amount = max(float(smoothstep(np.array((g.open_rel - 0.012) / 0.02))), float(bite))
        if amount <= 0:
            return np.zeros_like(g.sd)
        reach = 0.45 + 0.75 * float(bite)  # with a bite the edges rest on (slightly behind) the lower lip
        u, ys, top = g.u, g.ys, g.top
        length = np.minimum(self.teeth_len, reach * g.local_gap) * (1 - 0.45 * u**2)
        edge = np.clip((top + length - ys) + 0.5, 0, 1)  # 1-px anti-aliased biting edge
        across = 1 - smoothstep((np.abs(u) - 0.55) / 0.35)  # the arch turns away into the dark corners
        teeth = edge * across * amount
        under_lip = smoothstep((ys - top) / np.maximum(1.5, 0.3 * length))  # shadow of the upper lip on the teeth
        shade = (0.7 + 0.3 * np.cos(np.clip(u, -1, 1) * 1.3)) * (0.78 + 0.22 * under_lip)
        if g.half_w > 14:  # faint gaps between incisors and laterals once there are pixels for them
            gaps = sum(np.exp(-((((u - c) * g.half_w) / 0.7) ** 2)) for c in (0.0, -0.2, 0.2, -0.38, 0.38))
            shade = shade * (1 - 0.1 * np.clip(gaps, 0, 1))
        trans = 1 - 0.2 * smoothstep((ys - top) / np.maximum(length, 1e-3) * 4 - 3)  # translucent biting edge
        colour = self.teeth[None, None] * (shade * trans)[..., None]
        rgb[:] = rgb * (1 - teeth[..., None]) + colour * teeth[..., None]
        return teeth

    def _lower_teeth(self, g: MouthGeometry, rgb: np.ndarray) -> np.ndarray:
        """A thin, shadowed edge above the lower lip on wide openings."""
        amount = 0.0 if self.photo_interior else float(smoothstep(np.array((g.open_rel - 0.062) / 0.03)))
        if amount <= 0:
            return np.zeros_like(g.sd)
        u = g.u
        lh = 0.018 * self.face_h * (1 - 0.5 * u**2)
        lower = np.clip((g.ys - (g.bottom - lh)) + 0.5, 0, 1) * (1 - smoothstep((np.abs(u) - 0.3) / 0.3)) * amount
        colour = self.teeth[None, None] * (0.55 + 0.2 * np.cos(np.clip(u, -1, 1) * 1.4))[..., None]
        rgb[:] = rgb * (1 - lower[..., None]) + colour * lower[..., None]
        return lower

    def _carry(
        self,
        rgb: np.ndarray,
        xs: np.ndarray,
        ys: np.ndarray,
        dst_pts: np.ndarray,
        src_pts: np.ndarray,
        src_mask: np.ndarray,
        upper: bool,
    ) -> np.ndarray:
        """Composite (in place) the photo's own interior half that moves with one lip; returns its coverage.

        The half moves rigidly with its lip (a similarity fitted from the lip's points), so teeth keep
        their shape however far the mouth opens. Where the lip has moved off teeth that the photo hid
        behind it, the teeth continue (the photo's first row of interior pixels is repeated).
        """
        import cv2

        # Similarity dst -> src: [x, -y, 1, 0; y, x, 0, 1] @ (a, b, tx, ty) = src.
        n = len(dst_pts)
        A = np.zeros((2 * n, 4), np.float64)
        A[0::2] = np.stack([dst_pts[:, 0], -dst_pts[:, 1], np.ones(n), np.zeros(n)], 1)
        A[1::2] = np.stack([dst_pts[:, 1], dst_pts[:, 0], np.zeros(n), np.ones(n)], 1)
        a, b, tx, ty = np.linalg.lstsq(A, src_pts.reshape(-1).astype(np.float64), rcond=None)[0]
        mx = (a * xs - b * ys + tx).astype(np.float32)
        my = (b * xs + a * ys + ty).astype(np.float32)
        order = np.argsort(src_pts[:, 0])
        edge = np.interp(mx, src_pts[order, 0], src_pts[order, 1])
        my = (np.maximum(my, edge + 1.0) if upper else np.minimum(my, edge - 1.0)).astype(np.float32)
        sx0, sy0 = self._src_box
        mask = cv2.remap(src_mask, mx - sx0, my - sy0, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        colour = cv2.remap(self._src, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE).astype(np.float32)
        rgb *= 1 - mask[..., None]
        rgb += colour * mask[..., None]
        return mask

    def draw(self, frame: np.ndarray, points: np.ndarray, bite: float = 0.0) -> None:
        """Composite the interior into `frame` (in place); `bite` as in `layers`."""
        lay = self.layers(points, frame.shape[:2], bite)
        if lay is None:
            if self.photo_interior:
                self._seal(frame, points)
            return
        hh, ww = lay.cavity.shape
        region = frame[lay.y0 : lay.y0 + hh, lay.x0 : lay.x0 + ww].astype(np.float32)
        a = lay.cavity[..., None]
        out = np.clip(region * (1 - a) + lay.rgb * a + 0.5, 0, 255).astype(np.uint8)
        frame[lay.y0 : lay.y0 + hh, lay.x0 : lay.x0 + ww] = out

    def _seal(self, frame: np.ndarray, points: np.ndarray) -> None:
        """Shut lips of a portrait that shows its teeth: the squeezed-together interior leaves dark corner
        pixels and tooth specks along the line where the lips now meet; they turn lip-coloured, with a
        slightly darker line where the lips touch (in place)."""
        import cv2

        h, w = frame.shape[:2]
        outer = points[list(F.LIPS_OUTER), :2]
        x0, y0 = np.maximum(np.floor(outer.min(0)).astype(int) - 1, 0)
        x1, y1 = np.minimum(np.ceil(outer.max(0)).astype(int) + 2, (w, h))
        if x1 - x0 < 3 or y1 - y0 < 3:
            return
        left, right = F.MOUTH_CORNERS
        seam = points[[left, *F.LIP_INNER_UPPER, right], :2] - (x0, y0)
        line = np.ones((y1 - y0, x1 - x0), np.uint8)
        cv2.polylines(line, [np.round(seam * 16).astype(np.int32)], False, 0, 1, cv2.LINE_8, 4)
        dist = cv2.distanceTransform(line, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        inside = np.zeros_like(line)
        cv2.fillPoly(inside, [np.round((outer - (x0, y0)) * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        width = max(1.5, 0.02 * self.face_h)
        band = np.clip(1.0 - dist / width, 0, 1) * inside
        region = frame[y0:y1, x0:x1].astype(np.float32)
        lum = region @ np.array([0.299, 0.587, 0.114], np.float32)
        lip = float(self.lip @ np.array([0.299, 0.587, 0.114], np.float32))
        sat = (region.max(2) - region.min(2)) / np.maximum(region.max(2), 1.0)
        dark = np.clip((0.7 * lip - lum) / (0.3 * lip), 0, 1)
        tooth = np.clip((lum - 1.05 * lip) / (0.2 * lip), 0, 1) * (sat < 0.3)
        alpha = (band * np.maximum(dark, tooth))[..., None]
        target = self.lip[None, None] * (0.8 + 0.2 * np.clip(dist / width, 0, 1))[..., None]
        frame[y0:y1, x0:x1] = np.clip(region * (1 - alpha) + target * alpha + 0.5, 0, 255).astype(np.uint8)
