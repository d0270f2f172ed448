"""What the hallo4 engine downloads: the two repositories, the files taken from each, the folders they go
to, fallback sizes, and the commands shown to users (one place; a test runs each one's --help)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

OFFICIAL_REPO = "fudan-generative-ai/hallo4"
BASE_REPO = "Wan-AI/Wan2.1-VACE-1.3B-diffusers"
OFFICIAL_FOLDER = "hallo4-official"  # <models>/hallo4-official: the release's files as published
BASE_FOLDER = "wan2.1-vace-1.3b"  # <models>/wan2.1-vace-1.3b: VAE, text encoder, tokenizer, scheduler
MODEL_FOLDER = "hallo4"  # <models>/hallo4: our converted transformer (safetensors)
CHECKPOINT = "hallo4/model_weight.pth"  # inside OFFICIAL_REPO
WAV2VEC = "wav2vec/wav2vec2-base-960h"  # inside OFFICIAL_REPO
VOCAL_SEPARATOR = "audio_separator/Kim_Vocal_2.onnx"  # inside OFFICIAL_REPO; the release separates vocals first
TRANSFORMER_PARAMETERS = 2_770_040_256  # full_config(); see BENCHMARKS.md (counted on the meta device)
CONVERTED_BYTES = TRANSFORMER_PARAMETERS * 2  # the converted transformer is written in bf16
DISK_MARGIN = 1 << 30  # keep 1 GiB free after everything is written

GB = 1_000_000_000


@dataclass(frozen=True)
class Source:
    """One repository and the files the engine needs from it."""

    repo_id: str
    folder: str
    allow_patterns: tuple[str, ...]
    what: str


SOURCES: tuple[Source, ...] = (
    Source(
        OFFICIAL_REPO,
        OFFICIAL_FOLDER,
        (CHECKPOINT, f"{WAV2VEC}/*", VOCAL_SEPARATOR),
        "Hallo4 DiT checkpoint (converted after download), wav2vec2-base-960h, vocal separator",
    ),
    Source(
        BASE_REPO,
        BASE_FOLDER,
        ("model_index.json", "vae/*", "text_encoder/*", "tokenizer/*", "scheduler/*"),
        "Wan2.1 VAE, umT5-XXL text encoder, tokenizer, scheduler",
    ),
)

# Sizes used when the hub gives none (offline plan, metadata error): (repo, glob) -> bytes. Values from the
# hub's listings of these repos (the diffusers text encoder is the fp32 export: 5 shards, 22.7 GB); the DiT
# checkpoint is counted as fp32 (2.77 B parameters x 4 bytes), an upper bound.
FALLBACK_SIZES: dict[tuple[str, str], int] = {
    (OFFICIAL_REPO, CHECKPOINT): TRANSFORMER_PARAMETERS * 4,
    (OFFICIAL_REPO, f"{WAV2VEC}/*"): 378 * 1_000_000 + 20_000,
    (OFFICIAL_REPO, VOCAL_SEPARATOR): 67 * 1_000_000,
    (BASE_REPO, "model_index.json"): 1_000,
    (BASE_REPO, "vae/*"): 508 * 1_000_000,
    (BASE_REPO, "text_encoder/*"): int(22.73 * GB),
    (BASE_REPO, "tokenizer/*"): int(21.5 * 1_000_000),
    (BASE_REPO, "scheduler/*"): 1_000,
}

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pth", ".pt", ".ckpt", ".h5", ".msgpack", ".onnx")


def fmt_bytes(n: float) -> str:
    return f"{n / GB:.2f} GB" if n >= 0.1 * GB else f"{n / 1e6:.1f} MB"


def models_dir_default() -> Path:
    from ..paths import models_dir

    return models_dir()


def model_folder(models: Path) -> Path:
    return Path(models) / MODEL_FOLDER


# ----------------------------------------------------------------------------------------------
# Commands shown to users (one place; a test runs each one's --help)
# ----------------------------------------------------------------------------------------------
def manual_commands(models: str | os.PathLike = "models") -> list[str]:
    """The by-hand equivalent of `python -m hallo4.weights download` (huggingface_hub 2.x `hf` CLI)."""
    models = Path(models)
    cmds = []
    for src in SOURCES:
        include = " ".join(f"--include '{p}'" for p in src.allow_patterns)
        cmds.append(f"hf download {src.repo_id} {include} --local-dir {models / src.folder}")
    cmds.insert(
        1,
        f"python -m hallo4.convert --official {models / OFFICIAL_FOLDER / CHECKPOINT} "
        f"-o {models / MODEL_FOLDER} --dtype bf16",
    )
    return cmds


def download_hint(models: str | os.PathLike = "models") -> str:
    """What to run to get the weights: the one-step command, then the manual steps."""
    return (
        f"Download and convert everything the hallo4 engine needs (about 40 GB of disk; resumes, skips what "
        f"is there):\n  python -m hallo4.weights download --models-dir {models}\nor by hand:\n  "
        + "\n  ".join(manual_commands(models))
    )
