"""The hallo4 engine's settings: precision and dtype, offload, vocal separation, request options, the canvas,
and the warnings a setting earns (a canvas other than the trained one, a CPU run). Pure functions of their
arguments, so `DiffusionEngine` only wires them; every bad value raises `InputError` saying what to use."""

from __future__ import annotations

import logging

import torch

from ..constants import FPS
from ..errors import Hallo4Error, InputError
from .base import GenerationRequest

log = logging.getLogger(__name__)

CPU_FLOPS = 2e11  # rough sustained fp32 FLOP/s of a desktop CPU, for the ETA warning
TRAINED_CANVAS = (832, 480)  # (long side, short side) Hallo4 was trained at
PRECISIONS = ("release", "bf16", "8bit", "fp32")
# Free GPU memory each precision needs for the full model at 832x480x81 with CFG: weights (fp32 11.1 GB,
# bf16 5.6 GB, int8 2.9 GB) plus ~12 GB of activations, VAE and audio encoder (rough; see BENCHMARKS.md).
PRECISION_FREE_BYTES = {"release": 24 * 2**30, "bf16": 18 * 2**30, "8bit": 0}


def choose_precision(free_bytes: int) -> str:
    """The most faithful precision that fits in `free_bytes` of GPU memory: release, else bf16, else 8-bit."""
    for name in ("release", "bf16", "8bit"):
        if free_bytes >= PRECISION_FREE_BYTES[name]:
            return name
    return "8bit"


def resolve_precision(
    device: torch.device, precision: str | None, quantize: str | None, dtype
) -> tuple[str, torch.dtype, str | None]:
    """(precision, weights dtype, note) from the engine's arguments; on a GPU without a choice the precision
    follows the free memory (`choose_precision`) and the note says so."""
    if quantize in ("none", "", False):
        quantize = None
    if quantize not in (None, "8bit", "int8"):
        raise InputError("quantize", f"unknown quantisation {quantize!r}", "Use 'none' or '8bit'.")
    if precision in ("", "auto"):
        precision = None
    if precision is not None and precision not in PRECISIONS:
        raise InputError("precision", f"unknown precision {precision!r}", f"Use one of {', '.join(PRECISIONS)}.")
    if quantize and precision not in (None, "8bit"):
        raise InputError("precision", f"quantize='8bit' contradicts precision={precision!r}", "Give one of them.")
    note = None
    if quantize:
        precision = "8bit"
    if precision is None and dtype is None:
        if device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(device)
            precision = choose_precision(free)
            note = (
                f"Precision {precision!r} chosen for {free / 2**30:.1f} GiB of free GPU memory "
                "(release = the authors' numerics; set precision to change it)."
            )
        else:
            precision = "fp32"
    named = {torch.float32: "fp32", torch.bfloat16: "bf16"}
    precision = precision or named.get(parse_dtype(dtype), "custom")
    if dtype is not None:
        weights = parse_dtype(dtype)
    elif precision in ("release", "fp32"):
        weights = torch.float32  # release: fp32 master weights, bf16 autocast
    else:
        weights = torch.bfloat16 if device.type == "cuda" else torch.float32
    return precision, weights, note


def resolve_offload(offload) -> str | None:
    """None / "none" / False, "model" (or True) or "group"."""
    if offload in (None, False, "none", ""):
        return None
    if offload is True:
        return "model"
    if offload not in ("model", "group"):
        raise InputError("offload", f"unknown offload mode {offload!r}", "Use 'none', 'model' or 'group'.")
    return offload


def vocal_setting(value) -> bool | None:
    """None/"auto" (on when the model file is present), True/"on", False/"off"."""
    if value is None or value == "auto":
        return None
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("on", "true", "1", "yes"):
        return True
    if str(value).lower() in ("off", "false", "0", "no"):
        return False
    raise InputError("vocal separation", f"unknown setting {value!r}", "Use auto, on or off.")


def parse_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "fp32": torch.float32,
        "float32": torch.float32,
    }
    if str(dtype).lower() not in names:
        raise InputError("dtype", f"unknown dtype {dtype!r}", "Use bf16, fp16 or fp32.")
    return names[str(dtype).lower()]


