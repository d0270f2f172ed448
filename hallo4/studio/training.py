"""Training rounds for both engines: start one as a background process, follow its metrics, stop it,
list, activate and roll back the results.

hallo4 rounds (`python -m trainer.dpo`, LoRA adapters in rounds/round-NNN) need the hallo4 weights;
lite rounds (`python -m trainer.lite_dpo`, the lite motion model in rounds/lite/round-NNN, see
hallo4.lite_motion.rounds) run on any CPU in minutes. One round runs at a time (they share the machine).
"""

from __future__ import annotations

import enum
import importlib.util
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from .. import paths
from ..errors import Hallo4Error, InputError, MissingWeightsError
from ..lite_motion import rounds as lite_rounds
from ..metrics_log import read_metrics
from .arena import store
from .generation import ROOT
from .models import cuda_available, hallo4_weights_present
from .settings import load_settings, save_settings

log = logging.getLogger("hallo4.studio")

ENGINES = ("lite", "hallo4")


class TrainingState(enum.Enum):
    """Where the app's training process is (the Train tab switches its timer and Stop button on this)."""

    IDLE = "idle"  # no round started since the app started
    RUNNING = "running"
    FINISHED = "finished"  # exit code 0
    FAILED = "failed"  # a non-zero exit code (see the round's log)
    STOPPED = "stopped"  # stopped from the Train tab


def _check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise InputError("engine", f"unknown engine {engine!r}", f"Choose one of: {', '.join(ENGINES)}.")
    return engine


def trainer_available(engine: str = "hallo4") -> bool:
    module = "trainer.dpo" if engine == "hallo4" else "trainer.lite_dpo"
    return importlib.util.find_spec(module) is not None


def list_rounds(engine: str = "hallo4") -> list[str]:
    """Finished rounds of `engine` that can be activated, oldest first."""
    if _check_engine(engine) == "lite":
        return lite_rounds.list_lite_rounds()
    return sorted(p.name for p in paths.rounds_dir().glob("round-*") if p.is_dir())


def active_round(engine: str = "hallo4") -> str | None:
    """The round Generate uses for `engine` (None = the base model)."""
    if _check_engine(engine) == "lite":
        return lite_rounds.active_lite_round()
    adapter = load_settings().adapter
    return Path(adapter).name if adapter else None


def round_metrics(name: str | None, engine: str = "hallo4") -> list[dict[str, Any]]:
    """A round's logged metrics: step, loss, implicit_acc... (None = the round training now, else the newest)."""
    if name is None and running_round(engine):
        name = running_round(engine)
    if _check_engine(engine) == "lite":
        return lite_rounds.round_metrics(name)
    if not name:
        rounds = list_rounds("hallo4")
        if not rounds:
            return []
        name = rounds[-1]
    return read_metrics(paths.rounds_dir() / name / "metrics.jsonl")


_training: dict[str, Any] = {}  # current: Popen; engine; round (lite: its reserved name); stopped: bool


def running_round(engine: str) -> str | None:
    """The name of the round of `engine` being trained right now (lite only; hallo4 names its own)."""
    if training_state() is TrainingState.RUNNING and _training.get("engine") == engine:
        return _training.get("round")
    return None


def start_round(steps: int, beta: float, lr: float, rank: int, engine: str = "hallo4") -> str:
    """Start a DPO round of `engine` as a background process; returns a status line."""
    if not trainer_available(_check_engine(engine)):
        raise Hallo4Error(
            f"The {engine} DPO trainer is not part of this build.",
            hint="Update Hallo4 Studio; votes keep accumulating meanwhile.",
        )
    if training_state() is TrainingState.RUNNING:
        raise InputError("training", "a round is already running", "Wait for it to finish or stop it.")
    if engine == "lite":
        return _start_lite(steps, beta, lr)
    usable = len(store().usable_pairs())
    if usable == 0:
        raise InputError(
            "training data",
            "there are no usable pairs yet (ties, both-bad and skips carry no signal)",
            "Collect some decisive A/B votes in the Arena first.",
        )
    model = load_settings().model
    if not hallo4_weights_present(model):
        raise MissingWeightsError(
            f"Training needs the hallo4 weights, which are not in {model}.", hint="Get them in the Models tab first."
        )
    log_file = paths.rounds_dir() / "train.log"
    launch(train_command(steps, beta, lr, rank, model=model), log_file, engine="hallo4")
    return f"Started a DPO round on {usable} usable pairs ({steps} steps). Log: {log_file.name} in the rounds folder."


