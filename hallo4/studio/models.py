"""Which engines can run here: the hallo4 components on disk, the Models tab's status, the download."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .. import weights
from ..progress import Progress, ProgressCallback, as_progress
from .settings import load_settings

log = logging.getLogger("hallo4.studio")


def hallo4_components(model: str | None = None) -> dict[str, Path | None]:
    """Where each hallo4 component would be loaded from (None = missing): `weights.find_components` for
    the configured model folder, the same lookup `Hallo4Pipeline.from_pretrained` uses. Loads nothing."""
    return weights.find_components(Path(model or load_settings().model).expanduser())


def hallo4_weights_present(model: str | None = None) -> bool:
    return weights.components_present(Path(model or load_settings().model).expanduser())


def default_engine() -> str:
    return "hallo4" if hallo4_weights_present() else "lite"


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def model_status() -> dict[str, Any]:
    """What is present, where, and what each engine needs: shown as-is in the Models tab."""
    s = load_settings()
    model = Path(s.model)
    found = hallo4_components(str(model))
    return {
        "lite": {"ready": True, "needs": "nothing (mediapipe models ship inside the wheel)"},
        "hallo4": {
            "ready": all(v is not None for v in found.values()),
            "path": str(model),
            "components": {k: v is not None for k, v in found.items()},
            "device": "cuda" if cuda_available() else "cpu (very slow: minutes per second of video)",
            "quantize": s.quantize,
            "offload": s.offload,
            "adapter": s.adapter,
            "where": {k: (str(v) if v else None) for k, v in found.items()},
            "how_to_get": weights.download_hint(model.parent),
            "memory": _memory_table(model),
        },
    }


def _memory_table(model: Path) -> str:
    """The preflight table for this machine (Markdown), or why it could not be computed."""
    from .. import preflight

    try:
        rep = preflight.report(model if hallo4_weights_present(str(model)) else None)
    except Exception as exc:  # noqa: BLE001 - the status page must still render; the reason is logged and shown
        log.warning("Memory table for %s unavailable", model, exc_info=True)
        return f"(memory table unavailable: {type(exc).__name__}: {exc})"
    m = rep["machine"]
    where = (
        f"{m['device']}, {m['accelerator_bytes'] / preflight.GiB:.0f} GiB"
        if m["accelerator_bytes"]
        else f"no GPU; {m['host_bytes'] / preflight.GiB:.0f} GiB RAM"
    )
    cpu = rep["cpu"]
    out = [f"Estimated memory per mode for a 480x832, 81-frame segment with CFG ({where}):", "", rep["markdown"], ""]
    if rep["recommended"]:
        out.append(f"Recommended here: **{rep['recommended']}**.")
    if not m["accelerator_bytes"]:
        out.append(
            f"CPU path (fp32): about {cpu['cached_prompt'] / preflight.GiB:.0f} GiB RAM "
            f"({cpu['new_prompt'] / preflight.GiB:.0f} GiB while a new prompt is embedded)."
        )
    return "\n".join(out)


def download_official(progress: Progress | ProgressCallback | None = None) -> Path:
    """Fetch and convert everything the hallo4 engine needs (`hallo4.weights.download`: only the needed
    files, each once, after a disk check, with byte progress). Returns the converted model folder; when
    everything is present already it returns at once without asking the network."""
    prog = as_progress(progress)
    model = Path(load_settings().model)
    if hallo4_weights_present(str(model)):
        prog(1.0, f"The hallo4 weights are already in {model}")
        return model
    return weights.download(model.parent, prog, model_dir=model)
