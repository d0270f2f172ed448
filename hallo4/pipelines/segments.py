"""The segment loop: a clip longer than one segment is made of overlapping segments, each denoised on its own.

Segments of `frames_per_segment` (81) frames cover [80 i, 80 i + 81); segment i > 0 continues from the
previous one's last frame (patch-blanked, in the VACE context). Each segment is denoised by UniPC flow
sampling with the release's sigmas, the first latent frame overwritten with the clean reference at every
step, CFG in one batched forward (uncond = negative prompt + all-zero audio). docs/MODEL.md sections 4-5.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import CancelledError
from ..progress import Progress
from .sampling import release_scheduler, segment_generator
from .vace_context import BLANK_FRACTION, blank_patches


@dataclass(frozen=True)
class SegmentPlan:
    """How a clip of `num_frames` frames is cut into segments of `frames_per_segment` (4n + 1) frames."""

    num_frames: int
    frames_per_segment: int

    @property
    def stride(self) -> int:
        return self.frames_per_segment - 1

    @property
    def num_segments(self) -> int:
        return max(1, math.ceil((self.num_frames - 1) / self.stride))

    @property
    def padded_frames(self) -> int:
        """Frames the conditions are padded to (the last segment is padded, then trimmed)."""
        return self.stride * self.num_segments + 1

    @property
    def latent_frames(self) -> int:
        """Latent frames of a segment: the reference + 1 + (N - 1) / 4."""
        return 2 + (self.frames_per_segment - 1) // 4

    def window(self, i: int) -> slice:
        """The pixel frames of segment i in the padded clip."""
        return slice(i * self.stride, i * self.stride + self.frames_per_segment)


@dataclass
class ClipConditions:
    """What every segment of a clip is conditioned on; audio features and skeleton frames cover
    `SegmentPlan.padded_frames` (the last segment is padded with the last frame)."""

    reference_latent: torch.Tensor  # (1, 16, 1, h, w), `prepare_reference`
    prompt_embeds: torch.Tensor  # (1, 512, D), `encode_prompt`
    negative_prompt_embeds: torch.Tensor
    audio_features: torch.Tensor  # (T, 5, L, D), `prepare_audio`
    skeleton_frames: np.ndarray | None = None  # (T, H, W, 3) uint8, `prepare_skeleton`; None = no skeleton


@dataclass
class SegmentInputs:
    """The transformer's conditions for one segment (conditional branch; CFG adds the unconditional one)."""

    reference_latent: torch.Tensor  # (1, 16, 1, h, w): overwrites latent frame 0 at every step
    context: torch.Tensor  # (1, 96, 1 + F, h, w), `prepare_segment_context`
    prompt_embeds: torch.Tensor
    negative_prompt_embeds: torch.Tensor
    audio_features: torch.Tensor  # (1, N, 5, L, D): the segment's window
    pose_latents: torch.Tensor | None  # (1, 16, N, h, w), `prepare_pose_latents`


class _Timer:
    """Adds the seconds of a `with` block to `timings[key]`."""

    def __init__(self, timings: dict[str, float], key: str):
        self.timings, self.key = timings, key

    def __enter__(self):
        self.t = time.perf_counter()

    def __exit__(self, *exc):
        self.timings[self.key] = self.timings.get(self.key, 0.0) + time.perf_counter() - self.t


