"""DPO training rounds: start one as a background process, follow its metrics, stop it, activate a result."""

from __future__ import annotations

import enum
import importlib.util
import json
import logging
import subprocess
import sys
from typing import Any

from .. import paths
from ..errors import Hallo4Error, InputError, MissingWeightsError
from .arena import store
from .generation import ROOT
from .models import cuda_available, hallo4_weights_present
from .settings import Settings, load_settings, save_settings

log = logging.getLogger("hallo4.studio")


class TrainingState(enum.Enum):
    """Where the app's training process is (the Train tab switches its timer and Stop button on this)."""

    IDLE = "idle"  # no round started since the app started
    RUNNING = "running"
    FINISHED = "finished"  # exit code 0
    FAILED = "failed"  # a non-zero exit code (see train.log)
    STOPPED = "stopped"  # stopped from the Train tab


def trainer_available() -> bool:
    return importlib.util.find_spec("trainer.dpo") is not None


def list_rounds() -> list[str]:
    return sorted(p.name for p in paths.rounds_dir().glob("round-*") if p.is_dir())


def read_metrics(path) -> list[dict[str, Any]]:
    """The rows of a metrics.jsonl (a line being written right now is skipped)."""
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue  # a line being written right now: the next read has it
    return out


def round_metrics(name: str | None) -> list[dict[str, Any]]:
    """A hallo4 round's logged metrics (None = the latest round)."""
    if not name:
        rounds = list_rounds()
        if not rounds:
            return []
        name = rounds[-1]
    return read_metrics(paths.rounds_dir() / name / "metrics.jsonl")


_training: dict[str, Any] = {}  # "current": the Popen of the running/last round; "stopped": True after Stop


def start_round(steps: int, beta: float, lr: float, rank: int) -> str:
    """Start a DPO round as a background process; returns a status line."""
    if not trainer_available():
        raise Hallo4Error(
            "The DPO trainer (trainer/dpo.py) is not part of this build yet.",
            hint="Update Hallo4 Studio; votes keep accumulating meanwhile.",
        )
    usable = len(store().usable_pairs())
    if usable == 0:
        raise InputError(
            "training data",
            "there are no usable pairs yet (ties, both-bad and skips carry no signal)",
            "Collect some decisive A/B votes in the Arena first.",
        )
    if training_state() is TrainingState.RUNNING:
        raise InputError("training", "a round is already running", "Wait for it to finish or stop it.")
    model = load_settings().model
    if not hallo4_weights_present(model):
        raise MissingWeightsError(
            f"Training needs the hallo4 weights, which are not in {model}.", hint="Get them in the Models tab first."
        )
    log_file = paths.rounds_dir() / "train.log"
    launch(train_command(steps, beta, lr, rank, model=model), log_file)
    return f"Started a DPO round on {usable} usable pairs ({steps} steps). Log: {log_file.name} in the rounds folder."


def launch(cmd: list[str], log_file) -> None:
    """Run a trainer command in the background, its output in `log_file` (one process at a time)."""
    with open(log_file, "w") as out:  # the child keeps its own handle
        _training["current"] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    _training["stopped"] = False


def train_command(steps: int, beta: float, lr: float, rank: int, *, model: str | None = None) -> list[str]:
    """The `python -m trainer.dpo` command line for a round from the app's store (bf16 + checkpointing on a GPU)."""
    cmd = [sys.executable, "-m", "trainer.dpo", "--store", str(paths.store_dir())]
    cmd += ["--model", model or load_settings().model, "--out", str(paths.rounds_dir())]
    cmd += ["--steps", str(int(steps)), "--beta", str(float(beta)), "--lr", str(float(lr)), "--rank", str(int(rank))]
    if cuda_available():
        cmd += ["--mixed-precision", "bf16", "--gradient-checkpointing"]
    return cmd


def stop_round() -> str:
    proc = _training.get("current")
    if proc is None or proc.poll() is not None:
        return "No round is running."
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
    _training["stopped"] = True
    return "Stopped the running round (its last checkpoint can be resumed with python -m trainer.dpo --resume)."


def training_state() -> TrainingState:
    proc = _training.get("current")
    if proc is None:
        return TrainingState.IDLE
    rc = proc.poll()
    if rc is None:
        return TrainingState.RUNNING
    if _training.get("stopped"):
        return TrainingState.STOPPED
    return TrainingState.FINISHED if rc == 0 else TrainingState.FAILED


def training_status() -> str:
    """The state as a sentence for the Train tab (callers compare training_state(), never this text)."""
    state = training_state()
    if state is TrainingState.IDLE:
        return "No round running."
    if state is TrainingState.RUNNING:
        return "A round is running."
    if state is TrainingState.STOPPED:
        return "The last round was stopped."
    return f"The last round finished with exit code {_training['current'].returncode}."


def activate_round(name: str | None) -> Settings:
    """Make Generate use a round's adapter (None = the base model: roll back)."""
    if name:
        path = paths.rounds_dir() / name
        if not (path / "adapter_model.safetensors").exists() and not any(path.glob("**/adapter_model.safetensors")):
            raise InputError(
                "round", f"{name} has no adapter_model.safetensors", "Pick a finished round.", path=str(path)
            )
        return save_settings(adapter=str(path))
    return save_settings(adapter=None)
