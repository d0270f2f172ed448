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


@pytest.fixture(scope="session")
def lite_clip(tmp_path_factory, portrait_path, speech_path):
    """One real lite-engine clip (3 s, 384 px: the meter needs a face of ~80 px or more) shared by the tests that only read it."""
    from hallo4.engines.base import GenerationRequest
    from hallo4.engines.lite import LiteEngine

    out = tmp_path_factory.mktemp("lite") / "clip.mp4"
    req = GenerationRequest(portrait=portrait_path, audio=speech_path, seed=7, size=384, max_seconds=3.0, output=out)
    return LiteEngine().generate(req)
