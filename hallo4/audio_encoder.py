"""Audio features for Hallo4 (HALLO4.md section 2): wav2vec2 hidden states at 25 fps, windowed.

    features = encode_audio(wav2vec2_model, feature_extractor, audio_16k)   # (T, 5, L, D)

* T = ceil(samples / 16000 * 25) video frames.
* The CNN feature-encoder output (~50 Hz) is linearly interpolated (align_corners=True) to T steps
  BEFORE the feature projection and the transformer, so the transformer runs at 25 Hz.
* The outputs of all L transformer layers are kept (the embedding output is dropped): (T, L, D).
* Window: frame t gets frames t-2 .. t+2, clamped at the edges: (T, 5, L, D).

Optional vocal separation (off by default): `VocalSeparator(onnx_path)` runs an MDX-Net ONNX model
(the release uses Kim_Vocal_2) with onnxruntime; an absent file raises `MissingWeightsError`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .errors import MissingWeightsError

SAMPLE_RATE = 16000
FPS = 25.0
WINDOW = 5


def num_frames(num_samples: int, sr: int = SAMPLE_RATE, fps: float = FPS) -> int:
    """T = ceil(samples / sr * fps) (at least 1)."""
    return max(1, int(math.ceil(num_samples / sr * fps - 1e-9)))


def window_features(hidden: torch.Tensor, window: int = WINDOW) -> torch.Tensor:
    """(T, L, D) -> (T, window, L, D): frame t gets t - window//2 .. t + window//2, clamped."""
    t = hidden.shape[0]
    half = window // 2
    idx = (torch.arange(t)[:, None] + torch.arange(-half, half + 1)[None, :]).clamp(0, t - 1)
    return hidden[idx.to(hidden.device)]


@torch.no_grad()
def wav2vec2_hidden_states(model, input_values: torch.Tensor, num_video_frames: int) -> torch.Tensor:
    """Run a transformers `Wav2Vec2Model` with its CNN features resampled to `num_video_frames` steps.

    input_values: (B, samples) normalised as the feature extractor does. Returns (B, T, L, D): the
    output of every transformer layer (embedding output dropped).
    """
    feats = model.feature_extractor(input_values)  # (B, C, S) at ~50 Hz
    feats = F.interpolate(feats.float(), size=num_video_frames, mode="linear", align_corners=True).to(feats.dtype)
    hidden, _ = model.feature_projection(feats.transpose(1, 2))
    encoder = model.encoder
    hidden = hidden + encoder.pos_conv_embed(hidden).to(hidden.device)
    stable = type(encoder).__name__.endswith("StableLayerNorm")
    if not stable:
        hidden = encoder.layer_norm(hidden)
    hidden = encoder.dropout(hidden)
    outs = []
    for i, layer in enumerate(encoder.layers):
        hidden = layer(hidden, attention_mask=None)
        if isinstance(hidden, tuple):
            hidden = hidden[0]
        # Stable-layer-norm variants (large models) apply the final LayerNorm to the last layer only.
        outs.append(encoder.layer_norm(hidden) if stable and i == len(encoder.layers) - 1 else hidden)
    return torch.stack(outs, dim=2)


@torch.no_grad()
def encode_audio(
    model,
    feature_extractor,
    audio: np.ndarray,
    sr: int = SAMPLE_RATE,
    *,
    fps: float = FPS,
    window: int = WINDOW,
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
    separator: "VocalSeparator | None" = None,
) -> torch.Tensor:
    """16 kHz mono float audio -> windowed wav2vec2 features (T, window, L, D) on `device` in `dtype`.

    `separator`: optional vocal separation applied first (see `VocalSeparator`).
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if separator is not None:
        audio = separator(audio, sr)
    if sr != SAMPLE_RATE:
        raise ValueError(f"wav2vec2 needs {SAMPLE_RATE} Hz audio, got {sr} Hz")
    t = num_frames(len(audio), sr, fps)
    inputs = feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_values
    device = device if device is not None else next(model.parameters()).device
    model_dtype = next(model.parameters()).dtype
    hidden = wav2vec2_hidden_states(model, inputs.to(device=device, dtype=model_dtype), t)[0]  # (T, L, D)
    out = window_features(hidden, window)
    return out.to(dtype=dtype) if dtype is not None else out


# ----------------------------------------------------------------------------------------------
# Vocal separation (optional)
# ----------------------------------------------------------------------------------------------
class VocalSeparator:
    """MDX-Net vocal separation with onnxruntime (Kim_Vocal_2 settings by default).

    Best effort: the STFT layout follows the public MDX-Net inference (n_fft 7680, hop 1024,
    dim_f 3072, dim_t 256, 44.1 kHz stereo, compensation 1.009). Off by default in the pipeline.
    """

    def __init__(self, onnx_path: str | Path, *, n_fft: int = 7680, hop: int = 1024, dim_f: int = 3072,
                 dim_t: int = 256, compensate: float = 1.009, device: str = "cpu"):
        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise MissingWeightsError(
                f"Vocal separation model not found: {self.path}.",
                hint="Download it with `hf download fudan-generative-ai/hallo4 "
                     "audio_separator/Kim_Vocal_2.onnx --local-dir models/hallo4-official`, "
                     "or turn vocal separation off.",
            )
        try:
            import onnxruntime as ort
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise MissingWeightsError("Vocal separation needs onnxruntime.", hint="pip install onnxruntime") from exc
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if device != "cpu" else ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(str(self.path), providers=providers)
        self.n_fft, self.hop, self.dim_f, self.dim_t, self.compensate = n_fft, hop, dim_f, dim_t, compensate

    def __call__(self, audio: np.ndarray, sr: int) -> np.ndarray:  # pragma: no cover - needs the ONNX model
        import torchaudio.functional as AF

        x = torch.from_numpy(np.asarray(audio, np.float32))
        x44 = AF.resample(x, sr, 44100) if sr != 44100 else x
        mix = torch.stack([x44, x44])  # (2, N) stereo
        chunk = self.hop * (self.dim_t - 1)
        trim = self.n_fft // 2
        gen = chunk - 2 * trim
        pad = gen - mix.shape[1] % gen
        padded = torch.cat([torch.zeros(2, trim), mix, torch.zeros(2, pad + trim)], 1)
        window = torch.hann_window(self.n_fft, periodic=True)
        outs = []
        for i in range(0, padded.shape[1] - 2 * trim, gen):
            seg = padded[:, i:i + chunk]
            spec = torch.stft(seg, self.n_fft, self.hop, window=window, center=True, return_complex=True)
            spec = torch.view_as_real(spec).permute(0, 3, 1, 2).reshape(1, 4, self.n_fft // 2 + 1, -1)[:, :, :self.dim_f]
            pred = self.session.run(None, {self.session.get_inputs()[0].name: spec.numpy()})[0]
            pred = torch.from_numpy(pred)
            full = torch.zeros(1, 4, self.n_fft // 2 + 1, pred.shape[-1])
            full[:, :, :self.dim_f] = pred
            full = full.reshape(2, 2, self.n_fft // 2 + 1, -1).permute(0, 2, 3, 1).contiguous()
            wav = torch.istft(torch.view_as_complex(full), self.n_fft, self.hop, window=window, center=True,
                              length=chunk)
            outs.append(wav[:, trim:trim + gen])
        vocals = torch.cat(outs, 1)[:, : mix.shape[1]].mean(0) * self.compensate
        out = AF.resample(vocals, 44100, sr) if sr != 44100 else vocals
        return out.numpy().astype(np.float32)[: len(audio)]
