"""Convert the official Hallo4 / Wan2.1-VACE DiT checkpoint (original Wan naming) to our safetensors.

    python -m hallo4.convert --official pretrained/hallo4/model_weight.pth -o models/hallo4-transformer

    python -m hallo4.convert --official tiny.ckpt --config release_kwargs.json -o models/tiny

`--official` is a .pth/.pt/.ckpt/.bin (pickled state dict, read with weights_only=True, possibly wrapped in
{"state_dict": ...} with optimizer/EMA entries) or a .safetensors file, or a directory holding one of those
(several .safetensors shards are merged). `--config` takes the release's `VaceWanModel` constructor kwargs
(JSON) for sizes other than the full model.
The key mapping follows diffusers' own `convert_wan_transformer_to_diffusers` (single_file_utils) for
the standard Wan/VACE names, plus Hallo4's added modules:

    official                                   ours
    patch_embedding / vace_patch_embedding     same
    text_embedding.{0,2}                       condition_embedder.text_embedder.linear_{1,2}
    time_embedding.{0,2}                       condition_embedder.time_embedder.linear_{1,2}
    time_projection.1                          condition_embedder.time_proj
    head.head / head.modulation                proj_out / scale_shift_table
    blocks.i / vace_blocks.j:
      self_attn.{q,k,v,o,norm_q,norm_k}        attn1.{to_q,to_k,to_v,to_out.0,norm_q,norm_k}
      cross_attn.*                             attn2.*
      norm3 (affine cross-attention norm)      norm2
      ffn.0 / ffn.2                            ffn.net.0.proj / ffn.net.2
      modulation                               scale_shift_table
      before_proj / after_proj (VACE)          proj_in / proj_out
      audio_cross_attn.* / audio_cross_norm    audio_attn.* / audio_norm
      condition_cross_attn.* / _cross_norm     skeleton_attn.* / skeleton_norm
    audio_proj.*, pose_proj.*                  same

Tolerant but loud: wrapper prefixes (`module.`, `_orig_mod.`, `model.`, EMA) are stripped, keys that are not
model weights are skipped with a listed warning; a missing or mis-shaped model weight, or a layer the
configuration does not have, is an error (`InputError` listing them).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import torch

from .errors import InputError

_TOP = [  # (official prefix, our prefix), matched on whole dotted components
    ("text_embedding.0.", "condition_embedder.text_embedder.linear_1."),
    ("text_embedding.2.", "condition_embedder.text_embedder.linear_2."),
    ("time_embedding.0.", "condition_embedder.time_embedder.linear_1."),
    ("time_embedding.2.", "condition_embedder.time_embedder.linear_2."),
    ("time_projection.1.", "condition_embedder.time_proj."),
    ("head.head.", "proj_out."),
    ("patch_embedding.", "patch_embedding."),
    ("vace_patch_embedding.", "vace_patch_embedding."),
]
_TOP_SAME = ("audio_proj.", "pose_proj.")  # same names in both trees (checked against the model later)
_TOP_EXACT = [("head.modulation", "scale_shift_table")]
_ATTN = [
    ("self_attn.", "attn1."),
    ("cross_attn.", "attn2."),
    ("audio_cross_attn.", "audio_attn."),
    ("condition_cross_attn.", "skeleton_attn."),
]
_ATTN_PART = [
    ("q.", "to_q."),
    ("k.", "to_k."),
    ("v.", "to_v."),
    ("o.", "to_out.0."),
    ("norm_q.", "norm_q."),
    ("norm_k.", "norm_k."),
]
_BLOCK = [
    ("norm3.", "norm2."),
    ("ffn.0.", "ffn.net.0.proj."),
    ("ffn.2.", "ffn.net.2."),
    ("audio_cross_norm.", "audio_norm."),
    ("condition_cross_norm.", "skeleton_norm."),
]
_VACE_ONLY = [("before_proj.", "proj_in."), ("after_proj.", "proj_out.")]
_BLOCK_RE = re.compile(r"^(blocks|vace_blocks)\.(\d+)\.(.+)$")
_WRAPPER_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "module.", "_orig_mod.", "model.")


def _map_block(rest: str, vace: bool, to_ours: bool) -> str | None:
    src, dst = (0, 1) if to_ours else (1, 0)
    if rest == ("modulation" if to_ours else "scale_shift_table"):
        return "scale_shift_table" if to_ours else "modulation"
    for pair in _ATTN:
        if rest.startswith(pair[src]):
            tail = rest[len(pair[src]) :]
            for part in _ATTN_PART:
                if tail.startswith(part[src]) and tail.count(".") == part[src].count("."):
                    return pair[dst] + part[dst] + tail[len(part[src]) :]
            return None
    for pair in _BLOCK + (_VACE_ONLY if vace else []):
        if rest.startswith(pair[src]) and rest.count(".") == pair[src].count("."):
            return pair[dst] + rest[len(pair[src]) :]
    return None


# Older Hallo4 training checkpoints named the audio modules audio_attn / audio_norm (the release
# renames them when loading a separate audio checkpoint); accept both spellings on input.
_LEGACY_BLOCK = [("audio_attn.", "audio_cross_attn."), ("audio_norm.", "audio_cross_norm.")]


def _map_key(key: str, to_ours: bool) -> str | None:
    src, dst = (0, 1) if to_ours else (1, 0)
    m = _BLOCK_RE.match(key)
    if m and to_ours:
        for old, new in _LEGACY_BLOCK:
            if m.group(3).startswith(old):
                key = f"{m.group(1)}.{m.group(2)}.{new}{m.group(3)[len(old) :]}"
                m = _BLOCK_RE.match(key)
    if m:
        kind, idx, rest = m.groups()
        mapped = _map_block(rest, kind == "vace_blocks", to_ours)
        return None if mapped is None else f"{kind}.{idx}.{mapped}"
    for pair in _TOP_EXACT:
        if key == pair[src]:
            return pair[dst]
    if key.startswith(_TOP_SAME):
        return key
    for pair in _TOP:
        if key.startswith(pair[src]):
            tail = key[len(pair[src]) :]
            if "." not in tail:
                return pair[dst] + tail
    return None


def official_to_ours(key: str) -> str | None:
    """Our parameter name for an official (original Wan / Hallo4) one; None when unknown."""
    return _map_key(key, to_ours=True)


def ours_to_official(key: str) -> str | None:
    """The official name of one of our parameters; None when unknown."""
    return _map_key(key, to_ours=False)


def export_official(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state dict in the official naming (the inverse of `convert_state_dict`)."""
    out = {}
    for k, v in state_dict.items():
        name = ours_to_official(k)
        if name is None:
            raise ValueError(f"no official name for {k!r}")
        out[name] = v
    return out


