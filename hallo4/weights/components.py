"""Where each hallo4 component lives on disk (the single place the pipeline, the engine, the preflight and the
studio ask); loads nothing."""

from __future__ import annotations

import os
from pathlib import Path

from .sources import BASE_FOLDER, OFFICIAL_FOLDER, WAV2VEC

# ----------------------------------------------------------------------------------------------
# Where each component lives (the single place; the pipeline, the engine, the preflight and the studio)
# ----------------------------------------------------------------------------------------------
COMPONENTS = ("transformer", "vae", "text_encoder", "tokenizer", "audio_encoder", "feature_extractor")


def has_weights(d: Path) -> bool:
    """A transformers/diffusers model folder: config.json and a weights file (or a shard index)."""
    return (d / "config.json").is_file() and any(
        any(d.glob(pat)) for pat in ("*.safetensors", "*.bin", "*.safetensors.index.json")
    )


def has_tokenizer(d: Path) -> bool:
    return any((d / f).is_file() for f in ("tokenizer.json", "spiece.model", "tokenizer_config.json"))


def has_preprocessor(d: Path) -> bool:
    return (d / "preprocessor_config.json").is_file()


def component_candidates(
    model: str | os.PathLike,
    *,
    base_model: str | os.PathLike | None = None,
    audio_model: str | os.PathLike | None = None,
) -> dict[str, list[Path]]:
    """Where each component is looked for, in order: the model folder (or the bare `hallo4.convert` output),
    the Wan2.1-VACE base (`base_model`, default `<model>/../wan2.1-vace-1.3b`: vae, text encoder, tokenizer,
    scheduler) and wav2vec2 (`audio_model`, default the release's copy beside the model folder)."""
    root = Path(model).expanduser()
    bases = [root, Path(base_model) if base_model else root.parent / BASE_FOLDER]
    audio_dirs = [
        root / "audio_encoder",
        *([Path(audio_model)] if audio_model else []),
        root.parent / OFFICIAL_FOLDER / WAV2VEC,
        root / WAV2VEC,
    ]
    return {
        "transformer": [root / "transformer", root],
        "vae": [b / "vae" for b in bases],
        "text_encoder": [b / "text_encoder" for b in bases],
        "tokenizer": [b / "tokenizer" for b in bases],
        "audio_encoder": audio_dirs,
        "feature_extractor": [root / "feature_extractor", *audio_dirs],
        "scheduler": [b / "scheduler" for b in bases],
    }


_CHECKS = {
    "transformer": has_weights,
    "vae": has_weights,
    "text_encoder": has_weights,
    "tokenizer": has_tokenizer,
    "audio_encoder": has_weights,
    "feature_extractor": has_preprocessor,
    "scheduler": lambda d: (d / "scheduler_config.json").is_file(),
}


def find_components(
    model: str | os.PathLike,
    *,
    base_model: str | os.PathLike | None = None,
    audio_model: str | os.PathLike | None = None,
) -> dict[str, Path | None]:
    """Where each hallo4 component would be loaded from (None = missing), for the keys of `COMPONENTS`.
    Loads nothing. `Hallo4Pipeline.from_pretrained`, the engine, the preflight and the studio all ask here."""
    cands = component_candidates(model, base_model=base_model, audio_model=audio_model)
    return {name: _first(cands[name], _CHECKS[name]) for name in COMPONENTS}


def find_scheduler(model: str | os.PathLike, *, base_model: str | os.PathLike | None = None) -> Path | None:
    """The scheduler folder of the model or its base (optional: the pipeline makes a UniPC flow one without)."""
    return _first(component_candidates(model, base_model=base_model)["scheduler"], _CHECKS["scheduler"])


def missing_components(
    model: str | os.PathLike,
    *,
    base_model: str | os.PathLike | None = None,
    audio_model: str | os.PathLike | None = None,
) -> list[str]:
    """'name (looked in: ...)' for each component not found: for the error that lists what to download."""
    cands = component_candidates(model, base_model=base_model, audio_model=audio_model)
    found = find_components(model, base_model=base_model, audio_model=audio_model)
    return [f"{n} (looked in: {', '.join(str(c) for c in cands[n])})" for n in COMPONENTS if found[n] is None]


def components_present(model: str | os.PathLike) -> bool:
    return all(v is not None for v in find_components(model).values())


def _first(candidates: list[Path], check) -> Path | None:
    return next((c for c in candidates if c.is_dir() and check(c)), None)
