"""Reading a training round's metrics.jsonl while it is being written (hallo4 and lite rounds alike).

The trainers append one flushed JSON line per step; the Train tab's live plot reads the file on a timer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The rows so far; a line being written right now is skipped (the next read has it)."""
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows
