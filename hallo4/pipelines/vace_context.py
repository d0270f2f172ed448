"""The VAE side of the conditions: reference latent, skeleton latents and the VACE context of a segment.

VACE context (96 channels): 16 inactive + 16 reactive latents + the 8x8 pixel-unshuffled mask (64). Frame 0
is the reference latent (mask 0); segment i > 0 also gets the previous segment's last frame, with exactly
10 % of its 2x2 patches blanked to -1, as known content (pixel mask 0). docs/MODEL.md section 4.
The trainer builds a pair's context with `prepare_segment_context` too, so it trains on what inference sees.
"""

from __future__ import annotations

import numpy as np
import torch

from .conditions import frames_to_tensor
from .prompt_encoding import module_device

BLANK_FRACTION = 0.1  # anti-drift: share of 2x2 patches of the carried-over frame set to -1


def blank_patches(frame: torch.Tensor, fraction: float, generator: torch.Generator, patch: int = 2) -> torch.Tensor:
    """Set exactly int(fraction * patches) of the `patch` x `patch` pixel patches of an (H, W, 3) frame to -1
    (anti-drift, as the release does), chosen by `torch.randperm` on `generator` (the release draws from
    the unseeded global RNG; a seeded generator makes a clip reproducible)."""
    h, w = frame.shape[:2]
    if h % patch or w % patch:
        raise ValueError(f"frame size {w}x{h} is not a multiple of the {patch}x{patch} patch")
    rows, cols = h // patch, w // patch
    total = rows * cols
    drop = torch.zeros(total, dtype=torch.bool)
    drop[torch.randperm(total, generator=generator)[: int(fraction * total)]] = True
    drop = drop.view(rows, cols).repeat_interleave(patch, 0).repeat_interleave(patch, 1)
    out = frame.clone()
    out[drop] = -1.0
    return out


