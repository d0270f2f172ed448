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
import sys
from pathlib import Path

import torch

from .cli import run
from .convert_config import load_release_config, release_config
from .convert_keys import BLOCK_RE, export_official, official_to_ours, ours_to_official
from .convert_read import CHECKPOINT_SUFFIXES, listing, load_official_state_dict, read_checkpoint, strip_key
from .errors import InputError

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "convert_official",
    "convert_state_dict",
    "export_official",
    "load_official_state_dict",
    "load_release_config",
    "main",
    "official_to_ours",
    "ours_to_official",
    "read_checkpoint",
    "release_config",
]


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
    # Longer than 60 lines: one pass over the keys that sorts each into kept / skipped / EMA / wrong, then one report.
    own_notes: list[str] = [] if notes is None else notes
    converted: dict[str, torch.Tensor] = {}
    source: dict[str, str] = {}
    from_ema: set[str] = set()
    skipped, ema_dropped, foreign = [], [], []
    for k, v in official.items():
        stripped, ema = strip_key(k)
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
        own_notes.append(listing("skipped keys that are not weights of this model", skipped))
    if ema_dropped:
        own_notes.append(listing("used the plain weights; skipped their EMA copies", ema_dropped))
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
        problems.append(listing("missing keys (official names)", [ours_to_official(k) or k for k in missing]))
    if foreign:
        problems.append(listing("unexpected keys (layers this configuration does not have)", sorted(foreign)))
    if mismatched:
        problems.append(listing("shape mismatches", mismatched))
    if problems:
        if skipped:
            problems.append(listing("skipped keys", skipped, limit=10))
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


def _fresh_parameters(model, keys: list[str]) -> dict[str, torch.Tensor]:
    """Freshly initialised values for `keys` of a meta-device model, one submodule at a time (so a
    full-size model is never materialised twice): e.g. the Hallo4 modules when starting from VACE."""
    out: dict[str, torch.Tensor] = {}
    by_module: dict[str, list[str]] = {}
    for k in keys:
        m = BLOCK_RE.match(k)
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

    def work() -> None:
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
        finally:  # what was skipped is said before the result or the error
            for note in notes:
                print(f"warning: {note}", file=sys.stderr)
        n = sum(p.numel() for p in model.parameters())
        print(f"converted {n:,} parameters -> {args.output}")

    return run(work)


if __name__ == "__main__":
    raise SystemExit(main())
