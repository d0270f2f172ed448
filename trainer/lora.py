"""The round's LoRA adapter on the Hallo4 transformer: added, read, checksummed, saved (PEFT layout)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch

from .dpo_config import ADAPTER, DPOConfig


def add_lora(transformer, cfg: DPOConfig) -> None:
    """Add the trainable adapter. Its random init is drawn from `cfg.seed`, so every process (and every
    rerun) starts from the same weights."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        transformer.add_adapter(
            LoraConfig(
                r=cfg.rank,
                lora_alpha=cfg.lora_alpha or cfg.rank,
                target_modules=cfg.target_modules,
                init_lora_weights=True,
            ),
            adapter_name=ADAPTER,
        )
    transformer.set_adapters([ADAPTER])


def lora_state(transformer) -> dict[str, torch.Tensor]:
    from peft.utils import get_peft_model_state_dict

    return {
        k: v.detach().cpu().contiguous()
        for k, v in get_peft_model_state_dict(transformer, adapter_name=ADAPTER).items()
    }


def adapter_checksum(transformer) -> str:
    """sha256 over the adapter's tensors (names and bytes): equal on every rank iff the adapters are identical."""
    h = hashlib.sha256()
    for k, v in sorted(lora_state(transformer).items()):
        h.update(k.encode())
        h.update(v.float().numpy().tobytes())
    return h.hexdigest()


def save_adapter(transformer, cfg: DPOConfig, directory: Path) -> None:
    from peft import LoraConfig
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    save_file(lora_state(transformer), str(directory / "adapter_model.safetensors"))
    LoraConfig(r=cfg.rank, lora_alpha=cfg.lora_alpha or cfg.rank, target_modules=cfg.target_modules).save_pretrained(
        str(directory)
    )
