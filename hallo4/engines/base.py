"""The one engine interface the app, the CLI and the arena call.

Both engines (`lite`, `hallo4`) implement `Engine.generate(request, progress) -> GenerationResult`.
Keep it small: anything engine-specific goes into `GenerationRequest.options`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from ..constants import FPS
from ..progress import Progress, ProgressCallback


@dataclass
class GenerationRequest:
    """What to animate and how.

    portrait: image file. audio: any audio file (or a video with an audio track).
    skeleton: None (audio-only: an idle skeleton is synthesised from the portrait), a path to a
      skeleton JSON / rendered skeleton video, or a `hallo4.skeleton.SkeletonSequence`.
    seed: None -> a random seed is drawn and returned in the result.
    size: the long side of the output in pixels (the engine may round it to its grid); None = the engine's
      default (lite: 512; hallo4: the canvas it was trained at, 832x480 / 480x832).
    max_seconds: cut the audio to this length (None = whole audio).
    output: where to write the mp4 (None -> a fresh file in the engine's output directory).
    options: engine-specific knobs (hallo4: steps, guidance, shift, prompt, negative_prompt,
      quantize, ...; lite: expressiveness, ...).
    """

    portrait: Path
    audio: Path
    skeleton: Any = None
    seed: int | None = None
    size: int | None = None
    max_seconds: float | None = None
    output: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.portrait = Path(self.portrait)
        self.audio = Path(self.audio)
        if self.output is not None:
            self.output = Path(self.output)
        if isinstance(self.skeleton, str):
            self.skeleton = Path(self.skeleton)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly parameters (paths as strings, skeleton summarised)."""
        d = (
            dataclasses.asdict(self)
            if not _has_custom_skeleton(self)
            else {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "skeleton"}
        )
        if _has_custom_skeleton(self):
            d["skeleton"] = type(self.skeleton).__name__
        return _jsonable(d)


@dataclass
class GenerationResult:
    """What came out: the mp4, the seed actually used, timings (seconds by stage), all parameters."""

    video: Path
    seed: int
    engine: str
    timings: dict[str, float] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    num_frames: int = 0
    fps: float = FPS

    def to_dict(self) -> dict[str, Any]:
        return _jsonable(dataclasses.asdict(self))


@runtime_checkable
class Engine(Protocol):
    name: str

    def generate(
        self, request: GenerationRequest, progress: Progress | ProgressCallback | None = None
    ) -> GenerationResult:
        """Render the request to an mp4. Reports progress and honours cancel via `progress`."""
        ...


def _has_custom_skeleton(req: GenerationRequest) -> bool:
    return req.skeleton is not None and not isinstance(req.skeleton, (str, Path))


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return repr(value)