# Prefixes that training wrappers put in front of every key: DDP/DataParallel (`module.`), torch.compile
# (`_orig_mod.`), Lightning/ComfyUI (`model.`, `model.diffusion_model.`), EMA copies (`ema.`, `model_ema.`).
# No official name starts with one of them, so stripping them key by key is safe.
_EMA_PREFIXES = ("ema.", "model_ema.", "ema_model.")
# Top-level entries of a training checkpoint that can hold the weights, in the order they are preferred
# (`state_dict` first: the release's own loader takes it).
_WEIGHT_ENTRIES = ("state_dict", "model_state_dict", "model", "module", "net", "ema", "model_ema", "ema_state_dict")
CHECKPOINT_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin")


def _strip_wrappers(sd: dict) -> dict:
    """Strip prefixes shared by every key (kept for callers that pass an already loaded state dict)."""
    for prefix in _WRAPPER_PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix) :]: v for k, v in sd.items()}
    return sd


def _strip_key(key: str) -> tuple[str, bool]:
    """(key without wrapper prefixes, whether it came from an EMA copy)."""
    ema = False
    changed = True
    while changed:
        changed = False
        for prefix in _EMA_PREFIXES + _WRAPPER_PREFIXES:
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
                    _listing(f"used the checkpoint's {entry!r} entry; skipped other top-level entries", others)
                )
            return _unwrap(obj[entry], notes) if not _is_flat(obj[entry]) else obj[entry]
    return obj


def _is_flat(obj: dict) -> bool:
    return all(isinstance(v, torch.Tensor) for v in obj.values())


def read_checkpoint(path: str | Path, notes: list[str] | None = None) -> dict[str, torch.Tensor]:
    """Read a .ckpt/.pth/.pt/.bin (torch.load with weights_only=True, memory-mapped) or .safetensors
    file, or a folder of them, and return its tensors as stored (a `state_dict` / model / EMA entry
    unwrapped). Non-tensor values are dropped and listed in `notes`; prefixes are not touched yet."""
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
        notes.append(_listing("skipped entries that are not tensors", dropped))
    return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}


def load_official_state_dict(path: str | Path, notes: list[str] | None = None) -> dict[str, torch.Tensor]:
    """`read_checkpoint` with prefixes shared by every key stripped (see `convert_state_dict` for the
    key-by-key handling of mixed checkpoints)."""
    return _strip_wrappers(read_checkpoint(path, notes))


