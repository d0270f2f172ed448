"""Contact sheet of the lite engine's mouth: rest, half and full opening, "ee", "oo", "m" and "f" per portrait.

python bench/gallery.py  ->  docs/gallery.png  (and bench/results/gallery.json with the measured shapes)

Rows: every portrait in examples/portraits plus variants made from them that the engine was not
tuned on (a painting, a beard, a low-resolution webcam still, a small face, black and white, a tilted head).
"ee", "oo", "m" and "f" are not hand-set: they are the mouth shapes `hallo4.articulation` computes from
espeak-ng speech (the middle of a sustained vowel; the closure of "m" in "ama"; the "f" of "afa"), so the sheet
shows the whole speech -> mouth path. Crops are upscaled 2x with nearest-neighbour so pixel edges
stay visible.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hallo4 import face as F  # noqa: E402
from hallo4 import media  # noqa: E402
from hallo4.articulation import articulate  # noqa: E402
from hallo4.engines.lite import FaceRig  # noqa: E402
from hallo4.engines.lite_mouth_geometry import mouth_warnings  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples" / "portraits"
SR = 16000
ZOOM = 2


# ----------------------------------------------------------------------------------------------
# Portraits: the examples and variants of them
# ----------------------------------------------------------------------------------------------
def _fit(img: np.ndarray, longest: int = 512) -> np.ndarray:
    h, w = img.shape[:2]
    s = longest / max(h, w)
    return cv2.resize(img, (int(round(w * s)) // 2 * 2, int(round(h * s)) // 2 * 2), interpolation=cv2.INTER_AREA)


def painted(img: np.ndarray) -> np.ndarray:
    """A painted look: edge-preserving flattening, a limited palette and brush-stroke texture."""
    out = cv2.edgePreservingFilter(img, flags=cv2.RECURS_FILTER, sigma_s=50, sigma_r=0.35)
    out = (out // 12 * 12 + 6).astype(np.uint8)  # a limited palette
    out = cv2.GaussianBlur(out, (0, 0), 0.8)
    rng = np.random.default_rng(0)
    strokes = cv2.GaussianBlur(rng.normal(0, 9, img.shape[:2]).astype(np.float32), (0, 0), sigmaX=3.0, sigmaY=0.8)
    return np.clip(out.astype(np.float32) + strokes[..., None], 0, 255).astype(np.uint8)


def bearded(img: np.ndarray) -> np.ndarray:
    """A short dark beard and moustache drawn as hair strokes around the mouth and over the chin."""
    lm = F.analyze_face(img, require=True).landmarks[:, :2]
    fh = F.face_height(lm)
    rng = np.random.default_rng(1)
    out = img.copy()
    oval = lm[list(F.FACE_OVAL)]
    lower = oval[oval[:, 1] > lm[2, 1]]  # jaw line below the nose
    region = np.zeros(img.shape[:2], np.uint8)
    hull = cv2.convexHull(np.concatenate([lower, lm[[2]] + (0, 0.02 * fh)]).astype(np.int32))
    cv2.fillConvexPoly(region, hull, 1)
    lips = np.zeros_like(region)
    cv2.fillPoly(lips, [lm[list(F.LIPS_OUTER)].astype(np.int32)], 1)
    region &= 1 - cv2.dilate(lips, np.ones((3, 3), np.uint8))
    ys, xs = np.nonzero(region)
    hair = np.zeros(img.shape[:2], np.float32)
    for k in rng.choice(len(xs), size=min(len(xs), int(0.6 * len(xs))), replace=False):
        x, y = xs[k], ys[k]
        ang = np.pi / 2 + rng.normal(0, 0.35)
        ln = rng.uniform(0.01, 0.025) * fh
        end = (int(x + ln * np.cos(ang)), int(y + ln * np.sin(ang)))
        cv2.line(hair, (int(x), int(y)), end, float(rng.uniform(0.5, 1.0)), 1, cv2.LINE_AA)
    hair = np.clip(hair, 0, 1) * cv2.GaussianBlur(region.astype(np.float32), (0, 0), 2.0)
    colour = np.array([52, 40, 34], np.float32)
    return np.clip(out * (1 - 0.85 * hair[..., None]) + colour * 0.85 * hair[..., None], 0, 255).astype(np.uint8)


def webcam(img: np.ndarray) -> np.ndarray:
    """A low-resolution webcam still: 176 px wide, noisy, heavy JPEG, shown at 512."""
    h, w = img.shape[:2]
    small = cv2.resize(img, (176, int(176 * h / w)), interpolation=cv2.INTER_AREA)
    small = np.clip(small + np.random.default_rng(2).normal(0, 4, small.shape), 0, 255).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 30])
    return cv2.resize(cv2.imdecode(buf, cv2.IMREAD_UNCHANGED), (w, h), interpolation=cv2.INTER_LINEAR)


def small_face(img: np.ndarray, face_px: int = 100) -> np.ndarray:
    """The same portrait shrunk so the face is about `face_px` tall, on a 512 px canvas of its own border."""
    lm = F.analyze_face(img, require=True).landmarks[:, :2]
    s = face_px / F.face_height(lm)
    h, w = img.shape[:2]
    small = cv2.resize(img, (int(w * s), int(h * s)), interpolation=cv2.INTER_AREA)
    pad_y, pad_x = max(0, 512 - small.shape[0]), max(0, 512 - small.shape[1])
    canvas = cv2.copyMakeBorder(small, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT)
    return canvas[:512, :512]


def tilted(img: np.ndarray, degrees: float = 20.0) -> np.ndarray:
    """The portrait rolled by `degrees` (a head tilted to one side), borders reflected."""
    h, w = img.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), degrees, 1.0)
    return cv2.warpAffine(img, m, (w, h), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def black_and_white(img: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    return np.repeat(g[..., None], 3, axis=2)


def portraits() -> list[tuple[str, np.ndarray]]:
    out = []
    for path in sorted(EX.iterdir()):
        if path.suffix.lower() in {".png", ".jpg", ".jpeg", ".webp"}:
            out.append((path.name, _fit(np.asarray(media.load_image(path)))))
    base = dict(out)
    hopper = base.get("grace_hopper.jpg", out[0][1])
    astro = base.get("astronaut.png", out[-1][1])
    out += [
        ("painted (hopper)", painted(hopper)),
        ("bearded (hopper)", bearded(hopper)),
        ("webcam 176px (hopper)", webcam(hopper)),
        ("100px face (hopper)", small_face(hopper)),
        ("black & white (astronaut)", black_and_white(astro)),
        ("tilted 20 deg (hopper)", tilted(hopper)),
    ]
    return out


# ----------------------------------------------------------------------------------------------
# Mouth shapes from speech
# ----------------------------------------------------------------------------------------------
def speech_shapes(tmp: Path) -> dict[str, tuple[float, float, float]]:
    """(open, spread, labiodental) that the articulation computes for sustained "ee", "oo", the "m" of
    "ama" and the "f" of "afa"."""
    if shutil.which("espeak-ng") is None:
        raise SystemExit("bench/gallery.py needs espeak-ng (apt-get install espeak-ng) to make its test speech.")
    shapes = {}
    for name, text in (("ee", "[[i::::::]]"), ("oo", "[[u::::::]]"), ("m", "ama"), ("f", "afa")):
        wav = tmp / f"{name}.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), text], check=True, capture_output=True)
        art = articulate(media.load_audio(wav, SR), SR)
        if name == "m":
            voiced = np.flatnonzero(art.open > 0.2)
            between = [
                i for i in range(len(art.open)) if voiced.size and voiced[0] < i < voiced[-1] and art.closure[i] > 0
            ]
            i = between[len(between) // 2] if between else int(np.argmin(art.open))
        elif name == "f":
            labio = np.flatnonzero(art.labiodental > 0.5)
            i = int(labio[len(labio) // 2]) if len(labio) else int(np.argmin(art.open))
        else:
            i = int(np.flatnonzero(art.open > 0.05).mean())
        shapes[name] = (float(art.open[i]), float(art.spread[i]), float(art.labiodental[i]))
    return shapes


def mouth_crop(frame: np.ndarray, lm: np.ndarray) -> np.ndarray:
    fh = F.face_height(lm)
    c = lm[[*F.MOUTH_CORNERS, F.UPPER_LIP_INNER_MID, F.LOWER_LIP_INNER_MID], :2].mean(0)
    half_w, up, down = 0.3 * fh, 0.16 * fh, 0.22 * fh
    x0, y0 = int(round(c[0] - half_w)), int(round(c[1] - up))
    x1, y1 = int(round(c[0] + half_w)), int(round(c[1] + down))
    crop = frame[max(y0, 0) : y1, max(x0, 0) : x1]
    return cv2.resize(crop, (crop.shape[1] * ZOOM, crop.shape[0] * ZOOM), interpolation=cv2.INTER_NEAREST)


def _label(img: np.ndarray, text: str, org: tuple[int, int], colour: tuple[int, int, int]) -> None:
    cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, 0.42, colour, 1, cv2.LINE_AA)


TILE_W, TILE_H, LABEL_W, HEAD_H = 256, 170, 190, 26


def _row(name: str, img: np.ndarray, columns: list[tuple[str, float, float, float]]) -> tuple[np.ndarray, dict]:
    """One portrait's strip of mouth crops (one per column) and its measured shapes."""
    tile_w, tile_h, label_w = TILE_W, TILE_H, LABEL_W
    analysis = F.analyze_face(img, require=False)
    row = np.full((tile_h, label_w + tile_w * len(columns), 3), 255, np.uint8)
    _label(row, name[:26], (6, tile_h // 2), (0, 0, 0))
    if not analysis.found:
        _label(row, "no face found", (6, tile_h // 2 + 18), (180, 0, 0))
        return row, {"portrait": name, "face": False}
    lm = analysis.landmarks
    rig = FaceRig(img, lm)
    fh = F.face_height(lm)
    _label(row, f"face {fh:.0f} px", (6, tile_h // 2 + 18), (90, 90, 90))
    warns = mouth_warnings(lm)
    if warns:
        text = "warning: " + ("small face" if "small" in warns[0] else "turned")
        cv2.putText(row, text, (6, tile_h // 2 + 36), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (200, 80, 0), 1, cv2.LINE_AA)
    entry = {"portrait": name, "face_px": round(fh, 1), "warnings": warns, "shapes": {}}
    for k, (col, o, s, labio) in enumerate(columns):
        frame = rig.render(o, s, 0.0, np.zeros(3, np.float32), labiodental=labio)
        dst = rig.landmarks_at(o, s, 0.0, np.zeros(3, np.float32), labio)
        left, right = F.MOUTH_INNER_CORNERS
        entry["shapes"][col] = {
            "open": round(o, 3),
            "spread": round(s, 3),
            "inner_width_px": round(float(np.linalg.norm(dst[right, :2] - dst[left, :2])), 1),
            "inner_height_px": round(float(dst[F.LOWER_LIP_INNER_MID, 1] - dst[F.UPPER_LIP_INNER_MID, 1]), 1),
        }
        crop = mouth_crop(frame, lm)
        scale = min(tile_w / crop.shape[1], tile_h / crop.shape[0], 1.0)
        if scale < 1.0:  # only big faces: keep the 2x nearest look by cropping the centre instead
            cy, cx = crop.shape[0] // 2, crop.shape[1] // 2
            crop = crop[max(cy - tile_h // 2, 0) : cy + tile_h // 2, max(cx - tile_w // 2, 0) : cx + tile_w // 2]
        y0 = (tile_h - crop.shape[0]) // 2
        x0 = label_w + k * tile_w + (tile_w - crop.shape[1]) // 2
        row[y0 : y0 + crop.shape[0], x0 : x0 + crop.shape[1]] = crop
    return row, entry


def main(argv: list[str] | None = None) -> None:
    import argparse

    ap = argparse.ArgumentParser(
        description="Contact sheet of lite mouth crops (rest, half, full, ee, oo, m, f) for every "
        "example portrait and a few synthetic faces."
    )
    ap.add_argument("-o", "--out", type=Path, default=ROOT / "docs" / "gallery.png", help="PNG to write")
    args = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp())
    shapes = speech_shapes(tmp)
    columns = [("rest", 0.0, 0.0, 0.0), ("half", 0.5, 0.0, 0.0), ("full", 1.0, 0.0, 0.0)]
    columns += [(k, *shapes[k]) for k in ("ee", "oo", "m", "f")]
    rows, report = [], []
    for name, img in portraits():
        row, entry = _row(name, img, columns)
        rows.append(row)
        report.append(entry)
    head_h, tile_w, label_w = HEAD_H, TILE_W, LABEL_W
    head = np.full((head_h, rows[0].shape[1], 3), 255, np.uint8)
    for k, (col, o, s, _) in enumerate(columns):
        text = f"{col}  open {o:.2f} spread {s:+.2f}"
        _label(head, text, (label_w + k * tile_w + 8, 18), (0, 0, 0))
    sheet = np.concatenate([head] + rows, axis=0)
    out = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out), cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR))
    from bench.common import write

    write("gallery", {"columns": [c[0] for c in columns], "speech_shapes": shapes, "portraits": report})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
