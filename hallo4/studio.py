"""Everything the app does, without Gradio: generation with a result cache, previews, the arena,
training rounds and model status. `app.py` only wires widgets to these functions, so each is usable
from Python and testable on its own.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import limits, paths, weights
from .engines import GenerationRequest, GenerationResult, get_engine
from .errors import Hallo4Error, InputError, MissingWeightsError
from .preferences import PreferenceStore
from .progress import Progress, ProgressCallback, as_progress
from .weights import BASE_REPO, OFFICIAL_REPO  # noqa: F401 - re-exported (one place: hallo4.weights)

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# Quality presets: what a user picks instead of raw numbers (hallo4 steps / guidance / size; lite's
# long side, capped at the portrait's own: the warp is cheap, so even "fast" keeps a photo's detail).
PRESETS: dict[str, dict[str, Any]] = {
    "fast": {"steps": 12, "guidance": 4.5, "size": 384, "lite_size": 768},
    "balanced": {"steps": 25, "guidance": 6.0, "size": 512, "lite_size": 1024},
    "best": {"steps": 40, "guidance": 6.0, "size": 832, "lite_size": 1536},
}


# ----------------------------------------------------------------------------------------------
# Settings (persisted in the data dir)
# ----------------------------------------------------------------------------------------------
def settings_path() -> Path:
    return paths.data_dir() / "settings.json"


def load_settings() -> dict[str, Any]:
    defaults = {
        "model": os.environ.get("HALLO4_MODEL") or str(paths.models_dir() / "hallo4"),
        "quantize": "none",
        "offload": "none",
        "adapter": None,
        "vocal_separation": "auto",
    }
    try:
        defaults.update(json.loads(settings_path().read_text()))
    except (OSError, ValueError):
        pass
    return defaults


def save_settings(**changes: Any) -> dict[str, Any]:
    s = load_settings()
    s.update(changes)
    tmp = settings_path().with_suffix(".tmp")
    tmp.write_text(json.dumps(s, indent=2))
    tmp.replace(settings_path())
    return s


# ----------------------------------------------------------------------------------------------
# Models
# ----------------------------------------------------------------------------------------------
def _has_weights(d: Path) -> bool:
    return (d / "config.json").is_file() and any(
        any(d.glob(p)) for p in ("*.safetensors", "*.bin", "*.safetensors.index.json")
    )


def _has_tokenizer(d: Path) -> bool:
    return any((d / f).is_file() for f in ("tokenizer.json", "spiece.model", "tokenizer_config.json"))


def hallo4_components(model: str | None = None) -> dict[str, Path | None]:
    """Where each hallo4 component would be loaded from (None = missing), looking where
    Hallo4Pipeline.from_pretrained looks: the model folder (or the bare `hallo4.convert` output), the
    Wan2.1-VACE base beside it (vae, text encoder, tokenizer) and wav2vec2 beside it. Loads nothing."""
    root = Path(model or load_settings()["model"]).expanduser()
    bases = [root, root.parent / "wan2.1-vace-1.3b"]
    audio_dirs = [
        root / "audio_encoder",
        root.parent / "hallo4-official" / "wav2vec" / "wav2vec2-base-960h",
        root / "wav2vec" / "wav2vec2-base-960h",
    ]

    def first(cands, check):
        return next((c for c in cands if c.is_dir() and check(c)), None)

    return {
        "transformer": first([root / "transformer", root], _has_weights),
        "vae": first([b / "vae" for b in bases], _has_weights),
        "text_encoder": first([b / "text_encoder" for b in bases], _has_weights),
        "tokenizer": first([b / "tokenizer" for b in bases], _has_tokenizer),
        "audio_encoder": first(audio_dirs, _has_weights),
        "feature_extractor": first(
            [root / "feature_extractor"] + audio_dirs, lambda p: (p / "preprocessor_config.json").is_file()
        ),
    }


def hallo4_weights_present(model: str | None = None) -> bool:
    return all(v is not None for v in hallo4_components(model).values())


def default_engine() -> str:
    return "hallo4" if hallo4_weights_present() else "lite"


def model_status() -> dict[str, Any]:
    """What is present, where, and what each engine needs: shown as-is in the Models tab."""
    s = load_settings()
    model = Path(s["model"])
    cuda = False
    try:
        import torch

        cuda = bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - torch always installed
        pass
    found = hallo4_components(str(model))
    present = all(v is not None for v in found.values())
    components = {k: v is not None for k, v in found.items()}
    return {
        "lite": {"ready": True, "needs": "nothing (mediapipe models ship inside the wheel)"},
        "hallo4": {
            "ready": present,
            "path": str(model),
            "components": components,
            "device": "cuda" if cuda else "cpu (very slow: minutes per second of video)",
            "quantize": s["quantize"],
            "offload": s["offload"],
            "adapter": s["adapter"],
            "where": {k: (str(v) if v else None) for k, v in found.items()},
            "how_to_get": weights.download_hint(model.parent),
            "memory": _memory_table(model),
        },
    }


def _memory_table(model: Path) -> str:
    """The preflight table for this machine (Markdown), or why it could not be computed."""
    from . import preflight

    try:
        rep = preflight.report(model if hallo4_weights_present(str(model)) else None)
    except Exception as exc:  # noqa: BLE001 - the status page must still render
        return f"(memory table unavailable: {type(exc).__name__}: {exc})"
    m = rep["machine"]
    where = (
        f"{m['device']}, {m['accelerator_bytes'] / preflight.GiB:.0f} GiB"
        if m["accelerator_bytes"]
        else f"no GPU; {m['host_bytes'] / preflight.GiB:.0f} GiB RAM"
    )
    cpu = rep["cpu"]
    out = [f"Estimated memory per mode for a 480x832, 81-frame segment with CFG ({where}):", "", rep["markdown"], ""]
    if rep["recommended"]:
        out.append(f"Recommended here: **{rep['recommended']}**.")
    if not m["accelerator_bytes"]:
        out.append(
            f"CPU path (fp32): about {cpu['cached_prompt'] / preflight.GiB:.0f} GiB RAM "
            f"({cpu['new_prompt'] / preflight.GiB:.0f} GiB while a new prompt is embedded)."
        )
    return "\n".join(out)


def download_official(progress: Progress | ProgressCallback | None = None) -> Path:
    """Fetch and convert everything the hallo4 engine needs (`hallo4.weights.download`: only the needed
    files, each once, after a disk check, with byte progress). Returns the converted model folder; when
    everything is present already it returns at once without asking the network."""
    prog = as_progress(progress)
    model = Path(load_settings()["model"])
    if hallo4_weights_present(str(model)):
        prog(1.0, f"The hallo4 weights are already in {model}")
        return model
    return weights.download(model.parent, prog, model_dir=model)


# ----------------------------------------------------------------------------------------------
# Generation with a result cache
# ----------------------------------------------------------------------------------------------
def _file_hash(path: str | Path | None) -> str:
    if path is None:
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _check_input(path: str | Path | None, name: str, what: str) -> Path:
    if not path:
        raise InputError(name, "is missing", f"Upload {what}.")
    p = Path(path)
    if not p.is_file():
        raise InputError(name, "file not found", f"Upload {what} again.", path=str(p))
    return p


@dataclass
class GenerateArgs:
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


def _engine_kwargs(engine: str) -> dict[str, Any]:
    if engine != "hallo4":
        return {}
    s = load_settings()
    return {
        "model": s["model"],
        # The "quantize" setting holds the precision choice: none = auto, 8bit, or a precision mode.
        "quantize": "8bit" if s["quantize"] == "8bit" else None,
        "precision": s["quantize"] if s["quantize"] in ("release", "bf16", "fp32") else None,
        "offload": None if s["offload"] == "none" else s["offload"],
        "adapter": s["adapter"],
        "vocal_separation": s.get("vocal_separation", "auto"),
    }


_engines: dict[str, Any] = {}
_engines_lock = threading.Lock()


def _engine(name: str):
    """One engine per (name, settings): the diffusion weights load once and stay in memory; a settings
    change (precision, offload, model, adapter) builds a new one and drops the old."""
    kwargs = _engine_kwargs(name)
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


def generate(
    args: GenerateArgs, progress: Progress | ProgressCallback | None = None, *, use_cache: bool = True
) -> GenerationResult:
    """Run an engine; identical inputs with an explicit seed return the cached clip at once."""
    portrait = _check_input(args.portrait, "portrait", "a portrait photo")
    audio = _check_input(args.audio, "audio", "a speech recording")
    skeleton = Path(args.skeleton) if args.skeleton else None
    preset = PRESETS.get(args.preset)
    if preset is None:
        raise InputError("quality preset", f"unknown preset {args.preset!r}", f"Choose one of {', '.join(PRESETS)}.")
    if args.size:
        size = int(args.size)
    elif args.engine == "lite":
        from .ui import lite_size

        size = lite_size(preset["lite_size"], portrait)
    else:  # hallo4: the trained canvas unless a size is given (presets trade steps/CFG, not the canvas)
        size = None
    options: dict[str, Any] = dict(args.extra)
    if args.engine == "lite" and "motion" not in options:
        from .lite_motion.rounds import active_lite_motion

        if (motion := active_lite_motion()) != "base":  # an activated lite DPO round drives the motion (issue 16)
            options["motion"] = motion
    if args.engine == "hallo4":
        options.setdefault("steps", int(args.steps or preset["steps"]))
        options.setdefault("guidance", float(args.guidance if args.guidance is not None else preset["guidance"]))
        if not hallo4_weights_present(_engine_kwargs("hallo4")["model"]):
            st = model_status()["hallo4"]
            missing = ", ".join(k for k, ok in st["components"].items() if not ok)
            raise MissingWeightsError(
                f"The hallo4 engine needs its weights, which are not in {st['path']} (missing: {missing}).",
                hint=f"Get them in the Models tab, or run: {st['how_to_get']}. The lite engine works without weights.",
            )
    if args.max_seconds is not None and not (0 < float(args.max_seconds) < float("inf")):
        raise InputError(
            "max length",
            "must be more than 0 seconds",
            "Set a positive number, or leave it empty for the whole audio.",
        )
    args.seed = limits.check_seed(args.seed)
    # Empty = the server's cap, not the whole file: the decode is bounded before it starts.
    cap_warning = None
    if args.max_seconds is None or float(args.max_seconds) > limits.active().max_audio_seconds:
        from . import media

        cap = limits.active().max_audio_seconds
        duration = media.probe(audio, name="audio", count_frames=False).duration
        if duration > cap + 0.04:
            cap_warning = f"Only the first {cap:g} s of the {duration:.0f} s audio were used (this server's limit)."
        args.max_seconds = cap if duration > cap + 0.04 or args.max_seconds is not None else None
    key_src = json.dumps(
        {
            "portrait": _file_hash(portrait),
            "audio": _file_hash(audio),
            "skeleton": _file_hash(skeleton),
            "engine": args.engine,
            "size": size,
            "seed": args.seed,
            "max_seconds": args.max_seconds,
            "options": options,
            "engine_kwargs": _engine_kwargs(args.engine),
        },
        sort_keys=True,
        default=str,
    )
    key = hashlib.sha256(key_src.encode()).hexdigest()[:24]
    cache, meta_dir = result_cache_dirs()
    cached_video, cached_meta = cache / f"{key}.mp4", meta_dir / f"{key}.json"
    if use_cache and args.seed is not None and cached_video.exists() and cached_meta.exists():
        meta = json.loads(cached_meta.read_text())
        meta["video"] = cached_video
        meta["warnings"] = list(meta.get("warnings", [])) + ["Served from the result cache (same inputs and seed)."]
        return GenerationResult(**{k: v for k, v in meta.items() if k in GenerationResult.__dataclass_fields__})
    prog = as_progress(progress)
    slot = ENGINE_SLOTS.get(args.engine) or threading.BoundedSemaphore(1)
    while not slot.acquire(timeout=0.5):  # per-engine concurrency: hallo4 needs the whole GPU
        prog(0.0, f"Waiting for a free {args.engine} slot (other jobs are running)")
    try:
        engine = _engine(args.engine)
        out = paths.outputs_dir() / f"{args.engine}_{key}_{int(time.time())}.mp4"
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
    # Cache under the seed actually used, so "same seed again" is instant.
    key_used = hashlib.sha256(
        key_src.replace(f'"seed": {json.dumps(args.seed)}', f'"seed": {result.seed}').encode()
    ).hexdigest()[:24]
    # Atomic writes (temp + rename): a crash never leaves a half-copied clip that a later hit would serve.
    tmp = cache / f".{key_used}.{os.getpid()}.{threading.get_ident()}.part"
    shutil.copyfile(result.video, tmp)
    tmp.replace(cache / f"{key_used}.mp4")
    tmp_meta = meta_dir / f".{key_used}.{os.getpid()}.{threading.get_ident()}.part"
    tmp_meta.write_text(json.dumps(result.to_dict()))
    tmp_meta.replace(meta_dir / f"{key_used}.json")
    return result


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


# ----------------------------------------------------------------------------------------------
# Arena
# ----------------------------------------------------------------------------------------------
_store_lock = threading.Lock()
_stores: dict[str, PreferenceStore] = {}


def store() -> PreferenceStore:
    root = str(paths.store_dir())
    with _store_lock:
        if root not in _stores:
            _stores[root] = PreferenceStore(
                root, hub_repo_id=os.environ.get("HALLO4_HUB_DATASET"), hub_token=os.environ.get("HF_TOKEN")
            )
        return _stores[root]


@dataclass
class ArenaMatch:
    """What a rater sees: a pair, which clip is on the left (random), the two video paths."""

    pair_id: int
    left_clip: int
    right_clip: int
    left_video: str
    right_video: str


def _match(pair) -> ArenaMatch:
    left, right = (pair.clip_a, pair.clip_b) if random.random() < 0.5 else (pair.clip_b, pair.clip_a)
    return ArenaMatch(pair.id, left.id, right.id, left.video_path, right.video_path)


LITE_VARIANTS = [0.7, 1.0, 1.3]  # lite "systems" the Arena compares while no diffusion weights exist


def arena_new_pair(
    portrait: str | Path,
    audio: str | Path,
    progress: Progress | ProgressCallback | None = None,
    max_seconds: float = 4.0,
    size: int = 384,
) -> ArenaMatch:
    """Generate two candidates of the same conditions (different engines/seeds/settings) and pair them."""
    from .ui import speech_window

    portrait = _check_input(portrait, "portrait", "a portrait photo")
    audio = _check_input(audio, "audio", "a speech recording")
    prog = progress if isinstance(progress, Progress) else Progress(progress)
    # The clips cover speech, not the silence before it: cut the leading pause, then max_seconds.
    audio = speech_window(audio, max_seconds, paths.cache_dir() / "arena_audio")
    st = store()
    cond = st.add_conditions(portrait, audio)
    rng = random.Random()
    engines = ["lite", "lite"]
    if hallo4_weights_present():
        engines[1] = "hallo4"
    clips = []
    # Two different lite settings (so the win rates compare something), or lite vs hallo4.
    variants = rng.sample(LITE_VARIANTS, 2)
    for k, engine in enumerate(engines):
        seed = rng.randrange(2**31 - 1)
        extra = {"expressiveness": variants[k]} if engine == "lite" else {}

        def clip_progress(fraction: float, message: str, k: int = k) -> None:
            prog((k + fraction) / 2, f"Clip {k + 1} of 2: {message}")

        res = generate(
            GenerateArgs(
                portrait=portrait,
                audio=audio,
                engine=engine,
                preset="fast",
                seed=seed,
                size=size,
                max_seconds=max_seconds,
                extra=extra,
            ),
            clip_progress,
            use_cache=False,
        )
        clips.append(
            st.add_clip(
                cond,
                res.video,
                engine=engine,
                adapter=_engine_kwargs(engine).get("adapter"),
                model_id=f"expressiveness-{variants[k]:g}" if engine == "lite" else None,
                parameters=res.parameters,
                seed=res.seed,
                timings=res.timings,
            )
        )
    pair_id = st.add_pair(clips[0], clips[1])
    return _match(st.get_pair(pair_id))


def arena_next_pair(rater: str) -> ArenaMatch | None:
    """A stored pair this rater has not voted on (fewest votes first), or None."""
    pair = store().next_pair(rater)
    return _match(pair) if pair else None


def arena_vote(match: ArenaMatch, choice: str, rater: str) -> dict[str, Any]:
    """Record a screen choice ('left', 'right', 'tie', 'both_bad', 'skip'); reveal who made what."""
    if choice not in ("left", "right", "tie", "both_bad", "skip"):
        raise InputError("vote", f"unknown choice {choice!r}", "Use the buttons under the videos.")
    st = store()
    try:
        pair = st.get_pair(int(match.pair_id))
    except (KeyError, TypeError, ValueError):
        raise InputError(
            "vote",
            f"pair {match.pair_id!r} does not exist (it may have been removed)",
            "Press 'Next pair' and vote on the pair shown.",
        ) from None
    if {int(match.left_clip), int(match.right_clip)} != {pair.clip_a.id, pair.clip_b.id}:
        raise InputError("vote", "the clips on screen are not this pair's", "Press 'Next pair' and vote again.")
    label = st.label_for_choice(pair, match.left_clip, choice)
    st.record_vote(pair.id, label, match.left_clip, rater)
    left = st.get_clip(match.left_clip)
    right = st.get_clip(match.right_clip)

    def who(c):
        from .ui import system_label

        p = c.parameters
        extra = f", {p.get('options', {}).get('steps', '?')} steps" if c.engine == "hallo4" else ""
        return f"{system_label(c.system)}{extra}"

    return {"left": who(left), "right": who(right), "label": label, "votes": st.vote_count()}


def win_rate_rows() -> list[list[Any]]:
    from .ui import system_label

    return [
        [
            system_label(r["system"]),
            r["wins"],
            r["losses"],
            r["ties"],
            r["votes"],
            "" if r["win_rate"] is None else f"{r['win_rate'] * 100:.0f}%",
        ]
        for r in store().win_rates()
    ]


# ----------------------------------------------------------------------------------------------
# Training rounds
# ----------------------------------------------------------------------------------------------
def trainer_available() -> bool:
    return importlib.util.find_spec("trainer.dpo") is not None


def list_rounds() -> list[str]:
    return sorted(p.name for p in paths.rounds_dir().glob("round-*") if p.is_dir())


def round_metrics(name: str | None) -> list[dict[str, Any]]:
    if not name:
        rounds = list_rounds()
        if not rounds:
            return []
        name = rounds[-1]
    f = paths.rounds_dir() / name / "metrics.jsonl"
    if not f.exists():
        return []
    out = []
    for line in f.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now
    return out


_training: dict[str, subprocess.Popen] = {}


def start_round(steps: int, beta: float, lr: float, rank: int) -> str:
    """Start a DPO round as a background process; returns a status line."""
    if not trainer_available():
        raise Hallo4Error(
            "The DPO trainer (trainer/dpo.py) is not part of this build yet.",
            hint="Update Hallo4 Studio; votes keep accumulating meanwhile.",
        )
    usable = len(store().usable_pairs())
    if usable == 0:
        raise InputError(
            "training data",
            "there are no usable pairs yet (ties, both-bad and skips carry no signal)",
            "Collect some decisive A/B votes in the Arena first.",
        )
    if "current" in _training and _training["current"].poll() is None:
        raise InputError("training", "a round is already running", "Wait for it to finish or stop it.")
    model = load_settings()["model"]
    if not hallo4_weights_present(model):
        raise MissingWeightsError(
            f"Training needs the hallo4 weights, which are not in {model}.", hint="Get them in the Models tab first."
        )
    log = paths.rounds_dir() / "train.log"
    cmd = train_command(steps, beta, lr, rank, model=model)
    _training["current"] = subprocess.Popen(cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=ROOT)
    return f"Started a DPO round on {usable} usable pairs ({steps} steps). Log: {log.name} in the rounds folder."


def train_command(steps: int, beta: float, lr: float, rank: int, *, model: str | None = None) -> list[str]:
    """The `python -m trainer.dpo` command line for a round from the app's store (bf16 + checkpointing on a GPU)."""
    cmd = [
        sys.executable,
        "-m",
        "trainer.dpo",
        "--store",
        str(paths.store_dir()),
        "--model",
        model or load_settings()["model"],
        "--out",
        str(paths.rounds_dir()),
        "--steps",
        str(int(steps)),
        "--beta",
        str(float(beta)),
        "--lr",
        str(float(lr)),
        "--rank",
        str(int(rank)),
    ]
    try:
        import torch

        if torch.cuda.is_available():
            cmd += ["--mixed-precision", "bf16", "--gradient-checkpointing"]
    except Exception:  # pragma: no cover
        pass
    return cmd


