"""Preflight: what memory each hallo4 mode needs, what this machine has, and which mode fits.

    python -m hallo4.preflight                      # the table for this machine
    python -m hallo4.preflight --model models/hallo4 --json

Weights are counted from the real configurations, instantiated on the meta device (nothing is
allocated): the Hallo4 DiT (`full_config()`, or the model folder's `transformer/config.json`), the
Wan2.1 VAE, the umT5-XXL text encoder and wav2vec2-base (their config.json files when the weights are
present, else the published configurations below). Activations are estimated for one segment at the
native canvas (480x832, 81 frames, CFG batch 2) from the tensors that are alive at the peak; the
estimate is stated, not measured (`bench/gpu_check.py` measures the real peaks on a GPU). The counting and the
estimates are `hallo4.memory_estimates`; this module turns them into modes, a verdict and the table.

Modes:
* precision: `bf16` (DiT weights bf16), `release` (fp32 DiT weights under bf16 autocast, as the
  release runs: autocast also caches a bf16 copy of the weights during a forward), `8bit`
  (bitsandbytes int8 Linear layers, the rest bf16).
* text encoder: `cached` (prompt embeddings from the cache; on a miss umT5 is loaded, used and freed,
  so the first use of a prompt needs it for a moment) or `resident` (kept loaded).
* offload: `none` (all on the GPU), `model` (one component on the GPU at a time), `group` (the DiT
  block by block; VAE and audio encoder stay).
"""

from __future__ import annotations

import argparse
import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

from .cli import run
from .errors import ResourceError
from .memory_estimates import NATIVE, GiB, activation_bytes, weight_bytes

PRECISIONS = ("bf16", "release", "8bit")
OFFLOADS = ("none", "model", "group")
TEXT_MODES = ("cached", "resident")
CUDA_CONTEXT = int(0.6 * GiB)  # CUDA context + cuBLAS workspaces, measured on typical GPUs (~0.5-0.8 GiB)
HEADROOM = 0.10  # allocator fragmentation: require 10 % more than the estimate
# Preference when picking: fastest first (group offload moves every block every step; 8-bit matmuls are slower).
PICK_ORDER = [
    ("bf16", "none"),
    ("bf16", "model"),
    ("8bit", "none"),
    ("8bit", "model"),
    ("bf16", "group"),
    ("8bit", "group"),
]


# ----------------------------------------------------------------------------------------------
# Modes
# ----------------------------------------------------------------------------------------------
@dataclass
class ModeEstimate:
    precision: str
    offload: str
    text_encoder: str
    gpu_bytes: int  # peak accelerator memory (cached prompts: a cache hit)
    gpu_bytes_prompt_miss: int  # peak while a new prompt is embedded (cached mode loads umT5 then)
    cpu_bytes: int  # host memory holding offloaded weights
    fits: bool | None = None  # against this machine (None: no accelerator to check)
    detail: dict[str, int] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.precision} / offload {self.offload} / text encoder {self.text_encoder}"


def estimate(
    precision: str, offload: str, text_encoder: str = "cached", w: dict | None = None, act: dict | None = None
) -> ModeEstimate:
    """Peak GPU memory and host memory of one mode (see the module docstring)."""
    if precision not in PRECISIONS or offload not in OFFLOADS or text_encoder not in TEXT_MODES:
        raise ValueError(f"unknown mode {precision}/{offload}/{text_encoder}")
    w = w or weight_bytes()
    act = act or activation_bytes(w)
    dit_w = w["dit"][precision]
    dit_act = act["dit"] + (w["dit"]["bf16"] if precision == "release" else 0)  # autocast's bf16 weight cache
    vae_peak = max(act["vae_decode"], act["vae_encode"])
    text_w = w["text"]
    per_param = dit_w / w["dit_params"]
    if offload == "none":
        resident = dit_w + w["vae"] + w["audio"] + (text_w if text_encoder == "resident" else 0)
        gpu = resident + max(dit_act, vae_peak, act["text"], act["audio"])
        miss = gpu if text_encoder == "resident" else resident + text_w + act["text"]
        cpu = 0
    elif offload == "model":  # one component at a time (accelerate cpu offload hooks)
        gpu = max(
            dit_w + dit_act,
            w["vae"] + vae_peak,
            w["audio"] + act["audio"],
            (text_w + act["text"]) if text_encoder == "resident" else 0,
        )
        miss = max(gpu, text_w + act["text"])
        cpu = dit_w + w["vae"] + w["audio"] + (text_w if text_encoder == "resident" else 0)
    else:  # group: DiT block by block (one block + the parts outside the blocks), VAE and audio stay
        dit_on = int((w["dit_largest_block_params"] + w["dit_outside_blocks_params"]) * per_param)
        resident = w["vae"] + w["audio"] + (text_w if text_encoder == "resident" else 0)
        gpu = resident + max(dit_on + dit_act, vae_peak, act["audio"])
        miss = gpu if text_encoder == "resident" else max(gpu, resident + text_w + act["text"])
        cpu = dit_w
    gpu, miss = gpu + CUDA_CONTEXT, miss + CUDA_CONTEXT
    return ModeEstimate(
        precision,
        offload,
        text_encoder,
        int(gpu),
        int(miss),
        int(cpu),
        detail={
            "dit_weights": int(dit_w),
            "dit_activations": int(dit_act),
            "vae_weights": w["vae"],
            "vae_peak_activations": int(vae_peak),
            "text_encoder_weights": text_w,
            "audio_encoder_weights": w["audio"],
        },
    )


