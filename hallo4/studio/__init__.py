"""Everything the app does, without Gradio: generation with a result cache, previews, the arena,
training rounds and model status. `app.py` only wires widgets to these functions, so each is usable
from Python and testable on its own.

Modules: settings (the saved settings), models (weights on disk, status, download), generation
(requests, engine pool, result cache), arena (store, pairs, votes), training (rounds as background
processes), skeleton (the Skeleton tab's work). The names below are the public surface.
"""

from __future__ import annotations

from ..weights import BASE_REPO, OFFICIAL_REPO
from .arena import ArenaMatch, arena_new_pair, arena_next_pair, arena_vote, store, win_rate_rows
from .generation import (
    ENGINE_SLOTS,
    EXAMPLES,
    PRESETS,
    ROOT,
    GenerateArgs,
    _engine_kwargs,
    check_input,
    engine_kwargs,
    examples,
    generate,
    preview,
    public_info,
    result_cache_dirs,
)
from .models import (
    cuda_available,
    default_engine,
    download_official,
    hallo4_components,
    hallo4_weights_present,
    model_status,
)
from .settings import Settings, load_settings, save_settings, settings_path
from .skeleton import SkeletonOutput, prepare_skeleton
from .training import (
    ENGINES,
    TrainingState,
    activate_round,
    active_round,
    list_rounds,
    lite_min_votes,
    lite_train_command,
    lite_votes,
    read_metrics,
    round_metrics,
    running_round,
    start_round,
    stop_round,
    train_command,
    trainer_available,
    training_state,
    training_status,
)


def is_public() -> bool:
    """True on a Hugging Face Space or when launched with a public share link (HALLO4_SHARE=1)."""
    from .. import admin

    return admin.is_public()


def admin_ok(token: str | None) -> bool:
    """Whether `token` allows admin actions (the rule lives in hallo4.admin)."""
    from .. import admin

    return admin.allowed(token)


__all__ = [
    "BASE_REPO",
    "ENGINE_SLOTS",
    "EXAMPLES",
    "ENGINES",
    "OFFICIAL_REPO",
    "PRESETS",
    "ROOT",
    "ArenaMatch",
    "GenerateArgs",
    "Settings",
    "SkeletonOutput",
    "TrainingState",
    "_engine_kwargs",
    "activate_round",
    "active_round",
    "admin_ok",
    "arena_new_pair",
    "arena_next_pair",
    "arena_vote",
    "check_input",
    "cuda_available",
    "default_engine",
    "download_official",
    "engine_kwargs",
    "examples",
    "generate",
    "hallo4_components",
    "hallo4_weights_present",
    "is_public",
    "lite_min_votes",
    "lite_train_command",
    "lite_votes",
    "list_rounds",
    "load_settings",
    "model_status",
    "prepare_skeleton",
    "preview",
    "public_info",
    "read_metrics",
    "result_cache_dirs",
    "round_metrics",
    "running_round",
    "save_settings",
    "settings_path",
    "start_round",
    "stop_round",
    "store",
    "train_command",
    "trainer_available",
    "training_state",
    "training_status",
    "win_rate_rows",
]
