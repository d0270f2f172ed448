"""Lite engine speed (10 s clip at 512x512, all included; warp step alone) and lip-sync quality.

python bench/bench_lite.py  ->  bench/results/lite.json
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import peak_rss_mib, write  # noqa: E402
from hallo4 import face as F  # noqa: E402
from hallo4 import media  # noqa: E402
from hallo4.engines import GenerationRequest, get_engine  # noqa: E402
from hallo4.engines.lite import FaceRig  # noqa: E402
from hallo4.metrics import lipsync  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EX = ROOT / "examples"


def main() -> None:
    tmp = Path(tempfile.mkdtemp())
    # 10 s of speech: the story example cut to 10 s.
    audio = media.load_audio(EX / "audio" / "story.wav", 16000, max_seconds=10.0)
    wav = tmp / "ten.wav"
    sf.write(wav, audio, 16000)
    engine = get_engine("lite")
    runs = []
    for portrait in ("astronaut.png", "grace_hopper.jpg"):
        img = media.load_image(EX / "portraits" / portrait).resize((512, 512))
        square = tmp / f"{portrait}.png"
        img.save(square)
        t = time.perf_counter()
        res = engine.generate(GenerationRequest(portrait=square, audio=wav, seed=1, size=512, output=tmp / f"{portrait}.mp4"))
        wall = time.perf_counter() - t
        sync = lipsync(res.video)
        # Control: the same portrait, mouth still, same audio.
        still = media.write_mp4(tmp / f"{portrait}_still.mp4", [np.asarray(img)] * res.num_frames, fps=25, audio=wav)
        control = lipsync(still)
        runs.append({"portrait": portrait, "size": "512x512", "seconds_of_video": res.num_frames / 25, "wall_s": round(wall, 2),
                     "realtime_factor": round(res.num_frames / 25 / wall, 2), "timings_s": {k: round(v, 3) for k, v in res.timings.items()},
                     "lipsync": {"offset_frames": sync.offset_frames, "correlation": sync.correlation, "face_share": sync.face_detected_share},
                     "control_still_mouth": {"offset_frames": control.offset_frames, "correlation": control.correlation}})
    # Warp step alone.
    arr = np.asarray(media.load_image(EX / "portraits" / "astronaut.png").resize((512, 512)))
    rig = FaceRig(arr, F.analyze_face(arr, require=True).landmarks)
    n = 200
    t = time.perf_counter()
    for i in range(n):
        rig.render(0.5 + 0.5 * np.sin(i / 5), 0.2, 0.0, np.array([0.01 * np.sin(i / 9), 0.0, 0.01]))
    warp_fps = n / (time.perf_counter() - t)
    write("lite", {"runs": runs, "warp_plus_mouth_fps_512": round(warp_fps, 1), "peak_rss_MiB": round(peak_rss_mib(), 1)})


if __name__ == "__main__":
    main()
