"""Hallo4 DiT: Wan2.1 + VACE (diffusers parts) + per-frame audio and skeleton cross-attentions.

Built from diffusers' Wan modules (`WanRotaryPosEmbed`, `WanTimeTextImageEmbedding`, `WanAttention`
with its SDPA processor, `WanTransformerBlock`, `WanVACETransformerBlock`); see docs/MODEL.md sections 1,
2.7 and 4 for what is added; the block with the added cross-attentions is `blocks.py`.
Module names (ours -> official Wan/Hallo4 naming, see hallo4/convert_keys.py):

    blocks.{i}.audio_norm     <- blocks.{i}.audio_cross_norm         (affine LayerNorm)
    blocks.{i}.audio_attn     <- blocks.{i}.audio_cross_attn         (q,k,v,o + qk-RMSNorm; o zero-init)
    blocks.{i}.skeleton_norm  <- blocks.{i}.condition_cross_norm     (affine LayerNorm)
    blocks.{i}.skeleton_attn  <- blocks.{i}.condition_cross_attn     (o zero-init)
    audio_proj.{proj1,proj2,proj3,norm}, pose_proj.{proj,norm}      (same names)
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.loaders import PeftAdapterMixin
from diffusers.models.attention import AttentionMixin
from diffusers.models.cache_utils import CacheMixin
from diffusers.models.modeling_outputs import Transformer2DModelOutput
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import FP32LayerNorm
from diffusers.models.transformers.transformer_wan import (
    WanRotaryPosEmbed,
    WanTimeTextImageEmbedding,
)
from diffusers.models.transformers.transformer_wan_vace import WanVACETransformerBlock
from diffusers.utils import apply_lora_scale

from .blocks import Float64Timesteps, Hallo4TransformerBlock
from .projectors import Hallo4AudioProjection, Hallo4PoseProjection, check_video_length


class Hallo4Transformer3DModel(ModelMixin, ConfigMixin, PeftAdapterMixin, CacheMixin, AttentionMixin):
    """Wan2.1-VACE DiT with Hallo4's audio and skeleton conditioning (see module docstring).

    The defaults are the real sizes (Wan2.1-VACE-1.3B + Hallo4); `tiny_config()` gives a few-MB model.
    """

    _supports_gradient_checkpointing = True
    _skip_layerwise_casting_patterns = ["patch_embedding", "vace_patch_embedding", "condition_embedder", "norm"]
    _no_split_modules = ["Hallo4TransformerBlock", "WanVACETransformerBlock"]
    _keep_in_fp32_modules = ["rope", "time_embedder", "scale_shift_table", "norm1", "norm2", "norm3"]
    _repeated_blocks = ["Hallo4TransformerBlock", "WanVACETransformerBlock"]

    @register_to_config
    def __init__(
        self,
        patch_size: tuple[int, ...] = (1, 2, 2),
        num_attention_heads: int = 12,
        attention_head_dim: int = 128,
        in_channels: int = 16,
        out_channels: int = 16,
        text_dim: int = 4096,
        freq_dim: int = 256,
        ffn_dim: int = 8960,
        num_layers: int = 30,
        cross_attn_norm: bool = True,
        qk_norm: str | None = "rms_norm_across_heads",
        eps: float = 1e-6,
        rope_max_seq_len: int = 1024,
        vace_layers: list[int] = tuple(range(0, 30, 2)),
        vace_in_channels: int = 96,
        enable_audio: bool = True,
        audio_window: int = 5,
        audio_layers: int = 12,
        audio_dim: int = 768,
        audio_hidden_dim: int = 512,
        audio_tokens: int = 32,
        enable_skeleton: bool = True,
        pose_in_channels: int = 16,
    ) -> None:
        # Longer than 60 lines: builds the whole module tree in one place, as diffusers' Wan transformers do.
        super().__init__()
        inner_dim = num_attention_heads * attention_head_dim
        out_channels = out_channels or in_channels
        vace_layers = list(vace_layers)
        if not vace_layers or 0 not in vace_layers or max(vace_layers) >= num_layers:
            raise ValueError(f"vace_layers {vace_layers} must include 0 and be < num_layers ({num_layers})")
        if patch_size[1] != patch_size[2]:
            raise ValueError("the pose projector needs a square spatial patch")

        # 1. Patch & position embedding
        self.rope = WanRotaryPosEmbed(attention_head_dim, patch_size, rope_max_seq_len)
        self.patch_embedding = nn.Conv3d(in_channels, inner_dim, kernel_size=patch_size, stride=patch_size)
        self.vace_patch_embedding = nn.Conv3d(vace_in_channels, inner_dim, kernel_size=patch_size, stride=patch_size)

        # 2. Time / text embeddings
        self.condition_embedder = WanTimeTextImageEmbedding(
            dim=inner_dim, time_freq_dim=freq_dim, time_proj_dim=inner_dim * 6, text_embed_dim=text_dim
        )
        self.condition_embedder.timesteps_proj = Float64Timesteps(freq_dim)

        # 3. Blocks (the main and the VACE blocks share their layout: one argument list)
        block_args = (inner_dim, ffn_dim, num_attention_heads, qk_norm, cross_attn_norm, eps)
        self.blocks = nn.ModuleList(
            [
                Hallo4TransformerBlock(
                    *block_args,
                    enable_audio=enable_audio,
                    enable_skeleton=enable_skeleton,
                )
                for _ in range(num_layers)
            ]
        )
        self.vace_blocks = nn.ModuleList(
            [
                WanVACETransformerBlock(
                    *block_args,
                    None,
                    apply_input_projection=i == 0,
                    apply_output_projection=True,
                )
                for i in range(len(vace_layers))
            ]
        )
        for block in self.vace_blocks:  # zero-initialised hints, as in VACE
            for proj in (block.proj_in, block.proj_out):
                if proj is not None:
                    nn.init.zeros_(proj.weight)
                    nn.init.zeros_(proj.bias)

        # 4. Condition projectors
        self.audio_proj = (
            Hallo4AudioProjection(audio_window, audio_layers, audio_dim, audio_hidden_dim, audio_tokens, inner_dim)
            if enable_audio
            else None
        )
        self.pose_proj = Hallo4PoseProjection(pose_in_channels, inner_dim, patch_size[1]) if enable_skeleton else None

        # 5. Output norm & projection
        self.norm_out = FP32LayerNorm(inner_dim, eps, elementwise_affine=False)
        self.proj_out = nn.Linear(inner_dim, out_channels * math.prod(patch_size))
        self.scale_shift_table = nn.Parameter(torch.randn(1, 2, inner_dim) / inner_dim**0.5)

        self.gradient_checkpointing = False

    # ------------------------------------------------------------------ conditions
    def project_audio(self, audio_features: torch.Tensor) -> torch.Tensor:
        """(B, T, window, layers, dim) -> (B, 1 + F, 4 * audio_tokens, inner_dim), zero frame first."""
        tokens = self.audio_proj(audio_features)
        return torch.cat([torch.zeros_like(tokens[:, :1]), tokens], dim=1)

    def project_pose(self, pose_latents: torch.Tensor) -> torch.Tensor:
        """(B, C, T, h, w) -> (B, 1 + F, (h/p)*(w/p), inner_dim), zero frame first."""
        tokens = self.pose_proj(pose_latents)
        return torch.cat([torch.zeros_like(tokens[:, :1]), tokens], dim=1)

    def _run(self, block, *args):
        if torch.is_grad_enabled() and self.gradient_checkpointing:
            return self._gradient_checkpointing_func(block, *args)
        return block(*args)

    @apply_lora_scale("attention_kwargs")
    def forward(
        self,
        hidden_states: torch.Tensor,
        timestep: torch.Tensor,
        encoder_hidden_states: torch.Tensor,
        control_hidden_states: torch.Tensor,
        audio_features: torch.Tensor | None = None,
        pose_latents: torch.Tensor | None = None,
        return_dict: bool = True,
        control_scale: float = 1.0,
        attention_kwargs: dict[str, Any] | None = None,
    ) -> Transformer2DModelOutput | tuple[torch.Tensor]:
        """Flow velocity for the noisy latents (see docs/INTERFACES.md, "Hallo4 model").

        hidden_states (B, 16, 1 + F, h, w), frame 0 = clean reference latent; timestep (B,);
        encoder_hidden_states (B, L, text_dim); control_hidden_states (B, 96, 1 + F, h, w) VACE context;
        audio_features (B, 4F - 3, window, layers, dim) or None (no audio cross-attention at all;
        pass zeros for the CFG unconditional pass); pose_latents (B, 16, 4F - 3, h, w) or None
        (no skeleton cross-attention); control_scale multiplies the VACE hints;
        attention_kwargs={"scale": s} scales PEFT LoRA layers.
        """
        # Longer than 60 lines: one forward pass in reading order (embed, VACE hints, blocks, head), as diffusers'.
        batch_size, _, num_frames, height, width = hidden_states.shape
        p_t, p_h, p_w = self.config.patch_size
        post_f, post_h, post_w = num_frames // p_t, height // p_h, width // p_w
        if num_frames % p_t or height % p_h or width % p_w:
            raise ValueError(f"latent size {tuple(hidden_states.shape[2:])} is not divisible by the patch size")

        audio_tokens = skeleton_tokens = None
        if audio_features is not None and self.audio_proj is not None:
            if audio_features.shape[0] != batch_size:
                raise ValueError(f"audio_features batch {audio_features.shape[0]} != hidden_states batch {batch_size}")
            f = check_video_length(audio_features.shape[1], "audio_features")
            if 1 + f != post_f:
                raise ValueError(
                    f"audio_features has {audio_features.shape[1]} frames (= {f} latent frames) but hidden_states "
                    f"has {num_frames} latent frames (1 reference + {num_frames - 1}); expected "
                    f"{4 * (num_frames - 1) - 3} audio frames"
                )
            audio_tokens = self.project_audio(audio_features)
        if pose_latents is not None and self.pose_proj is not None:
            if pose_latents.shape[0] != batch_size or tuple(pose_latents.shape[3:]) != (height, width):
                raise ValueError(
                    f"pose_latents {tuple(pose_latents.shape)} must be (B={batch_size}, C, 4F - 3, {height}, {width})"
                )
            f = check_video_length(pose_latents.shape[2], "pose_latents")
            if 1 + f != post_f:
                raise ValueError(
                    f"pose_latents has {pose_latents.shape[2]} frames (= {f} latent frames) but hidden_states has "
                    f"{num_frames} latent frames; expected {4 * (num_frames - 1) - 3} skeleton frames"
                )
            skeleton_tokens = self.project_pose(pose_latents)

        # 1. RoPE and patch embeddings
        rotary_emb = self.rope(hidden_states)
        hidden_states = self.patch_embedding(hidden_states).flatten(2).transpose(1, 2).contiguous()
        control = self.vace_patch_embedding(control_hidden_states).flatten(2).transpose(1, 2)
        if control.shape[1] < hidden_states.shape[1]:
            control = torch.cat(
                [control, control.new_zeros(batch_size, hidden_states.shape[1] - control.shape[1], control.shape[2])],
                dim=1,
            )
        control = control.contiguous()
        autocast = torch.is_autocast_enabled(hidden_states.device.type)
        if autocast:  # the release's residual streams are fp32 (its fp32 modulation promotes them)
            hidden_states, control = hidden_states.float(), control.float()

        # 2. Time and text embeddings (under autocast, the time path stays fp32 as in the release)
        if autocast:
            ce = self.condition_embedder
            with torch.autocast(device_type=hidden_states.device.type, enabled=False):
                temb = ce.time_embedder(ce.timesteps_proj(timestep).float())
                timestep_proj = ce.time_proj(ce.act_fn(temb))
            encoder_hidden_states = ce.text_embedder(encoder_hidden_states)
        else:
            temb, timestep_proj, encoder_hidden_states, _ = self.condition_embedder(timestep, encoder_hidden_states)
        timestep_proj = timestep_proj.unflatten(1, (6, -1))

        # 3. VACE hints (the context branch sees no audio / skeleton)
        hints = []
        for block in self.vace_blocks:
            hint, control = self._run(block, hidden_states, encoder_hidden_states, control, timestep_proj, rotary_emb)
            hints.append(hint)

        # 4. Main blocks; hint j is added after main block vace_layers[j]
        hint_at = {layer: j for j, layer in enumerate(self.config.vace_layers)}
        for i, block in enumerate(self.blocks):
            hidden_states = self._run(
                block, hidden_states, encoder_hidden_states, timestep_proj, rotary_emb, audio_tokens, skeleton_tokens
            )
            if i in hint_at:
                hidden_states = hidden_states + hints[hint_at[i]].to(hidden_states.device) * control_scale

        # 5. Output norm, projection and unpatchify
        shift, scale = (self.scale_shift_table.to(temb.device) + temb.unsqueeze(1)).chunk(2, dim=1)
        shift, scale = shift.to(hidden_states.device), scale.to(hidden_states.device)
        if autocast:  # the release's head runs in fp32
            with torch.autocast(device_type=hidden_states.device.type, enabled=False):
                hidden_states = self.proj_out(self.norm_out(hidden_states.float()) * (1 + scale) + shift)
        else:
            hidden_states = (self.norm_out(hidden_states.float()) * (1 + scale) + shift).type_as(hidden_states)
            hidden_states = self.proj_out(hidden_states)
        hidden_states = hidden_states.reshape(batch_size, post_f, post_h, post_w, p_t, p_h, p_w, -1)
        hidden_states = hidden_states.permute(0, 7, 1, 4, 2, 5, 3, 6)
        output = hidden_states.flatten(6, 7).flatten(4, 5).flatten(2, 3)
        if not return_dict:
            return (output,)
        return Transformer2DModelOutput(sample=output)
