"""Vocal separation as the release (MDX-Net ONNX through onnxruntime, no torchaudio), checked with tiny
ONNX models built here: an identity (STFT/ISTFT round trip over many chunks) and a band-pass "vocal"
mask on speech from examples/ plus a synthetic music bed (bass + high shimmer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hallo4 import media
from hallo4.audio_encoder import VOCAL_MODEL, VocalSeparator, encode_audio
from hallo4.errors import MissingWeightsError
from hallo4.testing import tiny_wav2vec2

onnx = pytest.importorskip("onnx")  # test-only dependency (requirements-dev.txt); a missing one fails CI's install


def build_mdx(path, dim_f: int, dim_t: int, n_fft: int, keep_hz: tuple[float, float] | None, static: bool = True):
    """An MDX-shaped model: (N, 4, dim_f, dim_t) spectrogram -> the same times a per-bin mask
    (1 inside `keep_hz`, 0 outside; all ones when None)."""
    from onnx import TensorProto, helper, numpy_helper

    freqs = np.arange(dim_f) * VocalSeparator.SAMPLE_RATE / n_fft
    mask = np.ones(dim_f, np.float32) if keep_hz is None else ((freqs >= keep_hz[0]) & (freqs <= keep_hz[1]))
    mask = mask.astype(np.float32).reshape(1, 1, dim_f, 1)
    shape = ["N", 4, dim_f, dim_t] if static else ["N", 4, "F", "T"]
    graph = helper.make_graph(
        [helper.make_node("Mul", ["input", "mask"], ["output"])],
        "mdx_tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, shape)],
        initializer=[numpy_helper.from_array(mask, "mask")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


SMALL = dict(n_fft=1024, hop=256)  # chunk = 256 * 31 = 7936 samples (0.18 s at 44.1 kHz)


def test_identity_model_round_trips_over_many_chunks(tmp_path):
    sep = VocalSeparator(build_mdx(tmp_path / "id.onnx", 256, 32, 1024, None), **SMALL, compensate=1.0)
    assert (sep.dim_f, sep.dim_t, sep.chunk) == (256, 32, 7936)  # read from the model's input shape
    t = np.arange(3 * 44100) / 44100  # 3 s: 20 chunks, boundaries everywhere
    mix = np.stack([0.3 * np.sin(2 * np.pi * 440 * t), 0.2 * np.sin(2 * np.pi * 1234 * t + 1)]).astype(np.float32)
    out = sep.separate(mix)
    assert out.shape == mix.shape and out.dtype == np.float32
    # all bins below dim_f's 11 kHz pass unchanged; only the abrupt start/end (a broadband click whose top
    # band dim_f cuts off) is not exact
    np.testing.assert_allclose(out[:, 1024:-1024], mix[:, 1024:-1024], atol=1e-4)
    short = sep.separate(mix[:, :3000])  # shorter than a chunk
    assert short.shape == (2, 3000) and np.abs(short[:, 1024:-1024] - mix[:, 1024:1976]).max() < 1e-4


def _tone_db(x, sr, hz):
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    k = int(round(hz * len(x) / sr))
    return 20 * np.log10(spec[k - 2 : k + 3].max() + 1e-12)


def test_band_pass_vocal_model_on_speech_plus_music(tmp_path, speech_path):
    speech = media.load_audio(speech_path, 16000, max_seconds=3.0)
    t = np.arange(len(speech)) / 16000
    music = 0.3 * np.sin(2 * np.pi * 55 * t) + 0.1 * np.sin(2 * np.pi * 6500 * t)  # bass + shimmer
    mix = (speech + music).astype(np.float32)
    sep = VocalSeparator(build_mdx(tmp_path / "bp.onnx", 256, 32, 1024, (150.0, 4500.0)), **SMALL)
    vocals = sep(mix, 16000)
    assert vocals.shape == mix.shape and vocals.dtype == np.float32  # 16 kHz in, 16 kHz out, same length
    for hz in (55, 6500):  # the music bed is gone (> 30 dB down)
        assert _tone_db(mix, 16000, hz) - _tone_db(vocals, 16000, hz) > 30
    # the speech stays: the stem correlates with the clean speech far better than the mixture does
    corr = np.corrcoef(vocals, speech)[0, 1]
    assert corr > 0.8 and corr > np.corrcoef(mix, speech)[0, 1] + 0.2


def test_encode_audio_uses_the_separated_stem(tmp_path, speech_path):
    model, fe = tiny_wav2vec2()
    speech = media.load_audio(speech_path, 16000, max_seconds=1.0)
    mix = speech + 0.3 * np.sin(2 * np.pi * 55 * np.arange(len(speech)) / 16000).astype(np.float32)
    sep = VocalSeparator(build_mdx(tmp_path / "bp.onnx", 256, 32, 1024, (150.0, 4500.0)), **SMALL)
    with_sep = encode_audio(model, fe, mix, separator=sep)
    assert torch.equal(with_sep, encode_audio(model, fe, sep(mix, 16000)))
    assert not torch.allclose(with_sep, encode_audio(model, fe, mix))


def test_missing_or_wrong_model_is_said(tmp_path):
    with pytest.raises(MissingWeightsError, match=VOCAL_MODEL):
        VocalSeparator(tmp_path / VOCAL_MODEL)
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["y"])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
    )
    onnx.save(
        helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
        str(tmp_path / "other.onnx"),
    )
    with pytest.raises(MissingWeightsError, match="not an MDX-Net model"):
        VocalSeparator(tmp_path / "other.onnx")


# ------------------------------------------------------------------------------------------------
# The hallo4 engine: on by default when the file is there, off with a note when not, switchable
# ------------------------------------------------------------------------------------------------
OPTS = {"steps": 1, "frames_per_segment": 5, "height": 32, "width": 32}


def _generate(engine, portrait, audio, tmp_path, monkeypatch, **opts):
    import hallo4.pipelines.pipeline_hallo4 as pl

    seen = []
    real = pl.encode_audio

    def spy(*args, separator=None, **kw):
        seen.append(separator)
        return real(*args, separator=separator, **kw)

    monkeypatch.setattr(pl, "encode_audio", spy)
    from hallo4.engines import GenerationRequest

    res = engine.generate(
        GenerationRequest(
            portrait=portrait,
            audio=audio,
            seed=1,
            max_seconds=0.2,
            output=tmp_path / "o.mp4",
            options={**OPTS, **opts},
        )
    )
    return res, seen[-1]


def test_engine_auto_on_off_and_switch(
    tiny_pipeline_copy, data_dir, portrait_path, speech_path, tmp_path, monkeypatch
):
    from hallo4.engines.diffusion import DiffusionEngine

    engine = DiffusionEngine(model=str(tiny_pipeline_copy))
    res, sep = _generate(engine, portrait_path, speech_path, tmp_path, monkeypatch)
    assert sep is None and res.parameters["vocal_separation"] is False
    assert any("Vocal separation is off" in w and VOCAL_MODEL in w for w in res.warnings)
    with pytest.raises(MissingWeightsError, match=VOCAL_MODEL):
        _generate(engine, portrait_path, speech_path, tmp_path, monkeypatch, vocal_separation="on")

    # Kim_Vocal_2-shaped stand-in next to the weights (real n_fft 7680, hop 1024; small dim_f / dim_t), in the
    # test's own copy of the pipeline
    onnx_path = build_mdx(tiny_pipeline_copy / "audio_separator" / VOCAL_MODEL, 64, 16, 7680, (100.0, 300.0))
    res, sep = _generate(engine, portrait_path, speech_path, tmp_path, monkeypatch)
    assert isinstance(sep, VocalSeparator) and sep.path == onnx_path and res.parameters["vocal_separation"]
    assert not any("Vocal separation" in w for w in res.warnings)
    res, sep = _generate(engine, portrait_path, speech_path, tmp_path, monkeypatch, vocal_separation="off")
    assert sep is None and res.parameters["vocal_separation"] is False


def test_cli_switch_exists():
    from hallo4.generate import build_parser

    args = build_parser().parse_args(["--portrait", "p", "--audio", "a", "-o", "o", "--vocal-separation", "off"])
    assert args.vocal_separation == "off"
    assert build_parser().parse_args(["--portrait", "p", "--audio", "a", "-o", "o"]).vocal_separation == "auto"
    for precision in ("release", "bf16", "8bit", "fp32"):  # README shows these
        assert (
            build_parser()
            .parse_args(["--portrait", "p", "--audio", "a", "-o", "o", "--precision", precision])
            .precision
            == precision
        )


def test_app_setting_reaches_the_engine(tmp_path, monkeypatch):
    from hallo4 import studio
    from hallo4.engines import get_engine

    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path / "data"))
    assert studio._engine_kwargs("hallo4")["vocal_separation"] == "auto"
    studio.save_settings(vocal_separation="off")
    kwargs = studio._engine_kwargs("hallo4")
    assert kwargs["vocal_separation"] == "off" and get_engine("hallo4", **kwargs).vocal_separation is False
    assert get_engine("hallo4", vocal_separation="auto").vocal_separation is None
