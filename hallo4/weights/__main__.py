"""`python -m hallo4.weights plan|download`: see the package docstring."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..cli import run
from . import __doc__ as PACKAGE_DOC
from .fetch import download
from .planning import check_disk, plan
from .sources import models_dir_default


# ----------------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hallo4.weights", description=(PACKAGE_DOC or "").split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("plan", "show what would be downloaded, the sizes and the free disk (downloads nothing)"),
        ("download", "download what is missing (resumes partial files), then convert"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument("--models-dir", default=None, help="where the weights go (default: $HALLO4_DATA_DIR/models)")
        cmd.add_argument("--endpoint", default=None, help="hub endpoint (default: HF_ENDPOINT or huggingface.co)")
        cmd.add_argument("--json", action="store_true", help="print the plan as JSON")
        if name == "download":
            cmd.add_argument("--no-convert", action="store_true", help="download only; skip the conversion")
    args = parser.parse_args(argv)
    return run(lambda: _plan_or_download(args))


def _plan_or_download(args: argparse.Namespace) -> int:
    models = Path(args.models_dir) if args.models_dir else models_dir_default()
    p = plan(models, endpoint=args.endpoint)
    if args.json:
        import json

        print(json.dumps(p.to_dict(), indent=2))
    else:
        print(p.summary())
    if args.command == "plan":
        return 0
    if not p.fits:
        check_disk(p)

    def line(fraction: float, message: str) -> None:
        print(f"[{fraction * 100:5.1f}%] {message}", file=sys.stderr, flush=True)

    out = download(models, line, convert=not args.no_convert, endpoint=args.endpoint, the_plan=p)
    print(f"Ready: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
