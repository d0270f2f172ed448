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
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .cli import run
from .errors import Hallo4Error, MissingWeightsError, ResourceError
from .progress import Progress, ProgressCallback, as_progress

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


@dataclass
class PlannedFile:
    repo_id: str
    filename: str
    size: int
    present: bool  # complete in the local folder already (will not be downloaded)


@dataclass
class Plan:
    """What `download` would do: files per source, bytes to fetch, the conversion, the free disk."""

    models_dir: Path
    files: list[PlannedFile] = field(default_factory=list)
    sizes_from: str = "hub"  # "hub" or "fallback table" (the hub could not be asked)
    convert_needed: bool = True
    free_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    @property
    def download_bytes(self) -> int:
        return sum(f.size for f in self.files if not f.present)

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)

    @property
    def needed_bytes(self) -> int:
        """Disk space the run still needs: the files to fetch plus the converted transformer."""
        return self.download_bytes + (CONVERTED_BYTES if self.convert_needed else 0)

    @property
    def fits(self) -> bool:
        return self.free_bytes >= self.needed_bytes + DISK_MARGIN

    def to_dict(self) -> dict[str, Any]:
        return {
            "models_dir": str(self.models_dir),
            "sizes_from": self.sizes_from,
            "files": [vars(f) for f in self.files],
            "download_bytes": self.download_bytes,
            "total_bytes": self.total_bytes,
            "convert_needed": self.convert_needed,
            "converted_bytes": CONVERTED_BYTES if self.convert_needed else 0,
            "needed_bytes": self.needed_bytes,
            "free_bytes": self.free_bytes,
            "fits": self.fits,
            "notes": self.notes,
        }

    def summary(self) -> str:
        lines = [f"Models folder: {self.models_dir} (sizes from the {self.sizes_from})"]
        for src in SOURCES:
            mine = [f for f in self.files if f.repo_id == src.repo_id]
            have = sum(f.size for f in mine if f.present)
            lines.append(
                f"  {src.repo_id} -> {src.folder}/: {len(mine)} files, {fmt_bytes(sum(f.size for f in mine))} "
                f"({fmt_bytes(have)} already there): {src.what}"
            )
            lines += [f"    {'have' if f.present else 'get '} {fmt_bytes(f.size):>10}  {f.filename}" for f in mine]
        lines.append(
            f"To download: {fmt_bytes(self.download_bytes)}; conversion writes "
            f"{fmt_bytes(CONVERTED_BYTES if self.convert_needed else 0)}; free: {fmt_bytes(self.free_bytes)}."
        )
        lines += self.notes
        return "\n".join(lines)


def fmt_bytes(n: float) -> str:
    return f"{n / GB:.2f} GB" if n >= 0.1 * GB else f"{n / 1e6:.1f} MB"


def models_dir_default() -> Path:
    from .paths import models_dir

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


# ----------------------------------------------------------------------------------------------
# Plan
# ----------------------------------------------------------------------------------------------
def _prefer_safetensors(names: list[str]) -> list[str]:
    """Drop other weight formats in a folder that has .safetensors (wav2vec2 ships both): fetch one copy."""
    folders_with_st = {os.path.dirname(n) for n in names if n.endswith(".safetensors")}
    return [
        n
        for n in names
        if n.endswith(".safetensors") or not n.endswith(WEIGHT_SUFFIXES) or os.path.dirname(n) not in folders_with_st
    ]


def _fallback_files(src: Source, local: Path) -> list[PlannedFile]:
    out = []
    for pattern in src.allow_patterns:
        size = FALLBACK_SIZES.get((src.repo_id, pattern), 0)
        present = any(local.glob(pattern)) and not any(local.glob(pattern + ".incomplete"))
        out.append(PlannedFile(src.repo_id, pattern, size, present))
    return out


