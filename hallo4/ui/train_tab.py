"""The Train (DPO) tab, for each engine (lite: the motion model, on any CPU; hallo4: LoRA rounds on a GPU):
what a round needs, start/stop a round (admin), list / activate / roll back rounds, and the loss and
implicit accuracy of the round, plotted live while it trains (a timer reads its metrics.jsonl)."""

from __future__ import annotations

import os

import gradio as gr

from trainer.dpo_config import DPOConfig
from trainer.lite_dpo import LiteDPOConfig

from .. import admin, studio
from . import messages
from .common import user_errors

BASE = "(base model)"
# The round form's defaults per engine: the trainers' own configs (trainer.lite_dpo / trainer.dpo).
DEFAULTS = {
    engine: {"steps": cfg.steps, "beta": cfg.beta, "lr": cfg.lr}
    for engine, cfg in (("lite", LiteDPOConfig()), ("hallo4", DPOConfig()))
}
ENGINE_CHOICES = [("lite: the motion model (any CPU)", "lite"), ("hallo4: diffusion LoRA (GPU)", "hallo4")]


def _engine(engine) -> str:
    """The engine field's value (empty = lite); studio refuses an unknown one with an InputError."""
    return engine or "lite"


def _round(round_name) -> str | None:
    return None if round_name in (None, "", BASE) else round_name


def _generate_uses(engine: str) -> str:
    active = studio.active_round(engine)
    if engine == "lite":
        return (
            f"Generate's lite motion: **{active}** (activated lite round)."
            if active
            else "Generate's lite motion: the base model (no lite round active; the one Arena pairs compare)."
        )
    return f"Generate uses: {'`' + active + '`' if active else 'the base model (no adapter)'}."


@user_errors
def train_overview(engine="lite"):
    """The engine's checklist, vote counts and active round; the round list (choices only: a pick stays)."""
    engine = _engine(engine)
    st = studio.store()
    needs = messages.lite_train_needs() if engine == "lite" else messages.train_needs()
    lines = [
        f"Usable pairs (decisive votes): **{len(st.usable_pairs())}** of {st.stats()['pairs']} pairs, "
        f"{st.vote_count()} votes. {studio.training_status()}",
        needs[1],
        messages.admin_note(),
    ]
    if not os.environ.get("HALLO4_ADMIN_TOKEN") and not admin.local_only():
        lines.append(
            "Admin actions are locked: this server is reachable from other machines and no "
            "`HALLO4_ADMIN_TOKEN` is set (see the README)."
        )
    lines.append(_generate_uses(engine))
    return "\n\n".join(lines), gr.update(choices=[BASE] + studio.list_rounds(engine))


def _plotted_round(engine: str, round_name) -> str | None:
    """The round training now, else the picked one, else (None) the newest."""
    return studio.running_round(engine) or _round(round_name)


def live_line(engine="lite", round_name=None) -> str:
    """The plotted round's last logged step in words (the plot's numbers, readable at a glance)."""
    engine = _engine(engine)
    rows = studio.round_metrics(_plotted_round(engine, round_name), engine)
    if not rows:
        return "No steps logged yet."
    last = rows[-1]
    running = studio.running_round(engine)
    total = ""
    if running and engine == "lite":
        from ..lite_motion.rounds import lite_round_info

        steps = lite_round_info(running).get("steps")  # from train_config.json, once the trainer wrote it
        total = f" of {steps}" if steps else ""
    return (
        f"{'Training ' + running + ': step' if running else 'Last logged step'} {last.get('step', len(rows))}{total}: "
        f"loss {last.get('loss', float('nan')):.4f}, implicit accuracy {last.get('implicit_acc', float('nan')):.2f}."
    )


@user_errors
def train_metrics(engine="lite", round_name=None):
    engine = _engine(engine)
    return metrics_frame(studio.round_metrics(_plotted_round(engine, round_name), engine))


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


def train_tick(engine, round_name):
    """Live refresh while a round runs; the timer switches itself off when it is done."""
    running = studio.training_state() is studio.TrainingState.RUNNING
    overview, rounds = train_overview(engine)
    stop = gr.update(interactive=running, variant="stop" if running else "secondary")
    plot, live = train_metrics(engine, round_name), live_line(engine, round_name)
    return overview, rounds, plot, live, gr.Timer(active=running), stop


def engine_changed(engine):
    """Another engine: its overview, rounds (the active one picked), form defaults and plot."""
    engine = _engine(engine)
    overview, rounds = train_overview(engine)
    d = DEFAULTS[engine]
    pick = gr.update(choices=[BASE] + studio.list_rounds(engine), value=studio.active_round(engine) or BASE)
    return (
        overview,
        pick,
        d["steps"],
        d["beta"],
        d["lr"],
        gr.update(visible=engine == "hallo4"),
        train_metrics(engine, None),
        live_line(engine, None),
    )


