"""The Generate tab: portrait + speech (+ body motion) -> a clip, with a quick preview and Cancel."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import gradio as gr

from .. import limits, studio, zerogpu
from ..constants import SKELETON_SUFFIXES
from ..errors import Hallo4Error
from . import messages
from .common import cancel_session_job, progress_for, require_inputs, seed_of, tracked, user_errors
from .widgets import portrait_input

log = logging.getLogger("hallo4.app")

SKELETON_NONE = "none (idle motion)"
SKELETON_TAB = "from the Skeleton tab"
SKELETON_FILE = "uploaded file"


def _skeleton_for(mode, skeleton_file, from_tab):
    """The skeleton file Generate uses for the Body motion choice (None = idle motion)."""
    if mode == SKELETON_TAB:
        if not (from_tab or skeleton_file):
            raise gr.Error(
                "Skeleton: nothing extracted yet. Extract or load one in the Skeleton tab first, "
                f"upload a skeleton file, or choose '{SKELETON_NONE}'."
            )
        return from_tab or skeleton_file
    if mode in (None, "", SKELETON_NONE):
        return None
    if not skeleton_file:
        raise gr.Error(
            "Skeleton: no skeleton file. Extract one in the Skeleton tab or upload a skeleton JSON / video, "
            f"or choose '{SKELETON_NONE}'."
        )
    return skeleton_file


def generate_args(portrait, audio, skeleton_mode, skeleton_file, engine, preset, steps, guidance, seed, size,
                  max_seconds, skeleton_from_tab=None) -> studio.GenerateArgs:  # fmt: skip
    """The form's fields checked and typed once (empty advanced fields = the preset's value, never 0)."""
    require_inputs(portrait, audio)
    if engine not in ("lite", "hallo4"):
        raise gr.Error(f"Engine: unknown engine {engine!r}. Choose lite or hallo4.")
    return studio.GenerateArgs(
        portrait=portrait,
        audio=audio,
        skeleton=_skeleton_for(skeleton_mode, skeleton_file, skeleton_from_tab),
        engine=engine,
        preset=preset,
        steps=messages.optional_number(steps, "steps", integer=True, lo=1, hi=100),
        guidance=messages.optional_number(guidance, "CFG scale", lo=0, hi=20),
        seed=seed_of(seed),
        size=messages.optional_number(size, "size", integer=True, lo=64, hi=2048),
        max_seconds=messages.optional_number(max_seconds, "max seconds", lo=0.1, hi=600),
    )


def gpu_seconds(args: studio.GenerateArgs, request=None, progress=None) -> int:
    """ZeroGPU duration of a hallo4 request (same arguments as the GPU function)."""
    p, s = studio.PRESETS.get(args.preset, studio.PRESETS["balanced"]), studio.load_settings()
    return zerogpu.request_seconds(
        args.audio,
        args.max_seconds,
        steps=args.steps or p["steps"],
        guidance=p["guidance"] if args.guidance is None else args.guidance,
        size=args.size,
        quantize=s.quantize,
        offload=s.offload,
    )


def run_generate(args: studio.GenerateArgs, request: gr.Request = None, progress=None):
    """Run studio.generate with the Generate tab's progress; show its warnings."""
    res = studio.generate(args, progress_for(request, progress, "generate_clip"))
    for w in res.warnings:
        gr.Warning(messages.public_message(w))
    return str(res.video), str(res.seed), studio.public_info(res)


def make_generate_clip(on_gpu: Callable) -> Callable:
    """The /generate handler; hallo4 work runs under `on_gpu` (ZeroGPU on a Space, a no-op elsewhere)."""
    run_on_gpu = on_gpu(gpu_seconds)(run_generate)

    @user_errors
    @tracked
    def generate_clip(portrait, audio, skeleton_mode, skeleton_file, engine, preset, steps, guidance, seed, size,
                      max_seconds, skeleton_from_tab=None, request: gr.Request = None, progress=gr.Progress()):  # fmt: skip
        args = generate_args(portrait, audio, skeleton_mode, skeleton_file, engine, preset, steps, guidance, seed,
                             size, max_seconds, skeleton_from_tab)  # fmt: skip
        if args.engine != "hallo4":  # lite never asks for a GPU
            return run_generate(args, request, progress)
        if args.audio:
            gpu_seconds(args)  # refuses an over-long request here, before a GPU is asked for
        return run_on_gpu(args, request, progress)

    return generate_clip


@user_errors
@tracked
def example_clip(portrait, audio, request: gr.Request = None, progress=gr.Progress()):
    """One click on an example: a lite clip of it (fast preset, fixed seed, so a repeat is cached)."""
    res = studio.generate(
        studio.GenerateArgs(portrait=portrait, audio=audio, engine="lite", preset="fast", seed=2025),
        progress_for(request, progress, "example_clip"),
    )
    return str(res.video), str(res.seed), studio.public_info(res)


