"""Generation: one typed request (GenerateArgs), the engine pool, per-engine slots and the result cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import limits, paths
from ..constants import file_sha256
from ..engines import GenerationRequest, GenerationResult, get_engine
from ..errors import InputError, MissingWeightsError
from ..portrait_size import lite_size
from ..progress import Progress, ProgressCallback, as_progress
from .models import hallo4_weights_present, model_status
from .settings import load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"

# Quality presets: what a user picks instead of raw numbers (hallo4 steps / guidance / size; lite's
# long side, capped at the portrait's own: the warp is cheap, so even "fast" keeps a photo's detail).
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"steps": 12, "guidance": 4.5, "size": 384, "lite_size": 768},
    "balanced": {"steps": 25, "guidance": 6.0, "size": 512, "lite_size": 1024},
    "best": {"steps": 40, "guidance": 6.0, "size": 832, "lite_size": 1536},
}


@dataclass
class GenerateArgs:
    """One generation request, built once by the caller (the app, the arena, tests)."""

    portrait: str | Path
    audio: str | Path
    skeleton: str | Path | None = None
    engine: str = "lite"
    preset: str = "balanced"
    steps: int | None = None
    guidance: float | None = None
    seed: int | None = None
    size: int | None = None
    max_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def check_input(path: str | Path | None, name: str, what: str) -> Path:
    """The uploaded file as a Path, or an InputError naming the input and what to upload."""
    if not path:
        raise InputError(name, "is missing", f"Upload {what}.")
    p = Path(path)
    if not p.is_file():
        raise InputError(name, "file not found", f"Upload {what} again.", path=str(p))
    return p


def engine_kwargs(engine: str) -> dict[str, Any]:
    """The engine's constructor arguments from the saved settings (lite takes none)."""
    if engine != "hallo4":
        return {}
    s = load_settings()
    return {
        "model": s.model,
        # The "quantize" setting holds the precision choice: None = auto, 8bit, or a precision mode.
        "quantize": "8bit" if s.quantize == "8bit" else None,
        "precision": s.quantize if s.quantize in ("release", "bf16", "fp32") else None,
        "offload": s.offload,
        "adapter": s.adapter,
        "vocal_separation": s.vocal_separation,
    }


_engine_kwargs = engine_kwargs  # the name older tests and scripts use

_engines: dict[str, Any] = {}
_engines_lock = threading.Lock()


def _engine(name: str):
    """One engine per (name, settings): the diffusion weights load once and stay in memory; a settings
    change (precision, offload, model, adapter) builds a new one and drops the old."""
    kwargs = engine_kwargs(name)
    key = name + json.dumps(kwargs, sort_keys=True, default=str)
    with _engines_lock:
        if key not in _engines:
            for old in [k for k in _engines if k.startswith(name + "{")]:
                unload = getattr(_engines.pop(old), "unload", None)
                if unload:
                    unload()
            _engines[key] = get_engine(name, **kwargs)
        return _engines[key]


# How many jobs of each engine may run at once in this process (the app's queue admits a few more).
ENGINE_SLOTS: dict[str, threading.BoundedSemaphore] = {
    "lite": threading.BoundedSemaphore(int(os.environ.get("HALLO4_LITE_CONCURRENCY", "2"))),
    "hallo4": threading.BoundedSemaphore(int(os.environ.get("HALLO4_DIFFUSION_CONCURRENCY", "1"))),
}


def _size(args: GenerateArgs, preset: dict[str, Any], portrait: Path) -> int | None:
    if args.size:
        return int(args.size)
    if args.engine == "lite":
        return lite_size(preset["lite_size"], portrait)
    return None  # hallo4: the trained canvas unless a size is given (presets trade steps/CFG, not the canvas)


def _options(args: GenerateArgs, preset: dict[str, Any]) -> dict[str, Any]:
    """Engine options: the caller's extras, the active lite round's motion, hallo4's steps/CFG."""
    options: dict[str, Any] = dict(args.extra)
    if args.engine == "lite" and "motion" not in options:
        from ..lite_motion.rounds import active_lite_motion

        # The active lite DPO round, else the base model the Arena compares (issue 16; options["motion"]="rules"
        # picks the rule-based motion).
        options["motion"] = active_lite_motion()
    if args.engine == "hallo4":
        options.setdefault("steps", int(args.steps or preset["steps"]))
        options.setdefault("guidance", float(args.guidance if args.guidance is not None else preset["guidance"]))
        if not hallo4_weights_present(engine_kwargs("hallo4")["model"]):
            st = model_status()["hallo4"]
            missing = ", ".join(k for k, ok in st["components"].items() if not ok)
            raise MissingWeightsError(
                f"The hallo4 engine needs its weights, which are not in {st['path']} (missing: {missing}).",
                hint=f"Get them in the Models tab, or run: {st['how_to_get']}. The lite engine works without weights.",
            )
    return options


def _cap_audio(args: GenerateArgs, audio: Path) -> str | None:
    """Bound the clip by the server's audio cap (empty = the cap, not the whole file); returns a warning
    when the audio was cut."""
    if args.max_seconds is not None and not (0 < float(args.max_seconds) < float("inf")):
        raise InputError(
            "max length",
            "must be more than 0 seconds",
            "Set a positive number, or leave it empty for the whole audio.",
        )
    cap = limits.active().max_audio_seconds
    if args.max_seconds is not None and float(args.max_seconds) <= cap:
        return None
    from .. import media

    duration = media.probe(audio, name="audio", count_frames=False).duration
    warning = None
    if duration > cap + 0.04:
        warning = f"Only the first {cap:g} s of the {duration:.0f} s audio were used (this server's limit)."
    args.max_seconds = cap if duration > cap + 0.04 or args.max_seconds is not None else None
    return warning


