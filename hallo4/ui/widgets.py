"""Input widgets more than one tab uses."""

from __future__ import annotations

import gradio as gr

from .. import studio
from ..constants import IMAGE_SUFFIXES
from . import messages


def check_portrait_upload(path):
    return messages.check_portrait(path, hallo4_ready=studio.hallo4_weights_present())[1]


def _show_portrait(path):
    return path if path else None


def portrait_input(label: str, height: int, value: str | None = None, elem_id: str | None = None):
    """A file input (so our own validation explains bad files) with a preview beside it, and a line saying
    at once whether a face was found (named by the file's own name)."""
    with gr.Row():
        file = gr.File(
            label=label, file_types=list(IMAGE_SUFFIXES), type="filepath", value=value, height=120, elem_id=elem_id
        )
        shown = gr.Image(
            label="Preview",
            interactive=False,
            height=height,
            value=value,
            show_label=False,
            elem_classes=["portrait-preview"],
        )
    check = gr.Markdown(elem_id=f"{elem_id}-check" if elem_id else None)
    file.change(_show_portrait, file, shown, api_visibility="private", queue=False)
    file.change(
        check_portrait_upload, file, check, api_visibility="private", concurrency_limit=4, show_progress="hidden"
    )
    return file, shown
