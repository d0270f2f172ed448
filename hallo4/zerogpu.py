"""How many GPU seconds a hallo4 request asks ZeroGPU for (`spaces.GPU(duration=...)` on a Space).

ZeroGPU admits a call only when the visitor's quota covers the requested duration, and shorter requests
queue first, so the request is sized from what it will do instead of a fixed 300 s:

    seconds = 1.25 x (load + new-prompt text encoder + segments x (steps x s/step x canvas + VAE)) + 10

with segments = ceil((frames - 1) / 80) for the audio (cut to `max_seconds`), s/step the mode's time per
CFG denoising step at 480x832, scaled by the canvas's token count. The per-mode times come from
`bench/results/gpu_check.json` when `bench/gpu_check.py` has measured them on a GPU, else from
`ESTIMATED_STEP_S` (estimates, stated as such). A request over `max_seconds()` is refused before any GPU
is asked for, naming the audio length that fits. The lite engine never asks for a GPU.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from .constants import FPS
from .errors import InputError

SEGMENT_FRAMES = 81
NATIVE_TOKENS = 22 * 30 * 52  # 480x832, 81 frames: latent tokens per sample
# Seconds per CFG step at 480x832 x 81 frames on an H100/H200-class GPU: ESTIMATES (Wan2.1-1.3B's published
# ~1.6 s/step scaled by Hallo4's 45 vs 30 blocks and its extra cross-attentions; 8-bit LLM.int8 matmuls ~1.5x;
# release = fp32 weights under autocast ~1.1x; group offload streams the 5.2 GiB of DiT weights every step).
ESTIMATED_STEP_S = {
    ("bf16", "none"): 2.5,
    ("bf16", "model"): 2.5,
    ("bf16", "group"): 3.0,
    ("release", "none"): 2.8,
    ("release", "model"): 2.8,
    ("release", "group"): 3.6,
    ("8bit", "none"): 3.8,
    ("8bit", "model"): 3.8,
    ("8bit", "group"): 4.1,
}
ESTIMATED_VAE_S = 12.0  # per segment: 81 skeleton frames (6 chunks), the context video, the decode
LOAD_S = 30.0  # weights from disk onto the GPU (the engine loads inside the GPU call)
TEXT_ENCODER_S = 25.0  # umT5-XXL loaded + run on a prompt-cache miss
MARGIN, EXTRA_S, MIN_S = 1.25, 10.0, 30
DEFAULT_MAX_S = 600  # override with HALLO4_ZEROGPU_MAX_S (the Space's plan decides what it may ask for)
RESULTS = Path(__file__).resolve().parents[1] / "bench" / "results" / "gpu_check.json"


def max_seconds() -> int:
    return int(os.environ.get("HALLO4_ZEROGPU_MAX_S", DEFAULT_MAX_S))


def step_seconds(precision: str, offload: str, results: Path | None = RESULTS) -> tuple[float, float, str]:
    """(s/step, VAE s/segment, source) for a mode: measured by bench/gpu_check.py if available, else estimated."""
    try:
        data = json.loads(Path(results).read_text()) if results else None
    except (OSError, ValueError):
        data = None
    if data and not data.get("dry_run"):
        mode = next(
            (
                m
                for m in data.get("modes", [])
                if (m.get("precision"), m.get("offload")) == (precision, offload) and "seconds_per_step" in m
            ),
            None,
        )
        if mode:
            vae = data.get("vae", {})
            vae_s = ESTIMATED_VAE_S
            if "decode_segment_s" in vae:
                vae_s = (
                    6 * vae["encode_16_skeleton_frames_s"] + vae["encode_context_video_s"] + vae["decode_segment_s"]
                )
            return float(mode["seconds_per_step"]), float(vae_s), f"measured on {data.get('device', 'a GPU')}"
    return ESTIMATED_STEP_S[(precision, offload)], ESTIMATED_VAE_S, "estimated"


def gpu_seconds(
    audio_seconds: float,
    *,
    steps: int,
    guidance: float = 6.0,
    precision: str = "bf16",
    offload: str = "none",
    height: int = 480,
    width: int = 832,
    prompt_cached: bool = False,
    loaded: bool = False,
    results: Path | None = RESULTS,
) -> int:
    """GPU seconds to request for one hallo4 generation (see the module docstring)."""
    frames = max(1, math.ceil(audio_seconds * FPS))
    segments = max(1, math.ceil((frames - 1) / (SEGMENT_FRAMES - 1)))
    per_step, vae_s, _ = step_seconds(precision, offload, results)
    tokens = (2 + (SEGMENT_FRAMES - 1) // 4) * (height // 16) * (width // 16)
    scale = tokens / NATIVE_TOKENS  # linear in tokens: attention is quadratic, so smaller canvases are over-counted
    cfg = 1.0 if guidance > 1.0 else 0.55  # without CFG the forward runs batch 1
    work = segments * (steps * per_step * scale * cfg + vae_s * scale)
    total = (0 if loaded else LOAD_S) + (0 if prompt_cached else TEXT_ENCODER_S) + work
    return max(MIN_S, int(math.ceil(MARGIN * total + EXTRA_S)))


def check_request(audio_seconds: float, **kwargs) -> int:
    """`gpu_seconds`, or InputError (before any GPU is asked for) when it is over `max_seconds()`."""
    need = gpu_seconds(audio_seconds, **kwargs)
    limit = max_seconds()
    if need <= limit:
        return need
    lo, hi = 0.04, float(audio_seconds)  # the longest audio that fits, by bisection on the same formula
    for _ in range(30):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if gpu_seconds(mid, **kwargs) <= limit else (lo, mid)
    fits = f"at most {lo:.1f} s of audio" if gpu_seconds(lo, **kwargs) <= limit else "nothing at these settings"
    raise InputError(
        "audio",
        f"{audio_seconds:.1f} s at these settings needs about {need} s of GPU time, more than this Space's {limit} s",
        f"Set a max length ({fits}), fewer steps or the fast preset, or use the lite engine.",
    )


def request_seconds(
    audio,
    max_len: float | None,
    *,
    steps: int,
    guidance: float,
    size: int | None,
    quantize: str | None,
    offload: str | None,
) -> int:
    """The duration for an app request: probes the audio, maps the app's settings to a mode."""
    from . import media
    from .paths import cache_dir

    seconds = media.probe(audio, name="audio", count_frames=False).duration if audio else 1.0
    if max_len:
        seconds = min(seconds, float(max_len))
    long_side = max(16, min(832, int(size or 832)) // 16 * 16)
    short_side = max(16, int(round(long_side * 480 / 832 / 16)) * 16)
    prompt_cached = any((cache_dir() / "prompts").glob("*.safetensors"))
    precision = "8bit" if quantize in ("8bit", "int8") else "release" if quantize == "release" else "bf16"
    return check_request(
        seconds,
        steps=int(steps),
        guidance=float(guidance),
        precision=precision,
        offload=offload if offload in ("model", "group") else "none",
        height=short_side,
        width=long_side,
        prompt_cached=prompt_cached,
    )
