"""Reading a training checkpoint as a flat state dict: .pth/.pt/.ckpt/.bin (weights-only pickles, maybe wrapped
with optimizer / EMA entries) or .safetensors (shards merged), wrapper prefixes stripped, with notes on what
was skipped. Unreadable or unsafe files raise `InputError` saying what to use."""

from __future__ import annotations

from pathlib import Path

import torch

from .convert_keys import WRAPPER_PREFIXES
from .errors import InputError

_EMA_PREFIXES = ("ema.", "model_ema.", "ema_model.")
# Top-level entries of a training checkpoint that can hold the weights, in the order they are preferred
# (`state_dict` first: the release's own loader takes it).
_WEIGHT_ENTRIES = ("state_dict", "model_state_dict", "model", "module", "net", "ema", "model_ema", "ema_state_dict")
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")


def _strip_wrappers(sd: dict) -> dict:
    """Strip prefixes shared by every key (kept for callers that pass an already loaded state dict)."""
    for prefix in WRAPPER_PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def strip_key(key: str) -> tuple[str, bool]:
    """(key without wrapper prefixes, whether it came from an EMA copy)."""
    ema = False
    changed = True
    while changed:
        changed = False
        for prefix in _EMA_PREFIXES + WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key, changed, ema = key[len(prefix) :], True, ema or prefix in _EMA_PREFIXES
    return key, ema


def _is_tensor_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and any(isinstance(v, torch.Tensor) for v in obj.values())


def _unwrap(obj, notes: list[str]) -> dict:
    """The weights inside a training checkpoint: a `state_dict` (or model / EMA) entry, else the dict
    itself. Other top-level entries (optimizer, scheduler, epoch, ...) are listed in `notes`."""
    if not isinstance(obj, dict):
        return obj
    for entry in _WEIGHT_ENTRIES:
        if _is_tensor_dict(obj.get(entry)):
            others = sorted(str(k) for k in obj if k != entry)
            if others:
                notes.append(
                    listing(f"used the checkpoint's {entry!r} entry; skipped other top-level entries", others)
                )
            return _unwrap(obj[entry], notes) if not _is_flat(obj[entry]) else obj[entry]
    return obj


def _is_flat(obj: dict) -> bool:
    return all(isinstance(v, torch.Tensor) for v in obj.values())


def read_checkpoint(path: str | Path, notes: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Read a .ckpt/.pth/.pt/.bin (torch.load with weights_only=True, memory-mapped) or .safetensors
    file, or a folder of them, and return its tensors as stored (a `state_dict` / model / EMA entry
    unwrapped). Non-tensor values are dropped and listed in `notes`; prefixes are not touched yet."""
    # Longer than 60 lines: one check per file kind, each with its own message; splitting would scatter them.
    notes = notes if notes is not None else []
    path = Path(path)
    if not path.exists():
        raise InputError("official checkpoint", "not found", "Give the path of model_weight.pth.", path=str(path))
    if path.is_dir():
        files = sorted(path.glob("*.safetensors")) or sorted(
            p for ext in CHECKPOINT_SUFFIXES[1:] for p in path.glob(f"*{ext}")
        )
        if not files:
            raise InputError(
                "official checkpoint",
                f"the folder has no {'/'.join(CHECKPOINT_SUFFIXES)} file",
                "Point --official at model_weight.pth.",
                path=str(path),
            )
        if len(files) > 1 and files[0].suffix != ".safetensors":
            raise InputError(
                "official checkpoint",
                f"several pickled checkpoints: {[f.name for f in files]}",
                "Point --official at one file.",
                path=str(path),
            )
        sd: dict[str, torch.Tensor] = {}
        for f in files:
            sd.update(read_checkpoint(f, notes))
        return sd
    if path.suffix.lower() not in CHECKPOINT_SUFFIXES:
        raise InputError(
            "official checkpoint",
            f"unsupported file type {path.suffix!r}",
            f"Use one of {', '.join(CHECKPOINT_SUFFIXES)} (model_weight.pth is the release's).",
            path=str(path),
        )
    if path.suffix.lower() == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - truncated / not a safetensors file
            raise InputError(
                "official checkpoint",
                f"is not a readable safetensors file ({exc})",
                "Download it again.",
                path=str(path),
            ) from exc
    try:
        try:
            obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) pickles cannot be memory-mapped
            if "mmap" not in str(exc) and "zip" not in str(exc):
                raise
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable / unsafe pickle
        raise InputError(
            "official checkpoint",
            f"cannot be read as a weights-only state dict ({exc})",
            "Use the published model_weight.pth or a .safetensors file.",
            path=str(path),
        ) from exc
    obj = _unwrap(obj, notes)
    if not _is_tensor_dict(obj):
        raise InputError(
            "official checkpoint",
            "does not hold a state dict of tensors",
            "Use the published model_weight.pth.",
            path=str(path),
        )
    dropped = sorted(str(k) for k, v in obj.items() if not isinstance(v, torch.Tensor))
    if dropped:
        notes.append(listing("skipped entries that are not tensors", dropped))
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_official_state_dict(path: str | Path, notes: list[str] | None = None) -> dict[str, torch.Tensor]:
    """`read_checkpoint` with prefixes shared by every key stripped (see `convert_state_dict` for the
    key-by-key handling of mixed checkpoints)."""
    return _strip_wrappers(read_checkpoint(path, notes))


def listing(title: str, items: list[str], limit: int = 20) -> str:
    head = ", ".join(items[:limit])
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{title} ({len(items)}): {head}{more}"
