"""How much memory the hallo4 parts need: weight bytes counted from the real configurations on the meta device
(the model folder's config.json files, else the published ones) and the activation peaks of one segment,
estimated from the tensors alive at each peak. `hallo4.preflight` turns them into modes and a verdict."""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path
from typing import Any

GiB = 1 << 30
# Canvas of the estimate: Hallo4's native segment (docs/MODEL.md): 480x832, 81 frames, CFG batch 2.
NATIVE = {"height": 480, "width": 832, "frames": 81, "batch": 2}
SKELETON_ENCODE_CHUNK = 16  # Hallo4Pipeline.vae_encode_frames encodes 16 skeleton frames at once

# Published configurations, used when the weights are not present (only the size-relevant keys).
UMT5_XXL = dict(
    vocab_size=256384,
    d_model=4096,
    d_kv=64,
    d_ff=10240,
    num_layers=24,
    num_heads=64,
    feed_forward_proj="gated-gelu",
    relative_attention_num_buckets=32,
    tie_word_embeddings=False,
)


# ----------------------------------------------------------------------------------------------
# Weights, counted on the meta device
# ----------------------------------------------------------------------------------------------
def _read_config(path: Path | None) -> dict | None:
    try:
        return json.loads(Path(path).read_text()) if path else None
    except (OSError, ValueError):
        return None


@functools.lru_cache(maxsize=16)
def _weights_from(
    transformer_cfg: str | None, vae_cfg: str | None, text_cfg: str | None, audio_cfg: str | None
) -> dict[str, Any]:
    """Bytes per component and precision; every model built under `init_empty_weights` (meta)."""
    import torch
    from accelerate import init_empty_weights
    from diffusers import AutoencoderKLWan
    from transformers import UMT5Config, UMT5EncoderModel, Wav2Vec2Config, Wav2Vec2Model

    from .models import Hallo4Transformer3DModel, full_config
    from .quantization import estimate_weight_memory

    def params(m) -> int:
        return sum(p.numel() for p in m.parameters())

    with init_empty_weights():
        if transformer_cfg:
            dit = Hallo4Transformer3DModel.from_config(json.loads(transformer_cfg))
        else:
            dit = Hallo4Transformer3DModel(**full_config())
        vae = AutoencoderKLWan.from_config(json.loads(vae_cfg)) if vae_cfg else AutoencoderKLWan()
        text = UMT5EncoderModel(UMT5Config(**json.loads(text_cfg)) if text_cfg else UMT5Config(**UMT5_XXL))
        audio = Wav2Vec2Model(Wav2Vec2Config(**json.loads(audio_cfg)) if audio_cfg else Wav2Vec2Config())
    est = estimate_weight_memory(dit, dtype=torch.bfloat16)
    blocks = list(dit.blocks) + list(dit.vace_blocks)
    largest_block = max(params(b) for b in blocks)
    cfg = dit.config
    return {
        "dit_params": est["params"],
        "dit": {"bf16": est["bytes_full"], "release": est["params"] * 4, "8bit": est["bytes_8bit"]},
        "dit_largest_block_params": largest_block,
        "dit_outside_blocks_params": est["params"] - sum(params(b) for b in blocks),
        "dit_config": {
            "inner_dim": cfg.num_attention_heads * cfg.attention_head_dim,
            "ffn_dim": cfg.ffn_dim,
            "vace_layers": len(cfg.vace_layers),
            "patch": list(cfg.patch_size),
        },
        "vae_params": params(vae),
        "vae": params(vae) * 4,  # the pipeline keeps the VAE in fp32
        "vae_base_dim": int(vae.config.base_dim),
        "text_params": params(text),
        "text": params(text) * 2,  # umT5 in bf16 on a GPU
        "audio_params": params(audio),
        "audio": params(audio) * 4,  # wav2vec2 in fp32
    }


def weight_bytes(model: str | os.PathLike | None = None) -> dict[str, Any]:
    """Weight bytes of every component, from the model folder's configs when present (else the full model)."""
    comps: dict[str, Path | None] = {}
    if model is not None:
        from .weights import find_components

        comps = find_components(model)

    def cfg(key: str) -> str | None:
        d = comps.get(key)
        data = _read_config(Path(d) / "config.json") if d else None
        return json.dumps(data, sort_keys=True) if data else None

    return _weights_from(cfg("transformer"), cfg("vae"), cfg("text_encoder"), cfg("audio_encoder"))


# ----------------------------------------------------------------------------------------------
# Activations (estimate)
# ----------------------------------------------------------------------------------------------
def activation_bytes(
    w: dict[str, Any],
    height: int = NATIVE["height"],
    width: int = NATIVE["width"],
    frames: int = NATIVE["frames"],
    batch: int = NATIVE["batch"],
) -> dict[str, int]:
    """Peak activation bytes of the stages of one segment, from the tensors alive at each peak.

    DiT step: the VACE hints (one (B, S, D) bf16 tensor per VACE block, all kept until the main blocks
    use them), the hidden state and control state, the FFN's two (B, S, ffn) bf16 tensors and four fp32
    (B, S, D) norm/modulation temporaries; SDPA attention needs no (S x S) matrix.
    VAE: decoding keeps ~6 full-resolution 4-frame feature maps of `base_dim` channels (fp32) plus the
    output; encoding the skeleton encodes 16 frames at once: ~4 full-resolution maps of 16 frames.
    """
    c = w["dit_config"]
    pt, ph, pw = c["patch"]
    latent_frames = 2 + (frames - 1) // 4  # reference + causal VAE frames
    s = latent_frames // pt * (height // 8 // ph) * (width // 8 // pw)
    d, f = c["inner_dim"], c["ffn_dim"]
    bsd2 = batch * s * d * 2
    dit = bsd2 * (c["vace_layers"] + 2) + 2 * batch * s * f * 2 + 4 * batch * s * d * 4
    full_map = w["vae_base_dim"] * height * width * 4  # one fp32 channel stack at full resolution, per frame
    vae_decode = 6 * 4 * full_map + 3 * frames * height * width * 4
    vae_encode = 4 * SKELETON_ENCODE_CHUNK * full_map
    text = 2 * 512 * (4096 + 10240) * 2 * 4  # (2 prompts, 512 tokens) hidden + FFN, a few alive
    audio = 64 * 1024 * 1024  # wav2vec2-base on seconds of audio: small
    return {"tokens": s, "dit": dit, "vae_decode": vae_decode, "vae_encode": vae_encode, "text": text, "audio": audio}
