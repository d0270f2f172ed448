"""Parameter names: the release's (original Wan / Hallo4) <-> ours (diffusers' Wan naming), key by key.

The mapping follows diffusers' own `convert_wan_transformer_to_diffusers` for the standard Wan/VACE names, plus
Hallo4's added modules (the table is in `hallo4.convert`'s docstring). Used by `python -m hallo4.convert`.
"""

from __future__ import annotations

import re

import torch

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
BLOCK_RE = re.compile(r"^(blocks|vace_blocks)\.(\d+)\.(.+)$")
WRAPPER_PREFIXES = ("model.diffusion_model.", "diffusion_model.", "module.", "_orig_mod.", "model.")


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
    m = BLOCK_RE.match(key)
    if m and to_ours:
        for old, new in _LEGACY_BLOCK:
            if m.group(3).startswith(old):
                key = f"{m.group(1)}.{m.group(2)}.{new}{m.group(3)[len(old) :]}"
                m = BLOCK_RE.match(key)
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
