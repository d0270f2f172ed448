"""Hallo4 Studio: the Gradio app. Wiring only; the work is done by hallo4.studio and friends.

Run: python app.py   (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT honoured; HALLO4_DATA_DIR for data)
"""

from __future__ import annotations

import functools
import inspect
import logging
import os
import sys
import threading
import traceback
from dataclasses import asdict

import gradio as gr

from hallo4 import admin, arena, hub_sync, jobs, limits, media, paths, raters, retention, studio, ui, zerogpu
from hallo4.errors import CancelledError, Hallo4Error
from hallo4.progress import Progress

log = logging.getLogger("hallo4.app")

try:  # ZeroGPU on Hugging Face Spaces: hallo4 work asks for the seconds its request needs (hallo4.zerogpu).
    import spaces  # type: ignore

    def on_gpu(duration):
        return spaces.GPU(duration=duration)
except Exception:  # noqa: BLE001 - not on a Space

    def on_gpu(duration):
        return lambda fn: fn


MAX_FILE_SIZE = "50mb"
_cancel_events: dict[str, threading.Event] = {}
_running: dict[str, int] = {}  # jobs running per browser session, so Cancel can say what it did
_running_lock = threading.Lock()
# Phones: the action buttons stay in view (fixed at the bottom), the portrait's large preview is hidden (the check line
# under the file says what was found), and the engine/preset row does not cut its labels.
CSS = """
@media (max-width: 640px) {
  #actions { position: fixed; left: 0; right: 0; bottom: 0; z-index: 20; margin: 0; padding: 6px 10px;
             background: var(--background-fill-primary); box-shadow: 0 -2px 8px rgba(0, 0, 0, 0.15); }
  .gradio-container { padding-bottom: 72px !important; }
  .portrait-preview { display: none !important; }
  #engine-row > * { min-width: 100% !important; }
}
"""


def user_errors(fn):
    """Show Hallo4Error messages as they are; never a traceback in the page."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except CancelledError as exc:
            raise gr.Error(str(exc), title="Cancelled") from None
        except Hallo4Error as exc:
            raise gr.Error(ui.public_message(exc)) from None  # the upload's own name, never a server path
        except gr.Error:
            raise
        except OSError as exc:  # a full disk or a read-only data folder: say so, not "something went wrong"
            err = paths.storage_error(exc)
            if err is None:
                log.error("Unexpected error in %s:\n%s", fn.__name__, traceback.format_exc())
                raise gr.Error(
                    f"Something went wrong ({type(exc).__name__}). The details are in the server log; "
                    "please try again or report it."
                ) from None
            log.error("Storage error in %s: %s", fn.__name__, exc)
            raise gr.Error(str(err)) from None
        except Exception as exc:  # noqa: BLE001 - last line of defence for the UI
            log.error("Unexpected error in %s:\n%s", fn.__name__, traceback.format_exc())
            raise gr.Error(
                f"Something went wrong ({type(exc).__name__}). The details are in the server log; "
                "please try again or report it."
            ) from None

    return wrapper


def _session(request: gr.Request | None) -> str:
    return request.session_hash if request is not None and request.session_hash else "local"


def tracked(fn):
    """Count the session's running jobs (Cancel says "Cancelled" or "nothing is running")."""
    sig = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        key = _session(sig.bind_partial(*args, **kwargs).arguments.get("request"))
        with _running_lock:
            _running[key] = _running.get(key, 0) + 1
        try:
            return fn(*args, **kwargs)
        finally:
            with _running_lock:
                _running[key] -= 1

    return wrapper


def _progress(request: gr.Request | None, gr_progress: gr.Progress, handler: str | None = None) -> Progress:
    """Our Progress (with cancel) feeding Gradio's progress bar, with an ETA. `handler`: the event's function name
    when the caller is a helper of it (default: the calling function)."""
    key = request.session_hash if request is not None else "local"
    event = _cancel_events.setdefault(key, threading.Event())
    event.clear()
    prog = Progress(cancel_event=event)
    # Stop when the client disconnects or cancels (hallo4.jobs): checked at every progress report.
    still_wanted = jobs.watch(request, handler or sys._getframe(1).f_code.co_name)

    def cb(fraction: float, message: str) -> None:
        if still_wanted is not None and not still_wanted():  # this job only: not the session's cancel event
            raise CancelledError("Stopped: the request was cancelled or its page was closed.")
        eta = prog.eta()
        gr_progress(fraction, desc=f"{message}" + (f" (about {eta:.0f} s left)" if eta and fraction < 1 else ""))

    prog._callback = cb
    return prog


def _none_if_empty(x):
    return None if x in (None, "", 0) else x


