"""The release's `VaceWanModel` constructor kwargs (JSON) -> `Hallo4Transformer3DModel` arguments, for
converting checkpoints of sizes other than the full model (`python -m hallo4.convert --config`)."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import InputError

# ----------------------------------------------------------------------------------------------
# Release constructor kwargs -> our config
# ----------------------------------------------------------------------------------------------
# The release builds `VaceWanModel(**kwargs)` (Wan's config.json keys plus Hallo4's flags); these map
# one to one onto `Hallo4Transformer3DModel` arguments.
_RELEASE_KEYS = {
    "dim": None,
    "num_heads": None,  # -> num_attention_heads, attention_head_dim = dim / num_heads
    "in_dim": "in_channels",
    "out_dim": "out_channels",
    "ffn_dim": "ffn_dim",
    "freq_dim": "freq_dim",
    "num_layers": "num_layers",
    "eps": "eps",
    "vace_layers": "vace_layers",
    "vace_in_dim": "vace_in_channels",
    "text_dim": "text_dim",
    "patch_size": "patch_size",
    "cross_attn_norm": "cross_attn_norm",
    "qk_norm": None,
    "enable_audio_cross_attn": "enable_audio",
    "enable_skeleton_cross_attn": "enable_skeleton",
}
# Accepted and not needed by our model: the sequence lengths are inputs here (the pipeline pads the text
# to 512 tokens itself), checkpointing is switched at run time, and the window must be global.
_RELEASE_IGNORED = {
    "model_type",
    "text_len",
    "use_gradient_checkpointing",
    "window_size",
    "vace_in_dim_text",
    "_class_name",
    "_diffusers_version",
    "__name__",
}


def release_config(kwargs: dict) -> dict:
    """Our `Hallo4Transformer3DModel` kwargs for the release's `VaceWanModel` constructor kwargs (as in
    tests/fixtures/hallo4-official/transformer-tiny/config.json). Unknown keys or values our model cannot
    reproduce raise `InputError`. The audio and pose projectors have the release's fixed sizes."""
    from .models import full_config

    unknown = sorted(k for k in kwargs if k not in _RELEASE_KEYS and k not in _RELEASE_IGNORED)
    if unknown:
        raise InputError(
            "config",
            f"unknown release constructor arguments: {', '.join(unknown)}",
            "Pass the kwargs of the release's VaceWanModel (dim, num_heads, num_layers, ...).",
        )
    if kwargs.get("model_type", "t2v") not in ("t2v", "vace"):
        raise InputError(
            "config",
            f"model_type {kwargs['model_type']!r} is not supported",
            "Hallo4 is a text-to-video VACE model (model_type 't2v').",
        )
    if tuple(kwargs.get("window_size", (-1, -1))) != (-1, -1):
        raise InputError(
            "config",
            f"window_size {kwargs['window_size']} (local attention) is not supported",
            "Hallo4 uses global attention: window_size (-1, -1).",
        )
    cfg = full_config()
    dim = int(kwargs.get("dim", cfg["num_attention_heads"] * cfg["attention_head_dim"]))
    heads = int(kwargs.get("num_heads", cfg["num_attention_heads"]))
    if dim % heads:
        raise InputError("config", f"dim {dim} is not divisible by num_heads {heads}")
    cfg.update(num_attention_heads=heads, attention_head_dim=dim // heads)
    for key, ours in _RELEASE_KEYS.items():
        if ours and key in kwargs:
            value = kwargs[key]
            cfg[ours] = tuple(value) if key == "patch_size" else list(value) if key == "vace_layers" else value
    if "qk_norm" in kwargs:
        cfg["qk_norm"] = "rms_norm_across_heads" if kwargs["qk_norm"] else None
    if "vace_layers" not in kwargs:  # the release's default: every second layer
        cfg["vace_layers"] = list(range(0, cfg["num_layers"], 2))
    return cfg


def load_release_config(path: str | Path) -> dict:
    """`release_config` of a JSON file."""

    path = Path(path)
    try:
        kwargs = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(
            "config", "not found", "Give the JSON file of the release's constructor kwargs.", path=str(path)
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError("config", f"is not a JSON object ({exc})", path=str(path)) from exc
    if not isinstance(kwargs, dict):
        raise InputError("config", "is not a JSON object of constructor kwargs", path=str(path))
    return release_config(kwargs)