def num_opt(opts: dict, key: str, default, lo, hi, cast=float):
    """An option from request.options, cast and range-checked, with a message saying what to use."""
    value = opts.get(key)
    if value is None:
        return default
    try:
        v = cast(value)
    except (TypeError, ValueError):
        kind = "a whole number" if cast is int else "a number"
        raise InputError(key, f"{value!r} is not {kind}", f"Use a value between {lo} and {hi}.") from None
    if not lo <= v <= hi:
        raise InputError(key, f"{v} is out of range", f"Use a value between {lo} and {hi}.")
    return v


def int_opt(opts: dict, key: str, default: int, lo: int, hi: int) -> int:
    return num_opt(opts, key, default, lo, hi, int)


def float_opt(opts: dict, key: str, default: float, lo: float, hi: float) -> float:
    return num_opt(opts, key, default, lo, hi, float)


def canvas(request: GenerationRequest, opts: dict) -> tuple[int | None, int | None]:
    """(height, width) of the canvas: options height/width, else `size` as the long side (<= 832), else
    (None, None): the pipeline's trained canvas for the portrait (832x480 or 480x832)."""
    from .. import media
    from ..pipelines.conditions import default_canvas

    if opts.get("height") or opts.get("width"):
        return int_opt(opts, "height", 480, 16, 2048), int_opt(opts, "width", 832, 16, 2048)
    if request.size is None:
        return None, None
    size = int(request.size)
    if not 16 <= size <= 4096:
        raise InputError(
            "size", f"{size} px is out of range", "Choose a size between 16 and 4096 pixels (832 = native)."
        )
    long_side = max(16, min(TRAINED_CANVAS[0], size) // 16 * 16)
    short_side = max(16, int(round(long_side * TRAINED_CANVAS[1] / TRAINED_CANVAS[0] / 16)) * 16)
    image = media.load_image(request.portrait, name="portrait")
    w0, h0 = default_canvas(image.width, image.height)
    return (short_side, long_side) if w0 > h0 else (long_side, short_side)


def size_warning(height: int | None, width: int | None) -> str | None:
    """A canvas other than the trained one is allowed (faster previews) but said."""
    if height is None or sorted((int(height), int(width))) == sorted(TRAINED_CANVAS):
        return None
    return (
        f"Canvas {width}x{height} differs from the 832x480 / 480x832 canvas Hallo4 was trained at; expect "
        "lower quality. Leave the size empty for the trained canvas."
    )


def cpu_warning(transformer, request: GenerationRequest, steps, guidance, frames_per_segment, height, width) -> str:
    """A CPU run is very slow with the real model: say so, with a rough estimate."""
    from .. import media

    try:
        n = max(1, int(round(media.probe(request.audio, name="audio", count_frames=False).duration * FPS)))
    except Hallo4Error as exc:  # the pipeline reports bad audio properly when it reads it
        log.info("no audio length for the CPU estimate (%s); assuming 5 s", exc)
        n = 125
    if request.max_seconds:
        n = min(n, int(request.max_seconds * FPS) + 1)
    segments = max(1, -(-(n - 1) // (frames_per_segment - 1)))
    h, w = int(height or 480), int(width or 832)
    tokens = (2 + (frames_per_segment - 1) // 4) * (h // 16) * (w // 16)
    cfg = transformer.config
    inner = cfg.num_attention_heads * cfg.attention_head_dim
    params = sum(p.numel() for p in transformer.parameters())
    layers = cfg.num_layers + len(cfg.vace_layers)
    flops = 2 * params * tokens + 4 * tokens * tokens * inner * layers
    flops *= (2 if guidance > 1 else 1) * steps * segments
    minutes = flops / CPU_FLOPS / 60
    eta = f"{minutes:.0f} min" if minutes >= 1 else f"{minutes * 60:.0f} s"
    return (
        f"Running the hallo4 engine on the CPU in float32 (no CUDA GPU): roughly {eta} for {segments} "
        f"segment(s) x {steps} steps. Use a GPU, fewer steps, or the lite engine for a quick result."
    )
