"""8-bit weight quantisation of the Hallo4 DiT (bitsandbytes LLM.int8, `Linear8bitLt`).

Two ways, same result:

* `quantize_8bit(model)` swaps every `nn.Linear` (except `skip`) for `bnb.nn.Linear8bitLt`
  (has_fp16_weights=False, threshold=6.0) in place; the int8 weights are made when the layer is moved
  to its device. This works on CPU too (bitsandbytes >= 0.45 has CPU int8 kernels) and on a model that
  is already loaded, so it is what the CPU path, the tests and the benchmark use.
* `bnb_quantization_config()` returns diffusers' `BitsAndBytesConfig(load_in_8bit=True, ...)` for
  `Hallo4Transformer3DModel.from_pretrained(..., quantization_config=...)`: it quantises while loading
  (never holding the bf16 copy) but diffusers refuses it without CUDA, so use it on GPU machines.

Norms (not Linear anyway), the patch/time/text embeddings, the output head and the audio/pose
projectors stay in full precision (`DEFAULT_SKIP`): they are small and sensitive.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
import torch.nn as nn

# Module-name prefixes kept in full precision (matched as `name == p` or `name.startswith(p + ".")`).
DEFAULT_SKIP: tuple[str, ...] = (
    "condition_embedder",
    "patch_embedding",
    "vace_patch_embedding",
    "proj_out",
    "audio_proj",
    "pose_proj",
)


def _skipped(name: str, skip: Iterable[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in skip)


def quantize_8bit(
    module: nn.Module, skip: Iterable[str] = DEFAULT_SKIP, *, threshold: float = 6.0, device=None
) -> nn.Module:
    """Replace the `nn.Linear` layers of `module` (in place) by int8 `bnb.nn.Linear8bitLt`.

    `skip`: module-name prefixes to keep as they are. `device`: where the int8 weights live (default:
    where each Linear's weight is now; must not be "meta"). Biases keep their dtype. Returns `module`.
    """
    import bitsandbytes as bnb

    skip = tuple(skip)
    targets = [
        (name, child)
        for name, child in module.named_modules()
        if type(child) is nn.Linear and name and not _skipped(name, skip)
    ]
    for name, linear in targets:
        dev = torch.device(device) if device is not None else linear.weight.device
        if dev.type == "meta" or linear.weight.is_meta:
            raise ValueError(f"cannot quantise {name}: its weights are not loaded (meta device)")
        q = bnb.nn.Linear8bitLt(
            linear.in_features,
            linear.out_features,
            bias=linear.bias is not None,
            has_fp16_weights=False,
            threshold=threshold,
            device="meta",
        )
        weight = linear.weight.data
        if weight.dtype not in (torch.float16, torch.bfloat16, torch.float32):
            weight = weight.float()
        q.weight = bnb.nn.Int8Params(
            weight.to("cpu" if dev.type == "meta" else weight.device).contiguous(),
            requires_grad=False,
            has_fp16_weights=False,
        )
        if linear.bias is not None:
            q.bias = nn.Parameter(linear.bias.data, requires_grad=False)
        q = q.to(dev)  # quantises (int8 weight + per-row scale SCB)
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        setattr(parent, attr, q)
    return module


def bnb_quantization_config(skip: Iterable[str] = DEFAULT_SKIP, *, threshold: float = 6.0):
    """diffusers `BitsAndBytesConfig` for 8-bit loading with `from_pretrained` (CUDA only)."""
    from diffusers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold, llm_int8_skip_modules=list(skip))


def weight_memory_bytes(module: nn.Module) -> int:
    """Bytes held by the parameters and buffers of `module` (int8 weights count 1 byte, plus their
    per-row float32 scales). Works on meta-device modules too (counts what they would hold)."""
    total = 0
    seen: set[int] = set()
    for t in list(module.parameters()) + list(module.buffers()):
        if id(t) in seen:
            continue
        seen.add(id(t))
        total += t.numel() * t.element_size()
        scb = getattr(t, "SCB", None)
        if isinstance(scb, torch.Tensor):
            total += scb.numel() * scb.element_size()
    return total


def estimate_weight_memory(
    module: nn.Module, *, skip: Iterable[str] = DEFAULT_SKIP, dtype: torch.dtype = torch.bfloat16
) -> dict[str, int]:
    """Analytic weight memory of `module` (typically built on the meta device) in `dtype` and after
    `quantize_8bit(skip=skip)`: quantised Linear weights 1 byte + a float32 scale per output row, all
    other parameters (biases included) in `dtype`. Buffers are not counted.

    Returns {"params", "linear_params_quantized", "bytes_full", "bytes_8bit", "bytes_8bit_simple"}
    where "bytes_8bit_simple" counts every quantised Linear parameter (bias too) at 1 byte, the rest
    at `dtype` size (the usual back-of-envelope figure).
    """
    skip = tuple(skip)
    size = torch.empty((), dtype=dtype, device="meta").element_size()
    params = sum(p.numel() for p in module.parameters())
    q_weight = q_bias = q_rows = 0
    for name, child in module.named_modules():
        if type(child) is nn.Linear and name and not _skipped(name, skip):
            q_weight += child.weight.numel()
            q_rows += child.out_features
            q_bias += child.bias.numel() if child.bias is not None else 0
    return {
        "params": params,
        "linear_params_quantized": q_weight + q_bias,
        "bytes_full": params * size,
        "bytes_8bit": q_weight + q_rows * 4 + (params - q_weight) * size,
        "bytes_8bit_simple": (q_weight + q_bias) + (params - q_weight - q_bias) * size,
    }
