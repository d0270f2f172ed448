"""A DPO round's LoRA adapter on the hallo4 transformer: find its file, inject it (PEFT), load it strictly."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError, MissingWeightsError


def find_adapter_file(directory: Path) -> Path:
    """adapter_model.safetensors (PEFT, what trainer.dpo writes) or pytorch_lora_weights.safetensors (diffusers)."""
    for name in ("adapter_model.safetensors", "pytorch_lora_weights.safetensors"):
        if (directory / name).is_file():
            return directory / name
        found = sorted(directory.glob(f"**/{name}"))
        if found:
            return found[0]
    raise MissingWeightsError(
        f"No LoRA adapter in {directory} (expected adapter_model.safetensors or pytorch_lora_weights.safetensors).",
        hint="Pick a finished DPO round, or train one in the Train tab.",
    )


def _lora_config(cleaned: dict, path: Path):
    """The adapter's LoraConfig: its adapter_config.json, else rank and target modules read off the weights."""
    from peft import LoraConfig

    cfg_path = path.parent / "adapter_config.json"
    if cfg_path.is_file():
        raw = json.loads(cfg_path.read_text())
        allowed = set(LoraConfig.__dataclass_fields__)
        return LoraConfig(**{k: v for k, v in raw.items() if k in allowed and k not in ("peft_type", "task_type")})
    a_keys = [k for k in cleaned if ".lora_A." in k]
    if not a_keys:
        raise InputError("adapter", "the safetensors file holds no LoRA weights", path=str(path))
    rank = int(cleaned[a_keys[0]].shape[0])
    targets = sorted({k.split(".lora_A.")[0] for k in a_keys})
    return LoraConfig(r=rank, lora_alpha=rank, target_modules=targets)


def apply_lora(transformer, directory: Path, adapter_name: str) -> None:
    """Inject a PEFT LoRA into the transformer and load its weights (strict about unexpected keys)."""
    from peft.utils import set_peft_model_state_dict
    from safetensors.torch import load_file

    path = find_adapter_file(Path(directory))
    cleaned = {}
    for key, value in load_file(str(path)).items():
        for prefix in ("base_model.model.", "transformer."):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        cleaned[key] = value
    transformer.add_adapter(_lora_config(cleaned, path), adapter_name=adapter_name)
    result = set_peft_model_state_dict(transformer, cleaned, adapter_name=adapter_name)
    unexpected = [k for k in getattr(result, "unexpected_keys", []) if "lora" in k]
    if unexpected:
        transformer.delete_adapters(adapter_name)
        raise InputError(
            "adapter",
            f"{len(unexpected)} weights do not fit this model (e.g. {unexpected[0]})",
            "The adapter was trained for a different model.",
            path=str(path),
        )
    transformer.set_adapters([adapter_name])