def plan(
    models: str | os.PathLike | None = None,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    model_dir: str | os.PathLike | None = None,
) -> Plan:
    """Ask the hub (snapshot_download's dry run: file metadata, nothing downloaded) what each source
    holds and what is already complete in the models folder; falls back to `FALLBACK_SIZES`."""
    from huggingface_hub import snapshot_download

    models = Path(models) if models else models_dir_default()
    p = Plan(models_dir=models)
    for src in SOURCES:
        local = models / src.folder
        try:
            infos = snapshot_download(
                src.repo_id,
                local_dir=local,
                allow_patterns=list(src.allow_patterns),
                endpoint=endpoint,
                token=token,
                dry_run=True,
                tqdm_class=_byte_bar_class(None),
            )
        except Exception as exc:  # offline, DNS, auth, ... : plan with the table, say so
            p.sizes_from = "fallback table"
            p.notes.append(f"Could not read {src.repo_id}'s file list ({type(exc).__name__}); sizes are estimates.")
            p.files += _fallback_files(src, local)
            continue
        by_name = {i.filename: i for i in infos}
        for name in sorted(_prefer_safetensors(list(by_name))):
            info = by_name[name]
            size = info.file_size
            if size is None:
                size = next(
                    (v for (r, pat), v in FALLBACK_SIZES.items() if r == src.repo_id and fnmatch.fnmatch(name, pat)), 0
                )
            p.files.append(PlannedFile(src.repo_id, name, int(size), not info.will_download))
    p.convert_needed = not _converted(Path(model_dir) if model_dir else model_folder(models))
    p.free_bytes = free_disk(models)
    return p


def _converted(folder: Path) -> bool:
    for d in (folder / "transformer", folder):
        if (d / "config.json").is_file() and (any(d.glob("*.safetensors")) or any(d.glob("*.safetensors.index.json"))):
            return True
    return False


def free_disk(path: Path) -> int:
    """Free bytes on the file system that holds `path` (its nearest existing parent)."""
    p = Path(path).resolve()
    while not p.exists():
        p = p.parent
    return shutil.disk_usage(p).free


def check_disk(p: Plan) -> None:
    """Refuse (ResourceError) when the downloads plus the conversion would not fit on the disk."""
    if p.fits:
        return
    raise ResourceError(
        f"Not enough disk space for the hallo4 weights in {p.models_dir}: they need {fmt_bytes(p.needed_bytes)} "
        f"more ({fmt_bytes(p.download_bytes)} to download + {fmt_bytes(p.needed_bytes - p.download_bytes)} for the "
        f"converted model) plus {fmt_bytes(DISK_MARGIN)} to spare, but only {fmt_bytes(p.free_bytes)} are free.",
        hint="Free some space, or point HALLO4_DATA_DIR (or --models-dir) at a bigger disk, then download again "
        "(finished files are kept and not fetched twice).",
    )


# ----------------------------------------------------------------------------------------------
# Download
# ----------------------------------------------------------------------------------------------
def _byte_bar_class(report):
    """A tqdm class for snapshot_download that forwards its byte count (the aggregated per-snapshot bar)
    to `report(bytes_done)` (None: silent). Why a tqdm class: it is huggingface_hub's only progress hook."""
    from huggingface_hub.utils import tqdm as hf_tqdm

    class _ByteBar(hf_tqdm):
        def __init__(self, *args, **kwargs):
            self._hallo4_bytes = kwargs.get("name") == "huggingface_hub.snapshot_download"
            self._hallo4_done = 0
            kwargs["disable"] = True  # no terminal bar: we report ourselves
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            if report is not None and self._hallo4_bytes and n:
                self._hallo4_done += int(n)
                report(self._hallo4_done)
            return super().update(n)

    return _ByteBar