def stop_round() -> str:
    proc = _training.get("current")
    if proc is None or proc.poll() is not None:
        return "No round is running."
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    return "Stopped the running round (its last checkpoint can be resumed with python -m trainer.dpo --resume)."


def training_status() -> str:
    proc = _training.get("current")
    if proc is None:
        return "No round running."
    rc = proc.poll()
    return "A round is running." if rc is None else f"The last round finished with exit code {rc}."


def activate_round(name: str | None) -> dict[str, Any]:
    """Make Generate use a round's adapter (None = the base model: roll back)."""
    if name:
        path = paths.rounds_dir() / name
        if not (path / "adapter_model.safetensors").exists() and not any(path.glob("**/adapter_model.safetensors")):
            raise InputError(
                "round", f"{name} has no adapter_model.safetensors", "Pick a finished round.", path=str(path)
            )
        return save_settings(adapter=str(path))
    return save_settings(adapter=None)


def is_public() -> bool:
    """True on a Hugging Face Space or when launched with a public share link (HALLO4_SHARE=1)."""
    from . import admin

    return admin.is_public()


def admin_ok(token: str | None) -> bool:
    """Whether `token` allows admin actions (the rule lives in hallo4.admin: a set HALLO4_ADMIN_TOKEN
    must match; with none set only a loopback, non-public server allows them)."""
    from . import admin

    return admin.allowed(token)


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