@user_errors
@admin.required("Train: starting a round")
def train_start(token, engine, steps, beta, lr, rank, request: gr.Request = None):
    return studio.start_round(int(steps), float(beta), float(lr), int(rank or 16), engine=_engine(engine))


@user_errors
@admin.required("Train: stopping a round")
def train_stop(token, request: gr.Request = None):
    return studio.stop_round()


@user_errors
@admin.required("Train: changing the active round")
def train_activate(token, engine, round_name, request: gr.Request = None):
    engine = _engine(engine)
    active = studio.activate_round(_round(round_name), engine)
    return _activated(engine, active)


@user_errors
@admin.required("Train: rolling back to the base model")
def train_rollback(token, engine, request: gr.Request = None):
    engine = _engine(engine)
    return _activated(engine, studio.activate_round(None, engine))


def _activated(engine: str, active: str | None) -> str:
    if engine == "lite":
        return f"Generate's lite motion now: {active or 'the base model (rolled back: no lite round active)'}."
    return f"Generate now uses: {active or 'the base model (no adapter)'}."


def _timer_on(_msg):
    return gr.Timer(active=True)


def _plot() -> gr.LinePlot:
    plot = gr.LinePlot(
        x="step",
        y="value",
        color="metric",
        x_title="training step",
        y_title="loss / implicit accuracy",
        color_title="",
        label="Loss and implicit accuracy of the round (live while it trains)",
        elem_id="train-plot",
    )
    gr.Markdown("*The chart stays empty until a round has logged its first steps.*", elem_id="train-plot-note")
    return plot


def build():
    """The Train tab's layout and events (call inside gr.Tab); returns (engine, round pick, page-load outputs,
    live outputs) for app.py's page load and tab select."""
    default = "hallo4" if studio.hallo4_weights_present() else "lite"
    d = DEFAULTS[default]
    engine = gr.Radio(ENGINE_CHOICES, value=default, label="Engine to train", elem_id="train-engine")
    overview = gr.Markdown(elem_id="train-overview")
    token = gr.Textbox(
        label="Admin token", type="password", visible=messages.admin_token_required(), elem_id="train-token"
    )
    with gr.Row():
        t_steps = gr.Number(label="Steps", value=d["steps"], precision=0, minimum=1, elem_id="train-steps")
        t_beta = gr.Number(label="beta", value=d["beta"], elem_id="train-beta")
        t_lr = gr.Number(label="Learning rate", value=d["lr"], elem_id="train-lr")
        t_rank = gr.Number(label="LoRA rank", value=16, precision=0, minimum=1, visible=default == "hallo4")
    start_btn = gr.Button("Start a DPO round", variant="primary", elem_id="train-start")
    train_msg = gr.Textbox(label="Status", elem_id="train-msg")
    round_pick = gr.Dropdown(
        [BASE] + studio.list_rounds(default), value=BASE, label="Round", elem_id="train-round", allow_custom_value=True
    )
    with gr.Row():
        activate_btn = gr.Button("Activate the round", elem_id="train-activate")
        rollback_btn = gr.Button("Roll back to the base model", elem_id="train-rollback")
        stop_btn = gr.Button("Stop the round", variant="secondary", interactive=False, elem_id="train-stop")
        refresh_btn = gr.Button("Refresh", elem_id="train-refresh")
    live_text = gr.Markdown("No steps logged yet.", elem_id="train-live")
    plot = _plot()
    timer = gr.Timer(2.0, active=False)
    live = [overview, round_pick, plot, live_text, timer, stop_btn]
    # The public API names first (a private event registered earlier would take the plain name).
    refresh_btn.click(train_overview, [engine], [overview, round_pick], api_name="train_overview").then(
        train_metrics, [engine, round_pick], [plot], api_name="train_metrics"
    ).then(live_line, [engine, round_pick], [live_text], api_visibility="private", queue=False)
    start_btn.click(
        train_start, [token, engine, t_steps, t_beta, t_lr, t_rank], [train_msg], api_name="train_start"
    ).success(_timer_on, [train_msg], [timer], api_visibility="private", queue=False)
    timer.tick(train_tick, [engine, round_pick], live, api_visibility="private", queue=False)
    engine.change(
        engine_changed,
        [engine],
        [overview, round_pick, t_steps, t_beta, t_lr, t_rank, plot, live_text],
        api_visibility="private",
        queue=False,
    )
    for btn, fn, inputs in (
        (activate_btn, train_activate, [token, engine, round_pick]),
        (rollback_btn, train_rollback, [token, engine]),
    ):
        btn.click(fn, inputs, [train_msg], api_name=fn.__name__).then(
            train_overview, [engine], [overview, round_pick], api_visibility="private", queue=False
        )
    stop_btn.click(train_stop, [token], [train_msg], api_name="train_stop")
    round_pick.change(train_metrics, [engine, round_pick], [plot], api_visibility="private", queue=False)
    return engine, overview, round_pick, live
