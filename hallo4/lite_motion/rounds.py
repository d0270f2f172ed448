"""Lite DPO rounds on disk: list, activate, roll back, read live metrics, and what a lite Arena clip records.

Layout (under `hallo4.paths.rounds_dir()`, i.e. HALLO4_DATA_DIR/rounds):

    lite/round-NNN/   train_config.json (written first: engine, parent, steps, beta, lr, votes...)
                      metrics.jsonl     (one JSON line per optimizer step, appended and flushed while training)
                      config.json + diffusion_pytorch_model.safetensors (the round's model, save_pretrained)
                      round.json        (written last: the round is finished; summary of the run)
    lite/active.json  {"round": "round-NNN"}; absent = the shipped base drives lite motion

This module must stay light (no torch / diffusers): Generate asks `active_lite_motion()` on every lite
request. trainer.lite_dpo writes the rounds; the Train tab lists, plots and activates them through here.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from .. import paths
from ..constants import file_sha256
from ..errors import InputError
from ..metrics_log import read_metrics

WEIGHTS_FILE = "diffusion_pytorch_model.safetensors"
DONE_FILE = "round.json"
BASE = "base"  # how clips and the UI name the shipped base model
MODEL_ID = "lite-motion"  # the model id lite-motion Arena clips are stored under (win-rate system name)


def lite_rounds_dir() -> Path:
    d = paths.rounds_dir() / "lite"
    d.mkdir(parents=True, exist_ok=True)
    return d


def lite_round_dir(name: str) -> Path:
    """The folder of lite round `name` ("round-NNN"); refuses names that are not plain round folders."""
    if not name or name != Path(name).name or not name.startswith("round-"):
        raise InputError("round", f"{name!r} is not a lite round name", "Use a name like round-001 from the list.")
    return lite_rounds_dir() / name


def model_path(round_name: str | None) -> Path | None:
    """Weights folder for `round_name` (None or "base" = the shipped base, returned as None)."""
    return None if round_name in (None, BASE) else lite_round_dir(round_name)


def _is_finished(d: Path) -> bool:
    return (d / WEIGHTS_FILE).is_file() and (d / DONE_FILE).is_file()


def all_lite_rounds() -> list[str]:
    """Every lite round folder, finished or not (a round being trained shows up here first), oldest first."""
    return sorted(p.name for p in lite_rounds_dir().glob("round-*") if p.is_dir())


def list_lite_rounds() -> list[str]:
    """Finished lite rounds (weights saved and round.json written), oldest first: what can be activated."""
    return [n for n in all_lite_rounds() if _is_finished(lite_rounds_dir() / n)]


def reserve_lite_round() -> str:
    """Create the next round folder (round-NNN, one more than the highest) and return its name.

    The app reserves the name before it starts `python -m trainer.lite_dpo --out ...`, so it knows which
    metrics.jsonl to plot while the round trains. mkdir without exist_ok: two reservations never share."""
    root = lite_rounds_dir()
    while True:
        nums = [int(n.split("-")[1]) for n in all_lite_rounds() if n.split("-")[1].isdigit()]
        name = f"round-{max(nums, default=0) + 1:03d}"
        try:
            (root / name).mkdir()
            return name
        except FileExistsError:
            continue


def activate_lite_round(name: str | None) -> str:
    """Make Generate's lite motion come from round `name` (None or "base" = roll back to the shipped base).

    Returns the active name ("base" after a roll back). The marker is replaced atomically."""
    marker = lite_rounds_dir() / "active.json"
    if name in (None, BASE):
        marker.unlink(missing_ok=True)
        return BASE
    if name not in list_lite_rounds():
        raise InputError(
            "round",
            f"there is no finished lite round called {name!r}",
            f"Pick one of: {', '.join(list_lite_rounds()) or '(none yet: train a round first)'}.",
            path=str(lite_rounds_dir() / str(name)),
        )
    tmp = marker.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({"round": name}))
    tmp.replace(marker)
    return name


def active_lite_round() -> str | None:
    """The active lite round's name, or None when the shipped base is active (or the marked round is gone)."""
    marker = lite_rounds_dir() / "active.json"
    if not marker.is_file():
        return None
    try:
        name = json.loads(marker.read_text()).get("round")
    except ValueError:
        return None  # a hand-edited, unreadable marker: the base, as if none were active
    return name if isinstance(name, str) and name in list_lite_rounds() else None


def active_lite_motion() -> str:
    """What the lite engine's options["motion"] should be: the active round's folder, or "base"."""
    name = active_lite_round()
    return str(lite_round_dir(name)) if name else BASE