@user_errors
@tracked
def auto_preview(portrait, audio, engine, seed, request: gr.Request = None, progress=gr.Progress()):
    """Before an expensive hallo4 run: the first second with the lite engine, so the user sees something at once."""
    if engine != "hallo4" or not portrait or not audio:
        return gr.update()
    try:
        video = studio.preview(
            portrait, audio, seed=seed_of(seed), progress=progress_for(request, progress, "auto_preview")
        ).video
    except Hallo4Error as exc:  # the full run that follows reports the problem to the user
        log.info("Quick preview skipped: %s", exc)
        return gr.update()
    return gr.update(value=str(video), visible=True)


@user_errors
@tracked
def preview_clip(portrait, audio, seed, request: gr.Request = None, progress=gr.Progress()):
    require_inputs(portrait, audio)
    res = studio.preview(portrait, audio, seed=seed_of(seed), progress=progress_for(request, progress, "preview_clip"))
    return str(res.video)


def cancel_job(request: gr.Request = None):
    """Stop this session's job, and say so where the result would have been."""
    if not cancel_session_job(request):
        return "Nothing is running to cancel."
    return "**Cancelled.** The job was stopped; nothing was saved. Press Generate to start again."


def check_audio_upload(path):
    return messages.check_audio(path)[1]


def skeleton_choice_summary(mode, skeleton_file, from_tab):
    if mode == SKELETON_TAB:
        if not from_tab:
            return "Body motion: nothing extracted in the Skeleton tab yet."
        return messages.skeleton_summary(from_tab)
    if mode == SKELETON_FILE:
        return (
            messages.skeleton_summary(skeleton_file) if skeleton_file else "Body motion: upload a skeleton file below."
        )
    return messages.skeleton_summary(None)


@dataclass
class GenerateTab:
    """The components other tabs hand things to, and the events Cancel stops."""

    portrait: gr.File
    audio: gr.Audio
    skeleton_mode: gr.Radio
    events: list


def _engine_row(hallo4_ready: bool, default_engine: str):
    with gr.Row(elem_id="engine-row"):
        engine = gr.Dropdown(
            [("lite (CPU)", "lite")] + ([("hallo4 (diffusion)", "hallo4")] if hallo4_ready else []),
            value=default_engine,
            label="Engine",
            elem_id="engine",
            min_width=140,
            # API callers naming hallo4 get its "weights missing" message, not a choices error.
            allow_custom_value=True,
        )
        preset = gr.Dropdown(
            list(studio.PRESETS),
            value="fast" if default_engine == "lite" else "balanced",
            label="Quality preset",
            min_width=140,
        )
    if not hallo4_ready:
        gr.Markdown(
            "*hallo4 (diffusion) is unavailable: its weights are missing (see the Models tab). "
            "lite works without weights.*",
            elem_id="engine-note",
        )
    return engine, preset


def _advanced():
    with gr.Accordion("Advanced", open=False, elem_id="advanced"):
        with gr.Row():
            steps = gr.Textbox(label="Steps (hallo4)", placeholder="empty = preset", elem_id="adv-steps")
            guidance = gr.Textbox(label="CFG scale (hallo4)", placeholder="empty = preset", elem_id="adv-guidance")
        with gr.Row():
            seed = gr.Number(label="Seed (-1 = random)", value=-1, precision=0, elem_id="adv-seed")
            size = gr.Textbox(label="Size: long side in px", placeholder="empty = preset", elem_id="adv-size")
            max_seconds = gr.Textbox(
                label="Max seconds",
                placeholder=f"empty = up to {limits.active().max_audio_seconds:g} s (the server's limit)",
                elem_id="adv-max-seconds",
            )
    return steps, guidance, seed, size, max_seconds


