"""Shared fixtures: real example media from examples/, a scratch directory per test, and the setups
several test files repeat (a tiny random Hallo4 pipeline, rendering one clip with a real engine)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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
def hopper_path() -> Path:
    """The second example portrait: another face size, place and canvas than astronaut.png."""
    return EXAMPLES / "portraits" / "grace_hopper.jpg"


@pytest.fixture(scope="session")
def speech_path() -> Path:
    return EXAMPLES / "audio" / "hello.wav"


@pytest.fixture(scope="session")
def tiny_pipeline_dir(tmp_path_factory) -> Iterator[Path]:
    """One tiny random Hallo4 pipeline folder (`make_tiny_pipeline`, seed 0) for the whole session.
    Tests only read it (one that writes into a pipeline folder takes `tiny_pipeline_copy`); at the end of the
    session the folder must be as it was, so one test's change cannot leak into another unnoticed."""
    from hallo4.testing import make_tiny_pipeline

    folder = make_tiny_pipeline(tmp_path_factory.mktemp("tiny-shared") / "hallo4-tiny")
    before = _tree_state(folder)
    yield folder
    assert _tree_state(folder) == before, "a test changed the shared tiny pipeline: use tiny_pipeline_copy"


def _tree_state(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


@pytest.fixture
def tiny_pipeline_copy(tiny_pipeline_dir, tmp_path) -> Path:
    """A private copy of the shared tiny pipeline, for a test that writes into the pipeline folder."""
    import shutil

    return Path(shutil.copytree(tiny_pipeline_dir, tmp_path / "hallo4-tiny"))


@pytest.fixture
def data_dir(tmp_path, monkeypatch) -> Path:
    """HALLO4_DATA_DIR set to a fresh folder in the test's tmp_path: nothing lands in the user's data folder.
    Files that need it for every test say `pytestmark = pytest.mark.usefixtures("data_dir")`."""
    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def render_clip(engine: str = "lite", *, engine_kwargs: dict[str, Any] | None = None, **request: Any):
    """Render one clip with a real engine: `GenerationRequest(**request)` on `get_engine(engine, **engine_kwargs)`."""
    from hallo4.engines import GenerationRequest, get_engine

    return get_engine(engine, **(engine_kwargs or {})).generate(GenerationRequest(**request))


@pytest.fixture
def generate_clip(tmp_path):
    """`generate_clip(engine="lite", *, engine_kwargs=None, **request) -> GenerationResult`: `request` holds
    the GenerationRequest fields; without `output` the clip goes to a fresh file in the test's tmp_path."""
    counter = itertools.count()

    def generate(engine: str = "lite", *, engine_kwargs: dict[str, Any] | None = None, **request: Any):
        request.setdefault("output", tmp_path / f"{engine}-{next(counter)}.mp4")
        return render_clip(engine, engine_kwargs=engine_kwargs, **request)

    return generate


def _write_wav(path: Path, samples, sr: int | None = None, *, shift: float = 0.0, subtype: str | None = None) -> Path:
    import numpy as np
    import soundfile as sf

    from hallo4.constants import SAMPLE_RATE

    sr = sr or SAMPLE_RATE
    audio = np.asarray(samples, np.float32)
    pad = np.zeros((int(round(abs(shift) * sr)),) + audio.shape[1:], np.float32)
    if shift > 0:  # the sound starts `shift` s later (leading silence)
        audio = np.concatenate([pad, audio])
    elif shift < 0:  # the sound starts `-shift` s earlier (cut at the start, silence at the end: same length)
        audio = np.concatenate([audio[len(pad) :], pad])
    sf.write(path, audio, sr, subtype=subtype)
    return Path(path)


@pytest.fixture(scope="session")
def write_wav():
    """`write_wav(path, samples, sr=SAMPLE_RATE, *, shift=0.0, subtype=None) -> Path`: float samples (mono, or
    (N, channels)) to a wav file; `shift` > 0 delays the sound by that many seconds (leading silence), < 0
    advances it (keeps the length)."""
    return _write_wav


@pytest.fixture(scope="session")
def lite_clip(tmp_path_factory, portrait_path, speech_path):
    """One real lite-engine clip (3 s, 384 px: the meter needs a face of ~80 px or more) shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("lite") / "clip.mp4"
    return render_clip(portrait=portrait_path, audio=speech_path, seed=7, size=384, max_seconds=3.0, output=out)
