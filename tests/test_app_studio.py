"""hallo4.studio (the app's Gradio-free logic) on its own: admin guard, info shown to users, inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from hallo4 import studio
from hallo4.engines.base import GenerationResult
from hallo4.errors import InputError


@pytest.mark.parametrize(
    "env,token,ok",
    [
        ({}, "", True),  # local workstation, no token configured: open
        ({"SPACE_ID": "me/hallo4"}, "", False),  # a Space without a token: locked
        ({"HALLO4_SHARE": "1"}, "anything", False),  # a public share link without a token: locked
        ({"HALLO4_ADMIN_TOKEN": "s3cret"}, "", False),
        ({"HALLO4_ADMIN_TOKEN": "s3cret"}, "wrong", False),
        ({"HALLO4_ADMIN_TOKEN": "s3cret", "SPACE_ID": "me/hallo4"}, "s3cret", True),
    ],
)
def test_admin_guard(monkeypatch, env, token, ok):
    for k in ("SPACE_ID", "HALLO4_SHARE", "HALLO4_ADMIN_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert studio.admin_ok(token) is ok


def test_public_info_hides_server_paths():
    res = GenerationResult(
        video=Path("/srv/data/outputs/x.mp4"),
        seed=5,
        engine="lite",
        timings={"total": 1.234},
        parameters={
            "portrait": "/tmp/gradio/abc/me.png",
            "output": "/srv/out.mp4",
            "size": 384,
            "options": {"expressiveness": 1.0},
        },
        num_frames=50,
        fps=25.0,
    )
    info = studio.public_info(res)
    assert info["seed"] == 5 and info["seconds"] == 2.0 and info["timings_s"] == {"total": 1.23}
    assert info["parameters"] == {"portrait": "me.png", "size": 384, "options": {"expressiveness": 1.0}}


def test_generate_rejects_missing_inputs_and_bad_settings(portrait_path, speech_path):
    with pytest.raises(InputError, match="portrait"):
        studio.generate(studio.GenerateArgs(portrait=None, audio=speech_path))
    with pytest.raises(InputError, match="quality preset"):
        studio.generate(studio.GenerateArgs(portrait=portrait_path, audio=speech_path, preset="ultra"))
    with pytest.raises(InputError, match="max length"):
        studio.generate(studio.GenerateArgs(portrait=portrait_path, audio=speech_path, max_seconds=-1))


def test_prepare_skeleton_needs_a_file():
    with pytest.raises(InputError, match="driving video"):
        studio.prepare_skeleton(None, extract=True)
    with pytest.raises(InputError, match="skeleton file"):
        studio.prepare_skeleton("/nonexistent/skeleton.json")


def test_weights_check_looks_where_the_pipeline_looks(tmp_path):
    """A converted transformer alone is not enough; with the Wan base and wav2vec2 beside it, it is."""
    model = tmp_path / "models" / "hallo4"

    def weights(d: Path, extra: str | None = None):
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text("{}")
        (d / "model.safetensors").write_bytes(b"x")
        if extra:
            (d / extra).write_text("{}")

    weights(model)  # bare `python -m hallo4.convert` output
    found = studio.hallo4_components(str(model))
    assert found["transformer"] == model and not studio.hallo4_weights_present(str(model))
    base = model.parent / "wan2.1-vace-1.3b"
    weights(base / "vae")
    weights(base / "text_encoder")
    (base / "tokenizer").mkdir(parents=True)
    (base / "tokenizer" / "tokenizer.json").write_text("{}")
    weights(model.parent / "hallo4-official" / "wav2vec" / "wav2vec2-base-960h", "preprocessor_config.json")
    assert studio.hallo4_weights_present(str(model))


def test_train_command_matches_the_trainer_cli(monkeypatch, tmp_path):
    """The app's command line parses with trainer.dpo's own CLI, knobs included."""
    dpo = pytest.importorskip("trainer.dpo")
    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path))
    seen = {}

    def fake_round(store, model, out, cfg, **kw):
        seen.update(store=store, model=model, out=out, cfg=cfg)
        return tmp_path / "rounds" / "round-001"

    monkeypatch.setattr(dpo, "run_round", fake_round)
    cmd = studio.train_command(7, 1000.0, 3e-5, 4, model=str(tmp_path / "m"))
    assert cmd[1:3] == ["-m", "trainer.dpo"]
    assert dpo.main(cmd[3:]) == 0
    assert (seen["cfg"].steps, seen["cfg"].beta, seen["cfg"].lr, seen["cfg"].rank) == (7, 1000.0, 3e-5, 4)
    assert Path(seen["store"]) == tmp_path / "store" and Path(seen["out"]) == tmp_path / "rounds"


def test_activate_and_roll_back_a_round(monkeypatch, tmp_path):
    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path))
    with pytest.raises(InputError, match="adapter_model.safetensors"):
        (tmp_path / "rounds" / "round-001").mkdir(parents=True)
        studio.activate_round("round-001")
    (tmp_path / "rounds" / "round-001" / "adapter_model.safetensors").write_bytes(b"x")
    assert studio.list_rounds() == ["round-001"]
    assert studio.activate_round("round-001") == "round-001"
    assert studio.load_settings().adapter.endswith("round-001") and studio.active_round("hallo4") == "round-001"
    assert studio.activate_round(None) is None and studio.load_settings().adapter is None  # roll back


@pytest.mark.parametrize(
    "choice,quantize,precision",
    [
        ("none", None, None),
        ("release", None, "release"),
        ("bf16", None, "bf16"),
        ("fp32", None, "fp32"),
        ("8bit", "8bit", None),
    ],
)
def test_models_tab_precision_reaches_the_engine(monkeypatch, tmp_path, choice, quantize, precision):
    """The Models tab's precision choice (stored as the "quantize" setting) becomes the engine's arguments."""
    from hallo4.engines.diffusion import PRECISIONS

    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path))
    studio.save_settings(quantize=choice)
    kwargs = studio._engine_kwargs("hallo4")
    assert (kwargs["quantize"], kwargs["precision"]) == (quantize, precision)
    assert precision is None or precision in PRECISIONS


def test_settings_turn_none_strings_into_none_once(monkeypatch, tmp_path):
    """Older files and the Models tab's radios write "none"; the typed settings hold None."""
    import json

    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path))
    studio.settings_path().write_text(json.dumps({"quantize": "none", "offload": "", "adapter": "none", "x": 1}))
    s = studio.load_settings()
    assert (s.quantize, s.offload, s.adapter, s.vocal_separation) == (None, None, None, "auto")
    assert studio.save_settings(offload="group").offload == "group" and studio.load_settings().offload == "group"
    assert json.loads(studio.settings_path().read_text())["quantize"] is None  # written back as null
    with pytest.raises(TypeError, match="unknown settings"):
        studio.save_settings(quantise="8bit")


