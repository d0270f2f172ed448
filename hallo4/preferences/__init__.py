"""The A/B preference store: SQLite (WAL) + content-addressed media, durable under concurrency.

Modules: schema (migrations, row types), core (connections, media, conditions, clips, pairs),
votes (votes, win rates, usable pairs, pruning), exchange (dataset export/import, Hub push), and the
`python -m hallo4.preferences` command below.
"""

from __future__ import annotations

import argparse
import json

from ..cli import run
from ..errors import InputError
from .core import StoreCore
from .exchange import ExchangeMixin
from .schema import DB_NAME, DECISIVE, LABELS, MIGRATIONS, SCHEMA_VERSION, Clip, Conditions, Pair, UsablePair
from .votes import VotesMixin


class PreferenceStore(VotesMixin, ExchangeMixin, StoreCore):
    """Durable store of clips, pairs and votes in `data_dir` (created if missing)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hallo4.preferences", description="A/B preference store tools.")
    parser.add_argument("command", choices=["stats", "export", "import"])
    parser.add_argument("--store", required=True, help="store folder (data/store by default in the app)")
    parser.add_argument("--dir", help="dataset folder for export / import")
    args = parser.parse_args(argv)

    def work() -> None:
        store = PreferenceStore(args.store)
        if args.command == "stats":
            print(json.dumps(store.stats(), indent=2))
        elif not args.dir:
            raise InputError("--dir", "is required for export and import", "Pass --dir FOLDER.")
        elif args.command == "export":
            print(store.export_dataset(args.dir))
        else:
            print(json.dumps(store.import_dataset(args.dir)))

    return run(work)


__all__ = [
    "DB_NAME",
    "DECISIVE",
    "LABELS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Clip",
    "Conditions",
    "Pair",
    "PreferenceStore",
    "UsablePair",
    "main",
]
