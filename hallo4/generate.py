"""CLI: python -m hallo4.generate --portrait P --audio A [--skeleton S] --engine lite -o out.mp4

Prints a JSON summary (video, seed, timings, parameters) on stdout and progress on stderr. A user error
prints its message and exits with status 2, without a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .engines import ENGINE_NAMES, GenerationRequest, get_engine
from .errors import CancelledError, Hallo4Error


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m hallo4.generate", description="Animate a portrait with speech.")
    p.add_argument("--portrait", required=True, help="portrait image (png/jpg/webp/bmp)")
    p.add_argument("--audio", required=True, help="speech (wav/mp3/m4a/flac/ogg or a video's audio track)")
    p.add_argument("--skeleton", help="skeleton JSON or rendered skeleton video (default: idle motion)")
    p.add_argument("--engine", choices=ENGINE_NAMES, default="lite")
    p.add_argument("-o", "--output", required=True, help="output mp4")
    p.add_argument("--seed", type=int, default=None, help="random seed (default: random, printed)")
    p.add_argument(
        "--size",
        type=int,
        default=None,
        help="long side of the output in pixels (default: lite 512; hallo4 its trained 832x480 canvas, "
        "another size warns)",
    )
    p.add_argument("--max-seconds", type=float, default=None, help="use at most this much audio")
    g = p.add_argument_group("hallo4 engine")
    g.add_argument("--model", help="model folder or Hugging Face repo id")
    g.add_argument("--quantize", choices=["none", "8bit"], default="none")
    g.add_argument(
        "--precision",
        choices=["release", "bf16", "8bit", "fp32"],
        help="release = the authors' numerics (fp32 weights, bf16 autocast); default: by free GPU "
        "memory, fp32 on the CPU",
    )
    g.add_argument("--device", help="cuda / cpu (default: cuda when available)")
    g.add_argument("--adapter", help="DPO round folder (rounds/round-NNN) to apply")
    g.add_argument(
        "--vocal-separation",
        choices=["auto", "on", "off"],
        default="auto",
        help="separate the voice from music/noise before wav2vec2 (Kim_Vocal_2.onnx, as the release); "
        "auto = on when the model file is present",
    )
    g.add_argument("--steps", type=int, help="denoising steps (default 25)")
    g.add_argument("--guidance", type=float, help="classifier-free guidance scale (default 6.0)")
    g.add_argument("--shift", type=float, help="flow shift (default 8.0)")
    g.add_argument("--prompt", help='text prompt (default "a person is talking")')
    g.add_argument("--negative-prompt", help="negative prompt (default: Wan's)")
    l = p.add_argument_group("lite engine")
    l.add_argument("--expressiveness", type=float, help="scale of mouth and head motion (default 1.0)")
    return p


def _progress(fraction: float, message: str) -> None:
    print(f"\r[{fraction * 100:5.1f}%] {message:<60}", end="", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    engine_kwargs: dict = {}
    options: dict = {}
    if args.engine == "hallo4":
        engine_kwargs = {
            "model": args.model,
            "quantize": None if args.quantize == "none" else args.quantize,
            "device": args.device,
            "adapter": args.adapter,
            "precision": args.precision,
            "vocal_separation": args.vocal_separation,
        }
        for key in ("steps", "guidance", "shift", "prompt", "negative_prompt"):
            value = getattr(args, key)
            if value is not None:
                options[key] = value
    elif args.expressiveness is not None:
        options["expressiveness"] = args.expressiveness
    try:
        engine = get_engine(args.engine, **engine_kwargs)
        request = GenerationRequest(
            portrait=Path(args.portrait),
            audio=Path(args.audio),
            skeleton=args.skeleton,
            seed=args.seed,
            size=args.size,
            max_seconds=args.max_seconds,
            output=Path(args.output),
            options=options,
        )
        result = engine.generate(request, _progress)
    except CancelledError as exc:
        print(f"\n{exc}", file=sys.stderr)
        return 130
    except Hallo4Error as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 2
    print(file=sys.stderr)
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"seed: {result.seed}", file=sys.stderr)
    print(json.dumps(result.to_dict(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