def generate(
    args: GenerateArgs, progress: Progress | ProgressCallback | None = None, *, use_cache: bool = True
) -> GenerationResult:
    """Run an engine; identical inputs with an explicit seed return the cached clip at once."""
    portrait = check_input(args.portrait, "portrait", "a portrait photo")
    audio = check_input(args.audio, "audio", "a speech recording")
    skeleton = Path(args.skeleton) if args.skeleton else None
    preset = PRESETS.get(args.preset)
    if preset is None:
        raise InputError("quality preset", f"unknown preset {args.preset!r}", f"Choose one of {', '.join(PRESETS)}.")
    size = _size(args, preset, portrait)
    options = _options(args, preset)
    cap_warning = _cap_audio(args, audio)
    args.seed = limits.check_seed(args.seed)
    key_inputs = {
        "portrait": file_sha256(portrait),
        "audio": file_sha256(audio),
        "skeleton": file_sha256(skeleton) if skeleton else "",
        "engine": args.engine,
        "size": size,
        "max_seconds": args.max_seconds,
        "options": options,
        "engine_kwargs": engine_kwargs(args.engine),
    }
    if use_cache and args.seed is not None and (hit := _cache_lookup(_cache_key(key_inputs, args.seed))):
        return hit
    prog = as_progress(progress)
    slot = ENGINE_SLOTS.get(args.engine) or threading.BoundedSemaphore(1)
    while not slot.acquire(timeout=0.5):  # per-engine concurrency: hallo4 needs the whole GPU
        prog(0.0, f"Waiting for a free {args.engine} slot (other jobs are running)")
    try:
        engine = _engine(args.engine)
        out = paths.outputs_dir() / f"{args.engine}_{_cache_key(key_inputs, args.seed)}_{int(time.time())}.mp4"
        req = GenerationRequest(
            portrait=portrait,
            audio=audio,
            skeleton=skeleton,
            seed=args.seed,
            size=size,
            max_seconds=args.max_seconds,
            output=out,
            options=options,
        )
        result = engine.generate(req, prog)
    finally:
        slot.release()
    if cap_warning:
        result.warnings.append(cap_warning)
    _cache_store(_cache_key(key_inputs, result.seed), result)  # under the seed used: "same seed again" is instant
    return result


def _cache_key(inputs: dict[str, Any], seed: int | None) -> str:
    src = json.dumps({**inputs, "seed": seed}, sort_keys=True, default=str)
    return hashlib.sha256(src.encode()).hexdigest()[:24]


def _cache_lookup(key: str) -> GenerationResult | None:
    cache, meta_dir = result_cache_dirs()
    video, meta_file = cache / f"{key}.mp4", meta_dir / f"{key}.json"
    if not (video.exists() and meta_file.exists()):
        return None
    meta = json.loads(meta_file.read_text())
    meta["video"] = video
    meta["warnings"] = list(meta.get("warnings", [])) + ["Served from the result cache (same inputs and seed)."]
    return GenerationResult(**{k: v for k, v in meta.items() if k in GenerationResult.__dataclass_fields__})


def _cache_store(key: str, result: GenerationResult) -> None:
    """Atomic writes (temp + rename): a crash never leaves a half-copied clip that a later hit would serve."""
    cache, meta_dir = result_cache_dirs()
    part = f".{key}.{os.getpid()}.{threading.get_ident()}.part"
    shutil.copyfile(result.video, cache / part)
    (cache / part).replace(cache / f"{key}.mp4")
    (meta_dir / part).write_text(json.dumps(result.to_dict()))
    (meta_dir / part).replace(meta_dir / f"{key}.json")


def result_cache_dirs() -> tuple[Path, Path]:
    """(videos, metadata) of the result cache. Videos are served to users; the metadata (which holds
    every input's server path) lives in a folder the app never serves."""
    videos = paths.cache_dir() / "results"
    meta = paths.cache_dir() / "results_meta"
    videos.mkdir(parents=True, exist_ok=True)
    meta.mkdir(parents=True, exist_ok=True)
    return videos, meta


def preview(
    portrait: str | Path,
    audio: str | Path,
    seed: int | None = None,
    seconds: float = 1.0,
    progress: Progress | ProgressCallback | None = None,
) -> GenerationResult:
    """A cheap look before the full run: the lite engine, the first second, small."""
    return generate(
        GenerateArgs(
            portrait=portrait, audio=audio, engine="lite", preset="fast", seed=seed, size=256, max_seconds=seconds
        ),
        progress,
    )


def public_info(result: GenerationResult) -> dict[str, Any]:
    """What the Generate tab shows: seed, timings, parameters; file paths reduced to their names."""

    def clean(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items() if k != "output"}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        if isinstance(v, (str, Path)) and ("/" in str(v) or "\\" in str(v)):
            return Path(str(v)).name
        return v

    return {
        "seed": result.seed,
        "engine": result.engine,
        "frames": result.num_frames,
        "fps": result.fps,
        "seconds": round(result.num_frames / result.fps, 2) if result.fps else None,
        "timings_s": {k: round(v, 2) for k, v in result.timings.items()},
        "warnings": list(result.warnings),
        "parameters": clean(result.parameters),
    }


def examples() -> list[list[str]]:
    portraits = sorted((EXAMPLES / "portraits").glob("*"))
    audio = EXAMPLES / "audio" / "hello.wav"
    return [[str(p), str(audio)] for p in portraits]
