"""The Skeleton tab: extract body motion from a driving video or load a skeleton file, see it over the
portrait, and hand it to Generate."""

from __future__ import annotations

import gradio as gr

from .. import studio
from ..constants import SKELETON_SUFFIXES
from .common import progress_for, tracked, user_errors
from .generate_tab import SKELETON_TAB, GenerateTab
from .widgets import portrait_input


def _prepare(source, portrait, retarget, fit_mode, audio, request, progress, *, extract: bool, handler: str):
    out = studio.prepare_skeleton(
        source,
        portrait=portrait,
        retarget=retarget,
        fit_mode=fit_mode,
        audio=audio,
        extract=extract,
        progress=progress_for(request, progress, handler),
    )
    return str(out.preview), str(out.skeleton), out.notes


@user_errors
@tracked
def skeleton_extract(video, portrait, retarget, fit_mode, audio, request: gr.Request = None, progress=gr.Progress()):
    if not video:
        raise gr.Error("Driving video: missing. Upload a video of a person moving (mp4/mov/webm).")
    return _prepare(
        video, portrait, retarget, fit_mode, audio, request, progress, extract=True, handler="skeleton_extract"
    )


@user_errors
def skeleton_load(file, portrait, retarget, fit_mode, audio, request: gr.Request = None, progress=gr.Progress()):
    if not file:
        raise gr.Error(
            "Skeleton file: missing. Upload a skeleton JSON (ours or OpenPose) or a rendered skeleton video."
        )
    return _prepare(
        file, portrait, retarget, fit_mode, audio, request, progress, extract=False, handler="skeleton_load"
    )


def use_skeleton_in_generate(skeleton_path, portrait, audio):
    """After extract/load: hand the skeleton to the Generate tab, with the portrait and speech used here."""
    if not skeleton_path:
        return gr.update(), gr.update(), gr.update(), gr.update()
    return (
        skeleton_path,
        gr.update(value=SKELETON_TAB),
        portrait if portrait else gr.update(),
        audio if audio else gr.update(),
    )


def build(generate: GenerateTab, last_skeleton: gr.State) -> None:
    """The Skeleton tab's layout and events (call inside gr.Blocks)."""
    gr.Markdown(
        "Extract body, hand and face motion from a driving video, or load a saved skeleton; see it over the portrait."
    )
    with gr.Row():
        with gr.Column():
            drive = gr.Video(label="Driving video", sources=["upload"], height=240)
            sk_file = gr.File(
                label="…or a skeleton file: keypoint JSON (ours / OpenPose) or a rendered skeleton video",
                file_types=list(SKELETON_SUFFIXES),
                height=120,
                elem_id="sk-file",
            )
            sk_portrait, _ = portrait_input(
                "Portrait (for retargeting and the overlay)", 200, elem_id="sk-portrait-file"
            )
            sk_audio = gr.Audio(
                label="Speech (to fit the length)", type="filepath", sources=["upload"], elem_id="sk-audio"
            )
            with gr.Row():
                retarget = gr.Checkbox(value=True, label="Retarget to the portrait")
                fit_mode = gr.Radio(
                    ["pingpong", "hold", "trim", "keep"], value="pingpong", label="Fit to the audio length"
                )
            with gr.Row():
                extract_btn = gr.Button("Extract from video", variant="primary")
                load_btn = gr.Button("Load skeleton file", elem_id="sk-load-btn")
        with gr.Column():
            sk_preview = gr.Video(label="Preview over the portrait", elem_id="sk-preview")
            sk_download = gr.File(label="Skeleton sequence (JSON) to download and reuse")
            sk_notes = gr.Textbox(label="Notes", lines=3, elem_id="sk-notes")
            gr.Markdown(
                "The result is handed to the Generate tab (Body motion: *from the Skeleton tab*), "
                "with this portrait and speech."
            )
    handover = (
        [sk_download, sk_portrait, sk_audio],
        [last_skeleton, generate.skeleton_mode, generate.portrait, generate.audio],
    )
    settings = [sk_portrait, retarget, fit_mode, sk_audio]
    for btn, fn, source, limit in ((extract_btn, skeleton_extract, drive, 1), (load_btn, skeleton_load, sk_file, 2)):
        btn.click(
            fn,
            [source, *settings],
            [sk_preview, sk_download, sk_notes],
            api_name=fn.__name__,
            concurrency_limit=limit,
            concurrency_id=fn.__name__,
        ).success(use_skeleton_in_generate, *handover, api_visibility="private", queue=False)
