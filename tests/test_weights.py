"""hallo4.weights: lean downloads through the real huggingface_hub code against a local fake hub
(tests/fake_hub.py on 127.0.0.1): allow patterns, each file once, skip when present, resume, byte
progress, disk refusal, the offline fallback table; and every command shown to users exists."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

from hallo4 import weights
from hallo4.errors import MissingWeightsError, ResourceError

from .fake_hub import FakeHub

ROOT = Path(__file__).resolve().parents[1]

NEEDED = {
    weights.OFFICIAL_REPO: {
        "hallo4/model_weight.pth",
        "wav2vec/wav2vec2-base-960h/config.json",
        "wav2vec/wav2vec2-base-960h/preprocessor_config.json",
        "wav2vec/wav2vec2-base-960h/model.safetensors",
        "audio_separator/Kim_Vocal_2.onnx",
    },
    weights.BASE_REPO: {
        "model_index.json",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/config.json",
        "text_encoder/model-00001-of-00002.safetensors",
        "text_encoder/model-00002-of-00002.safetensors",
        "text_encoder/model.safetensors.index.json",
        "tokenizer/tokenizer.json",
        "scheduler/scheduler_config.json",
    },
}
NOT_NEEDED = {
    # The release's own VAE / umT5 (we take them from the diffusers repo: never twice), the .bin twin of wav2vec2's safetensors, and the Wan transformer Hallo4 replaces.
    weights.OFFICIAL_REPO: {
        "Wan2.1_Encoders/models_t5_umt5-xxl-enc-bf16.pth",
        "Wan2.1_Encoders/Wan2.1_VAE.pth",
        "wav2vec/wav2vec2-base-960h/pytorch_model.bin",
        "README.md",
    },
    weights.BASE_REPO: {"transformer/config.json", "transformer/diffusion_pytorch_model.safetensors", "README.md"},
}


@pytest.fixture
def repos(tmp_path):
    out = {}
    for k, (repo, names) in enumerate(NEEDED.items()):
        root = tmp_path / f"repo{k}"
        for i, name in enumerate(sorted(names | NOT_NEEDED[repo])):
            f = root / name
            f.parent.mkdir(parents=True, exist_ok=True)
            size = 150_000 if name.endswith((".pth", ".safetensors", ".bin", ".onnx")) else 50
            f.write_bytes(bytes((i * 7 + j) % 251 for j in range(size)))
        out[repo] = root
    return out


@pytest.fixture
def online(monkeypatch):
    """Let huggingface_hub talk to the local fake hub (conftest sets HF_HUB_OFFLINE=1 for everything else)."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    monkeypatch.delenv("HF_TOKEN", raising=False)


def test_plan_and_download_fetch_only_the_needed_files_each_once(repos, online, tmp_path):
    models = tmp_path / "models"
    with FakeHub(repos) as hub:
        plan = weights.plan(models, endpoint=hub.endpoint)
        assert plan.sizes_from == "hub"
        planned = {(f.repo_id, f.filename) for f in plan.files}
        assert planned == {(r, n) for r, names in NEEDED.items() for n in names}
        assert plan.download_bytes == sum((repos[r] / n).stat().st_size for r, n in planned)
        assert plan.convert_needed and plan.needed_bytes == plan.download_bytes + weights.CONVERTED_BYTES
        messages = []
        weights.download(models, lambda f, m: messages.append((f, m)), convert=False, endpoint=hub.endpoint)
        fetched = [(r, n) for r, n, _ in hub.gets]
    assert sorted(fetched) == sorted(planned)  # every needed file, once; nothing else
    for repo, names in NEEDED.items():
        folder = models / (weights.OFFICIAL_FOLDER if repo == weights.OFFICIAL_REPO else weights.BASE_FOLDER)
        for n in names:
            assert (folder / n).read_bytes() == (repos[repo] / n).read_bytes()
        for n in NOT_NEEDED[repo]:
            assert not (folder / n).exists()
    # byte progress: increasing fractions, messages with bytes, ends at 1
    fractions = [f for f, _ in messages]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert any(re.search(r"Downloading .*: [\d.]+ MB of [\d.]+ MB", m) for _, m in messages)


def test_second_download_fetches_nothing(repos, online, tmp_path):
    models = tmp_path / "models"
    with FakeHub(repos) as hub:
        weights.download(models, convert=False, endpoint=hub.endpoint)
        n = len(hub.gets)
        again = weights.plan(models, endpoint=hub.endpoint)
        assert again.download_bytes == 0 and all(f.present for f in again.files)
        weights.download(models, convert=False, endpoint=hub.endpoint)
        assert len(hub.gets) == n


