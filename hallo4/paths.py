"""Where the app keeps its data: one root (HALLO4_DATA_DIR, default ./data) for outputs, the
preference store, rounds, caches and models. On a Space point it at persistent storage (/data)."""

from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    root = Path(os.environ.get("HALLO4_DATA_DIR", "data")).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    return root


def subdir(name: str) -> Path:
    path = data_dir() / name
    path.mkdir(parents=True, exist_ok=True)
    return path


def outputs_dir() -> Path:
    """Generated videos."""
    return subdir("outputs")


def store_dir() -> Path:
    """The A/B preference store (SQLite + content-addressed media)."""
    return subdir("store")


def rounds_dir() -> Path:
    """DPO rounds (adapters, metrics)."""
    return subdir("rounds")


def models_dir() -> Path:
    """Downloaded / converted weights."""
    return subdir("models")


def cache_dir() -> Path:
    """Prompt-embedding cache, result cache."""
    return subdir("cache")