def lite_min_votes() -> int:
    """Usable lite votes a round needs (HALLO4_LITE_MIN_VOTES, else the trainer's own minimum)."""
    from trainer.lite_dpo import MIN_LITE_VOTES

    return int(os.environ.get("HALLO4_LITE_MIN_VOTES") or MIN_LITE_VOTES)


def lite_votes() -> tuple[int, dict[str, int]]:
    """(usable lite votes, {reason: count} of decisive pairs left out) from the Arena's store."""
    from trainer.lite_votes import count_lite_votes

    return count_lite_votes(store())


def _start_lite(steps: int, beta: float, lr: float) -> str:
    """Refuse early (too few votes: the message says how many more), reserve the round, run the trainer."""
    from trainer.lite_votes import too_few_votes_error

    have, skipped = lite_votes()
    need = lite_min_votes()
    if have < need:
        raise too_few_votes_error(have, need, skipped)
    name = lite_rounds.reserve_lite_round()
    out = lite_rounds.lite_round_dir(name)
    launch(lite_train_command(steps, beta, lr, out=out, min_votes=need), out / "train.log", engine="lite", name=name)
    return f"Started lite {name} on {have} usable lite votes ({steps} steps). The plot below follows it live."


def lite_train_command(steps: int, beta: float, lr: float, *, out: Path, min_votes: int) -> list[str]:
    """The `python -m trainer.lite_dpo` command line for a round from the app's store, into `out`."""
    cmd = [sys.executable, "-m", "trainer.lite_dpo", "--data-dir", str(paths.data_dir()), "--out", str(out)]
    cmd += ["--steps", str(int(steps)), "--beta", str(float(beta)), "--lr", str(float(lr))]
    return cmd + ["--min-votes", str(int(min_votes))]


def launch(cmd: list[str], log_file: Path, *, engine: str, name: str | None = None) -> None:
    """Run a trainer command in the background, its output in `log_file` (one process at a time)."""
    with open(log_file, "w") as out:  # the child keeps its own handle
        _training["current"] = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    _training.update(engine=engine, round=name, stopped=False, log=log_file)


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
    if _training.get("engine") == "lite":
        return f"Stopped lite {_training.get('round')} (an unfinished round cannot be activated; start a new one)."
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
    what = f"lite {_training['round']}" if _training.get("engine") == "lite" else "round"
    if state is TrainingState.IDLE:
        return "No round running."
    if state is TrainingState.RUNNING:
        return f"The {what} is training." if what != "round" else "A round is running."
    if state is TrainingState.STOPPED:
        return f"The last {what} was stopped."
    if state is TrainingState.FAILED:
        return f"The last {what} failed (exit code {_training['current'].returncode}): {last_error()}"
    return f"The last {what} finished with exit code 0."


def last_error() -> str:
    """The last line the trainer wrote (its `error: ...` message on a user error)."""
    log_file = _training.get("log")
    lines = log_file.read_text(errors="replace").strip().splitlines() if log_file and log_file.exists() else []
    return lines[-1] if lines else "see the round's train.log"


def activate_round(name: str | None, engine: str = "hallo4") -> str | None:
    """Make Generate use a round of `engine` (None = the base model: roll back); returns the active round."""
    if _check_engine(engine) == "lite":
        active = lite_rounds.activate_lite_round(name)
        return None if active == lite_rounds.BASE else active
    if name:
        path = paths.rounds_dir() / name
        if not (path / "adapter_model.safetensors").exists() and not any(path.glob("**/adapter_model.safetensors")):
            raise InputError(
                "round", f"{name} has no adapter_model.safetensors", "Pick a finished round.", path=str(path)
            )
        save_settings(adapter=str(path))
        return name
    save_settings(adapter=None)
    return None