def _listing(title: str, items: list[str], limit: int = 20) -> str:
    head = ", ".join(items[:limit])
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{title} ({len(items)}): {head}{more}"


def convert_state_dict(
    official: dict[str, torch.Tensor],
    expected: dict[str, tuple[int, ...]],
    *,
    allow_missing: tuple[str, ...] = (),
    notes: list[str] | None = None,
) -> dict[str, torch.Tensor]:
    """Rename `official` to our names and check it against `expected` (name -> shape).

    Tolerant but loud, like the release's non-strict loader plus a report:
    * wrapper prefixes (`module.`, `_orig_mod.`, `model.`, `ema.`, ...) are stripped key by key;
      when a weight is present both plainly and as an EMA copy, the plain one is used (the release
      loads the `state_dict` weights) and the EMA copies are listed in `notes`;
    * keys that are not model weights (optimizer state, counters, unknown names) are skipped and
      listed in `notes` (and given to `warnings.warn` when `notes` is None);
    * a model weight that is missing, has another shape, or names a layer this configuration does not
      have (e.g. `blocks.29.*` for a 4-layer config) raises `InputError` listing all of them.
    `allow_missing`: name fragments (e.g. "audio_", "skeleton_", "pose_proj") that may be missing
    (they keep their fresh initialisation, e.g. when starting from plain Wan2.1-VACE weights).
    """
    own_notes: list[str] = [] if notes is None else notes
    converted: dict[str, torch.Tensor] = {}
    source: dict[str, str] = {}
    from_ema: set[str] = set()
    skipped, ema_dropped, foreign = [], [], []
    for k, v in official.items():
        stripped, ema = _strip_key(k)
        name = official_to_ours(stripped)
        if name is None or not isinstance(v, torch.Tensor):
            skipped.append(k)
            continue
        if name not in expected:
            foreign.append(k)
            continue
        if name in converted:
            if ema and name not in from_ema:
                ema_dropped.append(k)
                continue
            if not ema and name in from_ema:
                ema_dropped.append(source[name])
            elif not ema or name in from_ema:
                raise InputError(
                    "official checkpoint",
                    f"holds {stripped!r} twice ({source[name]!r} and {k!r})",
                    "Save one copy of the model's weights.",
                )
        converted[name], source[name] = v, k
        from_ema.discard(name)
        if ema:
            from_ema.add(name)
    if skipped:
        own_notes.append(_listing("skipped keys that are not weights of this model", skipped))
    if ema_dropped:
        own_notes.append(_listing("used the plain weights; skipped their EMA copies", ema_dropped))
    if from_ema:
        own_notes.append(f"loaded {len(from_ema)} weights from an EMA copy (no plain copy in the checkpoint)")
    missing = sorted(k for k in expected if k not in converted and not any(f in k for f in allow_missing))
    mismatched = sorted(
        f"{ours_to_official(k)} {tuple(v.shape)} (expected {tuple(expected[k])})"
        for k, v in converted.items()
        if tuple(v.shape) != tuple(expected[k])
    )
    problems = []
    if missing:
        problems.append(_listing("missing keys (official names)", [ours_to_official(k) or k for k in missing]))
    if foreign:
        problems.append(_listing("unexpected keys (layers this configuration does not have)", sorted(foreign)))
    if mismatched:
        problems.append(_listing("shape mismatches", mismatched))
    if problems:
        if skipped:
            problems.append(_listing("skipped keys", skipped, limit=10))
        raise InputError(
            "official checkpoint",
            "does not match the Hallo4 model: " + "; ".join(problems),
            "Use the published hallo4/model_weight.pth with the matching config (the full model by default, "
            "or --config with the release's constructor kwargs for another size).",
        )
    if notes is None:
        import warnings

        for note in own_notes:
            warnings.warn(f"official checkpoint: {note}", stacklevel=2)
    return converted


