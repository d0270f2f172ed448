"""The Train (DPO) tab: what a round needs, start/stop a round (admin), activate or roll back, and the
loss / implicit accuracy plot, live while a round runs."""

from __future__ import annotations

import os

import gradio as gr

from .. import admin, studio
from . import messages
from .common import user_errors

BASE = "(base model)"


def train_overview():
    st = studio.store()
    lines = [
        f"Usable pairs (decisive votes): **{len(st.usable_pairs())}** of {st.stats()['pairs']} pairs, "
        f"{st.vote_count()} votes. {studio.training_status()}",
        messages.train_needs()[1],
        messages.admin_note(),
    ]
    if not os.environ.get("HALLO4_ADMIN_TOKEN") and not admin.local_only():
        lines.append(
            "Admin actions are locked: this server is reachable from other machines and no "
            "`HALLO4_ADMIN_TOKEN` is set (see the README)."
        )
    active = studio.load_settings().adapter
    lines.append(
        f"Generate uses: {'`' + os.path.basename(active) + '`' if active else 'the base model (no adapter)'}."
    )
    return "\n\n".join(lines), gr.update(choices=[BASE] + studio.list_rounds())


def train_tick(round_name):
    """Live refresh while a round runs; the timer switches itself off when it is done."""
    running = studio.training_state() is studio.TrainingState.RUNNING
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


def metrics_frame(rows: list[dict]):
    """Metric rows (metrics.jsonl) as the plot's long table: step, value, metric (loss / implicit_acc)."""
    import pandas as pd

    recs = [
        {"step": r.get("step", 0), "value": r[m], "metric": m}
        for r in rows
        for m in ("loss", "implicit_acc")
        if m in r
    ]
    if not recs:
        return pd.DataFrame(
            {
                "step": pd.Series([], dtype=float),
                "value": pd.Series([], dtype=float),
                "metric": pd.Series([], dtype=str),
            }
        )
    return pd.DataFrame(recs)


def train_metrics(round_name):
    return metrics_frame(studio.round_metrics(None if round_name in (None, BASE) else round_name))


@user_errors
@admin.required("Train: changing the active round")
def train_activate(token, round_name, request: gr.Request = None):
    s = studio.activate_round(None if round_name in (None, BASE) else round_name)
    return f"Generate now uses: {s.adapter or 'the base model (no adapter)'}."


def build():
    """The Train tab's layout and events (call inside gr.Tab); returns what the page load refreshes."""
    overview = gr.Markdown(elem_id="train-overview")
    token = gr.Textbox(
        label="Admin token", type="password", visible=messages.admin_token_required(), elem_id="train-token"
    )
    with gr.Row():
        t_steps = gr.Number(label="Steps", value=200, precision=0, minimum=1)
        t_beta = gr.Number(label="beta", value=2500)
        t_lr = gr.Number(label="Learning rate", value=1e-4)
        t_rank = gr.Number(label="LoRA rank", value=16, precision=0, minimum=1)
    start_btn = gr.Button("Start a DPO round", variant="primary", elem_id="train-start")
    train_msg = gr.Textbox(label="Status")
    round_pick = gr.Dropdown([BASE], value=BASE, label="Round")
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
    start_btn.click(train_start, [token, t_steps, t_beta, t_lr, t_rank], [train_msg], api_name="train_start").success(
        _timer_on, [train_msg], [timer], api_visibility="private", queue=False
    )
    live = [overview, round_pick, plot, timer, stop_btn]
    timer.tick(train_tick, [round_pick], live, api_visibility="private", queue=False)
    activate_btn.click(train_activate, [token, round_pick], [train_msg], api_name="train_activate")
    stop_btn.click(train_stop, [token], [train_msg], api_name="train_stop")
    refresh_btn.click(train_overview, None, [overview, round_pick], api_name="train_overview").then(
        train_metrics, [round_pick], [plot], api_name="train_metrics"
    )
    return overview, round_pick, live
