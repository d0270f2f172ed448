"""`Hallo4Pipeline.from_pretrained`: the components from a folder or a Hugging Face repo id.

Where each component lives is `hallo4.weights.find_components` (the same lookup the engine, the preflight
and the studio use); this module resolves repo ids, loads what was found and names what was not.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..audio_encoder import VOCAL_MODEL
from ..errors import MissingWeightsError
from ..weights import OFFICIAL_FOLDER, find_components, find_scheduler, missing_components
from .prompt_encoding import DOWNLOAD_HINT
from .sampling import flow_scheduler


def resolve_model(name_or_path, *, what: str, required: bool = True) -> Path | None:
    """A local folder, or a Hugging Face repo id resolved through the HF cache / a download."""
    p = Path(name_or_path).expanduser()
    if p.exists():
        return p.resolve()
    s = str(name_or_path)
    if re.fullmatch(r"[\w.-]+/[\w.-]+", s):
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

        try:
            return Path(snapshot_download(s))
        except (HfHubHTTPError, LocalEntryNotFoundError, OSError, ValueError) as exc:  # offline, unknown repo, ...
            if not required:
                return None
            raise MissingWeightsError(
                f"{what} {s!r} is neither a local folder nor available from the Hugging Face cache/Hub "
                f"({type(exc).__name__}).",
                hint=DOWNLOAD_HINT,
            ) from exc
    if not required:
        return None
    raise MissingWeightsError(f"{what} folder {str(p)!r} does not exist.", hint=DOWNLOAD_HINT)


def load_components(
    pretrained_model_name_or_path: str | os.PathLike,
    *,
    torch_dtype: torch.dtype | None,
    vae_dtype: torch.dtype | None,
    base_model: str | os.PathLike | None,
    audio_model: str | os.PathLike | None,
    load_text_encoder: bool,
) -> tuple[dict, dict]:
    """(components for `Hallo4Pipeline(**components)`, settings: text_encoder_dir, text dtype and the vocal
    model candidates). Raises `MissingWeightsError` naming every missing part, with the download commands."""
    from diffusers import AutoencoderKLWan
    from transformers import AutoTokenizer, UMT5EncoderModel, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from ..models import Hallo4Transformer3DModel

    root = resolve_model(pretrained_model_name_or_path, what="Hallo4 model")
    base = resolve_model(base_model, what="Wan2.1-VACE base model", required=False) if base_model else None
    audio_root = resolve_model(audio_model, what="wav2vec2 model", required=False) if audio_model else None
    where = dict(base_model=base, audio_model=audio_root)
    found = find_components(root, **where)
    missing = missing_components(root, **where)
    if missing:
        raise MissingWeightsError(
            "Hallo4 weights are incomplete; missing: " + "; ".join(missing) + ".", hint=DOWNLOAD_HINT
        )
    text_dir = found["text_encoder"]
    components = {
        "vae": AutoencoderKLWan.from_pretrained(found["vae"], torch_dtype=vae_dtype or torch_dtype),
        "text_encoder": (
            UMT5EncoderModel.from_pretrained(text_dir, torch_dtype=torch_dtype) if load_text_encoder else None
        ),
        "tokenizer": AutoTokenizer.from_pretrained(found["tokenizer"]),
        "transformer": Hallo4Transformer3DModel.from_pretrained(found["transformer"], torch_dtype=torch_dtype),
        "scheduler": flow_scheduler(find_scheduler(root, base_model=base)),
        "audio_encoder": Wav2Vec2Model.from_pretrained(found["audio_encoder"], torch_dtype=torch.float32).eval(),
        "feature_extractor": Wav2Vec2FeatureExtractor.from_pretrained(found["feature_extractor"]),
    }
    vocal = [root / "audio_separator" / VOCAL_MODEL, root.parent / OFFICIAL_FOLDER / "audio_separator" / VOCAL_MODEL]
    if audio_root is not None:
        vocal.append(audio_root.parent.parent / "audio_separator" / VOCAL_MODEL)
    settings = {"text_encoder_dir": text_dir, "_text_dtype": torch_dtype, "vocal_model_candidates": vocal}
    return components, settings