def test_broken_connection_resumes_and_a_stopped_run_keeps_finished_files(repos, online, tmp_path, monkeypatch):
    """Within a run huggingface_hub resumes a dropped connection with a Range request; across runs
    (2.x deletes its partial temp file) every finished file is kept and only unfinished ones are fetched."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 4096)
    models = tmp_path / "models"
    name = "hallo4/model_weight.pth"
    with FakeHub(repos) as hub:
        hub.fail_after[name] = [40_960, 0]  # 40 kB arrive, the connection drops, then once more
        weights.download(models, convert=False, endpoint=hub.endpoint)
        ranges = [rng for _, n, rng in hub.gets if n == name]
        assert ranges == [None, "bytes=40960-", "bytes=40960-"]
        assert (models / weights.OFFICIAL_FOLDER / name).read_bytes() == (
            repos[weights.OFFICIAL_REPO] / name
        ).read_bytes()

    models = tmp_path / "models2"
    with FakeHub(repos) as hub:
        hub.fail_after[name] = [0] * 6  # never gets through: the run stops with a clear error
        with pytest.raises(MissingWeightsError, match="finished files are kept"):
            weights.download(models, convert=False, endpoint=hub.endpoint)
        first = len(hub.gets)
        weights.download(models, convert=False, endpoint=hub.endpoint)
        again = [n for _, n, _ in hub.gets[first:]]
    assert name in again
    assert not set(again) & (NEEDED[weights.OFFICIAL_REPO] - {name})  # wav2vec2 files were kept, not fetched again
    assert (models / weights.OFFICIAL_FOLDER / name).read_bytes() == (repos[weights.OFFICIAL_REPO] / name).read_bytes()


def test_refuses_before_downloading_when_the_disk_is_too_small(repos, online, tmp_path, monkeypatch):
    models = tmp_path / "models"
    with FakeHub(repos) as hub:
        plan = weights.plan(models, endpoint=hub.endpoint)
        monkeypatch.setattr(weights.planning, "free_disk", lambda path: plan.needed_bytes)  # no room for the margin
        with pytest.raises(
            ResourceError, match=r"Not enough disk space .* need 5\.\d\d GB more .* only 5\.\d\d GB are free"
        ):
            weights.download(models, convert=False, endpoint=hub.endpoint)
        assert hub.gets == []
        monkeypatch.setattr(weights.planning, "free_disk", lambda path: plan.needed_bytes + weights.DISK_MARGIN)
        weights.download(models, convert=False, endpoint=hub.endpoint)
        assert hub.gets


def test_offline_plan_uses_the_fallback_table(tmp_path):
    plan = weights.plan(tmp_path / "models")  # HF_HUB_OFFLINE=1 (conftest): the hub cannot be asked
    assert plan.sizes_from == "fallback table"
    sizes = {f.filename: f.size for f in plan.files}
    assert sizes["text_encoder/*"] == int(22.73e9)  # the diffusers repo's fp32 umT5 encoder, counted once
    assert sizes[weights.CHECKPOINT] == 4 * weights.TRANSFORMER_PARAMETERS
    assert not any("Wan2.1_Encoders" in f.filename or "transformer" in f.filename for f in plan.files)
    assert 38e9 < plan.needed_bytes < 42e9
    plan.free_bytes = 10**15  # past the disk check: the download itself fails clearly offline
    with pytest.raises(MissingWeightsError, match="Could not download .* partial ones resume"):
        weights.download(tmp_path / "models", convert=False, the_plan=plan)


def test_cli_plan_prints_the_table(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "hallo4.weights", "plan", "--models-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert "fallback table" in out.stdout and "22.73 GB" in out.stdout and weights.BASE_REPO in out.stdout


# ----------------------------------------------------------------------------------------------
# Every command shown to users exists in the pinned packages
# ----------------------------------------------------------------------------------------------
SHOWN_IN = ["README.md", "app.py", "BENCHMARKS.md", "docs/RELEASE_DIFFERENCES.md"]


def _shown_texts() -> list[str]:
    texts = [(ROOT / f).read_text() for f in SHOWN_IN if (ROOT / f).exists()]
    texts += [p.read_text() for d in ("hallo4", "trainer") for p in sorted((ROOT / d).rglob("*.py"))]
    from hallo4 import studio

    texts.append(weights.download_hint("models"))
    texts.append(studio.model_status()["hallo4"]["how_to_get"])
    return texts


def shown_commands() -> set[tuple[str, ...]]:
    cmds: set[tuple[str, ...]] = set()
    for text in _shown_texts():
        for m in re.finditer(r"python -m ((?:hallo4|trainer)[\w.]*)(?: ([a-z][\w-]*)\b)?", text):
            if m.group(1).endswith("."):  # a pattern such as `python -m hallo4.*`, not a command
                continue
            cmds.add(("python", "-m", m.group(1)) + ((m.group(2),) if m.group(2) else ()))
        for m in re.finditer(r"\b(hf|huggingface-cli) ([a-z][\w-]*)", text):
            cmds.add((m.group(1), m.group(2)))
        for m in re.finditer(r"python (bench/\w+\.py)", text):
            cmds.add(("python", m.group(1)))
    return cmds


def test_every_shown_command_has_a_help(capsys, monkeypatch):
    cmds = shown_commands()
    assert ("hf", "download") in cmds and ("python", "-m", "hallo4.weights", "download") in cmds
    assert ("python", "bench/gpu_check.py") in cmds and ("python", "-m", "hallo4.preflight") in cmds
    assert not any(c[0] == "huggingface-cli" for c in cmds), "huggingface_hub 2.x has no huggingface-cli"
    failures = []
    for cmd in sorted(cmds):
        if cmd[0] == "hf":
            hf = Path(sys.executable).parent / "hf"
            run = subprocess.run([str(hf), *cmd[1:], "--help"], capture_output=True, text=True, timeout=120)
            ok = run.returncode == 0 and "Usage" in run.stdout
        elif cmd[1].startswith("bench/"):
            run = subprocess.run(
                [sys.executable, cmd[1], "--help"], capture_output=True, text=True, timeout=300, cwd=ROOT
            )
            ok = run.returncode == 0 and "usage" in run.stdout.lower()
        else:  # in-process (torch is imported once): argparse's --help exits 0
            module, rest = cmd[2], list(cmd[3:])
            monkeypatch.setattr(sys, "argv", [module, *rest, "--help"])
            try:
                runpy.run_module(module, run_name="__main__", alter_sys=False)
                ok = False  # a --help that does not exit did not parse it
            except SystemExit as exc:
                ok = exc.code in (0, None) and "usage" in capsys.readouterr().out.lower()
            except Exception:  # noqa: BLE001 - the module has no CLI or a wrong subcommand
                ok = False
        if not ok:
            failures.append(" ".join(cmd))
    assert not failures, f"shown commands without a working --help: {failures}"


def test_app_download_returns_at_once_when_the_weights_are_there(tmp_path, monkeypatch):
    """The Models tab's second click: nothing to fetch, no network asked (HF_HUB_OFFLINE=1 here)."""
    from hallo4 import studio
    from hallo4.testing import make_tiny_pipeline

    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("HALLO4_MODEL", raising=False)
    model = make_tiny_pipeline(tmp_path / "data" / "models" / "hallo4")
    messages = []
    assert studio.download_official(lambda f, m: messages.append((f, m))) == model
    assert messages == [(1.0, f"The hallo4 weights are already in {model}")]


