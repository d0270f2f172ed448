"""Pairs of clips -> cached training tensors.

Each usable pair (from the store or an exported dataset) becomes, once, a safetensors file with:
x0_w / x0_l (16, 1 + F, h, w): VAE latents of the winner / loser's first segment with the clean
reference latent as frame 0; context (96, 1 + F, h, w): the VACE context of a first segment; audio
(T, 5, L, D): windowed wav2vec2 features; pose (16, T, h, w): per-frame skeleton latents (idle skeleton
from the portrait, as the pipeline uses in audio-only mode); prompt (L, D) text embeddings.
Everything is computed with the same pipeline components the model generates with, so training sees
exactly what inference sees.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from hallo4 import media
from hallo4.audio_encoder import encode_audio
from hallo4.progress import Progress, ProgressCallback, as_progress


@dataclass
class PairRecord:
    """What the trainer needs to know of one pair: media paths, weight and the votes behind it."""

    key: str
    portrait: str
    audio: str
    winner_video: str
    loser_video: str
    weight: float
    vote_ids: list[int]


def pairs_from_store(store) -> list[PairRecord]:
    out = []
    for u in store.usable_pairs():
        key = hashlib.sha256(f"{u.conditions.uid}|{u.winner.video}|{u.loser.video}".encode()).hexdigest()[:24]
        out.append(
            PairRecord(
                key,
                u.conditions.portrait_path,
                u.conditions.audio_path,
                u.winner.video_path,
                u.loser.video_path,
                float(u.weight),
                list(u.vote_ids),
            )
        )
    return out


def pairs_from_dataset(root: str | Path) -> list[PairRecord]:
    """Usable pairs of an exported dataset (hallo4.preferences export layout)."""
    import tempfile

    from hallo4.preferences import PreferenceStore

    store = PreferenceStore(tempfile.mkdtemp(prefix="hallo4-dataset-"))
    store.import_dataset(root)
    return pairs_from_store(store)


def _video_frames(path: str, n: int, width: int, height: int) -> np.ndarray:
    clip = media.read_video(path, fps=25.0, name="training clip")
    frames = clip.frames[:n]
    if len(frames) < n:
        frames = np.concatenate([frames, np.repeat(frames[-1:], n - len(frames), 0)])
    return np.stack([media.fit_to_canvas(f, width, height)[0] for f in frames])


def _to_video_tensor(frames: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (1, 3, N, H, W) in [-1, 1]."""
    return torch.from_numpy(frames).float().div(127.5).sub(1).permute(3, 0, 1, 2)[None]


@torch.no_grad()
def encode_pair(
    pipe, rec: PairRecord, *, width: int, height: int, frames: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Tensors of one pair (see the module doc), on the CPU, float32."""
    from hallo4.pipelines.pipeline_hallo4 import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT
    from hallo4.pipelines.pipeline_hallo4 import _to_tensor as frames_to_tensor

    portrait = np.asarray(media.load_image(rec.portrait))
    wav = media.load_audio(rec.audio, 16000)
    canvas, _ = media.fit_to_canvas(portrait, width, height)
    ref = pipe.vae_encode(_to_video_tensor(canvas[None]))  # (1, 16, 1, h, w)
    x0 = {}
    for name, path in (("w", rec.winner_video), ("l", rec.loser_video)):
        lat = pipe.vae_encode(_to_video_tensor(_video_frames(path, frames, width, height)))
        x0[name] = torch.cat([ref, lat], 2)[0]
    h_lat, w_lat = height // 8, width // 8
    zero = pipe.vae_encode(torch.zeros(1, 3, frames, height, width))
    mask = pipe.latent_mask(torch.ones(frames, height, width))[None]
    ctx = torch.cat([zero, zero, mask.to(zero.dtype)], 1)
    ref_ctx = torch.cat([ref, torch.zeros_like(ref), ref.new_zeros(1, 64, 1, h_lat, w_lat)], 1)
    context = torch.cat([ref_ctx, ctx], 2)[0]
    feats = encode_audio(pipe.audio_encoder, pipe.feature_extractor, wav, 16000)
    if len(feats) < frames:
        feats = torch.cat([feats, feats[-1:].expand(frames - len(feats), *feats.shape[1:])])
    warnings: list[str] = []
    skel = pipe._skeleton_frames(None, portrait, frames, width, height, seed, wav, warnings)
    pose = pipe.vae_encode_frames(frames_to_tensor(skel[:frames]))[0] if skel is not None else None
    prompt, _ = pipe.encode_prompt(DEFAULT_PROMPT, DEFAULT_NEGATIVE_PROMPT, torch.device("cpu"), torch.float32)
    out = {
        "x0_w": x0["w"],
        "x0_l": x0["l"],
        "context": context,
        "audio": feats[:frames].float(),
        "prompt": prompt[0].float(),
    }
    if pose is not None:
        out["pose"] = pose.float()
    return {k: v.detach().cpu().contiguous() for k, v in out.items()}


def cache_pairs(
    pipe,
    records: list[PairRecord],
    cache_dir: str | Path,
    *,
    width: int,
    height: int,
    frames: int,
    model_id: str,
    progress: Progress | ProgressCallback | None = None,
) -> list[Path]:
    """Encode every pair once; later rounds (and resumed ones) reuse the files."""
    prog = as_progress(progress)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, rec in enumerate(records):
        prog(i / max(1, len(records)), f"Encoding pair {i + 1}/{len(records)}")
        key = hashlib.sha256(json.dumps([rec.key, width, height, frames, model_id]).encode()).hexdigest()[:32]
        path = cache / f"{key}.safetensors"
        if not path.exists():
            tensors = encode_pair(pipe, rec, width=width, height=height, frames=frames)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")  # processes may encode the same pair at once
            save_file(tensors, str(tmp), metadata={"weight": str(rec.weight), "votes": json.dumps(rec.vote_ids)})
            tmp.replace(path)
        paths.append(path)
    prog(1.0, f"{len(records)} pairs encoded")
    return paths


def load_pair(path: str | Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))