# ----------------------------------------------------------------------------------------------
# Release constructor kwargs -> our config
# ----------------------------------------------------------------------------------------------
# The release builds `VaceWanModel(**kwargs)` (Wan's config.json keys plus Hallo4's flags); these map
# one to one onto `Hallo4Transformer3DModel` arguments.
_RELEASE_KEYS = {
    "dim": None,
    "num_heads": None,  # -> num_attention_heads, attention_head_dim = dim / num_heads
    "in_dim": "in_channels",
    "out_dim": "out_channels",
    "ffn_dim": "ffn_dim",
    "freq_dim": "freq_dim",
    "num_layers": "num_layers",
    "eps": "eps",
    "vace_layers": "vace_layers",
    "vace_in_dim": "vace_in_channels",
    "text_dim": "text_dim",
    "patch_size": "patch_size",
    "cross_attn_norm": "cross_attn_norm",
    "qk_norm": None,
    "enable_audio_cross_attn": "enable_audio",
    "enable_skeleton_cross_attn": "enable_skeleton",
}
# Accepted and not needed by our model: the sequence lengths are inputs here (the pipeline pads the text
# to 512 tokens itself), checkpointing is switched at run time, and the window must be global.
_RELEASE_IGNORED = {
    "model_type",
    "text_len",
    "use_gradient_checkpointing",
    "window_size",
    "vace_in_dim_text",
    "_class_name",
    "_diffusers_version",
    "__name__",
}


