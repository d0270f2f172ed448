"""Audio and pose projectors of Hallo4 (docs/MODEL.md sections 2 and 4).

Both turn per-video-frame conditions into per-latent-frame token sets that line up with the Wan VAE's
4x temporal compression ("temporal channel redistribution"): frame 0 is repeated three more times so
that T = 4F - 3 video frames become 4F frames, i.e. F groups of 4; each group becomes one latent frame.
An all-zero token frame is prepended for the clean reference latent frame (done by the model).
"""

from __future__ import annotations

import torch
import torch.nn as nn

TEMPORAL_STRIDE = 4  # Wan VAE: 4 video frames per latent frame (frame 0 on its own)


def check_video_length(num_frames: int, what: str) -> int:
    """Number of latent frames F for T = 4F - 3 video frames; ValueError when T is not 4n + 1."""
    if num_frames < 1 or num_frames % TEMPORAL_STRIDE != 1:
        raise ValueError(
            f"{what} has {num_frames} frames; it must be 4n + 1 (1, 5, 9, ...) to match the latent frames"
        )
    return (num_frames + TEMPORAL_STRIDE - 1) // TEMPORAL_STRIDE


def _pad_first_frame(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Repeat frame 0 three more times along `dim` (T = 4F - 3 -> 4F)."""
    first = x.narrow(dim, 0, 1)
    reps = [1] * x.ndim
    reps[dim] = TEMPORAL_STRIDE - 1
    return torch.cat([first.repeat(*reps), x], dim=dim)


class Hallo4AudioProjection(nn.Module):
    """Windowed wav2vec2 features -> audio tokens per latent frame.

    Input (B, T, window, layers, dim); per video frame: flatten -> proj1 -> ReLU -> proj2 -> ReLU ->
    proj3 -> `tokens` tokens of `out_dim` -> LayerNorm. Output (B, F, 4 * tokens, out_dim).
    """

    def __init__(
        self,
        window: int = 5,
        layers: int = 12,
        dim: int = 768,
        hidden_dim: int = 512,
        tokens: int = 32,
        out_dim: int = 1536,
    ):
        super().__init__()
        self.window, self.layers, self.dim = window, layers, dim
        self.tokens, self.out_dim = tokens, out_dim
        self.proj1 = nn.Linear(window * layers * dim, hidden_dim)
        self.proj2 = nn.Linear(hidden_dim, hidden_dim)
        self.proj3 = nn.Linear(hidden_dim, tokens * out_dim)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, audio_features: torch.Tensor) -> torch.Tensor:
        if audio_features.ndim != 5 or tuple(audio_features.shape[2:]) != (self.window, self.layers, self.dim):
            raise ValueError(
                f"audio_features must be (B, T, {self.window}, {self.layers}, {self.dim}); "
                f"got {tuple(audio_features.shape)}"
            )
        batch, num_frames = audio_features.shape[:2]
        latent_frames = check_video_length(num_frames, "audio_features")
        x = _pad_first_frame(audio_features, dim=1)  # (B, 4F, w, l, d)
        x = x.reshape(batch * TEMPORAL_STRIDE * latent_frames, -1).to(self.norm.weight.dtype)
        x = torch.relu(self.proj1(x))
        x = torch.relu(self.proj2(x))
        x = self.proj3(x).reshape(-1, self.tokens, self.out_dim)
        x = self.norm(x)
        # (B * F * 4, m, c) -> (B, F, 4 * m, c): the 4 frames of a group are concatenated along tokens
        return x.reshape(batch, latent_frames, TEMPORAL_STRIDE * self.tokens, self.out_dim)


class Hallo4PoseProjection(nn.Module):
    """Per-frame VAE latents of the skeleton video -> skeleton tokens per latent frame.

    Input (B, C, T, h, w); frame 0 repeated three more times; per frame Conv2d(C -> out_dim / 4,
    kernel = stride = patch) -> tokens -> LayerNorm; 4 consecutive frames concatenated along channels.
    Output (B, F, (h / p) * (w / p), out_dim).
    """

    def __init__(self, in_channels: int = 16, out_dim: int = 1536, patch_size: int = 2):
        super().__init__()
        if out_dim % TEMPORAL_STRIDE:
            raise ValueError(f"pose projector out_dim must be divisible by 4, got {out_dim}")
        self.in_channels, self.out_dim, self.patch_size = in_channels, out_dim, patch_size
        quarter = out_dim // TEMPORAL_STRIDE
        self.proj = nn.Conv2d(in_channels, quarter, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(quarter)

    def forward(self, pose_latents: torch.Tensor) -> torch.Tensor:
        if pose_latents.ndim != 5 or pose_latents.shape[1] != self.in_channels:
            raise ValueError(f"pose_latents must be (B, {self.in_channels}, T, h, w); got {tuple(pose_latents.shape)}")
        batch, channels, num_frames, height, width = pose_latents.shape
        latent_frames = check_video_length(num_frames, "pose_latents")
        x = _pad_first_frame(pose_latents, dim=2)  # (B, C, 4F, h, w)
        x = x.permute(0, 2, 1, 3, 4).reshape(-1, channels, height, width).to(self.norm.weight.dtype)
        x = self.proj(x)  # (B * 4F, c/4, h/p, w/p)
        x = x.flatten(2).transpose(1, 2)  # (B * 4F, n, c/4)
        x = self.norm(x)
        n, quarter = x.shape[1], x.shape[2]
        x = x.reshape(batch, latent_frames, TEMPORAL_STRIDE, n, quarter)
        # "b (df four) n d -> b df n (four d)"
        return x.permute(0, 1, 3, 2, 4).reshape(batch, latent_frames, n, TEMPORAL_STRIDE * quarter)
