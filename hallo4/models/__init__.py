"""Hallo4 DiT (Wan2.1-VACE-1.3B + audio / skeleton cross-attentions) and its configs."""

from __future__ import annotations

from .projectors import Hallo4AudioProjection, Hallo4PoseProjection
from .transformer_hallo4 import Hallo4Transformer3DModel, Hallo4TransformerBlock

__all__ = [
    "Hallo4AudioProjection",
    "Hallo4PoseProjection",
    "Hallo4Transformer3DModel",
    "Hallo4TransformerBlock",
    "full_config",
    "tiny_config",
]


def full_config() -> dict:
    """Constructor kwargs of the real model: Wan2.1-VACE-1.3B + Hallo4 (docs/MODEL.md sections 1, 2, 4)."""
    return dict(
        patch_size=(1, 2, 2),
        num_attention_heads=12,
        attention_head_dim=128,
        in_channels=16,
        out_channels=16,
        text_dim=4096,
        freq_dim=256,
        ffn_dim=8960,
        num_layers=30,
        cross_attn_norm=True,
        qk_norm="rms_norm_across_heads",
        eps=1e-6,
        rope_max_seq_len=1024,
        vace_layers=list(range(0, 30, 2)),
        vace_in_channels=96,
        enable_audio=True,
        audio_window=5,
        audio_layers=12,
        audio_dim=768,
        audio_hidden_dim=512,
        audio_tokens=32,
        enable_skeleton=True,
        pose_in_channels=16,
    )


def tiny_config(**overrides) -> dict:
    """Kwargs for a few-MB random test model (inner_dim 64, 2 heads, 2 layers, 1 VACE layer).

    Inputs it expects: latents 16 channels, VACE context 96 channels, text dim 32, audio features
    (B, T, 5, 2, 16). Override any key, e.g. `tiny_config(text_dim=64)`.
    """
    cfg = full_config()
    cfg.update(
        num_attention_heads=2,
        attention_head_dim=32,
        text_dim=32,
        freq_dim=32,
        ffn_dim=128,
        num_layers=2,
        vace_layers=[0],
        rope_max_seq_len=64,
        audio_window=5,
        audio_layers=2,
        audio_dim=16,
        audio_hidden_dim=32,
        audio_tokens=4,
    )
    cfg.update(overrides)
    return cfg
