"""hallo4.preflight: weight sizes from the real configurations on the meta device, the per-mode
memory table, and a clear refusal (naming what fits) instead of an out-of-memory crash."""

from __future__ import annotations

import pytest

from hallo4 import preflight
from hallo4.errors import ResourceError
from hallo4.preflight import GiB, Machine

pytestmark = pytest.mark.usefixtures("data_dir")  # HALLO4_DATA_DIR in each test's tmp_path

FULL_DIT_PARAMETERS = 2_770_040_256  # BENCHMARKS.md, counted independently by bench/bench_model.py


@pytest.fixture(scope="module")
def full():
    return preflight.weight_bytes(None)


def test_weights_of_the_full_configuration(full):
    assert full["dit_params"] == FULL_DIT_PARAMETERS
    assert full["dit"]["bf16"] == 2 * FULL_DIT_PARAMETERS and full["dit"]["release"] == 4 * FULL_DIT_PARAMETERS
    assert 2.5 * GiB < full["dit"]["8bit"] < 2.8 * GiB
    # umT5-XXL encoder from its published configuration: 24 layers of (4 attention projections + gated FFN +
    # 2 norms + a relative bias table), the final norm, and the token embeddings (shared + the encoder's own
    # copy, which transformers 5 keeps untied when tie_word_embeddings is false).
    d, ff, layers, vocab = 4096, 10240, 24, 256384
    per_layer = 4 * d * d + 3 * d * ff + 2 * d + 32 * 64
    assert full["text_params"] == layers * per_layer + d + 2 * vocab * d
    assert full["text"] == 2 * full["text_params"]
    assert 126e6 < full["vae_params"] < 128e6  # Wan2.1 VAE: 508 MB as fp32 on the hub
    assert 94e6 < full["audio_params"] < 95e6  # wav2vec2-base


def test_activation_estimate_at_the_native_canvas(full):
    act = preflight.activation_bytes(full)
    assert act["tokens"] == 22 * 30 * 52  # (reference + 21 latent frames) x (480/16) x (832/16)
    assert 5 * GiB < act["dit"] < 10 * GiB
    smaller = preflight.activation_bytes(full, height=240, width=416)
    assert smaller["tokens"] * 4 == act["tokens"] and smaller["dit"] * 4 == act["dit"]


def test_mode_table_is_ordered_sensibly(full):
    act = preflight.activation_bytes(full)

    def e(p, o, t="cached"):
        return preflight.estimate(p, o, t, full, act)

    for o in preflight.OFFLOADS:
        assert e("8bit", o).gpu_bytes <= e("bf16", o).gpu_bytes < e("release", o).gpu_bytes
        assert e("bf16", o, "resident").gpu_bytes >= e("bf16", o).gpu_bytes
    for p in preflight.PRECISIONS:
        assert e(p, "group").gpu_bytes < e(p, "none").gpu_bytes
        assert e(p, "model").cpu_bytes >= full["dit"][p] and e(p, "none").cpu_bytes == 0
    # cached text encoder: the first use of a prompt loads umT5 next to the resident weights
    resident = full["dit"]["bf16"] + full["vae"] + full["audio"]
    assert e("bf16", "none").gpu_bytes_prompt_miss > resident + full["text"] > e("bf16", "none").gpu_bytes - 10 * GiB
    assert e("bf16", "none", "resident").gpu_bytes > resident + full["text"]
    # release precision: fp32 weights plus autocast's bf16 copy during a forward
    assert (
        e("release", "none").detail["dit_activations"] - e("bf16", "none").detail["dit_activations"]
        == full["dit"]["bf16"]
    )


def test_check_refuses_with_the_modes_that_fit_and_picks_the_fastest():
    h100 = Machine("cuda:0 (test 80 GB)", 80 * GiB, 256 * GiB)
    small = Machine("cuda:0 (test 16 GB)", 16 * GiB, 64 * GiB)
    tiny_gpu = Machine("cuda:0 (test 6 GB)", 6 * GiB, 64 * GiB)
    assert preflight.check("bf16", "none", machine=h100).fits
    with pytest.raises(
        ResourceError,
        match=r"bf16 / offload none .* needs about \d+\.\d GiB .* has 16\.0 GiB\..*"
        r"Modes that fit: .*offload (model|group)",
    ):
        preflight.check("bf16", "none", machine=small)
    assert preflight.pick(machine=h100).name == "bf16 / offload none / text encoder cached"
    assert preflight.pick(machine=small).offload != "none"
    with pytest.raises(ResourceError, match="No hallo4 mode fits"):
        preflight.pick(machine=tiny_gpu)


def test_skip_variable_lets_a_refused_mode_through(monkeypatch):
    small = Machine("cuda:0 (test 16 GB)", 16 * GiB, 64 * GiB)
    monkeypatch.setenv("HALLO4_SKIP_PREFLIGHT", "1")
    assert preflight.check("release", "none", machine=small).fits is False


def test_cpu_path_checks_host_memory(tiny_pipeline_dir):
    laptop = Machine("cpu", None, 16 * GiB)
    with pytest.raises(ResourceError, match=r"on the CPU needs about \d+\.\d GiB of RAM"):
        preflight.check("bf16", "none", machine=laptop)
    # the tiny test model's own configs are read: a few MB
    assert preflight.cpu_estimate(tiny_pipeline_dir)["new_prompt"] < 1 * GiB
    preflight.check("bf16", "none", model=tiny_pipeline_dir, machine=laptop)


def test_engine_runs_the_preflight_before_loading(tiny_pipeline_dir, tmp_path, monkeypatch):
    from hallo4.engines.diffusion import DiffusionEngine

    calls = []
    real = preflight.check
    monkeypatch.setattr(preflight, "check", lambda *a, **k: calls.append((a, k)) or real(*a, **k))
    engine = DiffusionEngine(model=tiny_pipeline_dir, device="cpu")
    engine.load()
    assert calls and calls[0][0][:2] == ("bf16", "none") and calls[0][1]["model"] == str(tiny_pipeline_dir)
    # no weights: nothing to size, the loader's MissingWeightsError speaks instead
    assert DiffusionEngine(model=tmp_path / "none", device="cpu").preflight() is None


def test_markdown_table_has_every_mode():
    md = preflight.format_table(preflight.table(machine=Machine("cuda:0 (test)", 24 * GiB, 64 * GiB)))
    rows = [line for line in md.splitlines()[2:]]
    assert len(rows) == len(preflight.PRECISIONS) * len(preflight.OFFLOADS) * len(preflight.TEXT_MODES)
    assert any(r.endswith("| yes |") for r in rows) and any(r.endswith("| no |") for r in rows)