def download(
    models: str | os.PathLike | None = None,
    progress: Progress | ProgressCallback | None = None,
    *,
    convert: bool = True,
    endpoint: str | None = None,
    token: str | None = None,
    the_plan: Plan | None = None,
    model_dir: str | os.PathLike | None = None,
) -> Path:
    """Download what is missing (after the disk check), then convert the checkpoint into `model_dir`
    (default `<models>/hallo4`). Returns that folder. A second call finds everything present and
    downloads nothing."""
    # Longer than 60 lines: plan, disk check, per-source fetch and conversion in the order a user sees them.
    from huggingface_hub import snapshot_download

    prog = as_progress(progress)
    models = Path(models) if models else models_dir_default()
    prog(0.0, "Checking what is needed and the free disk space")
    out = Path(model_dir) if model_dir else model_folder(models)
    p = the_plan or plan(models, endpoint=endpoint, token=token, model_dir=out)
    check_disk(p)
    todo = p.download_bytes
    done_before = 0
    span = 0.9 if convert and p.convert_needed else 1.0
    lock = threading.Lock()
    last = [0.0]
    for src in SOURCES:
        wanted = [f for f in p.files if f.repo_id == src.repo_id and not f.present]
        if not wanted:
            continue
        local = models / src.folder
        src_bytes = sum(f.size for f in wanted)

        def report(n: int, base=done_before, repo=src.repo_id) -> None:
            now = time.monotonic()
            with lock:
                if now - last[0] < 0.25 and n < todo:
                    return
                last[0] = now
            got = min(todo, base + n)
            prog(span * got / max(1, todo), f"Downloading {repo}: {fmt_bytes(got)} of {fmt_bytes(todo)}")

        prog(span * done_before / max(1, todo), f"Downloading {src.repo_id} ({fmt_bytes(src_bytes)}) to {local}")
        try:
            snapshot_download(
                src.repo_id,
                local_dir=local,
                allow_patterns=[f.filename for f in wanted],
                endpoint=endpoint,
                token=token,
                tqdm_class=_byte_bar_class(report),
            )
        except Exception as exc:  # network errors come in many types
            raise MissingWeightsError(
                f"Could not download {src.repo_id}: {type(exc).__name__}: {str(exc)[:200]}",
                hint="Check the network (and HF_HUB_OFFLINE / HF_TOKEN), then download again: finished files are "
                "kept and partial ones resume. Or fetch by hand:\n  " + "\n  ".join(manual_commands(models)),
            ) from exc
        missing = [f.filename for f in wanted if "*" not in f.filename and not (local / f.filename).is_file()]
        if missing:
            raise MissingWeightsError(
                f"{src.repo_id} did not deliver {', '.join(missing)}.",
                hint="The repository layout may have changed; see python -m hallo4.weights plan.",
            )
        done_before += src_bytes
    if convert and p.convert_needed:
        prog(span, f"Converting {CHECKPOINT} to {out}")
        convert_checkpoint(models, out)
    prog(1.0, "The hallo4 weights are ready" if convert else "Downloaded")
    return out


def convert_checkpoint(models: Path, out: Path | None = None) -> Path:
    """Run `python -m hallo4.convert` on the downloaded checkpoint (a separate process: the 2.77 B
    parameter state dict is freed when it exits)."""
    official = Path(models) / OFFICIAL_FOLDER
    ckpt = official / CHECKPOINT
    if not ckpt.is_file():
        found = sorted(official.rglob("model_weight.pth"))
        if not found:
            raise MissingWeightsError(
                f"{OFFICIAL_REPO} has no {CHECKPOINT} in {official}.",
                hint="Download again (python -m hallo4.weights download).",
            )
        ckpt = found[0]
    out = Path(out) if out else model_folder(models)
    run = subprocess.run(
        [sys.executable, "-m", "hallo4.convert", "--official", str(ckpt), "-o", str(out), "--dtype", "bf16"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    if run.returncode != 0:
        raise Hallo4Error(
            f"Converting {ckpt.name} failed: {(run.stderr or run.stdout).strip()[-400:]}",
            hint=f"Run python -m hallo4.convert --official {ckpt} -o {out} to see the whole message.",
        )
    return out


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hallo4.weights", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("plan", "show what would be downloaded, the sizes and the free disk (downloads nothing)"),
        ("download", "download what is missing (resumes partial files), then convert"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--models-dir", default=None, help="where the weights go (default: $HALLO4_DATA_DIR/models)")
        cmd.add_argument("--endpoint", default=None, help="hub endpoint (default: HF_ENDPOINT or huggingface.co)")
        cmd.add_argument("--json", action="store_true", help="print the plan as JSON")
        if name == "download":
            cmd.add_argument("--no-convert", action="store_true", help="download only; skip the conversion")
    args = parser.parse_args(argv)
    return run(lambda: _plan_or_download(args))


def _plan_or_download(args: argparse.Namespace) -> int:
    models = Path(args.models_dir) if args.models_dir else models_dir_default()
    p = plan(models, endpoint=args.endpoint)
    if args.json:
        import json

        print(json.dumps(p.to_dict(), indent=2))
    else:
        print(p.summary())
    if args.command == "plan":
        return 0
    if not p.fits:
        check_disk(p)

    def line(fraction: float, message: str) -> None:
        print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)

    out = download(models, line, convert=not args.no_convert, endpoint=args.endpoint, the_plan=p)
    print(f"Ready: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