def release_config(kwargs: dict) -> dict:
    """Our `Hallo4Transformer3DModel` kwargs for the release's `VaceWanModel` constructor kwargs (as in
    tests/fixtures/hallo4-official/transformer-tiny/config.json). Unknown keys or values our model cannot
    reproduce raise `InputError`. The audio and pose projectors have the release's fixed sizes."""
    from .models import full_config

    unknown = sorted(k for k in kwargs if k not in _RELEASE_KEYS and k not in _RELEASE_IGNORED)
    if unknown:
        raise InputError(
            "config",
            f"unknown release constructor arguments: {', '.join(unknown)}",
            "Pass the kwargs of the release's VaceWanModel (dim, num_heads, num_layers, ...).",
        )
    if kwargs.get("model_type", "t2v") not in ("t2v", "vace"):
        raise InputError(
            "config",
            f"model_type {kwargs['model_type']!r} is not supported",
            "Hallo4 is a text-to-video VACE model (model_type 't2v').",
        )
    if tuple(kwargs.get("window_size", (-1, -1))) != (-1, -1):
        raise InputError(
            "config",
            f"window_size {kwargs['window_size']} (local attention) is not supported",
            "Hallo4 uses global attention: window_size (-1, -1).",
        )
    cfg = full_config()
    dim = int(kwargs.get("dim", cfg["num_attention_heads"] * cfg["attention_head_dim"]))
    heads = int(kwargs.get("num_heads", cfg["num_attention_heads"]))
    if dim % heads:
        raise InputError("config", f"dim {dim} is not divisible by num_heads {heads}")
    cfg.update(num_attention_heads=heads, attention_head_dim=dim // heads)
    for key, ours in _RELEASE_KEYS.items():
        if ours and key in kwargs:
            value = kwargs[key]
            cfg[ours] = tuple(value) if key == "patch_size" else list(value) if key == "vace_layers" else value
    if "qk_norm" in kwargs:
        cfg["qk_norm"] = "rms_norm_across_heads" if kwargs["qk_norm"] else None
    if "vace_layers" not in kwargs:  # the release's default: every second layer
        cfg["vace_layers"] = list(range(0, cfg["num_layers"], 2))
    return cfg


def load_release_config(path: str | Path) -> dict:
    """`release_config` of a JSON file."""
    import json

    path = Path(path)
    try:
        kwargs = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(
            "config", "not found", "Give the JSON file of the release's constructor kwargs.", path=str(path)
        ) from None
    except (OSError, ValueError) as exc:
        raise InputError("config", f"is not a JSON object ({exc})", path=str(path)) from exc
    if not isinstance(kwargs, dict):
        raise InputError("config", "is not a JSON object of constructor kwargs", path=str(path))
    return release_config(kwargs)


def _fresh_parameters(model, keys: list[str]) -> dict[str, torch.Tensor]:
    """Freshly initialised values for `keys` of a meta-device model, one submodule at a time (so a
    full-size model is never materialised twice): e.g. the Hallo4 modules when starting from VACE."""
    out: dict[str, torch.Tensor] = {}
    by_module: dict[str, list[str]] = {}
    for k in keys:
        m = _BLOCK_RE.match(k)
        owner = f"{m.group(1)}.{m.group(2)}" if m else k.split(".")[0]
        by_module.setdefault(owner, []).append(k)
    for owner, names in by_module.items():
        meta = model.get_submodule(owner)
        fresh = _materialize(meta)
        sd = fresh.state_dict()
        for k in names:
            out[k] = sd[k[len(owner) + 1 :]]
    return out


def _materialize(meta_module: torch.nn.Module) -> torch.nn.Module:
    """A real copy of a meta module with its constructor's initialisation (zero-init included)."""
    from .models import Hallo4AudioProjection, Hallo4PoseProjection, Hallo4TransformerBlock

    if isinstance(meta_module, Hallo4TransformerBlock):
        dim = meta_module.scale_shift_table.shape[-1]
        return Hallo4TransformerBlock(
            dim,
            meta_module.ffn.net[0].proj.out_features,
            meta_module.attn1.heads,
            cross_attn_norm=not isinstance(meta_module.norm2, torch.nn.Identity),
            eps=meta_module.norm1.eps,
            enable_audio=meta_module.audio_attn is not None,
            enable_skeleton=meta_module.skeleton_attn is not None,
        )
    if isinstance(meta_module, Hallo4AudioProjection):
        m = meta_module
        return Hallo4AudioProjection(m.window, m.layers, m.dim, m.proj1.out_features, m.tokens, m.out_dim)
    if isinstance(meta_module, Hallo4PoseProjection):
        return Hallo4PoseProjection(meta_module.in_channels, meta_module.out_dim, meta_module.patch_size)
    raise ValueError(f"cannot initialise missing parameters of {type(meta_module).__name__}")


def convert_official(
    src: str | Path,
    out_dir: str | Path | None = None,
    *,
    config: dict | None = None,
    dtype: torch.dtype | None = None,
    allow_missing: tuple[str, ...] = (),
    notes: list[str] | None = None,
):
    """Load an official checkpoint into a `Hallo4Transformer3DModel` (config: `full_config()` by
    default) and, when `out_dir` is given, write it with `save_pretrained` (safetensors). Returns the model.
    `notes`: receives what was skipped (see `convert_state_dict`); None -> `warnings.warn`."""
    from accelerate import init_empty_weights

    from .models import Hallo4Transformer3DModel, full_config

    config = dict(config or full_config())
    with init_empty_weights():  # parameters on meta, buffers (RoPE tables) real
        model = Hallo4Transformer3DModel(**config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    own: list[str] = [] if notes is None else notes
    state = convert_state_dict(read_checkpoint(src, own), expected, allow_missing=allow_missing, notes=own)
    if notes is None:
        import warnings

        for note in own:
            warnings.warn(f"official checkpoint: {note}", stacklevel=2)
    if allow_missing and len(state) < len(expected):
        src_dtype = next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)
        fresh = _fresh_parameters(model, [k for k in expected if k not in state])
        state.update({k: v.to(src_dtype) for k, v in fresh.items()})  # same dtype as the source weights
    if dtype is not None:
        state = {k: v.to(dtype) if v.is_floating_point() else v for k, v in state.items()}
    model.load_state_dict(state, strict=True, assign=True)
    model.eval()
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        model.save_pretrained(str(out_dir), safe_serialization=True)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hallo4.convert", description=__doc__.split("\n\n")[0])
    parser.add_argument("--official", required=True, help="model_weight.pth / .ckpt / .safetensors, or a folder")
    parser.add_argument("-o", "--output", required=True, help="output folder (config.json + safetensors)")
    parser.add_argument("--dtype", choices=["keep", "bf16", "fp16", "fp32"], default="keep")
    size = parser.add_mutually_exclusive_group()
    size.add_argument(
        "--config",
        help="JSON of the release's VaceWanModel constructor kwargs, for a size other "
        "than the full model (e.g. dim, num_heads, num_layers, vace_layers)",
    )
    size.add_argument("--tiny", action="store_true", help="use hallo4.models.tiny_config() (tests)")
    parser.add_argument(
        "--from-vace",
        action="store_true",
        help="the checkpoint is plain Wan2.1-VACE: initialise the Hallo4 modules fresh",
    )
    args = parser.parse_args(argv)
    from .models import full_config, tiny_config

    dtype = {"keep": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    allow = ("audio_attn", "audio_norm", "skeleton_attn", "skeleton_norm", "audio_proj", "pose_proj")
    notes: list[str] = []
    try:
        config = load_release_config(args.config) if args.config else tiny_config() if args.tiny else full_config()
        model = convert_official(
            args.official,
            args.output,
            config=config,
            dtype=dtype,
            allow_missing=allow if args.from_vace else (),
            notes=notes,
        )
    except InputError as exc:
        for note in notes:
            print(f"warning: {note}", file=sys.stderr)
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"warning: {note}", file=sys.stderr)
    n = sum(p.numel() for p in model.parameters())
    print(f"converted {n:,} parameters -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
