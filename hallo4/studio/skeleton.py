"""The Skeleton tab's work: extract or load body motion, retarget it, fit it to the speech, preview it."""

from __future__ import annotations

import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import limits, media, paths
from ..constants import FPS, SAMPLE_RATE, VIDEO_SUFFIXES
from ..progress import Progress, ProgressCallback, as_progress
from .generation import check_input


@dataclass
class SkeletonOutput:
    preview: Path  # mp4: the skeleton over the portrait (or on black)
    skeleton: Path  # the file to reuse in Generate (our JSON, or the rendered skeleton video as given)
    notes: str


def _portrait_image(portrait: str | Path | None) -> np.ndarray | None:
    """The portrait as an array at most max_preview_side px wide, whatever the photo's size."""
    if not portrait:
        return None
    img = media.load_image(portrait)
    side = limits.active().max_preview_side
    if max(img.size) > side:
        img = img.resize(media.output_size(img.width, img.height, side), resample=3)
    return np.asarray(img)


def prepare_skeleton(
    source: str | Path,
    *,
    portrait: str | Path | None = None,
    retarget: bool = True,
    fit_mode: str = "pingpong",
    audio: str | Path | None = None,
    extract: bool = False,
    progress: Progress | ProgressCallback | None = None,
) -> SkeletonOutput:
    """Skeleton tab: extract from a driving video (extract=True), or load a keypoint JSON / a rendered
    skeleton video; retarget to the portrait; loop/trim to the audio; render a preview over the portrait."""
    prog = as_progress(progress)
    src = check_input(
        source,
        "driving video" if extract else "skeleton file",
        "a video of a person moving" if extract else "a skeleton JSON (ours or OpenPose) or a rendered skeleton video",
    )
    image = _portrait_image(portrait)
    n_audio = None
    if audio:  # bounded decode: never more than the server's audio cap
        samples = len(media.load_audio(audio, max_seconds=limits.active().max_audio_seconds))
        n_audio = int(np.ceil(samples / SAMPLE_RATE * FPS))
    tag = uuid.uuid4().hex[:8]
    if not extract and src.suffix.lower() in VIDEO_SUFFIXES:
        return _rendered_video(src, image, n_audio, tag, prog)
    return _keypoints(src, image, n_audio, tag, prog, extract=extract, retarget=retarget, fit_mode=fit_mode)


def _rendered_video(src: Path, image: np.ndarray | None, n_audio: int | None, tag: str, prog: Progress):
    """A rendered (DWPose-style) skeleton video: no keypoints to retarget; shown and reused as is."""
    from .. import skeleton as sk

    lim, out_dir = limits.active(), paths.outputs_dir()
    h, w = image.shape[:2] if image is not None else (512, 512)
    h, w = h - h % 2, w - w % 2
    prog(0.2, "Reading the skeleton video")
    count = [0]
    background = (image[:h, :w] * 0.5).astype(np.uint8) if image is not None else None
    limit = n_audio or lim.max_frames

    def composed():  # streamed: one canvas frame in memory at a time, at most the longest allowed clip
        for frame in sk.iter_skeleton_video(src, w, h, max_frames=limit):
            count[0] += 1
            if count[0] % 25 == 0:
                prog(0.2 + 0.7 * min(1.0, count[0] / limit), "Reading the skeleton video")
            yield frame if background is None else np.maximum(frame, background)

    preview = media.write_mp4(out_dir / f"skeleton_{tag}.mp4", composed(), fps=25)
    notes = [
        f"Rendered skeleton video: {count[0]} frames at 25 fps ({count[0] / 25:.1f} s)"
        + (" (only the part the audio needs was read)." if n_audio and count[0] >= n_audio else ".")
    ]
    if n_audio and count[0] < n_audio:
        notes.append(
            f"It is shorter than the audio ({n_audio / 25:.1f} s): the engine holds the last pose. "
            "Upload a keypoint JSON to loop it instead."
        )
    notes.append(
        "A rendered video carries no keypoints: it cannot be retargeted, and the lite engine uses idle "
        "head motion with it (hallo4 uses it directly)."
    )
    kept = out_dir / f"skeleton_{tag}_source{src.suffix.lower()}"  # not the preview's name
    shutil.copyfile(src, kept)
    return SkeletonOutput(preview, kept, "\n".join(notes))


def _keypoints(
    src: Path,
    image: np.ndarray | None,
    n_audio: int | None,
    tag: str,
    prog: Progress,
    *,
    extract: bool,
    retarget: bool,
    fit_mode: str,
) -> SkeletonOutput:
    """Keypoints extracted from a video or loaded from JSON: retargeted, fitted, cut to the cap, previewed."""
    from .. import skeleton as sk

    lim, out_dir = limits.active(), paths.outputs_dir()
    seq = sk.extract_skeleton(src, progress=prog.sub(0, 0.8)) if extract else sk.SkeletonSequence.load(src)
    notes = [f"{seq.num_frames} frames at {seq.fps:g} fps ({seq.num_frames / seq.fps:.1f} s)."]
    if retarget and image is not None:
        seq = sk.retarget(seq, image)
        notes.append("Retargeted to the portrait's shoulders and head.")
    elif retarget:
        notes.append("Not retargeted: add a portrait to retarget to it.")
    if n_audio and fit_mode != "keep":
        seq, message = sk.fit_length(seq, n_audio, fit_mode)
        if message:
            notes.append(message)
    if seq.num_frames > lim.max_frames:
        seq = seq.slice(0, lim.max_frames)
        notes.append(f"Cut to {lim.max_frames} frames ({lim.max_audio_seconds:g} s, this server's limit).")
    out_json = seq.save(out_dir / f"skeleton_{tag}.json")
    prog(0.85, "Rendering the preview")
    if image is not None:
        h, w = image.shape[:2]
    else:  # the preview's size comes from the server's cap, never from the canvas the file claims
        w, h = media.output_size(seq.width, seq.height, min(lim.max_preview_side, max(seq.width, seq.height, 64)))
    h, w = h - h % 2, w - w % 2
    frames = sk.iter_render_skeleton(seq, w, h, background=image[:h, :w] if image is not None else None)
    preview = media.write_mp4(out_dir / f"skeleton_{tag}.mp4", frames, fps=25)
    prog(1.0, "Done")
    return SkeletonOutput(preview, Path(out_json), "\n".join(notes))
