"""Hallo4 inference pipeline: portrait + speech (+ skeleton) -> talking video (docs/MODEL.md sections 2-5).

    pipe = Hallo4Pipeline.from_pretrained("models/hallo4", torch_dtype=torch.bfloat16).to("cuda")
    out = pipe("portrait.png", "speech.wav", output_path="out.mp4")
    out.frames  # (T, H, W, 3) uint8, cropped back to the portrait's aspect ratio

How a clip is made
------------------
1. The portrait is put on the canvas (`media.fit_to_canvas`: height = canvas height, black padding left/
   right, centre-crop if wider) and VAE-encoded to one latent frame (Wan per-channel mean/std from the
   VAE config). Default canvas: 832x480 (W x H), or 480x832 for portraits narrower than 480:832, so no
   portrait within the supported range is cropped.
2. Audio -> wav2vec2 features at 25 fps, (T, 5, L, D) (`hallo4.audio_encoder`). T = ceil(s * 25).
3. Skeleton -> rendered DWPose frames on the same canvas, each frame VAE-encoded on its own. None =
   an idle skeleton synthesised from the portrait (`hallo4.skeleton.idle_skeleton`); False = no
   skeleton conditioning at all.
4. Segments of `frames_per_segment` (81) frames cover [80 i, 80 i + 81). The VACE context (96 ch:
   16 inactive + 16 reactive latents + 8x8 pixel-unshuffled mask) has the reference latent as frame 0
   (mask 0); segment i > 0 also gets the previous segment's last frame, with exactly 10 % of its 2x2
   patches blanked to -1, as known content (pixel mask 0). The mask is resampled to latent frames with
   `nearest-exact`, as the release does (latent frame k reads pixel frame floor((k + 0.5) T / F)).
5. UniPC flow sampling (shift 8, 25 steps) with the release's sigmas and integer timesteps
   (`release_scheduler`); at every step the first latent frame is overwritten with
   the clean reference latent; CFG in one batched forward (uncond = negative prompt + all-zero audio
   features; reference, skeleton and VACE context identical).
6. Decode without the reference frame, join segments dropping each duplicated first frame, trim the
   padded last segment, crop back to the portrait's aspect, mux the original audio.

Modules: `conditions` (portrait, speech, canvas, skeleton frames), `prompt_encoding` (umT5 + cache),
`vace_context` (VAE, reference, VACE context), `segments` (the segment and denoising loops), `sampling`
(the release's scheduler), `options` (tiling, precision, vocal separation), `loading` (from_pretrained).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

from .. import media
from ..audio_encoder import VocalSeparator, encode_audio
from ..constants import FPS, SAMPLE_RATE, num_video_frames
from ..errors import InputError
from ..progress import Progress, ProgressCallback, as_progress
from .conditions import DEFAULT_CANVAS, default_canvas, load_audio, load_portrait, pad_repeat, skeleton_frames
from .loading import load_components
from .options import PipelineOptionsMixin, RunStateMixin
from .prompt_encoding import (
    DEFAULT_NEGATIVE_PROMPT,
    DEFAULT_PROMPT,
    DOWNLOAD_HINT,
    MAX_SEQUENCE_LENGTH,
    PromptEncodingMixin,
    clean_prompt,
    module_device,
)
from .sampling import release_scheduler, release_sigmas, segment_generator
from .segments import ClipConditions, SegmentInputs, SegmentLoopMixin, SegmentPlan
from .vace_context import BLANK_FRACTION, VaceContextMixin, blank_patches

__all__ = [
    "BLANK_FRACTION",
    "ClipConditions",
    "SegmentInputs",
    "SegmentPlan",
    "DEFAULT_CANVAS",
    "DEFAULT_NEGATIVE_PROMPT",
    "DEFAULT_PROMPT",
    "DOWNLOAD_HINT",
    "MAX_SEQUENCE_LENGTH",
    "Hallo4Pipeline",
    "Hallo4PipelineOutput",
    "blank_patches",
    "clean_prompt",
    "release_scheduler",
    "release_sigmas",
    "segment_generator",
]


@dataclass
class Hallo4PipelineOutput(BaseOutput):
    """frames: (T, H, W, 3) uint8 RGB at 25 fps (portrait aspect); video_path: the mp4 or None;
    seed: the seed used; timings: seconds per stage; warnings: things the user should know."""

    frames: np.ndarray
    video_path: Path | None
    seed: int
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


class Hallo4Pipeline(
    RunStateMixin, PromptEncodingMixin, VaceContextMixin, SegmentLoopMixin, PipelineOptionsMixin, DiffusionPipeline
):
    r"""Audio-driven portrait animation with Hallo4 (Wan2.1-VACE-1.3B + audio/skeleton cross-attention).

    Components: `vae` (AutoencoderKLWan), `text_encoder` (UMT5EncoderModel; may be None: it is then
    loaded from `text_encoder_dir` only when a prompt is not in the embedding cache, and freed after),
    `tokenizer`, `transformer` (Hallo4Transformer3DModel), `scheduler` (UniPC flow),
    `audio_encoder` (Wav2Vec2Model), `feature_extractor` (Wav2Vec2FeatureExtractor).
    """

    model_cpu_offload_seq = "text_encoder->audio_encoder->transformer->vae"
    # the order of __init__'s arguments (diffusers reads the names from the signature)
    _init_components = (
        "vae",
        "text_encoder",
        "tokenizer",
        "transformer",
        "scheduler",
        "audio_encoder",
        "feature_extractor",
    )
    _optional_components = ["text_encoder", "tokenizer"]

    def __init__(self, vae, text_encoder, tokenizer, transformer, scheduler, audio_encoder, feature_extractor):
        super().__init__()
        parts = (vae, text_encoder, tokenizer, transformer, scheduler, audio_encoder, feature_extractor)
        self.register_modules(**dict(zip(self._init_components, parts)))
        self.text_encoder_dir: Path | None = None  # lazy text encoder / tokenizer source
        self.vocal_separator: VocalSeparator | None = None
        self.prompt_cache_dir: Path | None = None  # default: paths.cache_dir() / "prompts"
        # Release precision: fp32 transformer weights run under autocast to this dtype (see
        # `enable_release_precision`); None = the transformer runs in its own dtype.
        self.autocast_dtype: torch.dtype | None = None
        # where `find_vocal_model` looks for Kim_Vocal_2.onnx (set by from_pretrained)
        self.vocal_model_candidates: list[Path] = []
        self._guidance_scale, self._attention_kwargs = 1.0, None
        self._current_timestep, self._num_timesteps, self._interrupt = None, 0, False

    @classmethod
    def from_pretrained(
        cls,
        pretrained_model_name_or_path: str | os.PathLike,
        *,
        torch_dtype: torch.dtype | None = None,
        vae_dtype: torch.dtype | None = torch.float32,
        base_model: str | os.PathLike | None = None,
        audio_model: str | os.PathLike | None = None,
        load_text_encoder: bool = False,
        **_: Any,
    ) -> Hallo4Pipeline:
        """Load from a local folder (diffusers layout) or a Hugging Face repo id (HF cache, or a download).

        Args:
            pretrained_model_name_or_path: the Hallo4 folder (transformer/, and optionally vae/, text_encoder/,
                tokenizer/, scheduler/, audio_encoder/, feature_extractor/), the bare output of
                `python -m hallo4.convert` (the transformer alone), or a repo id.
            torch_dtype: dtype of the transformer and the text encoder.
            vae_dtype: dtype of the VAE (float32, as the release).
            base_model: Wan2.1-VACE diffusers folder/repo for the parts the model folder lacks (vae, text
                encoder, tokenizer, scheduler); default `<folder>/../wan2.1-vace-1.3b`.
            audio_model: wav2vec2-base-960h folder; default the release's copy beside the folder.
            load_text_encoder: load umT5 now (else it is read on a prompt-cache miss and freed after).

        Where each part is looked for is `hallo4.weights.find_components`; anything missing raises
        `MissingWeightsError` naming it, with the download commands.
        """
        components, settings = load_components(
            pretrained_model_name_or_path,
            torch_dtype=torch_dtype,
            vae_dtype=vae_dtype,
            base_model=base_model,
            audio_model=audio_model,
            load_text_encoder=load_text_encoder,
        )
        pipe = cls(**components)
        for name, value in settings.items():
            setattr(pipe, name, value)
        return pipe

    # ------------------------------------------------------------------------------------------
    # Steps of __call__
    # ------------------------------------------------------------------------------------------
    default_canvas = staticmethod(default_canvas)

    def check_inputs(self, height: int, width: int, frames_per_segment: int, num_inference_steps: int) -> None:
        """Refuse settings the model cannot run, with `InputError` saying what to use."""
        if frames_per_segment < 5 or (frames_per_segment - 1) % 4:
            raise InputError(
                "frames_per_segment",
                f"{frames_per_segment} is not of the form 4n + 1 (n >= 1)",
                "Use 81 (Hallo4's training length) or another 4n + 1.",
            )
        if num_inference_steps < 1:
            raise InputError(
                "steps", f"{num_inference_steps} steps", "Use at least 1 denoising step (25 is the default)."
            )
        mult = 8 * self.transformer.config.patch_size[1]
        if width % mult or height % mult or width < mult or height < mult:
            raise InputError(
                "size", f"{width}x{height} is not a multiple of {mult}", f"Use multiples of {mult} (e.g. 832x480)."
            )

    @staticmethod
    def canvas_size(image: np.ndarray, height: int | None, width: int | None) -> tuple[int, int]:
        """(height, width) of the canvas: as given, the missing side(s) from `default_canvas` of the portrait."""
        dw, dh = default_canvas(image.shape[1], image.shape[0])
        return int(height or dh), int(width or dw)

    def prepare_audio(
        self, audio: np.ndarray, device: torch.device | None = None, dtype: torch.dtype | None = None
    ) -> torch.Tensor:
        """16 kHz mono speech -> windowed wav2vec2 features (T, 5, L, D) on `device` in `dtype` (T at 25 fps),
        after the release's vocal separation when it is enabled (`enable_vocal_separation`)."""
        device = device or self._execution_device
        feats = encode_audio(
            self.audio_encoder,
            self.feature_extractor,
            audio,
            SAMPLE_RATE,
            device=module_device(self.audio_encoder, device),
            separator=self.vocal_separator,
        )
        return feats.to(device=device, dtype=dtype)

    def prepare_skeleton(
        self, skeleton, portrait: np.ndarray, num_frames: int, height: int, width: int, seed: int, audio: np.ndarray
    ) -> tuple[np.ndarray | None, list[str]]:
        """(rendered skeleton frames (num_frames, H, W, 3) uint8 on the canvas or None, warnings). See `__call__`'s
        `skeleton` for what it may be; None synthesises an idle skeleton from the portrait (seeded, audio-aware)."""
        warnings: list[str] = []
        frames = skeleton_frames(skeleton, portrait, num_frames, width, height, seed, audio, warnings)
        return frames, warnings

    # ------------------------------------------------------------------------------------------
    # Sampling
    # ------------------------------------------------------------------------------------------
    @torch.no_grad()
    def __call__(
        self,
        portrait,
        audio,
        skeleton=None,
        prompt: str = DEFAULT_PROMPT,
        negative_prompt: str = DEFAULT_NEGATIVE_PROMPT,
        num_inference_steps: int = 25,
        guidance_scale: float = 6.0,
        shift: float = 8.0,
        seed: int | None = 2025,
        height: int | None = None,
        width: int | None = None,
        max_seconds: float | None = None,
        frames_per_segment: int = 81,
        progress: Progress | ProgressCallback | None = None,
        output_path: str | os.PathLike | None = None,
        vae_tiling: bool | None = None,
        control_scale: float = 1.0,
        attention_kwargs: dict | None = None,
    ) -> Hallo4PipelineOutput:
        r"""Animate `portrait` with `audio`.

        Args:
            portrait: image path, PIL image or (H, W, 3) uint8 RGB array.
            audio: audio path (any ffmpeg-readable file) or 16 kHz mono float array.
            skeleton: None (idle skeleton from the portrait), False (no skeleton conditioning), a
                skeleton JSON / OpenPose / DWPose path, a rendered skeleton video, a
                `SkeletonSequence`, or (T, H, W, 3) uint8 rendered frames. Its length is fitted to
                the audio (ping-pong loop or trim).
            prompt: text condition.
            negative_prompt: text of the unconditional branch (uncond = negative prompt + zero audio).
            num_inference_steps: UniPC flow sampling steps.
            guidance_scale: classifier-free guidance scale (<= 1 disables CFG).
            shift: flow shift of the sigmas (8 in the release).
            seed: noise seed (None draws one; the seed used is returned).
            height: canvas height (a multiple of 16); default 480 / 832 by the portrait's aspect.
            width: canvas width (a multiple of 16); default 832 / 480 by the portrait's aspect.
            max_seconds: use at most this much audio.
            frames_per_segment: 4n + 1 frames per segment (81 in Hallo4; smaller for tests).
            progress: `hallo4.progress.Progress` or callback(fraction, message); cancel is honoured
                between denoising steps (raises CancelledError).
            output_path: write an mp4 with the original audio there (None: no file).
            vae_tiling: True/False to switch VAE tiling on/off for this call (None: leave as is).
            control_scale: VACE hint scale.
            attention_kwargs: passed to the attention processors, e.g. {"scale": s} for LoRA.
        Returns:
            `Hallo4PipelineOutput(frames, video_path, seed, timings, warnings)`.
        """
        # Longer than 60 lines on purpose: as in diffusers, the whole recipe reads here as numbered steps.
        prog = as_progress(progress)
        t_start = time.perf_counter()
        seed = int(np.random.SeedSequence().entropy % (2**31 - 1)) if seed is None else int(seed)

        # 1. Check inputs
        prog(0.0, "Loading inputs")
        image = load_portrait(portrait)
        height, width = self.canvas_size(image, height, width)
        self.check_inputs(height, width, frames_per_segment, num_inference_steps)
        self._guidance_scale, self._attention_kwargs = guidance_scale, attention_kwargs
        self._current_timestep, self._interrupt = None, False
        if vae_tiling is not None:
            self.enable_vae_tiling() if vae_tiling else self.disable_vae_tiling()
        device, dtype = self._execution_device, self.transformer.dtype

        # 2. Prepare the speech, the canvas and the skeleton
        wav = load_audio(audio, max_seconds)
        num_frames = num_video_frames(len(wav))
        canvas, placement = media.fit_to_canvas(image, width, height, fill=0)
        skel, warnings = self.prepare_skeleton(skeleton, image, num_frames, height, width, seed, wav)
        timings = {"inputs": time.perf_counter() - t_start}

        # 3. Encode the prompt
        t = time.perf_counter()
        prog(0.01, "Encoding the prompt")
        prompt_embeds, negative_embeds = self.encode_prompt(prompt or "", negative_prompt or "", device, dtype)
        timings["prompt"] = time.perf_counter() - t

        # 4. Prepare the audio features
        t = time.perf_counter()
        prog(0.02, "Analysing speech (wav2vec2)")
        feats = self.prepare_audio(wav, device, dtype)
        timings["audio"] = time.perf_counter() - t

        # 5. Encode the reference
        t = time.perf_counter()
        prog(0.03, "Encoding the portrait")
        ref_latent = self.prepare_reference(canvas, device)
        timings["reference"] = time.perf_counter() - t

        # 6. Denoise segment by segment (VACE context and noise per segment)
        plan = SegmentPlan(num_frames, int(frames_per_segment))
        padded_skeleton = pad_repeat(skel, plan.padded_frames) if skel is not None else None
        conditions = ClipConditions(
            ref_latent, prompt_embeds, negative_embeds, pad_repeat(feats, plan.padded_frames), padded_skeleton
        )
        sampling = {"num_inference_steps": num_inference_steps, "shift": shift, "control_scale": control_scale}
        frames = self.denoise_segments(plan, conditions, **sampling, seed=seed, progress=prog, timings=timings)

        # 7. Trim, crop back to the portrait and write the video
        frames = np.ascontiguousarray(placement.crop_back(frames[:num_frames]))
        video_path = None
        if output_path is not None:
            t = time.perf_counter()
            prog(0.97, "Writing the video")
            # the user's original audio file (its own rate and channels); an array input is muxed as given
            original = audio if isinstance(audio, (str, os.PathLike)) else wav
            video_path = media.write_mp4(
                output_path, frames, fps=FPS, audio=original, audio_sr=SAMPLE_RATE, num_frames=len(frames)
            )
            timings["encode"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start
        prog(1.0, "Done")
        self.maybe_free_model_hooks()
        return Hallo4PipelineOutput(
            frames=frames, video_path=video_path, seed=seed, timings=timings, warnings=warnings
        )