def _require_inputs(portrait, audio) -> None:
    missing = ui.missing_inputs(portrait, audio)
    if missing:
        raise gr.Error(missing)


# ------------------------------------------------------------------------------------------------
# Generate
# ------------------------------------------------------------------------------------------------
SKELETON_NONE = "none (idle motion)"
SKELETON_TAB = "from the Skeleton tab"
SKELETON_FILE = "uploaded file"


def _seed(seed):
    return None if seed in (None, "", -1) else int(seed)


def _generate_gpu_seconds(
    portrait,
    audio,
    skeleton_mode,
    skeleton_file,
    engine,
    preset,
    steps,
    guidance,
    seed,
    size,
    max_seconds,
    skeleton_from_tab=None,
    request=None,
    progress=None,
) -> int:
    """ZeroGPU duration of a hallo4 request (same arguments as the GPU function)."""
    p, s = studio.PRESETS.get(preset, studio.PRESETS["balanced"]), studio.load_settings()
    return zerogpu.request_seconds(
        audio,
        _none_if_empty(max_seconds),
        steps=_none_if_empty(steps) or p["steps"],
        guidance=p["guidance"] if guidance is None else guidance,
        size=_none_if_empty(size),
        quantize=s["quantize"],
        offload=s["offload"],
    )


@user_errors
@tracked
def generate_clip(
    portrait,
    audio,
    skeleton_mode,
    skeleton_file,
    engine,
    preset,
    steps,
    guidance,
    seed,
    size,
    max_seconds,
    skeleton_from_tab=None,
    request: gr.Request = None,
    progress=gr.Progress(),
):
    _require_inputs(portrait, audio)
    if engine not in ("lite", "hallo4"):
        raise gr.Error(f"Engine: unknown engine {engine!r}. Choose lite or hallo4.")
    # Empty advanced fields mean "the preset's value" (never 0).
    steps = ui.optional_number(steps, "steps", integer=True, lo=1, hi=100)
    guidance = ui.optional_number(guidance, "CFG scale", lo=0, hi=20)
    size = ui.optional_number(size, "size", integer=True, lo=64, hi=2048)
    max_seconds = ui.optional_number(max_seconds, "max seconds", lo=0.1, hi=600)
    args = (
        portrait,
        audio,
        skeleton_mode,
        skeleton_file,
        engine,
        preset,
        steps,
        guidance,
        seed,
        size,
        max_seconds,
        skeleton_from_tab,
        request,
        progress,
    )
    if engine != "hallo4":  # lite never asks for a GPU
        return _generate_clip(*args)
    if audio:
        _generate_gpu_seconds(*args)  # refuses an over-long request here, before a GPU is asked for
    return _generate_clip_gpu(*args)


def _generate_clip(
    portrait,
    audio,
    skeleton_mode,
    skeleton_file,
    engine,
    preset,
    steps,
    guidance,
    seed,
    size,
    max_seconds,
    skeleton_from_tab=None,
    request: gr.Request = None,
    progress=None,
):
    skeleton = None
    if skeleton_mode == SKELETON_TAB:
        skeleton = skeleton_from_tab or skeleton_file
        if not skeleton:
            raise gr.Error(
                "Skeleton: nothing extracted yet. Extract or load one in the Skeleton tab first, "
                f"upload a skeleton file, or choose '{SKELETON_NONE}'."
            )
    elif skeleton_mode not in (None, "", SKELETON_NONE):
        skeleton = skeleton_file
        if not skeleton:
            raise gr.Error(
                "Skeleton: no skeleton file. Extract one in the Skeleton tab or upload a skeleton JSON / video, "
                f"or choose '{SKELETON_NONE}'."
            )
    res = studio.generate(
        studio.GenerateArgs(
            portrait=portrait,
            audio=audio,
            skeleton=skeleton,
            engine=engine,
            preset=preset,
            steps=steps,
            guidance=guidance,
            seed=_seed(seed),
            size=size,
            max_seconds=max_seconds,
        ),
        _progress(request, progress, "generate_clip"),
    )
    for w in res.warnings:
        gr.Warning(ui.public_message(w))
    return str(res.video), str(res.seed), studio.public_info(res)


_generate_clip_gpu = on_gpu(_generate_gpu_seconds)(_generate_clip)


@user_errors
@tracked
def example_clip(portrait, audio, request: gr.Request = None, progress=gr.Progress()):
    """One click on an example: a lite clip of it (fast preset, fixed seed, so a repeat is cached)."""
    res = studio.generate(
        studio.GenerateArgs(portrait=portrait, audio=audio, engine="lite", preset="fast", seed=2025),
        _progress(request, progress),
    )
    return str(res.video), str(res.seed), studio.public_info(res)


