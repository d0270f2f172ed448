"""CLI: python -m hallo4.skeleton extract | render | idle."""

from __future__ import annotations

import argparse
import sys

import numpy as np

from .. import media
from ..cli import run
from ..constants import FPS


def _progress(fraction: float, message: str) -> None:
    print(f"\r[{fraction * 100:5.1f}%] {message:<60}", end="", file=sys.stderr, flush=True)


def _extract(args: argparse.Namespace) -> None:
    from . import extract_skeleton, retarget

    try:
        seq = extract_skeleton(args.video, progress=_progress)
    finally:
        print(file=sys.stderr)  # end the progress line, before the result or the error
    if args.portrait:
        seq = retarget(seq, np.asarray(media.load_image(args.portrait)))
    seq.save(args.output)
    print(f"{args.output}: {seq.num_frames} frames, {seq.width}x{seq.height}, {seq.fps:g} fps")


def _render(args: argparse.Namespace) -> None:
    from . import SkeletonSequence, render_skeleton

    seq = SkeletonSequence.load(args.sequence)
    bg = None
    if args.portrait:
        bg = np.asarray(media.load_image(args.portrait))
        h, w = bg.shape[:2]
    else:
        w, h = media.output_size(seq.width, seq.height, args.size)
    w, h = w - w % 2, h - h % 2
    frames = render_skeleton(seq, w, h, background=bg if args.overlay else None)
    media.write_mp4(args.output, frames, fps=seq.fps)
    print(f"{args.output}: {len(frames)} frames {w}x{h}")


def _idle(args: argparse.Namespace) -> None:
    from . import idle_skeleton

    image = np.asarray(media.load_image(args.portrait))
    audio = media.load_audio(args.audio) if args.audio else None
    seq = idle_skeleton(image, max(1, int(round(args.seconds * FPS))), seed=args.seed, audio=audio)
    seq.save(args.output)
    print(f"{args.output}: {seq.num_frames} frames of idle motion")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hallo4.skeleton", description="Skeleton tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("extract", help="skeleton sequence (JSON) from a driving video")
    p.add_argument("video")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--portrait", help="retarget onto this portrait")
    p.set_defaults(work=_extract)
    p = sub.add_parser("render", help="render a skeleton JSON to a video (DWPose style)")
    p.add_argument("sequence")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--portrait", help="render on this portrait's canvas")
    p.add_argument("--overlay", action="store_true", help="draw over the portrait instead of black")
    p.add_argument("--size", type=int, default=512, help="long side when no portrait is given")
    p.set_defaults(work=_render)
    p = sub.add_parser("idle", help="idle motion from a portrait (audio-only mode)")
    p.add_argument("--portrait", required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--audio", help="follow this speech's energy with nods")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("-o", "--output", required=True)
    p.set_defaults(work=_idle)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    return run(lambda: args.work(args))


if __name__ == "__main__":
    raise SystemExit(main())
