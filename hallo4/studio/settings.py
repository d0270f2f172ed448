"""The studio's saved settings (data_dir/settings.json) as one typed value.

"none" and "" in the file (what older versions and the Models tab's radios wrote) become None here, once,
so no caller compares against the string "none".
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import paths

log = logging.getLogger("hallo4.studio")

_NONE_STRINGS = ("none", "")


def _opt(value: Any) -> str | None:
    """None for a missing choice ("none", "" or null), the string otherwise."""
    return None if value is None or str(value).strip().lower() in _NONE_STRINGS else str(value)


@dataclass(frozen=True)
class Settings:
    """What the Models and Train tabs change and the engines read.

    quantize: the hallo4 precision choice (None = auto, "release", "bf16", "8bit", "fp32").
    offload: None (all on the GPU), "model" or "group".
    adapter: the active hallo4 DPO round's folder, None = the base model.
    """

    model: str
    quantize: str | None = None
    offload: str | None = None
    adapter: str | None = None
    vocal_separation: str = "auto"

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Settings:
        return cls(
            model=str(raw.get("model") or default_model()),
            quantize=_opt(raw.get("quantize")),
            offload=_opt(raw.get("offload")),
            adapter=_opt(raw.get("adapter")),
            vocal_separation=str(raw.get("vocal_separation") or "auto"),
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def default_model() -> str:
    return os.environ.get("HALLO4_MODEL") or str(paths.models_dir() / "hallo4")


def settings_path() -> Path:
    return paths.data_dir() / "settings.json"


def load_settings() -> Settings:
    """The saved settings over the defaults (a missing or unreadable file = the defaults)."""
    raw: dict[str, Any] = {}
    path = settings_path()
    if path.exists():
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("Ignoring unreadable settings file %s (%s); using the defaults.", path, exc)
    return Settings.from_dict(raw if isinstance(raw, dict) else {})


def save_settings(**changes: Any) -> Settings:
    """Change some settings and write them atomically; returns the new settings."""
    unknown = set(changes) - {f.name for f in dataclasses.fields(Settings)}
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    new = Settings.from_dict({**load_settings().to_dict(), **changes})
    tmp = settings_path().with_suffix(".tmp")
    tmp.write_text(json.dumps(new.to_dict(), indent=2))
    tmp.replace(settings_path())
    return new
