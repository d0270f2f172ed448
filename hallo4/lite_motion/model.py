"""The lite motion model: a small 1-D flow-matching network over per-frame motion (see features.py).

A stack of dilated residual 1-D convolutions (receptive field ~3 s at 25 fps) with the flow time as a
FiLM scale/shift and a clip-wide context (mean over time) in every block, so a clip keeps one style
(lively or calm) from start to end. Convolutions rather than attention: any clip length, no position
encoding to extrapolate, and a 10 s clip costs a few milliseconds per step on a CPU.
Hand-written because no maintained library ships a motion-sequence flow model of this size; the
container is diffusers' ModelMixin/ConfigMixin (safetensors save/load, config.json).

Flow matching as in HALLO4.md / trainer.loss: x_s = (1 - s) x0 + s eps, the network predicts v = eps - x0,
and sampling integrates dx/ds = v from s = 1 (noise) to s = 0 with a few Euler steps.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.modeling_utils import ModelMixin

from .features import CONDITION_NAMES, MOTION_NAMES


def timestep_embedding(s: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of the flow time s in [0, 1] (scaled by 1000 like diffusers' timesteps)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=s.device, dtype=torch.float32) / half)
    args = 1000.0 * s.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], -1)


class _Block(nn.Module):
    def __init__(self, width: int, dilation: int):
        super().__init__()
        self.norm = nn.GroupNorm(8, width)
        self.conv = nn.Conv1d(width, 2 * width, 3, padding=dilation, dilation=dilation)
        self.film = nn.Linear(width, 2 * width)
        self.context = nn.Linear(width, width)
        self.out = nn.Conv1d(width, width, 1)

    def forward(self, h: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        scale, shift = self.film(temb)[..., None].chunk(2, 1)
        y = self.norm(h) * (1 + scale) + shift
        y = y + self.context(y.mean(-1))[..., None]  # clip-wide style
        a, b = self.conv(y).chunk(2, 1)
        return h + self.out(torch.tanh(a) * torch.sigmoid(b))


class LiteMotionModel(ModelMixin, ConfigMixin):
    """v-prediction network f(x_s, s, speech conditions) -> (B, T, motion_dim)."""

    @register_to_config
    def __init__(
        self,
        motion_dim: int = len(MOTION_NAMES),
        cond_dim: int = len(CONDITION_NAMES),
        width: int = 64,
        dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 1, 2, 4, 8, 1),
        sample_steps: int = 8,
    ):
        super().__init__()
        self.inp = nn.Conv1d(motion_dim + cond_dim, width, 3, padding=1)
        self.temb = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(_Block(width, d) for d in dilations)
        self.norm_out = nn.GroupNorm(8, width)
        self.proj_out = nn.Conv1d(width, motion_dim, 3, padding=1)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """x (B, T, motion_dim) at flow time sigma (B,), cond (B, T, cond_dim) -> velocity (B, T, motion_dim)."""
        h = self.inp(torch.cat([x, cond], -1).transpose(1, 2))
        temb = self.temb(timestep_embedding(sigma, h.shape[1]))
        for block in self.blocks:
            h = block(h, temb)
        return self.proj_out(F.silu(self.norm_out(h))).transpose(1, 2)

    @torch.no_grad()
    def sample(
        self,
        cond: torch.Tensor,
        generator: torch.Generator | None = None,
        steps: int | None = None,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Normalised motion (B, T, motion_dim) for conditions (B, T, cond_dim): Euler from s = 1 to 0."""
        steps = int(steps or self.config.sample_steps)
        b, t, _ = cond.shape
        x = (
            noise
            if noise is not None
            else torch.randn(b, t, self.config.motion_dim, generator=generator, dtype=cond.dtype, device=cond.device)
        )
        sig = torch.linspace(1.0, 0.0, steps + 1)
        for i in range(steps):
            v = self(x, sig[i].expand(b).to(cond), cond)
            x = x - (sig[i] - sig[i + 1]) * v
        return x

    def motion(self, cond: np.ndarray, seed: int, steps: int | None = None) -> np.ndarray:
        """Convenience for the engine: one clip's normalised motion (T, motion_dim) as numpy, deterministic per seed."""
        g = torch.Generator().manual_seed(int(seed))
        c = torch.from_numpy(np.asarray(cond, np.float32))[None]
        return self.sample(c, g, steps)[0].numpy()