def test_training_state_follows_the_real_process(monkeypatch, tmp_path):
    """The Train tab switches on TrainingState (not on a sentence): a real child process drives it."""
    import sys

    from hallo4.studio import training

    monkeypatch.setattr(training, "_training", {})
    assert studio.training_state() is studio.TrainingState.IDLE
    training.launch([sys.executable, "-c", "import time; time.sleep(30)"], tmp_path / "train.log", engine="lite")
    assert studio.training_state() is studio.TrainingState.RUNNING
    assert studio.stop_round().startswith("Stopped")
    assert studio.training_state() is studio.TrainingState.STOPPED
    training.launch([sys.executable, "-c", "raise SystemExit(3)"], tmp_path / "train.log", engine="hallo4")
    training._training["current"].wait(30)
    assert studio.training_state() is studio.TrainingState.FAILED and "exit code 3" in studio.training_status()
    training.launch([sys.executable, "-c", "print('done')"], tmp_path / "train.log", engine="hallo4")
    training._training["current"].wait(30)
    assert studio.training_state() is studio.TrainingState.FINISHED
    assert (tmp_path / "train.log").read_text().strip() == "done"


def test_admin_required_checks_the_named_token_parameter(monkeypatch):
    """One decorator guards every admin action, whichever parameter holds the token."""
    from hallo4 import admin

    monkeypatch.setenv("HALLO4_ADMIN_TOKEN", "s3cret")
    admin.reset_failures()

    @admin.required("Models: saving settings", token_param="token")
    def save(quantize, offload, token, request=None):
        return quantize

    assert save("bf16", "none", "s3cret") == "bf16"
    with pytest.raises(admin.AdminError, match="Models: saving settings: wrong or missing admin token"):
        save("bf16", "none", "bf16")  # the first argument is not the token
    with pytest.raises(TypeError, match="no parameter 'tok'"):
        admin.required("x", token_param="tok")(save)
    admin.reset_failures()


def test_progress_set_callback_reports_and_cancels():
    from hallo4.errors import CancelledError
    from hallo4.progress import Progress

    seen = []
    prog = Progress()
    prog.set_callback(lambda f, m: seen.append((round(f, 2), m)))
    prog.sub(0.5, 1.0)(0.5, "half of the second half")
    assert seen == [(0.75, "half of the second half")]
    prog.cancel()
    with pytest.raises(CancelledError):
        prog(0.9, "never shown")


def test_lite_round_needs_votes_and_runs_the_lite_trainer(monkeypatch, tmp_path):
    """The Train tab's lite start: refused with how many votes are missing; the command is the real CLI's."""
    from trainer import lite_dpo

    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("HALLO4_LITE_MIN_VOTES", raising=False)
    with pytest.raises(InputError, match=r"0 usable lite votes, a lite round needs at least 10.*Vote on 10 more"):
        studio.start_round(5, 500.0, 3e-4, 16, engine="lite")
    assert not (tmp_path / "rounds" / "lite" / "round-001").exists()  # nothing reserved for a refused round
    monkeypatch.setenv("HALLO4_LITE_MIN_VOTES", "3")
    assert studio.lite_min_votes() == 3
    out = tmp_path / "rounds" / "lite" / "round-007"
    cmd = studio.lite_train_command(5, 400.0, 1e-3, out=out, min_votes=3)
    assert cmd[1:3] == ["-m", "trainer.lite_dpo"]
    args = cmd[3:]
    assert args[args.index("--out") + 1] == str(out) and args[args.index("--min-votes") + 1] == "3"
    assert args[args.index("--data-dir") + 1] == str(tmp_path.resolve())
    seen = {}

    def fake_train(cfg, *, out, parent, min_votes, progress):
        seen.update(cfg=cfg, out=out, min_votes=min_votes)
        return Path(out)

    monkeypatch.setattr(lite_dpo, "train_from_votes", fake_train)
    assert lite_dpo.main(args) == 0  # the trainer's own parser takes every option the app passes
    assert (seen["cfg"].steps, seen["cfg"].beta, seen["cfg"].lr) == (5, 400.0, 1e-3)
    assert (seen["out"], seen["min_votes"]) == (str(out), 3)
    with pytest.raises(InputError, match="unknown engine 'sd'"):
        studio.list_rounds("sd")