@dataclass
class Machine:
    device: str  # "cuda:0 (NVIDIA H100 80GB HBM3)" or "cpu"
    accelerator_bytes: int | None  # total accelerator memory (None: no GPU)
    host_bytes: int  # physical RAM

    @classmethod
    def detect(cls) -> Machine:
        import torch

        host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        if torch.cuda.is_available():
            _, total = torch.cuda.mem_get_info(0)
            return cls(f"cuda:0 ({torch.cuda.get_device_name(0)})", int(total), int(host))
        return cls("cpu", None, int(host))


def table(model: str | os.PathLike | None = None, machine: Machine | None = None) -> list[ModeEstimate]:
    """Every mode's estimate, marked as fitting this machine or not."""
    machine = machine or Machine.detect()
    w = weight_bytes(model)
    act = activation_bytes(w)
    rows = []
    for precision in PRECISIONS:
        for offload in OFFLOADS:
            for text in TEXT_MODES:
                e = estimate(precision, offload, text, w, act)
                if machine.accelerator_bytes is not None:
                    e.fits = (
                        max(e.gpu_bytes, e.gpu_bytes_prompt_miss) * (1 + HEADROOM) <= machine.accelerator_bytes
                        and e.cpu_bytes <= machine.host_bytes
                    )
                rows.append(e)
    return rows


def cpu_estimate(model: str | os.PathLike | None = None) -> dict[str, int]:
    """The CPU path (fp32 everything, umT5 loaded in fp32 on a prompt-cache miss): host memory needed."""
    w = weight_bytes(model)
    act = activation_bytes(w)
    resident = w["dit_params"] * 4 + w["vae"] + w["audio"]
    return {
        "cached_prompt": int(resident + max(act["dit"] * 2, act["vae_decode"], act["vae_encode"])),
        "new_prompt": int(resident + w["text"] * 2 + act["text"]),
    }


def pick(
    model: str | os.PathLike | None = None, machine: Machine | None = None, text_encoder: str = "cached"
) -> ModeEstimate:
    """The fastest mode that fits (PICK_ORDER), or ResourceError with the table."""
    rows = {(e.precision, e.offload, e.text_encoder): e for e in table(model, machine)}
    for precision, offload in PICK_ORDER:
        e = rows[(precision, offload, text_encoder)]
        if e.fits:
            return e
    raise ResourceError(
        f"No hallo4 mode fits this machine's memory.\n{format_table(list(rows.values()), machine)}",
        hint="Use a GPU with more memory, or the lite engine.",
    )


def check(
    precision: str,
    offload: str,
    text_encoder: str = "cached",
    *,
    model: str | os.PathLike | None = None,
    machine: Machine | None = None,
) -> ModeEstimate:
    """Before loading: refuse (ResourceError naming the modes that do fit) when this mode would run out
    of memory. `HALLO4_SKIP_PREFLIGHT=1` skips the refusal (the estimate may be pessimistic)."""
    machine = machine or Machine.detect()
    rows = table(model, machine)
    mine = next(e for e in rows if (e.precision, e.offload, e.text_encoder) == (precision, offload, text_encoder))
    if mine.fits is None and machine.accelerator_bytes is None:
        need = cpu_estimate(model)
        if need["cached_prompt"] * (1 + HEADROOM) > machine.host_bytes and not os.environ.get("HALLO4_SKIP_PREFLIGHT"):
            raise ResourceError(
                f"The hallo4 engine on the CPU needs about {need['cached_prompt'] / GiB:.1f} GiB of RAM "
                f"({need['new_prompt'] / GiB:.1f} GiB while a new prompt is embedded), but this machine has "
                f"{machine.host_bytes / GiB:.1f} GiB.",
                hint="Use a CUDA GPU, or the lite engine. HALLO4_SKIP_PREFLIGHT=1 tries anyway.",
            )
        return mine
    if mine.fits or os.environ.get("HALLO4_SKIP_PREFLIGHT"):
        return mine
    fitting = [e for e in rows if e.fits and e.text_encoder == text_encoder]
    fitting.sort(
        key=lambda e: PICK_ORDER.index((e.precision, e.offload)) if (e.precision, e.offload) in PICK_ORDER else 99
    )
    need = max(mine.gpu_bytes, mine.gpu_bytes_prompt_miss)
    suggestion = (
        f"Modes that fit: {'; '.join(e.precision + ' + offload ' + e.offload for e in fitting[:3])} "
        "(Models tab: precision and offload)."
        if fitting
        else "No mode fits: use a bigger GPU or the lite engine."
    )
    raise ResourceError(
        f"hallo4 in {mine.name} needs about {need / GiB:.1f} GiB of GPU memory (+{HEADROOM:.0%} headroom) for a "
        f"480x832, 81-frame segment, but {machine.device} has {machine.accelerator_bytes / GiB:.1f} GiB.",
        hint=suggestion + " HALLO4_SKIP_PREFLIGHT=1 tries anyway.",
    )


