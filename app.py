"""Hallo4 Studio: the Gradio app. Layout, event wiring and the error mapping only; the work is done by
hallo4.studio and friends, each tab's handlers and layout live in hallo4.ui.<tab>_tab.

Run: python app.py   (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT honoured; HALLO4_DATA_DIR for data)
"""

from __future__ import annotations

import logging
import os

import gradio as gr

from hallo4 import admin, hub_sync, jobs, limits, media, paths, retention, studio
from hallo4.errors import Hallo4Error
from hallo4.ui import arena_tab, generate_tab, models_tab, skeleton_tab, train_tab
from hallo4.ui.common import user_errors  # noqa: F401 - the error mapping, re-exported for scripts and tests
from hallo4.ui.generate_tab import SKELETON_FILE, SKELETON_NONE, SKELETON_TAB  # noqa: F401 - API choices

log = logging.getLogger("hallo4.app")

try:  # ZeroGPU on Hugging Face Spaces: hallo4 work asks for the seconds its request needs (hallo4.zerogpu).
    import spaces  # type: ignore

    def on_gpu(duration):
        return spaces.GPU(duration=duration)
except ImportError:  # not on a Space

    def on_gpu(duration):
        return lambda fn: fn


# Built here, at import: ZeroGPU registers its GPU functions when the app module loads.
generate_clip = generate_tab.make_generate_clip(on_gpu)
arena_generate = arena_tab.make_arena_generate(on_gpu)

MAX_FILE_SIZE = "50mb"
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


def build_demo() -> gr.Blocks:
    status = studio.model_status()
    with gr.Blocks(title="Hallo4 Studio", delete_cache=retention.gradio_delete_cache()) as demo:
        rater = gr.State(None)  # unused: the server issues rater ids per session (hallo4.ui.common.rater_of)
        last_skeleton = gr.State(None)  # the Skeleton tab's latest result, for Generate
        gr.Markdown(
            "# Hallo4 Studio\nA portrait photo plus speech becomes a video of that person talking. "
            f"Engine ready: **lite** (CPU){'; **hallo4** (diffusion)' if status['hallo4']['ready'] else ''}."
        )
        with gr.Tab("Generate", id="generate"):
            gen = generate_tab.build(generate_clip, last_skeleton, status)
        with gr.Tab("Skeleton", id="skeleton"):
            skeleton_tab.build(gen, last_skeleton)
        with gr.Tab("Arena", id="arena"):
            rates, chart = arena_tab.build(arena_generate, rater)
        with gr.Tab("Train (DPO)", id="train") as train:
            t_engine, overview, round_pick, live = train_tab.build()
        train.select(train_tab.train_tick, [t_engine, round_pick], live, api_visibility="private", queue=False)
        with gr.Tab("Models", id="models"):
            st_json = models_tab.build()
        demo.load(models_tab.models_status, None, [st_json], api_name="models_status")
        demo.load(train_tab.train_overview, [t_engine], [overview, round_pick], api_visibility="private")
        demo.load(
            lambda: (studio.win_rate_rows(), arena_tab.win_rate_chart()),
            None,
            [rates, chart],
            api_visibility="private",
        )
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
