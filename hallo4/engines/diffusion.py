"""The `hallo4` engine: the Hallo4 diffusion model (`Hallo4Pipeline`) behind the common engine interface.

    engine = DiffusionEngine(model="models/hallo4", quantize="8bit")
    result = engine.generate(GenerationRequest(portrait=..., audio=...), progress)

* Device: CUDA when available, else the CPU in float32, with a warning and a time estimate.
  An explicit device/dtype that cannot be honoured raises; nothing falls back silently.
* precision (`PRECISIONS`): "release" = the authors' numerics (fp32 master weights under bf16 autocast,
  time embedding, modulation and output head in fp32), "bf16" = bf16 weights, "8bit" = bitsandbytes int8
  Linear layers (`hallo4.quantization`), "fp32" = exact (the CPU default). On a GPU the default is
  chosen by free memory (`choose_precision`) and the choice is said in the result's warnings.
  quantize="8bit" is the older spelling of precision="8bit".
* offload: None / "none", "model" (`enable_model_cpu_offload`), "group" (block-level group offload of
  the transformer); only meaningful on CUDA.
* adapter: a DPO round folder (rounds/round-NNN) with a PEFT LoRA `adapter_model.safetensors`
  (+ `adapter_config.json`), or diffusers' `pytorch_lora_weights.safetensors`; `load_adapter(dir)` /
  `unload_adapter()` switch it at run time.
* vocal_separation: None/"auto" (default: on when Kim_Vocal_2.onnx is next to the weights, as the release
  does; off with a note when it is not), True/"on" (required), False/"off".
* request.options: steps, guidance, shift, prompt, negative_prompt, frames_per_segment, height, width
  (canvas, multiples of 16), vae_tiling, lora_scale, vocal_separation.
* request.size: None (default) = the trained canvas, 832x480 (or 480x832 for portraits narrower than
  480:832), as the release. A size is an explicit choice: the canvas's long side, capped at 832 and
  rounded down to a multiple of 16; a canvas other than the trained one adds a warning to the result.
  The result is cropped back to the portrait's aspect.

The settings and their checks are `diffusion_settings`; loading a round's LoRA is `lora_adapter`.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path

import torch

from ..constants import FPS
from ..errors import InputError, ResourceError
from ..paths import models_dir, outputs_dir
from ..progress import Progress, ProgressCallback, as_progress
from .base import GenerationRequest, GenerationResult
from .diffusion_settings import (
    PRECISIONS,
    canvas,
    choose_precision,
    cpu_warning,
    float_opt,
    int_opt,
    resolve_offload,
    resolve_precision,
    size_warning,
    vocal_setting,
)
from .lora_adapter import apply_lora

__all__ = ["ADAPTER_NAME", "PRECISIONS", "DiffusionEngine", "choose_precision", "default_model"]

ADAPTER_NAME = "dpo"


def default_model() -> str:
    return os.environ.get("HALLO4_MODEL") or str(models_dir() / "hallo4")


class DiffusionEngine:
    """Hallo4 diffusion engine. Weights load on first use (or `load()`), then stay in memory."""

    name = "hallo4"

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        quantize: str | None = None,
        device: str | None = None,
        dtype: str | torch.dtype | None = None,
        offload: str | bool | None = None,
        adapter: str | os.PathLike | None = None,
        output_dir: str | os.PathLike | None = None,
        precision: str | None = None,
        vocal_separation: bool | str | None = None,
    ):
        self.model = str(model) if model else default_model()
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ResourceError(
                "device 'cuda' was requested but no CUDA GPU is available.",
                hint="Use device='cpu' (slow) or run on a machine with an NVIDIA GPU.",
            )
        self.precision, self.dtype, self.precision_note = resolve_precision(self.device, precision, quantize, dtype)
        self.quantize = "8bit" if self.precision == "8bit" else None
        self.offload = resolve_offload(offload)
        self.vocal_separation = vocal_setting(vocal_separation)
        self.adapter = Path(adapter) if adapter else None
        self.output_dir = Path(output_dir) if output_dir else None
        self.pipe = None
        self.load_warnings: list[str] = []
        self._lock = threading.Lock()
        self._adapter_loaded: Path | None = None

    # ------------------------------------------------------------------------------------------
    def load(self):
        """Load the pipeline (idempotent). Raises MissingWeightsError with the download commands."""
        if self.pipe is not None:
            return self.pipe
        from ..pipelines import Hallo4Pipeline

        warnings: list[str] = []
        self.preflight()
        pipe = Hallo4Pipeline.from_pretrained(self.model, torch_dtype=self.dtype, vae_dtype=torch.float32)
        if self.precision_note:
            warnings.append(self.precision_note)
        if self.device.type == "cpu" and (self.dtype != torch.float32 or self.precision == "release"):
            warnings.append(
                f"{str(self.dtype).replace('torch.', '')} / bf16 autocast on the CPU is slow; "
                "float32 (precision 'fp32') is usually faster."
            )
        if self.precision == "release":
            pipe.enable_release_precision(torch.bfloat16)
            if self.device.type == "cuda":  # the release's umT5 runs in bf16 (fp32 would need ~22 GB)
                pipe._text_dtype = torch.bfloat16
        if self.quantize:
            try:
                from ..quantization import quantize_8bit
            except ImportError as exc:  # pragma: no cover - depends on the install
                raise ResourceError("8-bit quantisation needs bitsandbytes.", hint="pip install bitsandbytes") from exc
            try:
                quantize_8bit(pipe.transformer.to(self.device), device=self.device)
            except ImportError as exc:
                raise ResourceError("8-bit quantisation needs bitsandbytes.", hint="pip install bitsandbytes") from exc
        self._place(pipe, warnings)
        self.pipe = pipe
        self.load_warnings = warnings
        if self.adapter is not None:
            self.load_adapter(self.adapter)
        return pipe

    def _place(self, pipe, warnings: list[str]) -> None:
        """Put the pipeline on the device, or set up the offload mode (GPU only)."""
        if self.offload and self.device.type != "cuda":
            warnings.append(f"offload={self.offload!r} only applies on a GPU; the CPU run keeps everything in memory.")
            pipe.to(self.device)
        elif self.offload == "model":
            pipe.enable_model_cpu_offload(device=self.device)
        elif self.offload == "group":
            pipe.transformer.enable_group_offload(
                onload_device=self.device,
                offload_device=torch.device("cpu"),
                offload_type="block_level",
                num_blocks_per_group=1,
            )
            for name in ("vae", "audio_encoder"):
                getattr(pipe, name).to(self.device)
        else:
            pipe.to(self.device)

    def preflight(self):
        """Refuse before loading when this mode would run out of memory (`hallo4.preflight`)."""
        from .. import preflight
        from ..weights import components_present

        if not components_present(self.model):
            return None  # the loader names what is missing (or resolves a hub id); nothing to size yet
        if self.device.type == "cuda":
            precision = "8bit" if self.quantize else ("release" if self.dtype == torch.float32 else "bf16")
        else:
            precision = "bf16"  # the CPU check looks at host RAM for the fp32 path
        return preflight.check(precision, self.offload or "none", "cached", model=self.model)

    def unload(self) -> None:
        """Free the pipeline (weights reload on the next generate)."""
        self.pipe = None
        self._adapter_loaded = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # ------------------------------------------------------------------------------------------
    def load_adapter(self, directory: str | os.PathLike) -> None:
        """Apply a LoRA adapter (a DPO round folder) to the transformer, replacing any previous one."""
        directory = Path(directory)
        if not directory.exists():
            raise InputError(
                "adapter", "folder not found", "Pick an existing round folder (rounds/round-NNN).", path=str(directory)
            )
        self.adapter = directory
        if self.pipe is None:
            return  # applied when the weights load
        if self._adapter_loaded is not None:
            self.unload_adapter(keep_setting=True)
        apply_lora(self.pipe.transformer, directory, ADAPTER_NAME)
        self._adapter_loaded = directory

    def unload_adapter(self, keep_setting: bool = False) -> None:
        """Remove the LoRA adapter (back to the base model)."""
        if self.pipe is not None and self._adapter_loaded is not None:
            self.pipe.transformer.delete_adapters(ADAPTER_NAME)
        self._adapter_loaded = None
        if not keep_setting:
            self.adapter = None

    # ------------------------------------------------------------------------------------------
    def generate(
        self, request: GenerationRequest, progress: Progress | ProgressCallback | None = None
    ) -> GenerationResult:
        prog = as_progress(progress)
        t0 = time.perf_counter()
        opts = dict(request.options)
        seed = int(request.seed) if request.seed is not None else secrets.randbelow(2**31 - 1)
        call = self._call_arguments(request, opts, seed)
        separation = vocal_setting(opts.get("vocal_separation", self.vocal_separation))
        warning = size_warning(call["height"], call["width"])

        prog(0.0, "Loading the Hallo4 model")
        with self._lock:
            t = time.perf_counter()
            prog.sub(0.0, 0.05)(0.0, "Loading the Hallo4 model")
            pipe = self.load()
            load_time = time.perf_counter() - t
            warnings = list(self.load_warnings) + ([warning] if warning else [])
            if self.device.type == "cpu":
                warnings.append(
                    cpu_warning(
                        pipe.transformer,
                        request,
                        call["num_inference_steps"],
                        call["guidance_scale"],
                        call["frames_per_segment"],
                        call["height"],
                        call["width"],
                    )
                )
            out = request.output or (self.output_dir or outputs_dir()) / f"hallo4_{int(time.time() * 1000)}_{seed}.mp4"
            vocal_note = self._apply_vocal_separation(pipe, separation)
            if vocal_note:
                warnings.append(vocal_note)
            skeleton = Path(request.skeleton) if isinstance(request.skeleton, str) else request.skeleton
            result = pipe(
                request.portrait,
                request.audio,
                skeleton=skeleton,
                max_seconds=request.max_seconds,
                progress=prog.sub(0.05, 1.0),
                output_path=out,
                **call,
            )
        timings = {"load": load_time, **result.timings}
        timings["total"] = time.perf_counter() - t0
        return GenerationResult(
            video=Path(result.video_path),
            seed=seed,
            engine=self.name,
            timings=timings,
            parameters=self._parameters(request, call, result, pipe),
            warnings=warnings + list(result.warnings),
            num_frames=int(len(result.frames)),
            fps=FPS,
        )

    def _call_arguments(self, request: GenerationRequest, opts: dict, seed: int) -> dict:
        """The pipeline's keyword arguments from request.options (range-checked) and the request's size."""
        from ..pipelines import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT

        negative = opts.get("negative_prompt")
        lora_scale = opts.get("lora_scale")
        height, width = canvas(request, opts)
        return {
            "prompt": str(opts.get("prompt") or DEFAULT_PROMPT),
            "negative_prompt": DEFAULT_NEGATIVE_PROMPT if negative is None else str(negative),
            "num_inference_steps": int_opt(opts, "steps", 25, 1, 200),
            "guidance_scale": float_opt(opts, "guidance", 6.0, 0.0, 30.0),
            "shift": float_opt(opts, "shift", 8.0, 0.1, 50.0),
            "seed": seed,
            "height": int(height) if height else None,
            "width": int(width) if width else None,
            "frames_per_segment": int_opt(opts, "frames_per_segment", 81, 5, 321),
            "vae_tiling": opts.get("vae_tiling"),
            "attention_kwargs": {"scale": float(lora_scale)} if lora_scale is not None else None,
        }

    def _parameters(self, request: GenerationRequest, call: dict, result, pipe) -> dict:
        """What made the clip: the request, the sampling settings and the engine's set-up (stored with it)."""
        params = request.to_dict()
        h, w = result.frames.shape[1:3]
        params.update(
            {
                "engine": self.name,
                "seed": call["seed"],
                "steps": call["num_inference_steps"],
                "guidance": call["guidance_scale"],
                "shift": call["shift"],
                "prompt": call["prompt"],
                "negative_prompt": call["negative_prompt"],
                "frames_per_segment": call["frames_per_segment"],
                "width": int(w),
                "height": int(h),
                "fps": FPS,
                "model": self.model,
                "quantize": self.quantize or "none",
                "precision": self.precision,
                "device": str(self.device),
                "dtype": str(self.dtype).replace("torch.", ""),
                "offload": self.offload or "none",
                "adapter": str(self._adapter_loaded) if self._adapter_loaded else None,
                "vocal_separation": pipe.vocal_separator is not None,
            }
        )
        return params

    @staticmethod
    def _apply_vocal_separation(pipe, setting: bool | None) -> str | None:
        """Switch the release's vocal separation on or off for this request; a note when auto finds no
        model. setting None = on when Kim_Vocal_2.onnx is next to the weights; True = required."""
        if setting is False:
            pipe.disable_vocal_separation()
            return None
        found = pipe.find_vocal_model()
        if found is None and setting is None:
            pipe.disable_vocal_separation()
            where = ", ".join(str(c) for c in pipe.vocal_model_candidates)
            return (
                "Vocal separation is off: Kim_Vocal_2.onnx was not found (looked in: " + where + "). The release "
                "separates the voice from music and noise first; get the file with `hf download "
                "fudan-generative-ai/hallo4 audio_separator/Kim_Vocal_2.onnx --local-dir models/hallo4-official`."
            )
        pipe.enable_vocal_separation(found)  # setting True without a file raises MissingWeightsError
        return None

    def _canvas(self, request: GenerationRequest, opts: dict) -> tuple[int | None, int | None]:
        """(height, width): see `diffusion_settings.canvas`."""
        return canvas(request, opts)

    @staticmethod
    def _size_warning(request: GenerationRequest, height: int | None, width: int | None) -> str | None:
        return size_warning(height, width)
