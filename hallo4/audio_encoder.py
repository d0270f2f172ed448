"""Audio features for Hallo4 (docs/MODEL.md section 2): wav2vec2 hidden states at 25 fps, windowed.

    features = encode_audio(wav2vec2_model, feature_extractor, audio_16k)   # (T, 5, L, D)

* T = ceil(samples / 16000 * 25) video frames (`hallo4.constants.num_video_frames`).
* The CNN feature-encoder output (~50 Hz) is linearly interpolated (align_corners=True) to T steps
  BEFORE the feature projection and the transformer, so the transformer runs at 25 Hz.
* The outputs of all L transformer layers are kept (the embedding output is dropped): (T, L, D).
* Window: frame t gets frames t-2 .. t+2, clamped at the edges: (T, 5, L, D).

Vocal separation, as the release does before wav2vec2: `VocalSeparator(onnx_path)` runs the MDX-Net
ONNX model (Kim_Vocal_2) with onnxruntime; an absent file raises `MissingWeightsError`. The hallo4
engine switches it on when the file is present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .constants import FPS, SAMPLE_RATE, num_video_frames
from .errors import MissingWeightsError

WINDOW = 5


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
    separator: VocalSeparator | None = None,
) -> torch.Tensor:
    """16 kHz mono float audio -> windowed wav2vec2 features (T, window, L, D) on `device` in `dtype`.

    `separator`: optional vocal separation applied first (see `VocalSeparator`).
    """
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)
    if separator is not None:
        audio = separator(audio, sr)
    if sr != SAMPLE_RATE:
        raise ValueError(f"wav2vec2 needs {SAMPLE_RATE} Hz audio, got {sr} Hz")
    t = num_video_frames(len(audio), sr, fps)
    inputs = feature_extractor(audio, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_values
    device = device if device is not None else next(model.parameters()).device
    model_dtype = next(model.parameters()).dtype
    hidden = wav2vec2_hidden_states(model, inputs.to(device=device, dtype=model_dtype), t)[0]  # (T, L, D)
    out = window_features(hidden, window)
    return out.to(dtype=dtype) if dtype is not None else out


# ----------------------------------------------------------------------------------------------
# Vocal separation (MDX-Net, as the release)
# ----------------------------------------------------------------------------------------------
VOCAL_MODEL = "Kim_Vocal_2.onnx"  # the release's separator, in the published weights' audio_separator/


class VocalSeparator:
    """MDX-Net vocal separation with onnxruntime directly (no torchaudio; the `audio-separator` package
    would pull in torchvision). Kim_Vocal_2 settings by default: 44.1 kHz stereo, n_fft 7680, hop 1024,
    dim_f 3072 x dim_t 256 spectrogram chunks (read from the model's input shape when it is static),
    output scaled by the compensation 1.009.

    Chunking as MDX-Net's inference: each chunk covers hop * (dim_t - 1) samples; n_fft / 2 samples are
    trimmed from both ends of every chunk so that only the centre of each STFT is kept, chunks step by
    the remaining length, and the mixture is zero-padded to whole chunks.
    """

    SAMPLE_RATE = 44100

    def __init__(
        self,
        onnx_path: str | Path,
        *,
        n_fft: int = 7680,
        hop: int = 1024,
        dim_f: int | None = None,
        dim_t: int | None = None,
        compensate: float = 1.009,
        device: str = "cpu",
        batch_size: int = 4,
    ):
        self.path = Path(onnx_path)
        if not self.path.is_file():
            raise MissingWeightsError(
                f"Vocal separation model not found: {self.path}.",
                hint="Download it with `hf download fudan-generative-ai/hallo4 "
                f"audio_separator/{VOCAL_MODEL} --local-dir models/hallo4-official`, "
                "or turn vocal separation off.",
            )
        import onnxruntime as ort

        providers = ["CPUExecutionProvider"]
        if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(self.path), sess_options=options, providers=providers)
        spec = self.session.get_inputs()[0]
        shape = list(spec.shape)
        if len(shape) != 4 or (isinstance(shape[1], int) and shape[1] != 4):
            raise MissingWeightsError(
                f"{self.path.name} is not an MDX-Net model: its input is {shape}, expected (batch, 4, dim_f, dim_t).",
                hint=f"Use {VOCAL_MODEL}.",
            )
        self.input_name = spec.name
        self.dim_f = dim_f or (shape[2] if isinstance(shape[2], int) else 3072)
        self.dim_t = dim_t or (shape[3] if isinstance(shape[3], int) else 256)
        self.n_fft, self.hop, self.compensate, self.batch_size = n_fft, hop, compensate, batch_size
        if self.dim_f > n_fft // 2 + 1:
            raise ValueError(f"dim_f {self.dim_f} exceeds the {n_fft // 2 + 1} STFT bins of n_fft {n_fft}")

    @property
    def chunk(self) -> int:
        """Samples per chunk (44.1 kHz)."""
        return self.hop * (self.dim_t - 1)

    def separate(self, mix: np.ndarray) -> np.ndarray:
        """(2, N) float32 stereo at 44.1 kHz -> the vocal stem, (2, N)."""
        mix = np.asarray(mix, np.float32)
        if mix.ndim != 2 or mix.shape[0] != 2:
            raise ValueError(f"separate() needs (2, N) stereo, got {mix.shape}")
        n = mix.shape[1]
        trim = self.n_fft // 2
        step = self.chunk - 2 * trim
        if step <= 0:
            raise ValueError(f"hop * (dim_t - 1) = {self.chunk} must exceed n_fft = {self.n_fft}")
        pad = step - n % step
        padded = torch.from_numpy(
            np.concatenate([np.zeros((2, trim), np.float32), mix, np.zeros((2, pad + trim), np.float32)], 1)
        )
        starts = list(range(0, n + pad, step))
        window = torch.hann_window(self.n_fft, periodic=True)
        bins = self.n_fft // 2 + 1
        out = np.zeros((2, len(starts) * step), np.float32)
        for b in range(0, len(starts), self.batch_size):
            batch = torch.stack([padded[:, s : s + self.chunk] for s in starts[b : b + self.batch_size]])  # (B, 2, L)
            k = batch.shape[0]
            spec = torch.stft(
                batch.reshape(2 * k, -1), self.n_fft, self.hop, window=window, center=True, return_complex=True
            )  # (2B, bins, dim_t)
            spec = torch.view_as_real(spec).reshape(k, 2, bins, -1, 2).permute(0, 1, 4, 2, 3)
            spec = spec.reshape(k, 4, bins, -1)[:, :, : self.dim_f]  # (B, 4 = L re, L im, R re, R im, dim_f, dim_t)
            pred = self.session.run(None, {self.input_name: spec.numpy()})[0]
            full = torch.zeros(k, 4, bins, pred.shape[-1])
            full[:, :, : self.dim_f] = torch.from_numpy(np.asarray(pred, np.float32))
            full = full.reshape(k, 2, 2, bins, -1).permute(0, 1, 3, 4, 2).reshape(2 * k, bins, -1, 2)
            wav = torch.istft(
                torch.view_as_complex(full.contiguous()),
                self.n_fft,
                self.hop,
                window=window,
                center=True,
                length=self.chunk,
            )
            wav = wav.reshape(k, 2, -1)[:, :, trim : trim + step].numpy()
            for j in range(k):
                i = b + j
                out[:, i * step : (i + 1) * step] = wav[j]
        return out[:, :n] * self.compensate

    def __call__(self, audio: np.ndarray, sr: int) -> np.ndarray:
        """Mono float audio at `sr` -> its vocal stem, mono at `sr`, same length."""
        import librosa

        audio = np.asarray(audio, np.float32).reshape(-1)
        x = librosa.resample(audio, orig_sr=sr, target_sr=self.SAMPLE_RATE) if sr != self.SAMPLE_RATE else audio
        vocals = self.separate(np.stack([x, x])).mean(0)
        out = librosa.resample(vocals, orig_sr=self.SAMPLE_RATE, target_sr=sr) if sr != self.SAMPLE_RATE else vocals
        out = np.asarray(out, np.float32)[: len(audio)]
        if len(out) < len(audio):
            out = np.pad(out, (0, len(audio) - len(out)))
        return out