def format_table(rows: list[ModeEstimate], machine: Machine | None = None) -> str:
    """Markdown: one row per mode; GPU peak (prompt cached / new prompt), host RAM for offloaded weights."""
    head = (
        "| precision | offload | text encoder | GPU peak, cached prompt | GPU peak, new prompt | "
        "host RAM for weights | fits |\n|---|---|---|---|---|---|---|"
    )
    lines = [head]
    for e in rows:
        fits = "-" if e.fits is None else ("yes" if e.fits else "no")
        lines.append(
            f"| {e.precision} | {e.offload} | {e.text_encoder} | {e.gpu_bytes / GiB:.1f} GiB | "
            f"{e.gpu_bytes_prompt_miss / GiB:.1f} GiB | {e.cpu_bytes / GiB:.1f} GiB | {fits} |"
        )
    return "\n".join(lines)


def report(model: str | os.PathLike | None = None, machine: Machine | None = None) -> dict[str, Any]:
    """Everything the Models tab and the CLI show."""
    machine = machine or Machine.detect()
    rows = table(model, machine)
    w = weight_bytes(model)
    act = activation_bytes(w)
    try:
        chosen = pick(model, machine).name if machine.accelerator_bytes is not None else None
    except ResourceError:
        chosen = None
    return {
        "machine": asdict(machine),
        "weights": {k: v for k, v in w.items() if k != "dit_config"},
        "activations": act,
        "canvas": NATIVE,
        "modes": [dict(asdict(e), name=e.name) for e in rows],
        "recommended": chosen,
        "cpu": cpu_estimate(model),
        "markdown": format_table(rows, machine),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hallo4.preflight", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="model folder (default: the full configuration)")
    parser.add_argument("--json", action="store_true", help="print everything as JSON")
    args = parser.parse_args(argv)
    return run(lambda: _print_report(args.model, args.json))


def _print_report(model: str | None, as_json: bool) -> int:
    rep = report(model)
    if as_json:
        print(json.dumps({k: v for k, v in rep.items() if k != "markdown"}, indent=2))
        return 0
    m = rep["machine"]
    acc = f"{m['accelerator_bytes'] / GiB:.1f} GiB" if m["accelerator_bytes"] else "no GPU"
    print(f"Machine: {m['device']}, {acc}, {m['host_bytes'] / GiB:.1f} GiB RAM")
    w = rep["weights"]
    print(
        f"Weights: DiT {w['dit_params'] / 1e9:.2f} B parameters ({w['dit']['bf16'] / GiB:.2f} GiB bf16, "
        f"{w['dit']['release'] / GiB:.2f} GiB fp32, {w['dit']['8bit'] / GiB:.2f} GiB 8-bit); VAE {w['vae'] / GiB:.2f} GiB "
        f"fp32; umT5 {w['text'] / GiB:.2f} GiB bf16; wav2vec2 {w['audio'] / GiB:.2f} GiB fp32"
    )
    print(f"Estimated for a {NATIVE['height']}x{NATIVE['width']}, {NATIVE['frames']}-frame segment with CFG:")
    print(rep["markdown"])
    cpu = rep["cpu"]
    print(
        f"CPU path (fp32): {cpu['cached_prompt'] / GiB:.1f} GiB RAM, {cpu['new_prompt'] / GiB:.1f} GiB while a new "
        "prompt is embedded."
    )
    if rep["recommended"]:
        print(f"Recommended here: {rep['recommended']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