# ----------------------------------------------------------------------------------------------
# Skeleton tab
# ----------------------------------------------------------------------------------------------
VIDEO_SUFFIXES = {".mp4", ".webm", ".mov", ".mkv", ".avi", ".m4v"}


@dataclass
class SkeletonOutput:
    preview: Path  # mp4: the skeleton over the portrait (or on black)
    skeleton: Path  # the file to reuse in Generate (our JSON, or the rendered skeleton video as given)
    notes: str


def prepare_skeleton(
    source: str | Path,
    *,
    portrait: str | Path | None = None,
    retarget: bool = True,
    fit_mode: str = "pingpong",
    audio: str | Path | None = None,
    extract: bool = False,
    progress: Progress | ProgressCallback | None = None,
) -> SkeletonOutput:
    """Skeleton tab: extract from a driving video (extract=True), or load a keypoint JSON / a rendered
    skeleton video; retarget to the portrait; loop/trim to the audio; render a preview over the portrait."""
    import uuid

    import numpy as np

    from . import media
    from . import skeleton as sk

    prog = as_progress(progress)
    src = _check_input(
        source,
        "driving video" if extract else "skeleton file",
        "a video of a person moving" if extract else "a skeleton JSON (ours or OpenPose) or a rendered skeleton video",
    )
    image = None
    if portrait:  # previews are drawn at most max_preview_side px wide, whatever the photo's size
        img = media.load_image(portrait)
        if max(img.size) > limits.active().max_preview_side:
            img = img.resize(media.output_size(img.width, img.height, limits.active().max_preview_side), resample=3)
        image = np.asarray(img)
    lim = limits.active()
    n_audio = None
    if audio:  # bounded decode: never more than the server's audio cap
        n_audio = int(np.ceil(len(media.load_audio(audio, max_seconds=lim.max_audio_seconds)) / 16000 * 25))
    out_dir = paths.outputs_dir()
    tag = uuid.uuid4().hex[:8]
    if not extract and src.suffix.lower() in VIDEO_SUFFIXES:
        # A rendered (DWPose-style) skeleton video: no keypoints to retarget; shown and reused as is.
        h, w = image.shape[:2] if image is not None else (512, 512)
        h, w = h - h % 2, w - w % 2
        prog(0.2, "Reading the skeleton video")
        count = [0]
        background = (image[:h, :w] * 0.5).astype(np.uint8) if image is not None else None

        def composed():  # streamed: one canvas frame in memory at a time, at most the longest allowed clip
            for frame in sk.iter_skeleton_video(src, w, h, max_frames=n_audio or lim.max_frames):
                count[0] += 1
                if count[0] % 25 == 0:
                    prog(0.2 + 0.7 * min(1.0, count[0] / (n_audio or lim.max_frames)), "Reading the skeleton video")
                yield frame if background is None else np.maximum(frame, background)

        preview = media.write_mp4(out_dir / f"skeleton_{tag}.mp4", composed(), fps=25)
        notes = [
            f"Rendered skeleton video: {count[0]} frames at 25 fps ({count[0] / 25:.1f} s)"
            + (" (only the part the audio needs was read)." if n_audio and count[0] >= n_audio else ".")
        ]
        if n_audio and count[0] < n_audio:
            notes.append(
                f"It is shorter than the audio ({n_audio / 25:.1f} s): the engine holds the last pose. "
                "Upload a keypoint JSON to loop it instead."
            )
        notes.append(
            "A rendered video carries no keypoints: it cannot be retargeted, and the lite engine uses idle "
            "head motion with it (hallo4 uses it directly)."
        )
        kept = out_dir / f"skeleton_{tag}_source{src.suffix.lower()}"  # not the preview's name
        shutil.copyfile(src, kept)
        return SkeletonOutput(preview, kept, "\n".join(notes))
    if extract:
        seq = sk.extract_skeleton(src, progress=prog.sub(0, 0.8))
    else:
        seq = sk.SkeletonSequence.load(src)
    notes = [f"{seq.num_frames} frames at {seq.fps:g} fps ({seq.num_frames / seq.fps:.1f} s)."]
    if retarget and image is not None:
        seq = sk.retarget(seq, image)
        notes.append("Retargeted to the portrait's shoulders and head.")
    elif retarget:
        notes.append("Not retargeted: add a portrait to retarget to it.")
    if n_audio and fit_mode != "keep":
        seq, message = sk.fit_length(seq, n_audio, fit_mode)
        if message:
            notes.append(message)
    if seq.num_frames > lim.max_frames:
        seq = seq.slice(0, lim.max_frames)
        notes.append(f"Cut to {lim.max_frames} frames ({lim.max_audio_seconds:g} s, this server's limit).")
    out_json = seq.save(out_dir / f"skeleton_{tag}.json")
    prog(0.85, "Rendering the preview")
    if image is not None:
        h, w = image.shape[:2]
    else:  # the preview's size comes from the server's cap, never from the canvas the file claims
        w, h = media.output_size(seq.width, seq.height, min(lim.max_preview_side, max(seq.width, seq.height, 64)))
    h, w = h - h % 2, w - w % 2
    frames = sk.iter_render_skeleton(seq, w, h, background=image[:h, :w] if image is not None else None)
    preview = media.write_mp4(out_dir / f"skeleton_{tag}.mp4", frames, fps=25)
    prog(1.0, "Done")
    return SkeletonOutput(preview, Path(out_json), "\n".join(notes))


def examples() -> list[list[str]]:
    portraits = sorted((EXAMPLES / "portraits").glob("*"))
    audio = EXAMPLES / "audio" / "hello.wav"
    return [[str(p), str(audio)] for p in portraits]
