"""The app's user interface.

Gradio-free (importable anywhere, re-exported here): `messages` - upload checks, "empty = preset" fields,
the Train tab's checklist; and the core helpers `speech_clip`, `portrait_size` (lite sizes) and `system_labels`
(Arena wording), which live below the UI because the studio uses them too.

Gradio layer (imported by app.py only; the only modules under hallo4/ that import gradio):
`common` (error mapping, job tracking, progress), one module per tab (`generate_tab`, `skeleton_tab`,
`arena_tab`, `train_tab`, `models_tab`), each with its handlers and a `build(...)` that lays the tab out.
"""

from __future__ import annotations

# Core helpers (below the UI: the studio uses them too), re-exported for the UI's callers.
from ..portrait_size import lite_size
from ..speech_clip import speech_onset, speech_window
from ..system_labels import LITE_STYLE, system_label
from .messages import (
    MIN_PAIRS,
    admin_note,
    admin_token_required,
    check_audio,
    check_portrait,
    lite_train_needs,
    missing_inputs,
    optional_number,
    public_message,
    skeleton_summary,
    train_needs,
)

__all__ = [
    "LITE_STYLE",
    "MIN_PAIRS",
    "admin_note",
    "admin_token_required",
    "check_audio",
    "check_portrait",
    "lite_size",
    "lite_train_needs",
    "missing_inputs",
    "optional_number",
    "public_message",
    "skeleton_summary",
    "speech_onset",
    "speech_window",
    "system_label",
    "train_needs",
]