@user_errors
@tracked
def auto_preview(portrait, audio, engine, seed, request: gr.Request = None, progress=gr.Progress()):
    """Before an expensive hallo4 run: the first second with the lite engine, so the user sees something at once."""
    if engine != "hallo4" or not portrait or not audio:
        return gr.update()
    try:
        video = studio.preview(portrait, audio, seed=_seed(seed), progress=_progress(request, progress)).video
        return gr.update(value=str(video), visible=True)
    except Hallo4Error:
        return gr.update()  # the full run reports the problem properly


@user_errors
@tracked
def preview_clip(portrait, audio, seed, request: gr.Request = None, progress=gr.Progress()):
    _require_inputs(portrait, audio)
    res = studio.preview(portrait, audio, seed=_seed(seed), progress=_progress(request, progress))
    return str(res.video)


def cancel_job(request: gr.Request = None):
    """Stop this session's job, and say so where the result would have been."""
    key = _session(request)
    with _running_lock:
        running = _running.get(key, 0) > 0
    if not running:
        return "Nothing is running to cancel."
    if key in _cancel_events:
        _cancel_events[key].set()
    return "**Cancelled.** The job was stopped; nothing was saved. Press Generate to start again."


def check_portrait_upload(path):
    return ui.check_portrait(path, hallo4_ready=studio.hallo4_weights_present())[1]


def check_audio_upload(path):
    return ui.check_audio(path)[1]


def _generate_skeleton_summary(mode, skeleton_file, from_tab):
    if mode == SKELETON_TAB:
        return ui.skeleton_summary(from_tab) if from_tab else "Body motion: nothing extracted in the Skeleton tab yet."
    if mode == SKELETON_FILE:
        return ui.skeleton_summary(skeleton_file) if skeleton_file else "Body motion: upload a skeleton file below."
    return ui.skeleton_summary(None)


# ------------------------------------------------------------------------------------------------
# Skeleton
# ------------------------------------------------------------------------------------------------
@user_errors
@tracked
def skeleton_extract(video, portrait, retarget, fit_mode, audio, request: gr.Request = None, progress=gr.Progress()):
    if not video:
        raise gr.Error("Driving video: missing. Upload a video of a person moving (mp4/mov/webm).")
    out = studio.prepare_skeleton(
        video,
        portrait=portrait,
        retarget=retarget,
        fit_mode=fit_mode,
        audio=audio,
        extract=True,
        progress=_progress(request, progress),
    )
    return str(out.preview), str(out.skeleton), out.notes


@user_errors
def skeleton_load(file, portrait, retarget, fit_mode, audio, request: gr.Request = None, progress=gr.Progress()):
    if not file:
        raise gr.Error(
            "Skeleton file: missing. Upload a skeleton JSON (ours or OpenPose) or a rendered skeleton video."
        )
    out = studio.prepare_skeleton(
        file,
        portrait=portrait,
        retarget=retarget,
        fit_mode=fit_mode,
        audio=audio,
        progress=_progress(request, progress),
    )
    return str(out.preview), str(out.skeleton), out.notes


def _use_skeleton_in_generate(skeleton_path, portrait, audio):
    """After extract/load: hand the skeleton to the Generate tab, with the portrait and speech used here."""
    if not skeleton_path:
        return gr.update(), gr.update(), gr.update(), gr.update()
    return (
        skeleton_path,
        gr.update(value=SKELETON_TAB),
        portrait if portrait else gr.update(),
        audio if audio else gr.update(),
    )


# ------------------------------------------------------------------------------------------------
# Arena
# ------------------------------------------------------------------------------------------------
def _rater(rater, request: gr.Request | None) -> str:
    """The rater id the server issued to this session (hallo4.raters): random, never client-chosen,
    never an IP; new ids are rate-limited per client so one person cannot vote as many raters."""
    return raters.registry().rater_for(request.session_hash if request is not None else None, admin.client_of(request))


VOTE_CHOICES = {"A better": "left", "B better": "right", "Tie": "tie", "Both bad": "both_bad", "Skip": "skip"}


def _arena_view(match: studio.ArenaMatch | None, status: str):
    enabled = match is not None
    buttons = [gr.update(interactive=enabled) for _ in VOTE_CHOICES]
    return (
        None if match is None else match.left_video,
        None if match is None else match.right_video,
        None if match is None else asdict(match),
        status,
        *buttons,
    )


