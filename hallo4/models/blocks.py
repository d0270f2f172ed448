"""The pieces of the Hallo4 DiT around diffusers' Wan modules: the transformer block with Hallo4's per-frame audio
and skeleton cross-attentions (docs/MODEL.md sections 2.7 and 4) and the float64 timestep features of the release.
The model that stacks them is `transformer_hallo4.Hallo4Transformer3DModel`."""

from __future__ import annotations

import torch
import torch.nn as nn
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import WanAttention, WanAttnProcessor, WanTransformerBlock


def _per_frame(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B, F * S, C) -> (B * F, S, C)."""
    b, n, c = x.shape
    if n % num_frames:
        raise ValueError(f"{n} video tokens do not split into {num_frames} latent frames")
    return x.reshape(b * num_frames, n // num_frames, c)


class Float64Timesteps(nn.Module):
    """Sinusoidal timestep features computed in float64, as the release does (`[cos, sin]` of
    t * 10000^(-i / half)). diffusers' `Timesteps` computes them in float32, which moves the tiny golden
    model's output by 2.7e-5 (tests/test_golden.py); the result is cast to the time embedder's dtype
    by `WanTimeTextImageEmbedding`. Hand-written because diffusers has no float64 option."""

    def __init__(self, num_channels: int):
        super().__init__()
        if num_channels % 2:
            raise ValueError(f"the timestep sinusoid needs an even number of channels, got {num_channels}")
        self.num_channels = num_channels

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        device = timesteps.device
        # float64 is not available on every accelerator (e.g. Apple MPS): compute on the CPU there
        work = device if device.type in ("cpu", "cuda") else torch.device("cpu")
        position = timesteps.to(device=work, dtype=torch.float64).reshape(-1)
        half = self.num_channels // 2
        freqs = torch.pow(10000.0, -torch.arange(half, device=work, dtype=torch.float64) / half)
        args = torch.outer(position, freqs)
        return torch.cat([torch.cos(args), torch.sin(args)], dim=1).to(device)


def _cross_attention(dim: int, num_heads: int, eps: float) -> WanAttention:
    return WanAttention(
        dim=dim,
        heads=num_heads,
        dim_head=dim // num_heads,
        eps=eps,
        cross_attention_dim_head=dim // num_heads,
        processor=WanAttnProcessor(),
    )


class Hallo4TransformerBlock(WanTransformerBlock):
    """A Wan main block plus Hallo4's audio cross-attention (after the text cross-attention) and
    skeleton cross-attention (inside the FFN branch, after the adaLN modulation)."""

    def __init__(
        self,
        dim: int,
        ffn_dim: int,
        num_heads: int,
        qk_norm: str = "rms_norm_across_heads",
        cross_attn_norm: bool = True,
        eps: float = 1e-6,
        enable_audio: bool = True,
        enable_skeleton: bool = True,
    ):
        super().__init__(dim, ffn_dim, num_heads, qk_norm, cross_attn_norm, eps, None)
        self.audio_norm = self.audio_attn = None
        self.skeleton_norm = self.skeleton_attn = None
        if enable_audio:
            self.audio_norm = FP32LayerNorm(dim, eps, elementwise_affine=True) if cross_attn_norm else nn.Identity()
            self.audio_attn = _cross_attention(dim, num_heads, eps)
            nn.init.zeros_(self.audio_attn.to_out[0].weight)
            nn.init.zeros_(self.audio_attn.to_out[0].bias)
        if enable_skeleton:
            self.skeleton_norm = FP32LayerNorm(dim, eps, elementwise_affine=True) if cross_attn_norm else nn.Identity()
            self.skeleton_attn = _cross_attention(dim, num_heads, eps)
            nn.init.zeros_(self.skeleton_attn.to_out[0].weight)
            nn.init.zeros_(self.skeleton_attn.to_out[0].bias)

    def forward(
        self,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        temb: torch.Tensor,
        rotary_emb: tuple[torch.Tensor, torch.Tensor],
        audio_tokens: torch.Tensor | None = None,
        skeleton_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """audio_tokens (B, 1 + F, A, C), skeleton_tokens (B, 1 + F, S, C) with S = tokens per latent
        frame; either may be None (that cross-attention is skipped)."""
        shift_msa, scale_msa, gate_msa, c_shift_msa, c_scale_msa, c_gate_msa = (
            self.scale_shift_table + temb.float()
        ).chunk(6, dim=1)

        # 1. Self-attention (3D RoPE)
        norm_hidden_states = (self.norm1(hidden_states.float()) * (1 + scale_msa) + shift_msa).type_as(hidden_states)
        attn_output = self.attn1(norm_hidden_states, None, None, rotary_emb)
        hidden_states = (hidden_states.float() + attn_output * gate_msa).type_as(hidden_states)

        # 2. Text cross-attention
        norm_hidden_states = self.norm2(hidden_states.float()).type_as(hidden_states)
        attn_output = self.attn2(norm_hidden_states, encoder_hidden_states, None, None)
        hidden_states = hidden_states + attn_output

        # 3. Audio cross-attention, per latent frame, no RoPE
        if audio_tokens is not None and self.audio_attn is not None:
            b, f = audio_tokens.shape[:2]
            x = _per_frame(hidden_states, f)
            audio = audio_tokens.reshape(b * f, audio_tokens.shape[2], audio_tokens.shape[3]).type_as(x)
            x = x + self.audio_attn(self.audio_norm(x.float()).type_as(x), audio, None, None)
            hidden_states = x.reshape(hidden_states.shape)

        # 4. Feed-forward, with the skeleton cross-attention after the adaLN modulation
        norm_hidden_states = (self.norm3(hidden_states.float()) * (1 + c_scale_msa) + c_shift_msa).type_as(
            hidden_states
        )
        if skeleton_tokens is not None and self.skeleton_attn is not None:
            b, f = skeleton_tokens.shape[:2]
            h = _per_frame(norm_hidden_states, f)
            query = skeleton_tokens.reshape(b * f, skeleton_tokens.shape[2], skeleton_tokens.shape[3]).type_as(h)
            if query.shape[1] != h.shape[1]:
                raise ValueError(
                    f"skeleton gives {query.shape[1]} tokens per latent frame, the video {h.shape[1]}: "
                    "pose_latents must have the same height and width as hidden_states"
                )
            h = h + self.skeleton_attn(query, self.skeleton_norm(h.float()).type_as(h), None, None)
            norm_hidden_states = h.reshape(norm_hidden_states.shape)
        ff_output = self.ffn(norm_hidden_states)
        hidden_states = (hidden_states.float() + ff_output.float() * c_gate_msa).type_as(hidden_states)
        return hidden_states