def round_metrics(name: str | None = None) -> list[dict[str, Any]]:
    """Rows of a lite round's metrics.jsonl (None = the newest round, finished or still training).

    Safe while the trainer appends: a partly written last line is left out. Keys per row: step, loss,
    implicit_acc, reward_margin, lr, seconds (see trainer.lite_dpo)."""
    if name is None:
        rounds = all_lite_rounds()
        if not rounds:
            return []
        name = rounds[-1]
    return read_metrics(lite_round_dir(name) / "metrics.jsonl")


def lite_round_info(name: str) -> dict[str, Any]:
    """What the Train tab shows for a round: status ("training", "finished", "failed" with "error", or "empty":
    reserved, not started), steps done of total, parent, vote count, and round.json's summary once finished.
    A trainer killed outright (SIGKILL) cannot write failed.json: the app that started it knows it died."""
    d = lite_round_dir(name)
    if not d.is_dir():
        raise InputError("round", f"there is no lite round called {name!r}", "Pick a round from the list.")
    cfg = _read_json(d / "train_config.json")
    rows = round_metrics(name)
    info: dict[str, Any] = {
        "name": name,
        "status": _status(d, cfg),
        "steps_done": len(rows),
        "steps": cfg.get("steps"),
        "parent": cfg.get("parent", BASE),
        "votes": cfg.get("votes"),
        "active": active_lite_round() == name,
    }
    info.update(_read_json(d / "failed.json"))
    info.update(_read_json(d / DONE_FILE))
    return info


def _status(d: Path, cfg: dict[str, Any]) -> str:
    if _is_finished(d):
        return "finished"
    if (d / "failed.json").is_file():
        return "failed"  # the trainer stopped (cancelled, error); "error" in the info says why
    return "training" if cfg else "empty"


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text()) if path.is_file() else {}
    except ValueError:
        return {}  # being written: the caller shows the round as still in progress


_sha_cache: dict[tuple[str, int, int], str] = {}


def weights_sha256(round_name: str | None) -> str:
    """Content hash of a round's (or the base's) weights file: a clip records it so a rebuild can tell
    that the weights it samples from are the ones that made the clip."""
    from . import BASE_WEIGHTS

    path = (model_path(round_name) or BASE_WEIGHTS) / WEIGHTS_FILE
    if not path.is_file():
        raise InputError(
            "motion model",
            f"the weights of lite round {round_name or BASE!r} are missing",
            "Pick a finished round, or rebuild the base with `python -m hallo4.lite_motion.train_base`.",
            path=str(path),
        )
    st = path.stat()
    key = (str(path), st.st_mtime_ns, st.st_size)
    if key not in _sha_cache:
        _sha_cache[key] = file_sha256(path)
    return _sha_cache[key]


def lite_clip_options(round_name: str | None, seed: int) -> dict[str, Any]:
    """Everything a lite Arena clip of motion model `round_name` (None / "base" = shipped base) needs.

    Returns {"engine": "lite", "seed": seed, "options": {...}, "model_id": ..., "adapter": ...,
    "parameters": {"lite_motion": {...}}}:
    - generate with GenerateArgs(engine="lite", seed=seed, extra=options, ...) (options: motion = the
      round's folder or "base", expressiveness = 1.0 so the pair differs only by the model's sample);
    - store with add_clip(..., model_id=model_id, adapter=adapter, seed=seed,
      parameters={**result.parameters, **parameters}); win rates then compare "lite/lite-motion" (base)
      with "lite/lite-motion@round-NNN";
    - then call hallo4.lite_motion.clips.clip_motion(store, clip) once to cache the clip's motion.
    The trainer uses only clips whose parameters carry "lite_motion" (round, seed, weights hash)."""
    name = None if round_name in (None, BASE) else round_name
    if name is not None and name not in list_lite_rounds():
        raise InputError("round", f"there is no finished lite round called {name!r}", "Pick a round from the list.")
    seed = int(seed)
    meta = {"round": name or BASE, "seed": seed, "weights_sha256": weights_sha256(name)}
    return {
        "engine": "lite",
        "seed": seed,
        "options": {"motion": str(lite_round_dir(name)) if name else BASE, "expressiveness": 1.0},
        "model_id": MODEL_ID,
        "adapter": name,
        "parameters": {"lite_motion": meta},
    }


def arena_lite_rounds() -> tuple[str | None, str | None]:
    """The two motion models of a lite Arena pair: (active round, base) when a round is active, else
    (base, base) with different seeds (votes then still teach the next round what people prefer)."""
    return active_lite_round(), None
