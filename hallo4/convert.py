"""Convert the official Hallo4 / Wan2.1-VACE DiT checkpoint (original Wan naming) to our safetensors.

    python -m hallo4.convert --official pretrained/hallo4/model_weight.pth -o models/hallo4-transformer

`--official` is a .pth/.pt/.ckpt (pickled state dict, possibly wrapped in {"state_dict": ...}) or a
.safetensors file, or a directory holding one of those (several .safetensors shards are merged).
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

Every missing or unexpected key and every shape mismatch is an error (`InputError` listing them).
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
_ATTN = [("self_attn.", "attn1."), ("cross_attn.", "attn2."), ("audio_cross_attn.", "audio_attn."),
         ("condition_cross_attn.", "skeleton_attn.")]
_ATTN_PART = [("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."), ("o.", "to_out.0."),
              ("norm_q.", "norm_q."), ("norm_k.", "norm_k.")]
_BLOCK = [("norm3.", "norm2."), ("ffn.0.", "ffn.net.0.proj."), ("ffn.2.", "ffn.net.2."),
          ("audio_cross_norm.", "audio_norm."), ("condition_cross_norm.", "skeleton_norm.")]
_VACE_ONLY = [("before_proj.", "proj_in."), ("after_proj.", "proj_out.")]
_BLOCK_RE = re.compile(r"^(blocks|vace_blocks)\.(\d+)\.(.+)$")
_WRAPPER_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "module.", "_orig_mod.", "model.")


def _map_block(rest: str, vace: bool, to_ours: bool) -> str | None:
    src, dst = (0, 1) if to_ours else (1, 0)
    if rest == ("modulation" if to_ours else "scale_shift_table"):
        return "scale_shift_table" if to_ours else "modulation"
    for pair in _ATTN:
        if rest.startswith(pair[src]):
            tail = rest[len(pair[src]):]
            for part in _ATTN_PART:
                if tail.startswith(part[src]) and tail.count(".") == part[src].count("."):
                    return pair[dst] + part[dst] + tail[len(part[src]):]
            return None
    for pair in _BLOCK + (_VACE_ONLY if vace else []):
        if rest.startswith(pair[src]) and rest.count(".") == pair[src].count("."):
            return pair[dst] + rest[len(pair[src]):]
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
                key = f"{m.group(1)}.{m.group(2)}.{new}{m.group(3)[len(old):]}"
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
            tail = key[len(pair[src]):]
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


def _strip_wrappers(sd: dict) -> dict:
    for prefix in _WRAPPER_PREFIXES:
        if sd and all(k.startswith(prefix) for k in sd):
            sd = {k[len(prefix):]: v for k, v in sd.items()}
    return sd


def load_official_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a .pth/.pt/.ckpt (weights_only, mmap) or .safetensors file, or a folder of them."""
    path = Path(path)
    if not path.exists():
        raise InputError("official checkpoint", "not found", "Give the path of model_weight.pth.", path=str(path))
    if path.is_dir():
        files = sorted(path.glob("*.safetensors")) or sorted(
            p for ext in ("*.pth", "*.pt", "*.ckpt", "*.bin") for p in path.glob(ext)
        )
        if not files:
            raise InputError("official checkpoint", "the folder has no .pth/.safetensors file",
                             "Point --official at model_weight.pth.", path=str(path))
        if len(files) > 1 and files[0].suffix != ".safetensors":
            raise InputError("official checkpoint", f"several pickled checkpoints: {[f.name for f in files]}",
                             "Point --official at one file.", path=str(path))
        sd: dict[str, torch.Tensor] = {}
        for f in files:
            sd.update(load_official_state_dict(f))
        return sd
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return _strip_wrappers(load_file(str(path)))
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (non-zip) pickles cannot be memory-mapped
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - unreadable / unsafe pickle
        raise InputError("official checkpoint", f"cannot be read as a weights-only state dict ({exc})",
                         "Use the published model_weight.pth or a .safetensors file.", path=str(path)) from exc
    for wrapper in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and wrapper in obj and isinstance(obj[wrapper], dict):
            obj = obj[wrapper]
            break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise InputError("official checkpoint", "does not hold a state dict of tensors",
                         "Use the published model_weight.pth.", path=str(path))
    return _strip_wrappers(obj)


def _listing(title: str, items: list[str], limit: int = 20) -> str:
    head = ", ".join(items[:limit])
    more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
    return f"{title} ({len(items)}): {head}{more}"