def test_find_components_is_where_the_pipeline_loads_from(tmp_path):
    """The release layout (converted transformer, Wan base beside it, the release's wav2vec2): find_components
    names each folder; a part taken away becomes None and is named by the pipeline's error."""
    import shutil

    from hallo4.pipelines import Hallo4Pipeline
    from hallo4.testing import make_tiny_pipeline

    tiny = make_tiny_pipeline(tmp_path / "tiny")
    models = tmp_path / "models"
    model = models / weights.MODEL_FOLDER
    base = models / weights.BASE_FOLDER
    audio = models / weights.OFFICIAL_FOLDER / weights.WAV2VEC
    shutil.copytree(tiny / "transformer", model)  # the bare converter output
    for part in ("vae", "text_encoder", "tokenizer", "scheduler"):
        shutil.copytree(tiny / part, base / part)
    shutil.copytree(tiny / "audio_encoder", audio)
    shutil.copy(tiny / "feature_extractor" / "preprocessor_config.json", audio)
    found = weights.find_components(model)
    assert found == {
        "transformer": model,
        "vae": base / "vae",
        "text_encoder": base / "text_encoder",
        "tokenizer": base / "tokenizer",
        "audio_encoder": audio,
        "feature_extractor": audio,
    }
    assert weights.components_present(str(model)) and weights.find_scheduler(model) == base / "scheduler"
    pipe = Hallo4Pipeline.from_pretrained(model)
    assert pipe.text_encoder_dir == base / "text_encoder"
    # a base model given explicitly wins over the default beside the folder
    other = tmp_path / "other-base"
    shutil.copytree(base / "vae", other / "vae")
    assert weights.find_components(model, base_model=other)["vae"] == other / "vae"
    shutil.rmtree(base / "tokenizer")
    assert weights.find_components(model)["tokenizer"] is None and not weights.components_present(model)
    assert weights.missing_components(model) == [f"tokenizer (looked in: {model / 'tokenizer'}, {base / 'tokenizer'})"]
    with pytest.raises(MissingWeightsError, match="tokenizer"):
        Hallo4Pipeline.from_pretrained(model)
