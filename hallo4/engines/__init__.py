"""Engines by name. Imports are lazy so that the lite engine never pulls in torch/diffusers."""

from __future__ import annotations

from typing import Any

from .base import Engine, GenerationRequest, GenerationResult

ENGINE_NAMES = ("lite", "hallo4")


def get_engine(name: str, **kwargs: Any) -> Engine:
    """Build an engine by name; kwargs go to its constructor (e.g. model=..., quantize=...)."""
    from ..errors import InputError

    if name == "lite":
        from .lite import LiteEngine

        return LiteEngine(**kwargs)
    if name == "hallo4":
        from .diffusion import DiffusionEngine

        return DiffusionEngine(**kwargs)
    raise InputError("engine", f"unknown engine {name!r}", f"Choose one of: {', '.join(ENGINE_NAMES)}.")


__all__ = ["Engine", "GenerationRequest", "GenerationResult", "get_engine", "ENGINE_NAMES"]
