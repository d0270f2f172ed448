"""CLI: python -m hallo4.media probe FILE [--json]."""

from __future__ import annotations

import argparse
import json

from ..cli import run
from .info import probe


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hallo4.media", description="Media tools of Hallo4 Studio.")
    sub = parser.add_subparsers(dest="command", required=True)
    p_probe = sub.add_parser("probe", help="print what the project sees in a file")
    p_probe.add_argument("file")
    p_probe.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)

    def work() -> None:
        info = probe(args.file)
        print(json.dumps(info.to_dict(), indent=2) if args.json else info.describe())

    return run(work)
