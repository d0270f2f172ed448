"""Shared fixtures: real example media from examples/, a scratch directory per test."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# Never let a test reach a model hub: everything must come from the repo or a wheel.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    return EXAMPLES


@pytest.fixture(scope="session")
def portrait_path() -> Path:
    return EXAMPLES / "portraits" / "astronaut.png"


@pytest.fixture(scope="session")
def speech_path() -> Path:
    return EXAMPLES / "audio" / "hello.wav"