def build(generate_clip: Callable, last_skeleton: gr.State, status: dict) -> GenerateTab:
    """The Generate tab's layout and events (call inside gr.Blocks)."""
    with gr.Row():
        with gr.Column():
            portrait, _ = portrait_input("Portrait", 260, elem_id="portrait-file")
            audio = gr.Audio(
                label="Speech (wav/mp3/m4a/flac/ogg, or record)",
                type="filepath",
                sources=["upload", "microphone"],
                elem_id="speech-input",
            )
            audio_check = gr.Markdown(elem_id="speech-check")
            skeleton_mode = gr.Radio(
                [SKELETON_NONE, SKELETON_TAB, SKELETON_FILE], value=SKELETON_NONE, label="Body motion"
            )
            skeleton_file = gr.File(
                label="Skeleton (JSON or rendered video)",
                file_types=list(SKELETON_SUFFIXES),
                height=120,
                visible=False,
            )
            skeleton_note = gr.Markdown(messages.skeleton_summary(None), elem_id="skeleton-summary")
            engine, preset = _engine_row(status["hallo4"]["ready"], studio.default_engine())
            steps, guidance, seed, size, max_seconds = _advanced()
            with gr.Row(elem_id="actions"):
                preview_btn = gr.Button("Preview (1 s)", elem_id="preview-btn", min_width=90)
                gen_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn", min_width=90)
                cancel_btn = gr.Button("Cancel", elem_id="cancel-btn", min_width=90)
            job_status = gr.Markdown(elem_id="job-status")
        with gr.Column():
            preview_video = gr.Video(
                label="Quick preview (first second, lite engine)", height=220, elem_id="preview-video", visible=False
            )
            out_video = gr.Video(label="Result", autoplay=False, elem_id="result-video")
            seed_used = gr.Textbox(label="Seed used", interactive=False, elem_id="seed-used")
            info = gr.JSON(label="Timings and parameters", elem_id="result-info")
    gr.Examples(
        studio.examples(),
        inputs=[portrait, audio],
        outputs=[out_video, seed_used, info],
        fn=example_clip,
        run_on_click=True,
        cache_examples=False,
        label="Examples (offline): one click makes a lite clip",
        api_name="example",
        elem_id="examples",
    )
    _wire_inputs(
        portrait, audio, audio_check, skeleton_mode, skeleton_file, skeleton_note, last_skeleton, preview_video
    )
    form = [portrait, audio, skeleton_mode, skeleton_file, engine, preset, steps, guidance, seed, size, max_seconds]
    events = _wire_actions(
        generate_clip, form + [last_skeleton], (gen_btn, preview_btn, cancel_btn), job_status, preview_video,
        [out_video, seed_used, info],
    )  # fmt: skip
    return GenerateTab(portrait, audio, skeleton_mode, events)


def _wire_inputs(portrait, audio, audio_check, skeleton_mode, skeleton_file, skeleton_note, last_skeleton, preview):
    """Inputs changed: the preview of the old inputs goes; each upload is checked at once."""
    for inp in (portrait, audio):
        inp.change(
            lambda: gr.update(value=None, visible=False), None, [preview], api_visibility="private", queue=False
        )
    audio.change(
        check_audio_upload, audio, audio_check, api_visibility="private", concurrency_limit=4, show_progress="hidden"
    )
    skeleton_mode.change(
        lambda m: gr.update(visible=m == SKELETON_FILE),
        skeleton_mode,
        skeleton_file,
        api_visibility="private",
        queue=False,
    )
    for trigger in (skeleton_mode, skeleton_file, last_skeleton):
        trigger.change(
            skeleton_choice_summary,
            [skeleton_mode, skeleton_file, last_skeleton],
            skeleton_note,
            api_visibility="private",
            queue=False,
        )


def _wire_actions(generate_clip, inputs, buttons, job_status, preview_video, outputs) -> list:
    """Generate (after the automatic quick preview), Preview and Cancel; returns the events Cancel stops."""
    gen_btn, preview_btn, cancel_btn = buttons
    portrait, audio, engine, seed = inputs[0], inputs[1], inputs[4], inputs[8]
    clear = gen_btn.click(
        lambda: "", None, [job_status], api_visibility="private", queue=False, show_progress="hidden"
    )
    auto_event = clear.then(
        auto_preview,
        [portrait, audio, engine, seed],
        [preview_video],
        api_visibility="private",
        concurrency_limit=2,
        concurrency_id="preview",
    )
    gen_event = auto_event.then(
        generate_clip,
        inputs,
        outputs,
        api_name="generate",
        concurrency_limit=3,
        concurrency_id="generate",
        show_progress_on=[outputs[0]],
    )
    # On a phone the result sits under the inputs: bring it into view when it is there.
    gen_event.success(
        None,
        None,
        None,
        js="() => { if (window.innerWidth < 640) "
        "document.querySelector('#result-video')?.scrollIntoView({block: 'center'}); }",
    )
    prev_event = preview_btn.click(
        preview_clip,
        [portrait, audio, seed],
        [preview_video],
        api_name="preview",
        concurrency_limit=2,
        concurrency_id="preview",
    )
    prev_event.success(lambda: gr.update(visible=True), None, [preview_video], api_visibility="private", queue=False)
    events = [auto_event, gen_event, prev_event]
    cancel_btn.click(
        cancel_job,
        None,
        [job_status],
        api_name="cancel",
        cancels=events,
        queue=False,
        show_progress="hidden",
    )
    return events