@user_errors
@tracked
def arena_next(rater, portrait=None, audio=None, request: gr.Request = None, progress=gr.Progress()):
    """A pending pair, the one being prepared after the last vote, or a new one from the inputs below."""
    match = arena.next_pair(
        _rater(rater, request),
        portrait or studio.examples()[0][0],
        audio or studio.examples()[0][1],
        _progress(request, progress),
    )
    return _arena_view(match, f"Pair #{match.pair_id}: which clip looks more like the person really talking?")


def _arena_gpu_seconds(portrait, audio, rater, request=None, progress=None) -> int:
    """ZeroGPU duration of an arena pair with a hallo4 candidate (studio.arena_new_pair: fast preset, 4 s, 384 px)."""
    s, p = studio.load_settings(), studio.PRESETS["fast"]
    return zerogpu.request_seconds(
        audio, 4.0, steps=p["steps"], guidance=p["guidance"], size=384, quantize=s["quantize"], offload=s["offload"]
    )


def _arena_generate(portrait, audio, rater, request: gr.Request = None, progress=None):
    match = studio.arena_new_pair(portrait, audio, _progress(request, progress, "arena_generate"))
    return _arena_view(match, f"New pair #{match.pair_id}: which clip looks more like the person really talking?")


_arena_generate_gpu = on_gpu(_arena_gpu_seconds)(_arena_generate)


@user_errors
@tracked
def arena_generate(portrait, audio, rater, request: gr.Request = None, progress=gr.Progress()):
    """A pair of lite clips needs no GPU; a pair with a hallo4 candidate asks for one."""
    _require_inputs(portrait, audio)
    if studio.hallo4_weights_present():
        return _arena_generate_gpu(portrait, audio, rater, request, progress)
    return _arena_generate(portrait, audio, rater, request, progress)


def arena_prepare(pair_id, rater, request: gr.Request = None):
    """After a vote: make the next pair in the background from the same portrait and speech."""
    if pair_id is not None:
        arena.prepare_next(_rater(rater, request), pair_id)


def _vote_fn(label: str):
    @user_errors
    def vote(match, rater, request: gr.Request = None):
        if not match:
            raise gr.Error("Vote: there is no pair on screen. Press 'Next pair' first.")
        revealed = studio.arena_vote(studio.ArenaMatch(**match), VOTE_CHOICES[label], _rater(rater, request))
        status = (
            f"Recorded '{label}'. A was **{revealed['left']}**; B was **{revealed['right']}**. "
            f"Votes stored: {revealed['votes']}. Press **Next pair** for another."
        )
        buttons = [gr.update(interactive=False) for _ in VOTE_CHOICES]
        return (status, None, studio.win_rate_rows(), match["pair_id"], *buttons)

    vote.__name__ = f"vote_{VOTE_CHOICES[label]}"
    return vote


def win_rate_chart():
    import pandas as pd

    rows = [r for r in studio.store().win_rates() if r["win_rate"] is not None]
    return pd.DataFrame(
        {
            "system": pd.Series([ui.system_label(r["system"]) for r in rows], dtype=str),
            "win_rate": pd.Series([round(100 * r["win_rate"], 1) for r in rows], dtype=float),
        }
    )


# ------------------------------------------------------------------------------------------------
# Train / Models
# ------------------------------------------------------------------------------------------------
def train_overview():
    st = studio.store()
    lines = [
        f"Usable pairs (decisive votes): **{len(st.usable_pairs())}** of {st.stats()['pairs']} pairs, "
        f"{st.vote_count()} votes. {studio.training_status()}",
        ui.train_needs()[1],
        ui.admin_note(),
    ]
    if not os.environ.get("HALLO4_ADMIN_TOKEN") and not admin.local_only():
        lines.append(
            "Admin actions are locked: this server is reachable from other machines and no "
            "`HALLO4_ADMIN_TOKEN` is set (see the README)."
        )
    active = studio.load_settings()["adapter"]
    lines.append(
        f"Generate uses: {'`' + os.path.basename(active) + '`' if active else 'the base model (no adapter)'}."
    )
    return "\n\n".join(lines), gr.update(choices=["(base model)"] + studio.list_rounds())


def train_tick(round_name):
    """Live refresh while a round runs; the timer switches itself off when it is done."""
    running = studio.training_status() == "A round is running."
    overview, rounds = train_overview()
    stop = gr.update(interactive=running, variant="stop" if running else "secondary")
    return overview, rounds, train_metrics(round_name), gr.Timer(active=running), stop


@user_errors
@admin.required("Train: starting a round")
def train_start(token, steps, beta, lr, rank, request: gr.Request = None):
    return studio.start_round(int(steps), float(beta), float(lr), int(rank))


@user_errors
@admin.required("Train: stopping a round")
def train_stop(token, request: gr.Request = None):
    return studio.stop_round()


def _timer_on(_msg):
    return gr.Timer(active=True)


