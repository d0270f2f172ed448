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
from hallo4.constants import FPS, num_video_frames
from hallo4.pipelines.conditions import frames_to_tensor, load_audio, load_portrait, pad_repeat
from hallo4.pipelines.prompt_encoding import DEFAULT_NEGATIVE_PROMPT, DEFAULT_PROMPT
from hallo4.pipelines.segments import SegmentPlan
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
    """The first n frames of a clip at 25 fps on the canvas (the last frame repeated if it is shorter)."""
    clip = media.read_video(path, fps=FPS, name="training clip")
    frames = pad_repeat(clip.frames[:n], n)
    return np.stack([media.fit_to_canvas(f, width, height)[0] for f in frames])


@torch.no_grad()
def encode_pair(
    pipe, rec: PairRecord, *, width: int, height: int, frames: int, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Tensors of one pair (see the module doc), on the CPU, float32.

    The conditions are the first segment's, built by the pipeline's own steps (`prepare_skeleton`,
    `prepare_audio`, `prepare_reference`, `prepare_segment_context`, `encode_prompt`) on a clip as long as the
    audio, exactly as `Hallo4Pipeline.__call__` builds them for segment 1 (tests/test_dpo.py compares them)."""
    cpu = torch.device("cpu")
    portrait = load_portrait(rec.portrait)
    wav = load_audio(rec.audio, None)
    canvas, _ = media.fit_to_canvas(portrait, width, height, fill=0)
    segment = SegmentPlan(num_video_frames(len(wav)), frames)
    first = segment.window(0)
    ref = pipe.prepare_reference(canvas, cpu)  # (1, 16, 1, h, w)
    x0 = {}
    for name, path in (("w", rec.winner_video), ("l", rec.loser_video)):
        video = frames_to_tensor(_video_frames(path, frames, width, height)).permute(1, 0, 2, 3)[None]
        x0[name] = torch.cat([ref, pipe.vae_encode(video)], 2)[0]
    context = pipe.prepare_segment_context(ref, frames)[0]
    feats = pad_repeat(pipe.prepare_audio(wav, cpu), segment.padded_frames)[first]
    skel, _ = pipe.prepare_skeleton(None, portrait, segment.num_frames, height, width, seed, wav)
    pose = pipe.prepare_pose_latents(pad_repeat(skel, segment.padded_frames)[first]) if skel is not None else None
    prompt, _ = pipe.encode_prompt(DEFAULT_PROMPT, DEFAULT_NEGATIVE_PROMPT, cpu, torch.float32)
    out = {"x0_w": x0["w"], "x0_l": x0["l"], "context": context, "audio": feats.float(), "prompt": prompt[0].float()}
    if pose is not None:
        out["pose"] = pose[0].float()
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
