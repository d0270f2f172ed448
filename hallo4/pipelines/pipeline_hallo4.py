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
"""

from __future__ import annotations

import gc
import hashlib
import json
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from diffusers import AutoencoderKLWan, DiffusionPipeline, UniPCMultistepScheduler
from diffusers.utils import BaseOutput

from .. import media
from ..audio_encoder import SAMPLE_RATE, VOCAL_MODEL, VocalSeparator, encode_audio
from ..audio_encoder import num_frames as audio_num_frames
from ..errors import Hallo4Error, InputError, MissingWeightsError
from ..progress import Progress, ProgressCallback, as_progress
from ..weights import download_hint

FPS = 25.0
DEFAULT_PROMPT = "a person is talking"
# Wan2.1's default negative prompt (its shared config, sample_neg_prompt).
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
MAX_SEQUENCE_LENGTH = 512
DEFAULT_CANVAS = (832, 480)  # (width, height); portraits narrower than 480:832 use (480, 832)
BLANK_FRACTION = 0.1  # anti-drift: share of 2x2 patches of the carried-over frame set to -1

DOWNLOAD_HINT = download_hint("models")  # hf download ... / python -m hallo4.weights download (hallo4.weights)

SKELETON_VIDEO_SUFFIXES = {".mp4", ".mov", ".webm", ".mkv", ".avi", ".gif"}


@dataclass
class Hallo4PipelineOutput(BaseOutput):
    """frames: (T, H, W, 3) uint8 RGB at 25 fps (portrait aspect); video_path: the mp4 or None;
    seed: the seed used; timings: seconds per stage; warnings: things the user should know."""

    frames: np.ndarray
    video_path: Path | None
    seed: int
    timings: dict = field(default_factory=dict)
    warnings: list = field(default_factory=list)


class Hallo4Pipeline(DiffusionPipeline):
    r"""Audio-driven portrait animation with Hallo4 (Wan2.1-VACE-1.3B + audio/skeleton cross-attention).

    Components: `vae` (AutoencoderKLWan), `text_encoder` (UMT5EncoderModel; may be None: it is then
    loaded from `text_encoder_dir` only when a prompt is not in the embedding cache, and freed after),
    `tokenizer`, `transformer` (Hallo4Transformer3DModel), `scheduler` (UniPC flow),
    `audio_encoder` (Wav2Vec2Model), `feature_extractor` (Wav2Vec2FeatureExtractor).
    """

    model_cpu_offload_seq = "text_encoder->audio_encoder->transformer->vae"
    _optional_components = ["text_encoder", "tokenizer"]

    def __init__(self, vae, text_encoder, tokenizer, transformer, scheduler, audio_encoder, feature_extractor):
        super().__init__()
        self.register_modules(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            transformer=transformer,
            scheduler=scheduler,
            audio_encoder=audio_encoder,
            feature_extractor=feature_extractor,
        )
        self.text_encoder_dir: Path | None = None  # lazy text encoder / tokenizer source
        self.vocal_separator: VocalSeparator | None = None
        self.prompt_cache_dir: Path | None = None  # default: paths.cache_dir() / "prompts"
        # Release precision: fp32 transformer weights run under autocast to this dtype (see
        # `enable_release_precision`); None = the transformer runs in its own dtype.
        self.autocast_dtype: torch.dtype | None = None
        # where `find_vocal_model` looks for Kim_Vocal_2.onnx (set by from_pretrained)
        self.vocal_model_candidates: list[Path] = []

    # ------------------------------------------------------------------------------------------
    # Loading
    # ------------------------------------------------------------------------------------------
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
        """Load from a local folder (diffusers layout: transformer/, vae/, text_encoder/, tokenizer/,
        scheduler/, audio_encoder/, feature_extractor/) or a Hugging Face repo id (HF cache, or a
        download where a network exists).

        Components absent from that folder are looked up in `base_model` (a Wan2.1-VACE diffusers
        folder/repo: vae, text_encoder, tokenizer, scheduler; default `<folder>/../wan2.1-vace-1.3b`) and
        `audio_model` (wav2vec2-base-960h; default `<folder>/../hallo4-official/wav2vec/wav2vec2-base-960h`).
        The folder may also be the bare output of `python -m hallo4.convert` (the transformer alone).
        Anything still missing raises `MissingWeightsError` naming it, with the download commands.
        The text encoder is not loaded (`load_text_encoder=False`): it is read on a prompt-cache miss.
        """
        from transformers import AutoTokenizer, UMT5EncoderModel, Wav2Vec2FeatureExtractor, Wav2Vec2Model

        from ..models import Hallo4Transformer3DModel

        root = _resolve(pretrained_model_name_or_path, what="Hallo4 model")
        bases = [root]
        base = _resolve(base_model, what="Wan2.1-VACE base model", required=False) if base_model else None
        bases.append(base if base is not None else root.parent / "wan2.1-vace-1.3b")
        audio_root = _resolve(audio_model, what="wav2vec2 model", required=False) if audio_model else None
        audio_dirs = (
            [root / "audio_encoder"]
            + ([audio_root] if audio_root else [])
            + [
                root.parent / "hallo4-official" / "wav2vec" / "wav2vec2-base-960h",
                root / "wav2vec" / "wav2vec2-base-960h",
            ]
        )

        missing: list[str] = []

        def find(sub: str, check, candidates=None) -> Path | None:
            cands = candidates if candidates is not None else [b / sub for b in bases if b is not None]
            for c in cands:
                if c is not None and check(c):
                    return c
            missing.append(f"{sub} (looked in: {', '.join(str(c) for c in cands)})")
            return None

        transformer_dir = find("transformer", _has_weights, [root / "transformer", root])
        vae_dir = find("vae", _has_weights)
        text_dir = find("text_encoder", _has_weights)
        tok_dir = find("tokenizer", _has_tokenizer)
        audio_dir = find("audio_encoder", _has_weights, audio_dirs)
        fe_dir = find(
            "feature_extractor",
            lambda p: (p / "preprocessor_config.json").is_file(),
            [root / "feature_extractor"] + audio_dirs,
        )
        if missing:
            raise MissingWeightsError(
                "Hallo4 weights are incomplete; missing: " + "; ".join(missing) + ".", hint=DOWNLOAD_HINT
            )

        sched_dir = next(
            (
                b / "scheduler"
                for b in bases
                if b is not None and (b / "scheduler" / "scheduler_config.json").is_file()
            ),
            None,
        )
        scheduler = (
            UniPCMultistepScheduler.from_pretrained(sched_dir)
            if sched_dir
            else UniPCMultistepScheduler(
                prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0, num_train_timesteps=1000
            )
        )
        if scheduler.config.get("prediction_type") != "flow_prediction" or not scheduler.config.get("use_flow_sigmas"):
            scheduler = UniPCMultistepScheduler.from_config(
                scheduler.config, prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0
            )
        transformer = Hallo4Transformer3DModel.from_pretrained(transformer_dir, torch_dtype=torch_dtype)
        vae = AutoencoderKLWan.from_pretrained(vae_dir, torch_dtype=vae_dtype or torch_dtype)
        audio_encoder = Wav2Vec2Model.from_pretrained(audio_dir, torch_dtype=torch.float32).eval()
        feature_extractor = Wav2Vec2FeatureExtractor.from_pretrained(fe_dir)
        tokenizer = AutoTokenizer.from_pretrained(tok_dir)
        text_encoder = (
            UMT5EncoderModel.from_pretrained(text_dir, torch_dtype=torch_dtype) if load_text_encoder else None
        )
        pipe = cls(
            vae=vae,
            text_encoder=text_encoder,
            tokenizer=tokenizer,
            transformer=transformer,
            scheduler=scheduler,
            audio_encoder=audio_encoder,
            feature_extractor=feature_extractor,
        )
        pipe.text_encoder_dir = text_dir
        pipe._text_dtype = torch_dtype
        pipe.vocal_model_candidates = [
            root / "audio_separator" / VOCAL_MODEL,
            root.parent / "hallo4-official" / "audio_separator" / VOCAL_MODEL,
        ]
        if audio_root is not None:
            pipe.vocal_model_candidates.append(audio_root.parent.parent / "audio_separator" / VOCAL_MODEL)
        return pipe

    # ------------------------------------------------------------------------------------------
    # Options
    # ------------------------------------------------------------------------------------------
    def enable_vae_tiling(self, **kwargs) -> None:
        """Decode/encode in spatial tiles (less memory at high resolution)."""
        self.vae.enable_tiling(**kwargs)

    def disable_vae_tiling(self) -> None:
        self.vae.disable_tiling()

    def enable_release_precision(self, dtype: torch.dtype = torch.bfloat16) -> None:
        """Run the transformer as the release does: fp32 master weights under `dtype` autocast, with the
        time embedding, the modulation and the output head in fp32 (the model keeps those regions out of
        autocast). The transformer's weights must be float32."""
        if self.transformer.dtype != torch.float32:
            raise ValueError(f"release precision needs float32 transformer weights, not {self.transformer.dtype}")
        self.autocast_dtype = dtype

    def disable_release_precision(self) -> None:
        self.autocast_dtype = None

    def enable_vocal_separation(self, onnx_path: str | os.PathLike | None = None) -> None:
        """Separate vocals (MDX-Net ONNX, Kim_Vocal_2.onnx as the release) before wav2vec2. None: the
        model found next to the weights (`find_vocal_model`). Absent file -> MissingWeightsError naming it."""
        path = Path(onnx_path) if onnx_path else self.find_vocal_model()
        if path is None:
            where = ", ".join(str(c) for c in self.vocal_model_candidates) or "(no model folder)"
            raise MissingWeightsError(
                f"Vocal separation model {VOCAL_MODEL} not found (looked in: {where}).",
                hint="Download it with `hf download fudan-generative-ai/hallo4 audio_separator/"
                f"{VOCAL_MODEL} --local-dir models/hallo4-official`, or turn vocal "
                "separation off.",
            )
        if self.vocal_separator is None or self.vocal_separator.path != path:
            self.vocal_separator = VocalSeparator(path, device=self._execution_device.type)

    def disable_vocal_separation(self) -> None:
        self.vocal_separator = None

    def find_vocal_model(self) -> Path | None:
        """The first existing Kim_Vocal_2.onnx among `vocal_model_candidates`, or None."""
        return next((c for c in self.vocal_model_candidates if c.is_file()), None)

    # ------------------------------------------------------------------------------------------
    # Prompt embeddings (cached)
    # ------------------------------------------------------------------------------------------
    def text_encoder_id(self) -> str:
        """Identifies the text encoder's weights, for the prompt cache key."""
        if self.text_encoder is not None:
            cfg = json.dumps(self.text_encoder.config.to_dict(), sort_keys=True, default=str)
            params = list(self.text_encoder.parameters())[:4]
            fp = ",".join(f"{p.detach().float().sum().item():.6e}" for p in params)
            return hashlib.sha256(f"{type(self.text_encoder).__name__}|{cfg}|{fp}".encode()).hexdigest()
        if self.text_encoder_dir is not None:
            h = hashlib.sha256()
            d = Path(self.text_encoder_dir)
            cfg = d / "config.json"
            if cfg.is_file():
                h.update(cfg.read_bytes())
            for f in sorted(d.glob("*.safetensors")) + sorted(d.glob("*.bin")):
                h.update(f"{f.name}:{f.stat().st_size}".encode())
                with open(f, "rb") as fh:
                    h.update(fh.read(1 << 20))
            return h.hexdigest()
        raise MissingWeightsError("No text encoder: neither loaded nor a folder to load it from.", hint=DOWNLOAD_HINT)

    def prompt_cache_path(self, prompt: str, negative_prompt: str) -> Path:
        from ..paths import cache_dir

        key = hashlib.sha256(f"{prompt}\x00{negative_prompt}\x00{self.text_encoder_id()}".encode()).hexdigest()
        base = Path(self.prompt_cache_dir) if self.prompt_cache_dir else cache_dir() / "prompts"
        return base / f"{key}.safetensors"

    @torch.no_grad()
    def encode_prompt(
        self,
        prompt: str,
        negative_prompt: str,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        max_sequence_length: int = MAX_SEQUENCE_LENGTH,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 512, D) umT5 embeddings for prompt and negative prompt (zero-padded like Wan).

        Read from the safetensors cache when present; otherwise the text encoder is used (loaded from
        `text_encoder_dir` if needed and freed afterwards) and the result cached. Returns also a flag
        in `self._last_prompt_cache_hit`."""
        from safetensors.torch import load_file, save_file

        device = device or self._execution_device
        dtype = dtype or self.transformer.dtype
        path = self.prompt_cache_path(prompt, negative_prompt)
        self._last_prompt_cache_hit = path.is_file()
        if path.is_file():
            data = load_file(str(path))
            embeds = [data["prompt_embeds"], data["negative_prompt_embeds"]]
        else:
            embeds = self._run_text_encoder([prompt, negative_prompt], max_sequence_length)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            save_file(
                {"prompt_embeds": embeds[0].contiguous(), "negative_prompt_embeds": embeds[1].contiguous()}, str(tmp)
            )
            os.replace(tmp, path)
        out = []
        for e in embeds:
            padded = e.new_zeros(max_sequence_length, e.shape[-1])
            padded[: min(len(e), max_sequence_length)] = e[:max_sequence_length]
            out.append(padded[None].to(device=device, dtype=dtype))
        return out[0], out[1]

    def _run_text_encoder(self, prompts: list[str], max_len: int) -> list[torch.Tensor]:
        """Trimmed (len_i, D) embeddings on the CPU."""
        from transformers import AutoTokenizer, UMT5EncoderModel

        tokenizer = self.tokenizer
        if tokenizer is None:
            if self.text_encoder_dir is None:
                raise MissingWeightsError("No tokenizer for the text encoder.", hint=DOWNLOAD_HINT)
            tokenizer = AutoTokenizer.from_pretrained(Path(self.text_encoder_dir).parent / "tokenizer")
        loaded_here = self.text_encoder is None
        if loaded_here:
            if self.text_encoder_dir is None:
                raise MissingWeightsError("No text encoder to embed the prompt with.", hint=DOWNLOAD_HINT)
            dev = self._execution_device
            dtype = getattr(self, "_text_dtype", None) or (torch.bfloat16 if dev.type == "cuda" else torch.float32)
            encoder = UMT5EncoderModel.from_pretrained(self.text_encoder_dir, torch_dtype=dtype).to(dev).eval()
        else:
            encoder = self.text_encoder
            dev = _module_device(encoder, self._execution_device)
        try:
            prompts = [clean_prompt(p) for p in prompts]
            inputs = tokenizer(
                prompts,
                padding="max_length",
                max_length=max_len,
                truncation=True,
                add_special_tokens=True,
                return_attention_mask=True,
                return_tensors="pt",
            )
            ids, mask = inputs.input_ids.to(dev), inputs.attention_mask.to(dev)
            hidden = encoder(ids, mask).last_hidden_state
            lens = mask.gt(0).sum(1).tolist()
            return [hidden[i, : lens[i]].float().cpu() for i in range(len(prompts))]
        finally:
            if loaded_here:
                del encoder
                gc.collect()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()

    # ------------------------------------------------------------------------------------------
    # VAE helpers
    # ------------------------------------------------------------------------------------------
    def _latent_stats(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.vae.config
        mean = torch.tensor(c.latents_mean, dtype=torch.float32, device=device).view(1, c.z_dim, 1, 1, 1)
        std = torch.tensor(c.latents_std, dtype=torch.float32, device=device).view(1, c.z_dim, 1, 1, 1)
        return mean, std

    @torch.no_grad()
    def vae_encode(self, video: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) in [-1, 1] -> normalised latents (B, 16, 1 + (T-1)/4, H/8, W/8), float32."""
        dev = _module_device(self.vae, self._execution_device)
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
        dev = _module_device(self.vae, self._execution_device)
        mean, std = self._latent_stats(dev)
        z = (latents.to(dev).float() * std + mean).to(self.vae.dtype)
        video = self.vae.decode(z).sample.float().clamp(-1, 1)
        return video[0].permute(1, 2, 3, 0).cpu()

    # ------------------------------------------------------------------------------------------
    # Conditions
    # ------------------------------------------------------------------------------------------
    @staticmethod
    def default_canvas(src_width: int, src_height: int) -> tuple[int, int]:
        """(width, height): 832x480, or 480x832 for images narrower than 480:832 (no cropping)."""
        return (480, 832) if src_width / src_height < 480 / 832 - 1e-6 else DEFAULT_CANVAS

    def _skeleton_frames(
        self,
        skeleton,
        portrait: np.ndarray,
        n: int,
        width: int,
        height: int,
        seed: int,
        audio: np.ndarray,
        warnings: list[str],
    ) -> np.ndarray | None:
        """Rendered skeleton frames (n, H, W, 3) uint8 on the canvas, or None (no skeleton)."""
        if skeleton is False:
            return None
        if skeleton is None:
            try:
                from ..skeleton import idle_skeleton, render_skeleton
            except ImportError as exc:
                raise Hallo4Error(
                    "Audio-only generation needs an idle skeleton, but hallo4.skeleton.idle_skeleton is not "
                    f"available ({exc}).",
                    hint="Pass a skeleton (JSON or rendered video), or skeleton=False for no skeleton conditioning.",
                ) from exc
            seq = idle_skeleton(portrait, n, seed=seed, audio=audio, sr=SAMPLE_RATE, fps=FPS)
            return _fit_frames(render_skeleton(seq, width, height), n)
        if isinstance(skeleton, (str, os.PathLike)):
            path = Path(skeleton)
            if not path.exists():
                raise InputError("skeleton", "file not found", "Upload the skeleton again.", path=str(path))
            if path.is_file() and path.suffix.lower() in SKELETON_VIDEO_SUFFIXES:
                from ..skeleton.render import load_skeleton_video

                frames = load_skeleton_video(path, width, height, max_frames=n)  # never more than needed
                if len(frames) != n:
                    warnings.append(
                        f"The skeleton video has {len(frames)} frames for {n} audio frames; "
                        "it was looped back and forth / trimmed to the audio."
                    )
                return _fit_frames(frames, n)
            from ..skeleton import SkeletonSequence

            skeleton = SkeletonSequence.load(path)
        if isinstance(skeleton, np.ndarray):
            frames = skeleton
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise InputError("skeleton", f"frames must be (T, H, W, 3), got {frames.shape}")
            if frames.shape[1:3] != (height, width):
                frames = np.stack([media.fit_to_canvas(f, width, height)[0] for f in frames])
            return _fit_frames(frames.astype(np.uint8), n)
        # a SkeletonSequence
        from ..skeleton import fit_length, render_skeleton

        seq = skeleton.resample(FPS) if abs(float(skeleton.fps) - FPS) > 1e-3 else skeleton
        seq, message = fit_length(seq, n, "pingpong")
        if message:
            warnings.append(message)
        return _fit_frames(render_skeleton(seq, width, height), n)

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
            prompt / negative_prompt: text conditions (uncond = negative prompt + zero audio).
            num_inference_steps, guidance_scale (<= 1 disables CFG), shift: UniPC flow sampling.
            seed: noise seed (None draws one; the seed used is returned).
            height, width: canvas (multiples of 16); default 832x480 / 480x832 by the portrait's aspect.
            max_seconds: use at most this much audio.
            frames_per_segment: 4n + 1 frames per segment (81 in Hallo4; smaller for tests).
            progress: `hallo4.progress.Progress` or callback(fraction, message); cancel is honoured
                between denoising steps (raises CancelledError).
            output_path: write an mp4 with the original audio there (None: no file).
            vae_tiling: True/False to switch VAE tiling on/off for this call (None: leave as is).
            control_scale: VACE hint scale; attention_kwargs: e.g. {"scale": s} for LoRA.
        Returns:
            `Hallo4PipelineOutput(frames, video_path, seed, timings, warnings)`.
        """
        prog = as_progress(progress)
        timings: dict[str, float] = {}
        warnings: list[str] = []
        t_start = time.perf_counter()
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**31 - 1))
        seed = int(seed)
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
        if vae_tiling is True:
            self.enable_vae_tiling()
        elif vae_tiling is False:
            self.disable_vae_tiling()
        device = self._execution_device
        dtype = self.transformer.dtype

        # 1. Inputs -------------------------------------------------------------------------
        prog(0.0, "Loading inputs")
        image = _load_portrait(portrait)
        wav = _load_audio(audio, max_seconds)
        n_frames = audio_num_frames(len(wav), SAMPLE_RATE, FPS)
        if width is None and height is None:
            width, height = self.default_canvas(image.shape[1], image.shape[0])
        elif width is None or height is None:
            dw, dh = self.default_canvas(image.shape[1], image.shape[0])
            width, height = width or dw, height or dh
        width, height = int(width), int(height)
        mult = 8 * self.transformer.config.patch_size[1]
        if width % mult or height % mult or width < mult or height < mult:
            raise InputError(
                "size", f"{width}x{height} is not a multiple of {mult}", f"Use multiples of {mult} (e.g. 832x480)."
            )
        canvas, placement = media.fit_to_canvas(image, width, height, fill=0)
        skel = self._skeleton_frames(skeleton, image, n_frames, width, height, seed, wav, warnings)
        timings["inputs"] = time.perf_counter() - t_start

        # 2. Prompt embeddings ---------------------------------------------------------------
        t = time.perf_counter()
        prog(0.01, "Encoding the prompt")
        prompt_embeds, negative_embeds = self.encode_prompt(prompt or "", negative_prompt or "", device, dtype)
        timings["prompt"] = time.perf_counter() - t
        do_cfg = guidance_scale > 1.0

        # 3. Audio features -------------------------------------------------------------------
        t = time.perf_counter()
        prog(0.02, "Analysing speech (wav2vec2)")
        feats = encode_audio(
            self.audio_encoder,
            self.feature_extractor,
            wav,
            SAMPLE_RATE,
            device=_module_device(self.audio_encoder, device),
            separator=self.vocal_separator,
        )
        feats = feats.to(device=device, dtype=dtype)
        timings["audio"] = time.perf_counter() - t

        # 4. Reference latent -----------------------------------------------------------------
        t = time.perf_counter()
        prog(0.03, "Encoding the portrait")
        ref_pixels = _to_tensor(canvas[None])  # (1, 3, H, W)
        ref_latent = self.vae_encode(ref_pixels.unsqueeze(2)).to(device)  # (1, 16, 1, h, w)
        timings["reference"] = time.perf_counter() - t

        # 5. Segments -------------------------------------------------------------------------
        n_seg_frames = int(frames_per_segment)
        stride = n_seg_frames - 1
        n_segments = max(1, math.ceil((n_frames - 1) / stride))
        padded_len = stride * n_segments + 1
        feats = _pad_repeat(feats, padded_len)
        if skel is not None:
            skel = _pad_repeat(skel, padded_len)
        latent_frames = 2 + (n_seg_frames - 1) // 4  # reference + 1 + (N - 1) / 4
        h_lat, w_lat = height // 8, width // 8
        blank_gen = torch.Generator("cpu").manual_seed(seed + 1)
        zero_video_latent = None
        prev_last: torch.Tensor | None = None  # (H, W, 3) in [-1, 1]
        pieces: list[np.ndarray] = []
        timings.update(skeleton=0.0, context=0.0, denoise=0.0, decode=0.0)
        seg_span = 0.92 / n_segments
        for i in range(n_segments):
            sprog = prog.sub(0.04 + i * seg_span, 0.04 + (i + 1) * seg_span)
            a = i * stride
            sprog(0.0, f"Segment {i + 1}/{n_segments}: conditions")
            t = time.perf_counter()
            pose_latents = None
            if skel is not None:
                pose_latents = self.vae_encode_frames(_to_tensor(skel[a : a + n_seg_frames])).to(device, dtype)
            timings["skeleton"] += time.perf_counter() - t

            t = time.perf_counter()
            mask = torch.ones(n_seg_frames, height, width)
            video = torch.zeros(1, 3, n_seg_frames, height, width)
            if prev_last is not None:
                known = _blank_patches(prev_last, BLANK_FRACTION, blank_gen)
                video[0, :, 0] = known.permute(2, 0, 1)
                mask[0] = 0.0
                inactive = self.vae_encode(video)  # video * (1 - mask) == video: only frame 0 is non-zero
            else:
                if zero_video_latent is None:
                    zero_video_latent = self.vae_encode(video)
                inactive = zero_video_latent
            if zero_video_latent is None:
                zero_video_latent = self.vae_encode(torch.zeros_like(video))
            reactive = zero_video_latent  # video * mask is all zero
            ctx = torch.cat([inactive.to(device), reactive.to(device), self.latent_mask(mask)[None].to(device)], 1)
            ref_ctx = torch.cat(
                [ref_latent, torch.zeros_like(ref_latent), ref_latent.new_zeros(1, 64, 1, h_lat, w_lat)], 1
            )
            context = torch.cat([ref_ctx, ctx], 2).to(dtype)  # (1, 96, 1 + F, h, w)
            timings["context"] += time.perf_counter() - t

            t = time.perf_counter()
            latents = self._denoise(
                ref_latent,
                context,
                prompt_embeds,
                negative_embeds,
                feats[a : a + n_seg_frames][None],
                pose_latents,
                latent_frames,
                h_lat,
                w_lat,
                segment_generator(seed),
                num_inference_steps,
                guidance_scale if do_cfg else 1.0,
                shift,
                control_scale,
                attention_kwargs,
                sprog,
                f"Segment {i + 1}/{n_segments}",
                dtype,
            )
            timings["denoise"] += time.perf_counter() - t

            t = time.perf_counter()
            sprog(1.0, f"Segment {i + 1}/{n_segments}: decoding")
            frames = self.vae_decode(latents[:, :, 1:])  # (N, H, W, 3) in [-1, 1]
            prev_last = frames[-1].clone()
            u8 = ((frames + 1) * 127.5).round().clamp(0, 255).to(torch.uint8).numpy()
            pieces.append(u8 if i == 0 else u8[1:])
            timings["decode"] += time.perf_counter() - t

        out_frames = np.concatenate(pieces, 0)[:n_frames]
        out_frames = np.ascontiguousarray(placement.crop_back(out_frames))
        video_path = None
        if output_path is not None:
            t = time.perf_counter()
            prog(0.97, "Writing the video")
            # the user's original audio file (its own rate and channels); an array input is muxed as given
            original = audio if isinstance(audio, (str, os.PathLike)) else wav
            video_path = media.write_mp4(output_path, out_frames, fps=FPS, audio=original, audio_sr=SAMPLE_RATE)
            timings["encode"] = time.perf_counter() - t
        timings["total"] = time.perf_counter() - t_start
        prog(1.0, "Done")
        self.maybe_free_model_hooks()
        return Hallo4PipelineOutput(
            frames=out_frames, video_path=video_path, seed=seed, timings=timings, warnings=warnings
        )

    def _autocast(self, device: torch.device):
        """Autocast context of the release precision mode (a no-op context otherwise)."""
        import contextlib

        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=self.autocast_dtype)

    def _denoise(
        self,
        ref_latent,
        context,
        prompt_embeds,
        negative_embeds,
        audio_feats,
        pose_latents,
        latent_frames,
        h_lat,
        w_lat,
        generator,
        steps,
        guidance,
        shift,
        control_scale,
        attention_kwargs,
        prog,
        label,
        dtype,
    ):
        device = ref_latent.device
        scheduler = release_scheduler(self.scheduler.config, steps, shift, device)
        latents = torch.randn((1, 16, latent_frames, h_lat, w_lat), generator=generator, dtype=torch.float32).to(
            device
        )
        ref = ref_latent.float()
        cfg = guidance > 1.0
        if cfg:
            enc = torch.cat([prompt_embeds, negative_embeds])
            audio_in = torch.cat([audio_feats, torch.zeros_like(audio_feats)])
            pose_in = torch.cat([pose_latents, pose_latents]) if pose_latents is not None else None
            ctx_in = torch.cat([context, context])
        else:
            enc, audio_in, pose_in, ctx_in = prompt_embeds, audio_feats, pose_latents, context
        n = len(scheduler.timesteps)
        for k, t in enumerate(scheduler.timesteps):
            prog(k / n, f"{label}: step {k + 1}/{n}")
            latents[:, :, :1] = ref
            model_in = torch.cat([latents, latents]) if cfg else latents
            with self._autocast(device):
                pred = self.transformer(
                    hidden_states=model_in.to(dtype),
                    timestep=t.expand(model_in.shape[0]).to(device),
                    encoder_hidden_states=enc,
                    control_hidden_states=ctx_in,
                    audio_features=audio_in,
                    pose_latents=pose_in,
                    control_scale=control_scale,
                    attention_kwargs=attention_kwargs,
                    return_dict=False,
                )[0].float()
            if cfg:
                cond, uncond = pred.chunk(2)
                pred = uncond + guidance * (cond - uncond)
            latents = scheduler.step(pred, t, latents, return_dict=False)[0]
        latents[:, :, :1] = ref
        prog(1.0, f"{label}: denoised")
        return latents


# ----------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------
def _resolve(name_or_path, *, what: str, required: bool = True) -> Path | None:
    """A local folder, or a Hugging Face repo id resolved through the HF cache / a download."""
    p = Path(name_or_path).expanduser()
    if p.exists():
        return p.resolve()
    s = str(name_or_path)
    if re.fullmatch(r"[\w.-]+/[\w.-]+", s):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(s))
        except Exception as exc:  # offline, unknown repo, ...
            if not required:
                return None
            raise MissingWeightsError(
                f"{what} {s!r} is neither a local folder nor available from the Hugging Face cache/Hub ({type(exc).__name__}).",
                hint=DOWNLOAD_HINT,
            ) from exc
    if not required:
        return None
    raise MissingWeightsError(f"{what} folder {str(p)!r} does not exist.", hint=DOWNLOAD_HINT)


def _has_weights(d: Path) -> bool:
    return (d / "config.json").is_file() and any(
        any(d.glob(pat)) for pat in ("*.safetensors", "*.bin", "*.safetensors.index.json")
    )


def _has_tokenizer(d: Path) -> bool:
    return any((d / f).is_file() for f in ("tokenizer.json", "spiece.model", "tokenizer_config.json"))


def _module_device(module, default) -> torch.device:
    """Where a module runs (accelerate offload hooks: the execution device)."""
    hook = getattr(module, "_hf_hook", None)
    if hook is not None and getattr(hook, "execution_device", None) is not None:
        return torch.device(hook.execution_device)
    try:
        dev = next(module.parameters()).device
    except StopIteration:
        return torch.device(default)
    return torch.device(default) if dev.type == "meta" else dev


def segment_generator(seed: int) -> torch.Generator:
    """The noise generator of one segment: re-seeded with the clip's seed for every segment, as the
    release does, so a seed reproduces a clip segment by segment. A CPU generator: the same noise on
    every device (the release draws on the GPU's generator)."""
    return torch.Generator("cpu").manual_seed(int(seed))


def clean_prompt(text: str) -> str:
    """Clean a prompt as the Wan T5 tokenizer of the release does before tokenising: `ftfy.fix_text`
    (full-width punctuation such as the negative prompt's '，' becomes ASCII), HTML entities unescaped
    twice, whitespace collapsed to single spaces and stripped."""
    import html

    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip()


def release_sigmas(num_inference_steps: int, num_train_timesteps: int = 1000) -> np.ndarray:
    """The release's unshifted flow sigmas: `linspace(sigma_max, 0, steps + 1)[:-1]` with sigma_max the
    float32 value of 1 - 1/num_train_timesteps (not 1). diffusers shifts them (`flow_shift`) itself."""
    sigma_max = float(np.float32(1.0 - 1.0 / num_train_timesteps))
    return np.linspace(sigma_max, 0.0, num_inference_steps + 1)[:-1]


def release_scheduler(config, num_inference_steps: int, shift: float, device=None) -> UniPCMultistepScheduler:
    """diffusers' UniPC configured and stepped as the release's flow UniPC sampler (bh2, order 2,
    x0-prediction, lower-order final step, final sigma 0), with the release's sigmas: the same integer
    timesteps (999 ... 249 at 25 steps, shift 8) and sigmas (tests/test_golden.py). diffusers' own
    flow sigmas start at 1 - 1e-6 and round the timesteps instead of truncating (off by up to 5).
    The sigmas go in as a numpy array: diffusers shifts them with array arithmetic."""
    scheduler = UniPCMultistepScheduler.from_config(
        config,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=float(shift),
        use_dynamic_shifting=False,
        shift_terminal=None,
        use_karras_sigmas=False,
        use_exponential_sigmas=False,
        use_beta_sigmas=False,
        solver_order=2,
        solver_type="bh2",
        predict_x0=True,
        lower_order_final=True,
        final_sigmas_type="zero",
        disable_corrector=[],
        thresholding=False,
    )
    scheduler.set_timesteps(
        sigmas=release_sigmas(num_inference_steps, scheduler.config.num_train_timesteps), device=device
    )
    return scheduler


def _load_portrait(portrait) -> np.ndarray:
    if isinstance(portrait, (str, os.PathLike)):
        return np.asarray(media.load_image(portrait, name="portrait"))
    if hasattr(portrait, "convert"):  # PIL
        return np.asarray(portrait.convert("RGB"))
    arr = np.asarray(portrait)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InputError("portrait", f"expected an (H, W, 3) uint8 RGB image, got {arr.shape} {arr.dtype}")
    return arr


def _load_audio(audio, max_seconds) -> np.ndarray:
    if isinstance(audio, (str, os.PathLike)):
        return media.load_audio(audio, SAMPLE_RATE, name="audio", max_seconds=max_seconds)
    wav = np.asarray(audio, dtype=np.float32).reshape(-1)
    if max_seconds is not None:
        wav = wav[: int(round(max_seconds * SAMPLE_RATE))]
    if wav.size < SAMPLE_RATE // 25:
        raise InputError("audio", "contains no audio (zero length)", "Upload a recording with speech.")
    return wav


def _to_tensor(frames: np.ndarray) -> torch.Tensor:
    """(T, H, W, 3) uint8 -> (T, 3, H, W) float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def _pad_repeat(x, n: int):
    """Pad along axis 0 to n by repeating the last element (or trim)."""
    if len(x) >= n:
        return x[:n]
    if isinstance(x, torch.Tensor):
        return torch.cat([x, x[-1:].expand(n - len(x), *x.shape[1:])], 0)
    return np.concatenate([x, np.repeat(x[-1:], n - len(x), 0)], 0)


def _fit_frames(frames: np.ndarray, n: int) -> np.ndarray:
    """Ping-pong loop (or trim) frames to length n."""
    t = len(frames)
    if t == 0:
        raise InputError("skeleton", "has no frames", "Upload a skeleton with at least one frame.")
    if t >= n:
        return frames[:n]
    period = max(1, 2 * t - 2)
    idx = np.arange(n) % period
    idx = np.where(idx < t, idx, period - idx)
    return frames[idx]


def _blank_patches(frame: torch.Tensor, fraction: float, generator: torch.Generator, patch: int = 2) -> torch.Tensor:
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