class VaceContextMixin:
    """VAE encode/decode and the conditions built from them, for `Hallo4Pipeline` (needs `vae`)."""

    def _latent_stats(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.vae.config
        mean = torch.tensor(c.latents_mean, dtype=torch.float32, device=device).view(1, c.z_dim, 1, 1, 1)
        std = torch.tensor(c.latents_std, dtype=torch.float32, device=device).view(1, c.z_dim, 1, 1, 1)
        return mean, std

    @torch.no_grad()
    def vae_encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> normalised latents (B, 16, 1 + (T-1)/4, H/8, W/8), float32."""
        dev = module_device(self.vae, self._execution_device)
        latents = self.vae.encode(video.to(device=dev, dtype=self.vae.dtype)).latent_dist.mode()
        mean, std = self._latent_stats(latents.device)
        return (latents.float() - mean) / std

    @torch.no_grad()
    def vae_encode_frames(self, frames: torch.Tensor, chunk: int = 16) -> torch.Tensor:
        """Every frame on its own: (T, 3, H, W) in [-1, 1] -> (1, 16, T, H/8, W/8)."""
        outs = [self.vae_encode(frames[i : i + chunk].unsqueeze(2)) for i in range(0, len(frames), chunk)]
        return torch.cat(outs, 0)[:, :, 0].permute(1, 0, 2, 3).unsqueeze(0)

    @torch.no_grad()
    def vae_decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Normalised latents (1, 16, F, h, w) -> (T, H, W, 3) float in [-1, 1] on the CPU."""
        dev = module_device(self.vae, self._execution_device)
        mean, std = self._latent_stats(dev)
        z = (latents.to(dev).float() * std + mean).to(self.vae.dtype)
        video = self.vae.decode(z).sample.float().clamp(-1, 1)
        return video[0].permute(1, 2, 3, 0).cpu()

    @staticmethod
    def latent_mask(mask: torch.Tensor, scale: int = 8) -> torch.Tensor:
        """Pixel mask (T, H, W), 1 = generate, -> VACE mask channels (64, (T + 3) // 4, H/8, W/8).

        8x8 pixel-unshuffle (channel = dy * 8 + dx, as diffusers' WanVACEPipeline), then the frames are
        resampled with `nearest-exact`, as the release does: latent frame k reads pixel frame
        floor((k + 0.5) * T / F). Pixel frame 0 is never read (for T = 81: 1, 5, 9, ... 79), so the
        carried-over motion frame of a later segment (mask 0) still gets latent mask 1; it enters the model
        only through the inactive latent."""
        t, h, w = mask.shape
        m = mask.view(t, h // scale, scale, w // scale, scale).permute(2, 4, 0, 1, 3).flatten(0, 1)
        depth = (t + 3) // 4
        return torch.nn.functional.interpolate(
            m[None].float(), size=(depth, h // scale, w // scale), mode="nearest-exact"
        )[0].to(mask.dtype)

    @torch.no_grad()
    def prepare_reference(self, canvas: np.ndarray, device: torch.device | None = None) -> torch.Tensor:
        """The portrait on its canvas, (H, W, 3) uint8 -> its reference latent (1, 16, 1, H/8, W/8), float32."""
        latent = self.vae_encode(frames_to_tensor(canvas[None]).unsqueeze(2))
        return latent.to(device) if device is not None else latent

    @torch.no_grad()
    def prepare_pose_latents(
        self, frames: np.ndarray | None, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor | None:
        """A segment's rendered skeleton frames (N, H, W, 3) uint8 -> per-frame latents (1, 16, N, H/8, W/8),
        or None without a skeleton."""
        if frames is None:
            return None
        return self.vae_encode_frames(frames_to_tensor(frames)).to(device, dtype)

    @torch.no_grad()
    def encode_empty_video(self, num_frames: int, height: int, width: int) -> torch.Tensor:
        """Latent of an all-zero (grey) segment: the reactive latent of every segment (video * mask is zero) and
        the inactive latent of the first. Encode it once per clip and pass it to `prepare_segment_context`."""
        return self.vae_encode(torch.zeros(1, 3, num_frames, height, width))

    @torch.no_grad()
    def prepare_segment_context(
        self,
        reference_latent: torch.Tensor,
        num_frames: int,
        motion_frame: torch.Tensor | None = None,
        empty_latent: torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
    ) -> torch.Tensor:
        """The VACE context of one segment, (1, 96, 1 + F, h, w).

        Args:
            reference_latent: (1, 16, 1, h, w) from `prepare_reference`; frame 0 of the context (mask 0).
            num_frames: the segment's pixel frames (4n + 1).
            motion_frame: segment i > 0: the previous segment's last frame, (H, W, 3) in [-1, 1], already
                patch-blanked (`blank_patches`); known content in pixel frame 0. None for the first segment.
            empty_latent: `encode_empty_video(num_frames, H, W)`, reused over the segments (encoded here if None).
            dtype: the context's dtype (default float32).
        """
        device = reference_latent.device
        _, _, _, h_lat, w_lat = reference_latent.shape
        height, width = h_lat * 8, w_lat * 8
        if empty_latent is None:
            empty_latent = self.encode_empty_video(num_frames, height, width)
        mask = torch.ones(num_frames, height, width)
        if motion_frame is None:
            inactive = empty_latent
        else:
            video = torch.zeros(1, 3, num_frames, height, width)
            video[0, :, 0] = motion_frame.permute(2, 0, 1)
            mask[0] = 0.0
            inactive = self.vae_encode(video)  # video * (1 - mask) == video: only frame 0 is non-zero
        reactive = empty_latent  # video * mask is all zero
        ctx = torch.cat([inactive.to(device), reactive.to(device), self.latent_mask(mask)[None].to(device)], 1)
        ref_ctx = torch.cat(
            [reference_latent, torch.zeros_like(reference_latent), reference_latent.new_zeros(1, 64, 1, h_lat, w_lat)],
            1,
        )
        context = torch.cat([ref_ctx, ctx], 2)  # (1, 96, 1 + F, h, w)
        return context.to(dtype) if dtype is not None else context
