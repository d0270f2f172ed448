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
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from pathlib import Path

import torch

from ..errors import InputError, MissingWeightsError, ResourceError
from ..paths import models_dir, outputs_dir
from ..progress import Progress, ProgressCallback, as_progress
from .base import GenerationRequest, GenerationResult

ADAPTER_NAME = "dpo"
CPU_FLOPS = 2e11  # rough sustained fp32 FLOP/s of a desktop CPU, for the ETA warning
TRAINED_CANVAS = (832, 480)  # (long side, short side) Hallo4 was trained at
PRECISIONS = ("release", "bf16", "8bit", "fp32")
# Free GPU memory each precision needs for the full model at 832x480x81 with CFG: weights (fp32 11.1 GB,
# bf16 5.6 GB, int8 2.9 GB) plus ~12 GB of activations, VAE and audio encoder (rough; see BENCHMARKS.md).
PRECISION_FREE_BYTES = {"release": 24 * 2**30, "bf16": 18 * 2**30, "8bit": 0}


def choose_precision(free_bytes: int) -> str:
    """The most faithful precision that fits in `free_bytes` of GPU memory: release, else bf16, else 8-bit."""
    for name in ("release", "bf16", "8bit"):
        if free_bytes >= PRECISION_FREE_BYTES[name]:
            return name
    return "8bit"


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
        if quantize in ("none", "", False):
            quantize = None
        if quantize not in (None, "8bit", "int8"):
            raise InputError("quantize", f"unknown quantisation {quantize!r}", "Use 'none' or '8bit'.")
        if precision in ("", "auto"):
            precision = None
        if precision is not None and precision not in PRECISIONS:
            raise InputError("precision", f"unknown precision {precision!r}", f"Use one of {', '.join(PRECISIONS)}.")
        if quantize and precision not in (None, "8bit"):
            raise InputError("precision", f"quantize='8bit' contradicts precision={precision!r}", "Give one of them.")
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ResourceError(
                "device 'cuda' was requested but no CUDA GPU is available.",
                hint="Use device='cpu' (slow) or run on a machine with an NVIDIA GPU.",
            )
        self.precision_note: str | None = None
        if quantize:
            precision = "8bit"
        if precision is None and dtype is None:
            if self.device.type == "cuda":
                free, _ = torch.cuda.mem_get_info(self.device)
                precision = choose_precision(free)
                self.precision_note = (
                    f"Precision {precision!r} chosen for {free / 2**30:.1f} GiB of free GPU memory "
                    "(release = the authors' numerics; set precision to change it)."
                )
            else:
                precision = "fp32"
        named = {torch.float32: "fp32", torch.bfloat16: "bf16"}
        self.precision = precision or named.get(_parse_dtype(dtype), "custom")
        self.quantize = "8bit" if self.precision == "8bit" else None
        if dtype is not None:
            self.dtype = _parse_dtype(dtype)
        elif self.precision in ("release", "fp32"):
            self.dtype = torch.float32  # release: fp32 master weights, bf16 autocast
        else:
            self.dtype = torch.bfloat16 if self.device.type == "cuda" else torch.float32
        if offload in (None, False, "none", ""):
            offload = None
        elif offload is True:
            offload = "model"
        if offload not in (None, "model", "group"):
            raise InputError("offload", f"unknown offload mode {offload!r}", "Use 'none', 'model' or 'group'.")
        self.offload = offload
        self.vocal_separation = _vocal_setting(vocal_separation)
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
        self.pipe = pipe
        self.load_warnings = warnings
        if self.adapter is not None:
            self.load_adapter(self.adapter)
        return pipe

    def preflight(self):
        """Refuse before loading when this mode would run out of memory (`hallo4.preflight`)."""
        from .. import preflight
        from ..studio import hallo4_weights_present

        if not hallo4_weights_present(self.model):
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
        _apply_lora(self.pipe.transformer, directory, ADAPTER_NAME)
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
        steps = _int_opt(opts, "steps", 25, 1, 200)
        guidance = _float_opt(opts, "guidance", 6.0, 0.0, 30.0)
        shift = _float_opt(opts, "shift", 8.0, 0.1, 50.0)
        fps_seg = _int_opt(opts, "frames_per_segment", 81, 5, 321)
        prompt = str(opts.get("prompt") or "a person is talking")
        from ..pipelines import DEFAULT_NEGATIVE_PROMPT

        negative = opts.get("negative_prompt")
        negative = DEFAULT_NEGATIVE_PROMPT if negative is None else str(negative)
        separation = _vocal_setting(opts.get("vocal_separation", self.vocal_separation))
        height, width = self._canvas(request, opts)
        size_warning = self._size_warning(request, height, width)
        lora_scale = opts.get("lora_scale")

        prog(0.0, "Loading the Hallo4 model")
        with self._lock:
            t = time.perf_counter()
            load_prog = prog.sub(0.0, 0.05)
            load_prog(0.0, "Loading the Hallo4 model")
            pipe = self.load()
            load_time = time.perf_counter() - t
            warnings = list(self.load_warnings) + ([size_warning] if size_warning else [])
            if self.device.type == "cpu":
                warnings.append(self._cpu_warning(request, steps, guidance, fps_seg, height, width))
            out = request.output or (self.output_dir or outputs_dir()) / f"hallo4_{int(time.time() * 1000)}_{seed}.mp4"
            vocal_note = self._apply_vocal_separation(pipe, separation)
            if vocal_note:
                warnings.append(vocal_note)
            skeleton = request.skeleton
            if isinstance(skeleton, str):
                skeleton = Path(skeleton)
            result = pipe(
                request.portrait,
                request.audio,
                skeleton=skeleton,
                prompt=prompt,
                negative_prompt=negative,
                num_inference_steps=steps,
                guidance_scale=guidance,
                shift=shift,
                seed=seed,
                height=int(height) if height else None,
                width=int(width) if width else None,
                max_seconds=request.max_seconds,
                frames_per_segment=fps_seg,
                progress=prog.sub(0.05, 1.0),
                output_path=out,
                vae_tiling=opts.get("vae_tiling"),
                attention_kwargs={"scale": float(lora_scale)} if lora_scale is not None else None,
            )
        timings = {"load": load_time, **result.timings}
        timings["total"] = time.perf_counter() - t0
        params = request.to_dict()
        h, w = result.frames.shape[1:3]
        params.update(
            {
                "engine": self.name,
                "seed": seed,
                "steps": steps,
                "guidance": guidance,
                "shift": shift,
                "prompt": prompt,
                "negative_prompt": negative,
                "frames_per_segment": fps_seg,
                "width": int(w),
                "height": int(h),
                "fps": 25.0,
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
        return GenerationResult(
            video=Path(result.video_path),
            seed=seed,
            engine=self.name,
            timings=timings,
            parameters=params,
            warnings=warnings + list(result.warnings),
            num_frames=int(len(result.frames)),
            fps=25.0,
        )

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
        """(height, width) of the canvas: options height/width, else `size` as the long side (<= 832), else
        (None, None): the pipeline's trained canvas for the portrait (832x480 or 480x832)."""
        from .. import media
        from ..pipelines import Hallo4Pipeline

        if opts.get("height") or opts.get("width"):
            h = _int_opt(opts, "height", 480, 16, 2048)
            w = _int_opt(opts, "width", 832, 16, 2048)
            return h, w
        if request.size is None:
            return None, None
        size = int(request.size)
        if not 16 <= size <= 4096:
            raise InputError(
                "size", f"{size} px is out of range", "Choose a size between 16 and 4096 pixels (832 = native)."
            )
        long_side = max(16, min(TRAINED_CANVAS[0], size) // 16 * 16)
        short_side = max(16, int(round(long_side * TRAINED_CANVAS[1] / TRAINED_CANVAS[0] / 16)) * 16)
        image = media.load_image(request.portrait, name="portrait")
        w0, h0 = Hallo4Pipeline.default_canvas(image.width, image.height)
        return (short_side, long_side) if w0 > h0 else (long_side, short_side)

    @staticmethod
    def _size_warning(request: GenerationRequest, height: int | None, width: int | None) -> str | None:
        """A canvas other than the trained one is allowed (faster previews) but said."""
        if height is None or sorted((int(height), int(width))) == sorted(TRAINED_CANVAS):
            return None
        return (
            f"Canvas {width}x{height} differs from the 832x480 / 480x832 canvas Hallo4 was trained at; expect "
            "lower quality. Leave the size empty for the trained canvas."
        )

    def _cpu_warning(self, request, steps, guidance, frames_per_segment, height, width) -> str:
        """A CPU run is very slow with the real model: say so, with a rough estimate."""
        try:
            from .. import media

            n = max(1, int(round(media.probe(request.audio, name="audio", count_frames=False).duration * 25)))
        except Exception:  # the pipeline reports bad audio properly
            n = 125
        if request.max_seconds:
            n = min(n, int(request.max_seconds * 25) + 1)
        segments = max(1, -(-(n - 1) // (frames_per_segment - 1)))
        h, w = int(height or 480), int(width or 832)
        tokens = (2 + (frames_per_segment - 1) // 4) * (h // 16) * (w // 16)
        cfg = self.pipe.transformer.config
        inner = cfg.num_attention_heads * cfg.attention_head_dim
        params = sum(p.numel() for p in self.pipe.transformer.parameters())
        layers = cfg.num_layers + len(cfg.vace_layers)
        flops = 2 * params * tokens + 4 * tokens * tokens * inner * layers
        flops *= (2 if guidance > 1 else 1) * steps * segments
        minutes = flops / CPU_FLOPS / 60
        eta = f"{minutes:.0f} min" if minutes >= 1 else f"{minutes * 60:.0f} s"
        return (
            f"Running the hallo4 engine on the CPU in float32 (no CUDA GPU): roughly {eta} for {segments} "
            f"segment(s) x {steps} steps. Use a GPU, fewer steps, or the lite engine for a quick result."
        )


# ----------------------------------------------------------------------------------------------
def _vocal_setting(value) -> bool | None:
    """None/"auto" (on when the model file is present), True/"on", False/"off"."""
    if value is None or value == "auto":
        return None
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("on", "true", "1", "yes"):
        return True
    if str(value).lower() in ("off", "false", "0", "no"):
        return False
    raise InputError("vocal separation", f"unknown setting {value!r}", "Use auto, on or off.")


def _parse_dtype(dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    names = {
        "bf16": torch.bfloat16,
        "bfloat16": torch.bfloat16,
        "fp16": torch.float16,
        "float16": torch.float16,
        "fp32": torch.float32,
        "float32": torch.float32,
    }
    if str(dtype).lower() not in names:
        raise InputError("dtype", f"unknown dtype {dtype!r}", "Use bf16, fp16 or fp32.")
    return names[str(dtype).lower()]


def _num_opt(opts: dict, key: str, default, lo, hi, cast=float):
    """An option from request.options, cast and range-checked, with a message saying what to use."""
    value = opts.get(key)
    if value is None:
        return default
    try:
        v = cast(value)
    except (TypeError, ValueError):
        kind = "a whole number" if cast is int else "a number"
        raise InputError(key, f"{value!r} is not {kind}", f"Use a value between {lo} and {hi}.") from None
    if not lo <= v <= hi:
        raise InputError(key, f"{v} is out of range", f"Use a value between {lo} and {hi}.")
    return v


def _int_opt(opts: dict, key: str, default: int, lo: int, hi: int) -> int:
    return _num_opt(opts, key, default, lo, hi, int)


def _float_opt(opts: dict, key: str, default: float, lo: float, hi: float) -> float:
    return _num_opt(opts, key, default, lo, hi, float)


def _find_adapter_file(directory: Path) -> Path:
    for name in ("adapter_model.safetensors", "pytorch_lora_weights.safetensors"):
        if (directory / name).is_file():
            return directory / name
        found = sorted(directory.glob(f"**/{name}"))
        if found:
            return found[0]
    raise MissingWeightsError(
        f"No LoRA adapter in {directory} (expected adapter_model.safetensors or pytorch_lora_weights.safetensors).",
        hint="Pick a finished DPO round, or train one in the Train tab.",
    )


def _apply_lora(transformer, directory: Path, adapter_name: str) -> None:
    """Inject a PEFT LoRA into the transformer and load its weights (strict about unexpected keys)."""
    from peft import LoraConfig
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = _find_adapter_file(Path(directory))
    state = load_file(str(path))
    cleaned = {}
    for key, value in state.items():
        for prefix in ("base_model.model.", "transformer."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        cleaned[key] = value
    cfg_path = path.parent / "adapter_config.json"
    if cfg_path.is_file():
        raw = json.loads(cfg_path.read_text())
        allowed = set(LoraConfig.__dataclass_fields__)
        config = LoraConfig(**{k: v for k, v in raw.items() if k in allowed and k not in ("peft_type", "task_type")})
    else:  # infer rank and target modules from the weights
        a_keys = [k for k in cleaned if ".lora_A." in k]
        if not a_keys:
            raise InputError("adapter", "the safetensors file holds no LoRA weights", path=str(path))
        rank = int(cleaned[a_keys[0]].shape[0])
        targets = sorted({k.split(".lora_A.")[0] for k in a_keys})
        config = LoraConfig(r=rank, lora_alpha=rank, target_modules=targets)
    transformer.add_adapter(config, adapter_name=adapter_name)
    result = set_peft_model_state_dict(transformer, cleaned, adapter_name=adapter_name)
    unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora" in k]
    if unexpected:
        transformer.delete_adapters(adapter_name)
        raise InputError(
            "adapter",
            f"{len(unexpected)} weights do not fit this model (e.g. {unexpected[0]})",
            "The adapter was trained for a different model.",
            path=str(path),
        )
    transformer.set_adapters([adapter_name])
