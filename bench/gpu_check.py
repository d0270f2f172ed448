"""One GPU check for the hallo4 engine at the real configuration, with random weights (no downloads).

    python bench/gpu_check.py                         # CUDA: writes bench/results/gpu_check.json + .md
    python bench/gpu_check.py --update-benchmarks     # ... and replaces the table in BENCHMARKS.md
    python bench/gpu_check.py --dry-run -o /tmp/x.json  # CPU, tiny sizes: checks the script itself (CI)

Per mode (precision bf16 / release = fp32 weights under bf16 autocast / 8-bit; offload none / model /
group): seconds per denoising step (one CFG forward, batch 2, 480x832, 81 frames = 34,320 tokens per
sample) and peak GPU memory. A 25-step segment is EXTRAPOLATED from a few measured steps (after one
warm-up step) plus the measured VAE costs, so the whole check fits in under 8 minutes on one H100-class
GPU; `--steps` sets how many are measured. Also measured: the umT5-XXL text encoder (real config, bf16;
load-to-GPU bytes, time to embed the two prompts), the Wan2.1 VAE (real config, fp32: encode 16 skeleton
frames, encode an 81-frame context video, decode a segment) and one full-size Diffusion-DPO step (LoRA
rank 16 on the attention projections, gradient checkpointing, fp32 weights under bf16 autocast, as
`trainer.dpo` trains). A time budget (`--budget-s`) skips what is left and says so.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEGMENT_STEPS = 25
MODES = [(p, o) for p in ("bf16", "release", "8bit") for o in ("none", "model", "group")]
BEGIN, END = "<!-- gpu_check:begin -->", "<!-- gpu_check:end -->"


from bench.gpu_measures import Check, measure_dpo, measure_mode, measure_text_encoder, measure_vae  # noqa: E402


def markdown(result: dict) -> str:
    r = result
    sizes = "TINY configuration (dry run: checks the script, not a GPU)" if r["dry_run"] else "the real configuration"
    lines = [
        f"GPU check (`bench/gpu_check.py`) on {r['device']}, torch {r['torch']}; random weights at {sizes}; "
        f"{r['canvas']}. Segment times are extrapolated: {SEGMENT_STEPS} x the median of "
        f"{r['measured_steps']} measured steps (after a warm-up) + the measured VAE costs.",
        "",
        "| precision | offload | s / step (CFG) | s / segment (25 steps, extrapolated) | peak GPU memory |",
        "|---|---|---|---|---|",
    ]
    for m in r["modes"]:
        if "error" in m or "skipped" in m:
            lines.append(f"| {m['precision']} | {m['offload']} | {m.get('skipped') or m.get('error')} | | |")
            continue
        peak = f"{m['peak_gib']} GiB" if m["peak_gib"] is not None else "-"
        lines.append(f"| {m['precision']} | {m['offload']} | {m['seconds_per_step']} | {m['segment_s']} | {peak} |")
    te, vae, dpo = r.get("text_encoder", {}), r.get("vae", {}), r.get("dpo", {})
    if "encode_two_prompts_s" in te:
        lines += [
            "",
            f"Text encoder: {te['config']}, {te['weights_gib']} GiB of weights, {te['encode_two_prompts_s']} s "
            f"for the two prompts (peak {te['peak_gib']} GiB); paid once per new prompt (cached after).",
        ]
    if "decode_segment_s" in vae:
        lines += [
            f"VAE: {vae['config']}: encode 16 skeleton frames {vae['encode_16_skeleton_frames_s']} s "
            f"(peak {vae['encode_16_skeleton_frames_peak_gib']} GiB), encode the 81-frame context "
            f"{vae['encode_context_video_s']} s, decode a segment {vae['decode_segment_s']} s "
            f"(peak {vae['decode_segment_peak_gib']} GiB)."
        ]
    if "seconds_per_step" in dpo:
        lines += [
            f"DPO: {dpo['what']}: {dpo['seconds_per_step']} s per step, peak {dpo['peak_gib']} GiB, "
            f"{dpo['trainable_params']:,} trainable parameters."
        ]
    for key in ("text_encoder", "vae", "dpo"):
        if r.get(key, {}).get("error") or r.get(key, {}).get("skipped"):
            lines.append(f"{key}: {r[key].get('error') or r[key].get('skipped')}")
    lines.append(f"Total wall time of the check: {r['wall_s']} s.")
    return "\n".join(lines)


def update_benchmarks(md: str, path: Path) -> None:
    text = path.read_text()
    block = f"{BEGIN}\n{md}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip() + "\n\n## GPU check\n\n" + block + "\n"
    path.write_text(text)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", action="store_true", help="CPU, tiny sizes: check the script, not the GPU")
    parser.add_argument("--steps", type=int, default=2, help="measured denoising steps per mode (after one warm-up)")
    parser.add_argument("--budget-s", type=float, default=420.0, help="skip what is left after this many seconds")
    parser.add_argument("-o", "--output", default=str(ROOT / "bench" / "results" / "gpu_check.json"))
    parser.add_argument("--markdown", default=None, help="where the table goes (default: OUTPUT with .md)")
    parser.add_argument(
        "--update-benchmarks", action="store_true", help="replace the GPU check table in BENCHMARKS.md"
    )
    parser.add_argument("--modes", default=None, help="comma list like bf16:none,8bit:group (default: all nine)")
    return parser


def _extrapolate_segments(result: dict, check: Check) -> None:
    """segment_s per mode: SEGMENT_STEPS x the measured step time + the measured VAE costs of a segment."""
    vae = result["vae"]
    vae_s = 0.0
    if "decode_segment_s" in vae:
        vae_s = (
            vae["encode_16_skeleton_frames_s"] * -(-check.frames // 16)
            + vae["encode_context_video_s"]
            + vae["decode_segment_s"]
        )
    for m in result["modes"]:
        if "seconds_per_step" in m:
            m["segment_s"] = round(SEGMENT_STEPS * m["seconds_per_step"] + vae_s, 1)


def _write(result: dict, args: argparse.Namespace) -> str:
    from bench.common import machine

    result["machine"] = machine()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    md = markdown(result)
    Path(args.markdown or out.with_suffix(".md")).write_text(md + "\n")
    if args.update_benchmarks:
        update_benchmarks(md, ROOT / "BENCHMARKS.md")
    return md


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)

    import torch
    from diffusers.utils import logging as diffusers_logging

    diffusers_logging.set_verbosity_error()  # the random models' dtype casts warn once per build
    if not args.dry_run and not torch.cuda.is_available():
        print(
            "error: no CUDA GPU here. Run on a CUDA machine, or use --dry-run to check the script on the CPU.",
            file=sys.stderr,
        )
        return 2
    t_start = time.perf_counter()
    check = Check(args.dry_run)
    modes = MODES if not args.modes else [tuple(m.split(":")) for m in args.modes.split(",")]
    result = {
        "device": "cpu (dry run, tiny sizes)" if args.dry_run else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
        "dry_run": args.dry_run,
        "measured_steps": args.steps,
        "canvas": f"{check.height}x{check.width}, {check.frames} frames, CFG batch 2, {check.tokens():,} tokens per sample",
        "extrapolation": f"segment_s = {SEGMENT_STEPS} x seconds_per_step (median of the measured steps) + VAE "
        "(16-frame skeleton encodes for the segment, context encode, decode)",
        "modes": [],
    }

    def guarded(fn):
        if time.perf_counter() - t_start > args.budget_s:
            return {"skipped": f"time budget ({args.budget_s:.0f} s) used up"}
        try:
            return fn()
        except Exception as exc:  # noqa: BLE001 - one failing part must not lose the others' numbers
            traceback.print_exc()
            return {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}

    def run_modes(selected) -> None:
        for p, o in selected:
            measured = guarded(lambda p=p, o=o: measure_mode(check, p, o, args.steps))
            result["modes"].append({"precision": p, "offload": o, **measured})

    # Order: what matters most first, in case the budget runs out.
    run_modes([m for m in modes if m == ("bf16", "none")])
    result["vae"] = guarded(lambda: measure_vae(check))
    result["text_encoder"] = guarded(lambda: measure_text_encoder(check))
    result["dpo"] = guarded(lambda: measure_dpo(check))
    run_modes([m for m in modes if m != ("bf16", "none")])
    _extrapolate_segments(result, check)
    result["wall_s"] = round(time.perf_counter() - t_start, 1)
    print(_write(result, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