class SegmentLoopMixin:
    """`prepare_latents`, `denoise` and `denoise_segments`, for `Hallo4Pipeline`."""

    def prepare_latents(
        self, num_latent_frames: int, height: int, width: int, generator: torch.Generator, device: torch.device
    ) -> torch.Tensor:
        """Initial noise (1, 16, F, H/8, W/8), float32, drawn on the CPU `generator` (`segment_generator`)."""
        shape = (1, self.vae.config.z_dim, num_latent_frames, height // 8, width // 8)
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(device)

    def denoise(
        self,
        latents: torch.Tensor,
        inputs: SegmentInputs,
        *,
        num_inference_steps: int,
        shift: float,
        control_scale: float = 1.0,
        progress: Progress | None = None,
        label: str = "",
    ) -> torch.Tensor:
        """The denoising loop of one segment; returns its clean latents (1, 16, F, h, w), reference frame first.

        Guidance comes from `self.guidance_scale` (CFG when > 1), LoRA scale etc. from `self.attention_kwargs`;
        `self.current_timestep` follows the loop; `self.interrupt` (or a cancelled `progress`) stops it."""
        device, dtype = inputs.reference_latent.device, self.transformer.dtype
        progress = progress or Progress()
        scheduler = release_scheduler(self.scheduler.config, num_inference_steps, shift, device)
        ref = inputs.reference_latent.float()
        cfg = self.do_classifier_free_guidance
        enc, audio_in, pose_in, ctx_in = (
            inputs.prompt_embeds,
            inputs.audio_features,
            inputs.pose_latents,
            inputs.context,
        )
        if cfg:  # one batched forward: conditional first, then negative prompt + all-zero audio
            enc = torch.cat([enc, inputs.negative_prompt_embeds])
            audio_in = torch.cat([audio_in, torch.zeros_like(audio_in)])
            pose_in = torch.cat([pose_in, pose_in]) if pose_in is not None else None
            ctx_in = torch.cat([ctx_in, ctx_in])
        self._num_timesteps = n = len(scheduler.timesteps)
        for k, t in enumerate(scheduler.timesteps):
            if self.interrupt:
                raise CancelledError()
            self._current_timestep = t
            progress(k / n, f"{label}: step {k + 1}/{n}")
            latents[:, :, :1] = ref
            model_in = torch.cat([latents, latents]) if cfg else latents
            with self.autocast(device):
                pred = self.transformer(
                    hidden_states=model_in.to(dtype),
                    timestep=t.expand(model_in.shape[0]).to(device),
                    encoder_hidden_states=enc,
                    control_hidden_states=ctx_in,
                    audio_features=audio_in,
                    pose_latents=pose_in,
                    control_scale=control_scale,
                    attention_kwargs=self.attention_kwargs,
                    return_dict=False,
                )[0].float()
            if cfg:
                cond, uncond = pred.chunk(2)
                pred = uncond + self.guidance_scale * (cond - uncond)
            latents = scheduler.step(pred, t, latents, return_dict=False)[0]
        self._current_timestep = None
        latents[:, :, :1] = ref
        progress(1.0, f"{label}: denoised")
        return latents

    def denoise_segments(
        self,
        plan: SegmentPlan,
        conditions: ClipConditions,
        *,
        num_inference_steps: int,
        shift: float,
        seed: int,
        control_scale: float = 1.0,
        progress: Progress | None = None,
        timings: dict[str, float] | None = None,
    ) -> np.ndarray:
        """Every segment of `plan`, decoded and joined: (padded frames, H, W, 3) uint8 on the canvas.

        Each segment's noise comes from `segment_generator(seed)`, its motion frame's blanking from one
        generator seeded `seed + 1`; seconds per stage are added to `timings`."""
        # Longer than 60 lines: one segment's steps in order, sharing the carried-over frame and the timings.
        n_seg, ref = plan.frames_per_segment, conditions.reference_latent
        progress = progress or Progress()
        timings = {} if timings is None else timings
        device, dtype = ref.device, self.transformer.dtype
        _, _, _, h_lat, w_lat = ref.shape
        blank_gen = torch.Generator("cpu").manual_seed(seed + 1)
        empty_latent = None
        prev_last: torch.Tensor | None = None  # (H, W, 3) in [-1, 1]
        pieces: list[np.ndarray] = []
        for key in ("skeleton", "context", "denoise", "decode"):
            timings[key] = 0.0
        span = 0.92 / plan.num_segments
        for i in range(plan.num_segments):
            sprog = progress.sub(0.04 + i * span, 0.04 + (i + 1) * span)
            label, window = f"Segment {i + 1}/{plan.num_segments}", plan.window(i)
            sprog(0.0, f"{label}: conditions")
            with _Timer(timings, "skeleton"):
                skel = conditions.skeleton_frames
                skel = skel[window] if skel is not None else None
                pose_latents = self.prepare_pose_latents(skel, device, dtype)
            with _Timer(timings, "context"):
                motion = None if prev_last is None else blank_patches(prev_last, BLANK_FRACTION, blank_gen)
                if empty_latent is None:
                    empty_latent = self.encode_empty_video(n_seg, h_lat * 8, w_lat * 8)
                context = self.prepare_segment_context(ref, n_seg, motion, empty_latent, dtype)
            with _Timer(timings, "denoise"):
                latents = self.prepare_latents(
                    plan.latent_frames, h_lat * 8, w_lat * 8, segment_generator(seed), device
                )
                inputs = SegmentInputs(
                    ref,
                    context,
                    conditions.prompt_embeds,
                    conditions.negative_prompt_embeds,
                    conditions.audio_features[window][None],
                    pose_latents,
                )
                steps = {"num_inference_steps": num_inference_steps, "shift": shift, "control_scale": control_scale}
                latents = self.denoise(latents, inputs, **steps, progress=sprog, label=label)
            with _Timer(timings, "decode"):
                sprog(1.0, f"{label}: decoding")
                frames = self.vae_decode(latents[:, :, 1:])  # (N, H, W, 3) in [-1, 1]
                prev_last = frames[-1].clone()
                u8 = ((frames + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
                pieces.append(u8 if i == 0 else u8[1:])
        return np.concatenate(pieces, 0)