def train_metrics(round_name):
    import pandas as pd

    rows = studio.round_metrics(None if round_name in (None, "(base model)") else round_name)
    if not rows:
        return pd.DataFrame(
            {
                "step": pd.Series([], dtype=float),
                "value": pd.Series([], dtype=float),
                "metric": pd.Series([], dtype=str),
            }
        )
    recs = []
    for r in rows:
        for m in ("loss", "implicit_acc"):
            if m in r:
                recs.append({"step": r.get("step", 0), "value": r[m], "metric": m})
    return pd.DataFrame(recs)


@user_errors
@admin.required("Train: changing the active round")
def train_activate(token, round_name, request: gr.Request = None):
    s = studio.activate_round(None if round_name in (None, "(base model)") else round_name)
    return f"Generate now uses: {s['adapter'] or 'the base model (no adapter)'}."


def models_status() -> str:
    """The Models tab's status as Markdown (readable, and no path strings a client would try to fetch)."""
    st = studio.model_status()
    h = st["hallo4"]
    comps = ", ".join(f"{k} {'✓' if v else '✗'}" for k, v in h["components"].items())
    return "\n".join(
        [
            "| engine | status |",
            "|---|---|",
            f"| lite | ready: {st['lite']['needs']} |",
            f"| hallo4 | {'**ready**' if h['ready'] else '**weights missing**'} in `{h['path']}` ({comps}) |",
            "",
            f"Device: {h['device']}. Precision: {h['quantize'] if h['quantize'] != 'none' else 'bf16 (GPU) / fp32 (CPU)'}. "
            f"Offload: {h['offload']}. Active DPO round: {h['adapter'] or 'none (base model)'}.",
            "",
            h.get("memory", ""),
            ""
            if h["ready"]
            else "\nTo get the weights (or press *Download* below where this machine has a network):\n\n```bash\n"
            + h["how_to_get"].replace(" && ", "\n")
            + "\n```",
        ]
    )


@user_errors
def models_save(quantize, offload, token, vocal_separation="auto", request: gr.Request = None):
    admin.check(token, action="Models: saving settings", client=admin.client_of(request))
    studio.save_settings(quantize=quantize, offload=offload, vocal_separation=vocal_separation)
    return models_status()


@user_errors
@admin.required("Models: downloading weights")
def models_download(token, request: gr.Request = None, progress=gr.Progress()):
    dest = studio.download_official(_progress(request, progress))
    ready = studio.hallo4_weights_present(str(dest))
    return f"Downloaded and converted to {dest}. " + (
        "The hallo4 engine is ready (reload the page)." if ready else "Still missing: see the status above."
    )


# ------------------------------------------------------------------------------------------------
# Layout
# ------------------------------------------------------------------------------------------------
IMAGE_TYPES = [".png", ".jpg", ".jpeg", ".webp", ".bmp"]
SKELETON_TYPES = [".json", ".mp4", ".webm", ".mov", ".mkv"]


def _show_portrait(path):
    return path if path else None


def portrait_input(label: str, height: int, value: str | None = None, elem_id: str | None = None):
    """A file input (so our own validation explains bad files) with a preview beside it, and a line saying
    at once whether a face was found (named by the file's own name)."""
    with gr.Row():
        file = gr.File(label=label, file_types=IMAGE_TYPES, type="filepath", value=value, height=120, elem_id=elem_id)
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


