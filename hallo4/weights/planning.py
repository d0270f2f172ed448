"""The download plan: what each source holds (the hub's dry run, or the fallback table), what is already
complete, the conversion, and the disk check that refuses before anything is fetched."""

from __future__ import annotations

import fnmatch
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ResourceError
from .sources import (
    CONVERTED_BYTES,
    DISK_MARGIN,
    FALLBACK_SIZES,
    SOURCES,
    WEIGHT_SUFFIXES,
    Source,
    fmt_bytes,
    model_folder,
    models_dir_default,
)


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
