"""Lite DPO rounds on disk: list, activate, roll back (the lite counterpart of studio.activate_round).

Rounds live in `rounds_dir()/lite/round-NNN/` (trainer.lite_dpo writes them: save_pretrained + metrics.jsonl);
the active one is named in `rounds_dir()/lite/active.json`. Generate passes `active_lite_motion()` to the
lite engine as options["motion"]. Not yet wired into the Train tab / Arena (issue 16, step 5).
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import paths
from ..errors import InputError

WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"


def lite_rounds_dir() -> Path:
    d = paths.rounds_dir() / "lite"
    d.mkdir(parents=True, exist_ok=True)
    return d


def list_lite_rounds() -> list[str]:
    """Finished lite rounds (those with saved weights), oldest first."""
    return sorted(p.name for p in lite_rounds_dir().glob("round-*") if (p / WEIGHTS_FILE).is_file())


def activate_lite_round(name: str | None) -> str:
    """Make Generate's lite motion come from round `name` (None = roll back to the shipped base)."""
    marker = lite_rounds_dir() / "active.json"
    if name is None:
        marker.unlink(missing_ok=True)
        return "base"
    if name not in list_lite_rounds():
        raise InputError(
            "round",
            f"there is no finished lite round called {name!r}",
            f"Pick one of: {', '.join(list_lite_rounds()) or '(none yet: train a round first)'}.",
            path=str(lite_rounds_dir() / name),
        )
    marker.write_text(json.dumps({"round": name}))
    return name


def active_lite_motion() -> str:
    """What the lite engine's options["motion"] should be: the active round's folder, or "base"."""
    marker = lite_rounds_dir() / "active.json"
    if not marker.is_file():
        return "base"
    name = json.loads(marker.read_text()).get("round")
    path = lite_rounds_dir() / str(name)
    return str(path) if (path / WEIGHTS_FILE).is_file() else "base"