def build_demo() -> gr.Blocks:
    status = studio.model_status()
    default_engine = studio.default_engine()
    with gr.Blocks(title="Hallo4 Studio", delete_cache=retention.gradio_delete_cache()) as demo:
        rater = gr.State(None)  # unused: the server issues rater ids per session (see _rater); never an IP
        last_skeleton = gr.State(None)  # the Skeleton tab's latest result, for Generate
        gr.Markdown(
            "# Hallo4 Studio\nA portrait photo plus speech becomes a video of that person talking. "
            f"Engine ready: **lite** (CPU){'; **hallo4** (diffusion)' if status['hallo4']['ready'] else ''}."
        )
        with gr.Tab("Generate", id="generate"):
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
                        label="Skeleton (JSON or rendered video)", file_types=SKELETON_TYPES, height=120, visible=False
                    )
                    skeleton_note = gr.Markdown(ui.skeleton_summary(None), elem_id="skeleton-summary")
                    with gr.Row(elem_id="engine-row"):
                        hallo4_ready = status["hallo4"]["ready"]
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
                    with gr.Accordion("Advanced", open=False, elem_id="advanced"):
                        with gr.Row():
                            steps = gr.Textbox(
                                label="Steps (hallo4)", placeholder="empty = preset", elem_id="adv-steps"
                            )
                            guidance = gr.Textbox(
                                label="CFG scale (hallo4)", placeholder="empty = preset", elem_id="adv-guidance"
                            )
                        with gr.Row():
                            seed = gr.Number(label="Seed (-1 = random)", value=-1, precision=0, elem_id="adv-seed")
                            size = gr.Textbox(
                                label="Size: long side in px", placeholder="empty = preset", elem_id="adv-size"
                            )
                            max_seconds = gr.Textbox(
                                label="Max seconds",
                                placeholder=f"empty = up to {limits.active().max_audio_seconds:g} s (the server's limit)",
                                elem_id="adv-max-seconds",
                            )
                    with gr.Row(elem_id="actions"):
                        preview_btn = gr.Button("Preview (1 s)", elem_id="preview-btn", min_width=90)
                        gen_btn = gr.Button("Generate", variant="primary", elem_id="generate-btn", min_width=90)
                        cancel_btn = gr.Button("Cancel", elem_id="cancel-btn", min_width=90)
                    job_status = gr.Markdown(elem_id="job-status")
                with gr.Column():
                    preview_video = gr.Video(
                        label="Quick preview (first second, lite engine)",
                        height=220,
                        elem_id="preview-video",
                        visible=False,
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
            # Inputs changed: the preview of the old inputs goes; each upload is checked at once.
            for inp in (portrait, audio):
                inp.change(
                    lambda: gr.update(value=None, visible=False),
                    None,
                    [preview_video],
                    api_visibility="private",
                    queue=False,
                )
            audio.change(
                check_audio_upload,
                audio,
                audio_check,
                api_visibility="private",
                concurrency_limit=4,
                show_progress="hidden",
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
                    _generate_skeleton_summary,
                    [skeleton_mode, skeleton_file, last_skeleton],
                    skeleton_note,
                    api_visibility="private",
                    queue=False,
                )
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
                [
                    portrait,
                    audio,
                    skeleton_mode,
                    skeleton_file,
                    engine,
                    preset,
                    steps,
                    guidance,
                    seed,
                    size,
                    max_seconds,
                    last_skeleton,
                ],
                [out_video, seed_used, info],
                api_name="generate",
                concurrency_limit=3,
                concurrency_id="generate",
                show_progress_on=[out_video],
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
            prev_event.success(
                lambda: gr.update(visible=True), None, [preview_video], api_visibility="private", queue=False
            )
            cancel_btn.click(
                cancel_job,
                None,
                [job_status],
                api_name="cancel",
                cancels=[auto_event, gen_event, prev_event],
                queue=False,
                show_progress="hidden",
            )

        with gr.Tab("Skeleton", id="skeleton"):
            gr.Markdown(
                "Extract body, hand and face motion from a driving video, or load a saved skeleton; see it over the portrait."
            )
            with gr.Row():
                with gr.Column():
                    drive = gr.Video(label="Driving video", sources=["upload"], height=240)
                    sk_file = gr.File(
                        label="…or a skeleton file: keypoint JSON (ours / OpenPose) or a rendered skeleton video",
                        file_types=SKELETON_TYPES,
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
            handover = ([sk_download, sk_portrait, sk_audio], [last_skeleton, skeleton_mode, portrait, audio])
            extract_btn.click(
                skeleton_extract,
                [drive, sk_portrait, retarget, fit_mode, sk_audio],
                [sk_preview, sk_download, sk_notes],
                api_name="skeleton_extract",
                concurrency_limit=1,
                concurrency_id="skeleton_extract",
            ).success(_use_skeleton_in_generate, *handover, api_visibility="private", queue=False)
            load_btn.click(
                skeleton_load,
                [sk_file, sk_portrait, retarget, fit_mode, sk_audio],
                [sk_preview, sk_download, sk_notes],
                api_name="skeleton_load",
                concurrency_limit=2,
            ).success(_use_skeleton_in_generate, *handover, api_visibility="private", queue=False)

        with gr.Tab("Arena", id="arena"):
            gr.Markdown(
                "Two anonymous clips of the same portrait and speech. Vote for the one that looks more like the person "
                "really talking. Who made which is revealed after your vote."
            )
            match = gr.State(None)
            voted_pair = gr.State(None)  # the pair just voted on: its portrait and speech make the next one
            arena_status = gr.Markdown("Press **Next pair** to start.", elem_id="arena-status")
            with gr.Row():
                # Fixed height: a tall portrait must not push the vote buttons below the fold.
                left = gr.Video(label="A", elem_id="arena-left", height=360)
                right = gr.Video(label="B", elem_id="arena-right", height=360)
            with gr.Row():
                vote_btns = [
                    gr.Button(label, interactive=False, elem_id=f"vote-{VOTE_CHOICES[label]}", min_width=80)
                    for label in VOTE_CHOICES
                ]
                next_btn = gr.Button("Next pair", variant="primary", elem_id="next-pair-btn", min_width=100)
            with gr.Accordion("Make a new pair", open=False):
                with gr.Row():
                    a_portrait, _ = portrait_input("Portrait", 200, value=studio.examples()[0][0])
                    a_audio = gr.Audio(
                        label="Speech", type="filepath", value=studio.examples()[0][1], elem_id="arena-audio"
                    )
                new_btn = gr.Button("Generate a new pair", elem_id="new-pair-btn")
            with gr.Row():
                rates = gr.Dataframe(
                    headers=["system", "wins", "losses", "ties", "votes", "win rate"],
                    value=studio.win_rate_rows(),
                    label="Running win rates",
                    interactive=False,
                    elem_id="win-rates",
                    scale=3,
                )
                chart = gr.BarPlot(
                    x="system",
                    y="win_rate",
                    y_title="win rate (%)",
                    x_title="",
                    y_lim=[0, 100],
                    label="Win rate by system",
                    height=220,
                    scale=2,
                    elem_id="win-chart",
                )
            outputs = [left, right, match, arena_status, *vote_btns]
            next_btn.click(
                arena_next,
                [rater, a_portrait, a_audio],
                outputs,
                api_name="arena_next",
                show_progress_on=[arena_status],
            )
            new_btn.click(
                arena_generate,
                [a_portrait, a_audio, rater],
                outputs,
                api_name="arena_new_pair",
                concurrency_limit=2,
                concurrency_id="arena",
                show_progress_on=[arena_status],
            )
            for label, btn in zip(VOTE_CHOICES, vote_btns):
                btn.click(
                    _vote_fn(label),
                    [match, rater],
                    [arena_status, match, rates, voted_pair, *vote_btns],
                    api_name=f"vote_{VOTE_CHOICES[label]}",
                ).then(win_rate_chart, None, [chart], api_visibility="private", queue=False).then(
                    arena_prepare, [voted_pair, rater], None, api_visibility="private"
                )

        with gr.Tab("Train (DPO)", id="train") as train_tab:
            overview = gr.Markdown(elem_id="train-overview")
            token_needed = ui.admin_token_required()
            token = gr.Textbox(label="Admin token", type="password", visible=token_needed, elem_id="train-token")
            with gr.Row():
                t_steps = gr.Number(label="Steps", value=200, precision=0, minimum=1)
                t_beta = gr.Number(label="beta", value=2500)
                t_lr = gr.Number(label="Learning rate", value=1e-4)
                t_rank = gr.Number(label="LoRA rank", value=16, precision=0, minimum=1)
            start_btn = gr.Button("Start a DPO round", variant="primary", elem_id="train-start")
            train_msg = gr.Textbox(label="Status")
            round_pick = gr.Dropdown(["(base model)"], value="(base model)", label="Round")
            with gr.Row():
                activate_btn = gr.Button("Activate (base model = roll back)")
                stop_btn = gr.Button("Stop the round", variant="secondary", interactive=False, elem_id="train-stop")
                refresh_btn = gr.Button("Refresh")
            plot = gr.LinePlot(
                x="step",
                y="value",
                color="metric",
                x_title="training step",
                y_title="loss / implicit accuracy",
                color_title="",
                label="Loss and implicit accuracy of the latest round (live while a round runs)",
                elem_id="train-plot",
            )
            gr.Markdown("*The chart stays empty until a round has logged its first steps.*", elem_id="train-plot-note")
            timer = gr.Timer(2.0, active=False)
            start_btn.click(
                train_start, [token, t_steps, t_beta, t_lr, t_rank], [train_msg], api_name="train_start"
            ).success(_timer_on, [train_msg], [timer], api_visibility="private", queue=False)
            timer.tick(
                train_tick,
                [round_pick],
                [overview, round_pick, plot, timer, stop_btn],
                api_visibility="private",
                queue=False,
            )
            activate_btn.click(train_activate, [token, round_pick], [train_msg], api_name="train_activate")
            stop_btn.click(train_stop, [token], [train_msg], api_name="train_stop")
            train_tab.select(
                train_tick,
                [round_pick],
                [overview, round_pick, plot, timer, stop_btn],
                api_visibility="private",
                queue=False,
            )
            refresh_btn.click(train_overview, None, [overview, round_pick], api_name="train_overview").then(
                train_metrics, [round_pick], [plot], api_name="train_metrics"
            )

        with gr.Tab("Models", id="models"):
            st_json = gr.Markdown(label="Engines and weights")
            with gr.Row():
                quantize = gr.Radio(
                    [
                        ("auto: release or bf16 by free GPU memory, fp32 on CPU", "none"),
                        ("release: the authors' numerics (fp32 weights, bf16 autocast)", "release"),
                        ("bf16 weights", "bf16"),
                        ("8-bit weights (bitsandbytes)", "8bit"),
                        ("fp32 (exact, slow)", "fp32"),
                    ],
                    value=studio.load_settings()["quantize"],
                    label="hallo4 precision",
                )
                offload = gr.Radio(
                    [
                        ("none (all on the GPU)", "none"),
                        ("model (one component at a time)", "model"),
                        ("group (block by block, least memory)", "group"),
                    ],
                    value=studio.load_settings()["offload"],
                    label="Offload (GPU memory)",
                )
                vocal = gr.Radio(
                    [("auto (on when Kim_Vocal_2.onnx is present)", "auto"), ("on", "on"), ("off", "off")],
                    value=studio.load_settings()["vocal_separation"],
                    label="Vocal separation before wav2vec2 (as the release)",
                )
            m_token = gr.Textbox(label="Admin token", type="password", visible=ui.admin_token_required())
            gr.Markdown(ui.admin_note())
            with gr.Row():
                save_btn = gr.Button("Save settings")
                dl_btn = gr.Button("Download and convert the hallo4 weights")
            dl_msg = gr.Textbox(label="Download")
            save_btn.click(models_save, [quantize, offload, m_token, vocal], [st_json], api_name="models_save")
            dl_btn.click(models_download, [m_token], [dl_msg], api_name="models_download", concurrency_limit=1)

        demo.load(models_status, None, [st_json], api_name="models_status")
        demo.load(train_overview, None, [overview, round_pick], api_visibility="private")
        demo.load(lambda: (studio.win_rate_rows(), win_rate_chart()), None, [rates, chart], api_visibility="private")
    return demo


def main() -> None:
    logging.basicConfig(level=logging.INFO)
    if os.environ.get("SPACE_ID") and not os.environ.get("HALLO4_DATA_DIR") and os.access("/data", os.W_OK):
        os.environ["HALLO4_DATA_DIR"] = "/data/hallo4"  # a Space's persistent storage, when it has one
    limits.use(limits.app_limits())  # the public app's caps (60 s of audio unless HALLO4_MAX_AUDIO_SECONDS)
    host = os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1")
    admin.set_listen_host(host)  # no admin token: admin actions only on loopback
    try:  # start-up checks: a writable data folder, and videos must encode (H.264 + AAC)
        log.info("data: %s", paths.check_writable())
        log.info("ffmpeg: %s", media.check_ffmpeg())
        studio.store()  # opens (and migrates) the vote database now, not on the first vote
    except Hallo4Error as exc:
        raise SystemExit(f"Hallo4 Studio cannot start: {exc}") from None
    retention.start()
    hub_sync.start_from_env(studio.store())  # durable votes on a Space (HALLO4_HUB_DATASET + HF_TOKEN)
    demo = build_demo()
    demo.queue(default_concurrency_limit=4, max_size=int(os.environ.get("HALLO4_MAX_QUEUE", "64")))
    # At most HALLO4_MAX_JOBS_PER_SESSION of these (the expensive ones) queued or running per visitor.
    jobs.install_session_limit(
        demo,
        heavy={
            "generate_clip",
            "auto_preview",
            "preview_clip",
            "example_clip",
            "skeleton_extract",
            "skeleton_load",
            "arena_generate",
            "models_download",
        },
    )
    demo.launch(
        server_name=host,
        server_port=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size=MAX_FILE_SIZE,
        # Served: generated videos, cached results, the store's clips, the examples. Never the vote
        # database, settings, weights or training rounds.
        allowed_paths=[
            str(paths.outputs_dir()),
            str(paths.cache_dir() / "results"),
            str(paths.store_dir() / "media"),
            str(studio.EXAMPLES),
        ],
        blocked_paths=[
            str(paths.store_dir() / n)
            for n in ("preferences.sqlite3", "preferences.sqlite3-wal", "preferences.sqlite3-shm")
        ]
        + [str(studio.result_cache_dirs()[1]), str(paths.store_dir() / "hub_export")]
        + [
            str(studio.settings_path()),
            str(paths.models_dir()),
            str(paths.rounds_dir()),
            str(paths.data_dir() / "app.log"),
        ],
        share=os.environ.get("HALLO4_SHARE") == "1",
        show_error=True,  # messages only (our errors are written for users); never tracebacks
        css=CSS,
    )


if __name__ == "__main__":
    main()
