"""Fetch exactly the files the hallo4 engine needs, each once, with a disk check and byte progress.

    python -m hallo4.weights plan                    # what would be downloaded, sizes, free disk
    python -m hallo4.weights download                # download + convert (resumes; skips what is there)

Sources (one per component, so nothing is fetched twice; sizes in README.md, "hallo4 engine"):

* `fudan-generative-ai/hallo4`: only `hallo4/model_weight.pth` (the fine-tuned DiT, converted to our
  safetensors layout by `python -m hallo4.convert`) and `wav2vec/wav2vec2-base-960h/` (audio encoder).
  The release's own `Wan2.1_Encoders/` (VAE .pth and the bf16 umT5-XXL .pth, ~11 GB) are NOT fetched.
* `Wan-AI/Wan2.1-VACE-1.3B-diffusers`: `vae/`, `text_encoder/` (umT5-XXL encoder), `tokenizer/`,
  `scheduler/`, already in the diffusers/transformers layout the pipeline loads. Its `transformer/` is
  not fetched (Hallo4's DiT replaces it). Why this repo for the VAE and the text encoder: it needs no
  converter of our own for either (the release's .pth files use Wan's original naming), at the price
  of an fp32 text encoder on disk (it is loaded in bf16 on a GPU, which gives the release's values).

Downloads go through `huggingface_hub.snapshot_download(allow_patterns=...)` into `<models>/<folder>`
(`local_dir`): a dropped connection resumes within the run (HTTP Range; xet downloads chunk-wise), a
stopped run keeps every finished file (huggingface_hub 2.x drops its partial temp file, so at most the
files in flight, one text-encoder shard of <= 5 GB each, are fetched again), and complete files are
skipped. The plan comes from its dry run (the hub's file metadata), with `FALLBACK_SIZES` when the hub
does not give sizes.

Modules: `sources` (repositories, files, folders, shown commands), `components` (where each component
lives on disk), `planning` (the plan and the disk check), `fetch` (download and conversion), `__main__` (CLI).
The names below are the public surface (`from hallo4 import weights; weights.X`).
"""

from __future__ import annotations

from .components import (
    COMPONENTS,
    component_candidates,
    components_present,
    find_components,
    find_scheduler,
    has_preprocessor,
    has_tokenizer,
    has_weights,
    missing_components,
)
from .fetch import (
    convert_checkpoint,
    download,
)
from .planning import (
    Plan,
    PlannedFile,
    check_disk,
    free_disk,
    plan,
)
from .sources import (
    BASE_FOLDER,
    BASE_REPO,
    CHECKPOINT,
    CONVERTED_BYTES,
    DISK_MARGIN,
    FALLBACK_SIZES,
    GB,
    MODEL_FOLDER,
    OFFICIAL_FOLDER,
    OFFICIAL_REPO,
    SOURCES,
    TRANSFORMER_PARAMETERS,
    VOCAL_SEPARATOR,
    WAV2VEC,
    WEIGHT_SUFFIXES,
    Source,
    download_hint,
    fmt_bytes,
    manual_commands,
    model_folder,
    models_dir_default,
)

__all__ = [
    "BASE_FOLDER",
    "BASE_REPO",
    "CHECKPOINT",
    "COMPONENTS",
    "CONVERTED_BYTES",
    "DISK_MARGIN",
    "FALLBACK_SIZES",
    "GB",
    "MODEL_FOLDER",
    "OFFICIAL_FOLDER",
    "OFFICIAL_REPO",
    "Plan",
    "PlannedFile",
    "SOURCES",
    "Source",
    "TRANSFORMER_PARAMETERS",
    "VOCAL_SEPARATOR",
    "WAV2VEC",
    "WEIGHT_SUFFIXES",
    "check_disk",
    "component_candidates",
    "components_present",
    "convert_checkpoint",
    "download",
    "download_hint",
    "find_components",
    "find_scheduler",
    "fmt_bytes",
    "free_disk",
    "has_preprocessor",
    "has_tokenizer",
    "has_weights",
    "manual_commands",
    "missing_components",
    "model_folder",
    "models_dir_default",
    "plan",
]
