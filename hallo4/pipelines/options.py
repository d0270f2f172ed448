"""Run options of `Hallo4Pipeline` that stay set between calls (VAE tiling, the release's precision mode, the
release's vocal separation) and the state of the running call (guidance scale, current timestep, interrupt)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import torch

from ..audio_encoder import VOCAL_MODEL, VocalSeparator
from ..errors import MissingWeightsError


class PipelineOptionsMixin:
    """enable_/disable_ switches, for `Hallo4Pipeline` (needs vae, transformer, vocal_model_candidates)."""

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

    def autocast(self, device: torch.device):
        """Autocast context of the release precision mode (a no-op context otherwise)."""
        if self.autocast_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=torch.device(device).type, dtype=self.autocast_dtype)

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


class RunStateMixin:
    """The state of the running call, as diffusers' pipelines keep it: set by `__call__` (`_guidance_scale`,
    `_attention_kwargs`, `_interrupt`) and the denoising loop (`_current_timestep`, `_num_timesteps`), read
    through these properties by the loop and by callers."""

    @property
    def guidance_scale(self) -> float:
        return self._guidance_scale

    @property
    def do_classifier_free_guidance(self) -> bool:
        return self._guidance_scale > 1.0

    @property
    def attention_kwargs(self) -> dict | None:
        return self._attention_kwargs

    @property
    def num_timesteps(self) -> int:
        return self._num_timesteps

    @property
    def current_timestep(self) -> torch.Tensor | None:
        return self._current_timestep

    @property
    def interrupt(self) -> bool:
        """Set `pipe._interrupt = True` (e.g. from another thread) to stop before the next step (CancelledError)."""
        return self._interrupt
