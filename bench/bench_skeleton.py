"""Skeleton extraction speed on 512x512 video (mediapipe holistic, CPU).

python bench/bench_skeleton.py  ->  bench/results/skeleton.json
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import peak_rss_mib, write  # noqa: E402
from hallo4 import media  # noqa: E402
from hallo4.constants import FPS  # noqa: E402
from hallo4.skeleton import extract_skeleton, render_skeleton  # noqa: E402


def main() -> None:
    img = np.asarray(
        media.load_image(Path(__file__).resolve().parents[1] / "examples" / "portraits" / "astronaut.png")
    )
    n = 100
    frames = [
        cv2.warpAffine(
            img,
            cv2.getRotationMatrix2D((256, 300), 4 * np.sin(i / 8), 1.0)
            + np.float32([[0, 0, 10 * np.sin(i / 11)], [0, 0, 0]]),
            (512, 512),
            borderMode=cv2.BORDER_REPLICATE,
        )
        for i in range(n)
    ]
    path = Path(tempfile.mkdtemp()) / "drive.mp4"
    media.write_mp4(path, frames, fps=FPS)
    t = time.perf_counter()
    seq = extract_skeleton(path)
    extract_s = time.perf_counter() - t
    t = time.perf_counter()
    render_skeleton(seq, 512, 512)
    render_s = time.perf_counter() - t
    write(
        "skeleton",
        {
            "video": f"{n} frames, 512x512, 25 fps (astronaut.png with head/body motion)",
            "extract_s": round(extract_s, 2),
            "extract_fps": round(n / extract_s, 1),
            "render_fps": round(n / render_s, 1),
            "peak_rss_MiB": round(peak_rss_mib(), 1),
        },
    )


if __name__ == "__main__":
    main()