def convert_state_dict(
    official: dict[str, torch.Tensor], expected: dict[str, tuple[int, ...]], *, allow_missing: tuple[str, ...] = ()
) -> dict[str, torch.Tensor]:
    """Rename `official` to our names and check it against `expected` (name -> shape).

    Raises `InputError` listing unmapped/unexpected keys, missing keys and shape mismatches.
    `allow_missing`: name fragments (e.g. "audio_", "skeleton_", "pose_proj") that may be missing
    (they keep their fresh initialisation, e.g. when starting from plain Wan2.1-VACE weights).
    """
    official = _strip_wrappers(dict(official))
    converted, unknown = {}, []
    for k, v in official.items():
        name = official_to_ours(k)
        if name is None:
            unknown.append(k)
        else:
            converted[name] = v
    unexpected = sorted(set(unknown) | {ours_to_official(k) or k for k in converted if k not in expected})
    missing = sorted(k for k in expected if k not in converted and not any(f in k for f in allow_missing))
    mismatched = sorted(
        f"{ours_to_official(k)} {tuple(v.shape)} (expected {tuple(expected[k])})"
        for k, v in converted.items()
        if k in expected and tuple(v.shape) != tuple(expected[k])
    )
    problems = []
    if missing:
        problems.append(_listing("missing keys (official names)", [ours_to_official(k) or k for k in missing]))
    if unexpected:
        problems.append(_listing("unexpected keys", unexpected))
    if mismatched:
        problems.append(_listing("shape mismatches", mismatched))
    if problems:
        raise InputError(
            "official checkpoint",
            "does not match the Hallo4 model: " + "; ".join(problems),
            "Use the published hallo4/model_weight.pth with the matching config (full_config()).",
        )
    return {k: v for k, v in converted.items() if k in expected}


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
            out[k] = sd[k[len(owner) + 1:]]
    return out


def _materialize(meta_module: torch.nn.Module) -> torch.nn.Module:
    """A real copy of a meta module with its constructor's initialisation (zero-init included)."""
    from .models import Hallo4AudioProjection, Hallo4PoseProjection, Hallo4TransformerBlock

    if isinstance(meta_module, Hallo4TransformerBlock):
        dim = meta_module.scale_shift_table.shape[-1]
        return Hallo4TransformerBlock(
            dim, meta_module.ffn.net[0].proj.out_features, meta_module.attn1.heads,
            cross_attn_norm=not isinstance(meta_module.norm2, torch.nn.Identity), eps=meta_module.norm1.eps,
            enable_audio=meta_module.audio_attn is not None, enable_skeleton=meta_module.skeleton_attn is not None,
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
):
    """Load an official checkpoint into a `Hallo4Transformer3DModel` (config: `full_config()` by
    default) and, when `out_dir` is given, write it with `save_pretrained` (safetensors). Returns the model."""
    from accelerate import init_empty_weights

    from .models import Hallo4Transformer3DModel, full_config

    config = dict(config or full_config())
    with init_empty_weights():  # parameters on meta, buffers (RoPE tables) real
        model = Hallo4Transformer3DModel(**config)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    state = convert_state_dict(load_official_state_dict(src), expected, allow_missing=allow_missing)
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
    parser.add_argument("--official", required=True, help="model_weight.pth / .safetensors, or a folder")
    parser.add_argument("-o", "--output", required=True, help="output folder (config.json + safetensors)")
    parser.add_argument("--dtype", choices=["keep", "bf16", "fp16", "fp32"], default="keep")
    parser.add_argument("--tiny", action="store_true", help="use hallo4.models.tiny_config() (tests)")
    parser.add_argument("--from-vace", action="store_true",
                        help="the checkpoint is plain Wan2.1-VACE: initialise the Hallo4 modules fresh")
    args = parser.parse_args(argv)
    from .models import full_config, tiny_config

    dtype = {"keep": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[args.dtype]
    allow = ("audio_attn", "audio_norm", "skeleton_attn", "skeleton_norm", "audio_proj", "pose_proj")
    try:
        model = convert_official(args.official, args.output, config=tiny_config() if args.tiny else full_config(),
                                 dtype=dtype, allow_missing=allow if args.from_vace else ())
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    n = sum(p.numel() for p in model.parameters())
    print(f"converted {n:,} parameters -> {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
