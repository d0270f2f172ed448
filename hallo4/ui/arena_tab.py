"""The Arena tab: two anonymous clips of the same portrait and speech, a vote, the running win rates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict

import gradio as gr

from .. import studio, zerogpu
from ..studio import arena_prefetch
from ..system_labels import system_label
from .common import progress_for, rater_of, require_inputs, tracked, user_errors
from .widgets import portrait_input

VOTE_CHOICES = {"A better": "left", "B better": "right", "Tie": "tie", "Both bad": "both_bad", "Skip": "skip"}
QUESTION = "which clip looks more like the person really talking?"


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
    example = studio.examples()[0]
    match = arena_prefetch.next_pair(
        rater_of(request), portrait or example[0], audio or example[1], progress_for(request, progress, "arena_next")
    )
    return _arena_view(match, f"Pair #{match.pair_id}: {QUESTION}")


def gpu_seconds(portrait, audio, rater, request=None, progress=None) -> int:
    """ZeroGPU duration of an arena pair with a hallo4 candidate (studio.arena_new_pair: fast preset, 4 s, 384 px)."""
    s, p = studio.load_settings(), studio.PRESETS["fast"]
    return zerogpu.request_seconds(
        audio, 4.0, steps=p["steps"], guidance=p["guidance"], size=384, quantize=s.quantize, offload=s.offload
    )


def new_pair(portrait, audio, rater, request: gr.Request = None, progress=None):
    match = studio.arena_new_pair(portrait, audio, progress_for(request, progress, "arena_generate"))
    return _arena_view(match, f"New pair #{match.pair_id}: {QUESTION}")


def make_arena_generate(on_gpu: Callable) -> Callable:
    """The /arena_new_pair handler; a pair with a hallo4 candidate runs under `on_gpu`."""
    new_pair_on_gpu = on_gpu(gpu_seconds)(new_pair)

    @user_errors
    @tracked
    def arena_generate(portrait, audio, rater, request: gr.Request = None, progress=gr.Progress()):
        """A pair of lite clips needs no GPU; a pair with a hallo4 candidate asks for one."""
        require_inputs(portrait, audio)
        if studio.hallo4_weights_present():
            return new_pair_on_gpu(portrait, audio, rater, request, progress)
        return new_pair(portrait, audio, rater, request, progress)

    return arena_generate


def arena_prepare(pair_id, rater, request: gr.Request = None):
    """After a vote: make the next pair in the background from the same portrait and speech."""
    if pair_id is not None:
        arena_prefetch.prepare_next(rater_of(request), pair_id)


def _vote_fn(label: str):
    @user_errors
    def vote(match, rater, request: gr.Request = None):
        if not match:
            raise gr.Error("Vote: there is no pair on screen. Press 'Next pair' first.")
        revealed = studio.arena_vote(studio.ArenaMatch(**match), VOTE_CHOICES[label], rater_of(request))
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
            "system": pd.Series([system_label(r["system"]) for r in rows], dtype=str),
            "win_rate": pd.Series([round(100 * r["win_rate"], 1) for r in rows], dtype=float),
        }
    )


def _results_row():
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
    return rates, chart


def build(arena_generate: Callable, rater: gr.State):
    """The Arena tab's layout and events (call inside gr.Blocks); returns (win-rate table, chart) for page load."""
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
            a_audio = gr.Audio(label="Speech", type="filepath", value=studio.examples()[0][1], elem_id="arena-audio")
        new_btn = gr.Button("Generate a new pair", elem_id="new-pair-btn")
    rates, chart = _results_row()
    outputs = [left, right, match, arena_status, *vote_btns]
    next_btn.click(
        arena_next, [rater, a_portrait, a_audio], outputs, api_name="arena_next", show_progress_on=[arena_status]
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
    return rates, chart
