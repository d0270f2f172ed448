"""hallo4.audio_encoder: 25 fps wav2vec2 features, interpolation before the transformer, window."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from hallo4.audio_encoder import VocalSeparator, encode_audio, wav2vec2_hidden_states, window_features
from hallo4.constants import num_video_frames as num_frames
from hallo4.errors import MissingWeightsError
from hallo4.testing import tiny_wav2vec2


def test_num_frames_is_ceil_at_25fps():
    assert num_frames(16000) == 25
    assert num_frames(16001) == 26
    assert num_frames(640) == 1 and num_frames(641) == 2


def test_shapes_and_window_edges():
    model, fe = tiny_wav2vec2()
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(int(16000 * 1.23)) * 0.1).astype(np.float32)
    out = encode_audio(model, fe, audio)
    t = num_frames(len(audio))
    assert t == 31
    assert out.shape == (t, 5, 2, 16)
    # window: frame t, slot k = hidden[clamp(t + k - 2)]
    hidden = out[:, 2]
    assert (
        torch.equal(out[0, 0], hidden[0]) and torch.equal(out[0, 1], hidden[0]) and torch.equal(out[0, 3], hidden[1])
    )
    assert torch.equal(out[-1, 4], hidden[-1]) and torch.equal(out[10, 0], hidden[8])
    w = window_features(torch.arange(4.0)[:, None, None])
    assert w[:, :, 0, 0].tolist() == [[0, 0, 0, 1, 2], [0, 0, 1, 2, 3], [0, 1, 2, 3, 3], [1, 2, 3, 3, 3]]


def test_matches_manual_interpolation_before_transformer():
    """Hidden states equal the HF model run on CNN features resampled (align_corners) to T steps."""
    model, fe = tiny_wav2vec2()
    audio = (np.sin(np.arange(16000) / 7.0) * 0.3).astype(np.float32)
    x = fe(audio, sampling_rate=16000, return_tensors="pt").input_values
    ours = wav2vec2_hidden_states(model, x, 25)[0]
    with torch.no_grad():
        feats = model.feature_extractor(x)
        assert feats.shape[-1] == 49  # ~50 Hz
        feats = F.interpolate(feats, size=25, mode="linear", align_corners=True)
        h, _ = model.feature_projection(feats.transpose(1, 2))
        enc = model.encoder
        h = enc.layer_norm(h + enc.pos_conv_embed(h))
        ref = []
        for layer in enc.layers:
            h = layer(h)
            ref.append(h)
        # the last layer is also the model's last_hidden_state path
        full_last = enc(model.feature_projection(feats.transpose(1, 2))[0]).last_hidden_state
    assert ours.shape == (25, 2, 16)
    torch.testing.assert_close(ours, torch.stack(ref, 2)[0])
    torch.testing.assert_close(ours[:, -1], full_last[0])
    # the first and last steps coincide with the CNN's first/last frames (align_corners=True)
    assert not torch.allclose(ours[0], ours[1])


def test_vocal_separation_missing_model_names_the_file(tmp_path):
    missing = tmp_path / "Kim_Vocal_2.onnx"
    with pytest.raises(MissingWeightsError, match="Kim_Vocal_2.onnx"):
        VocalSeparator(missing)
