"""The one way a `python -m hallo4.*` / `trainer.*` command turns a user error into an exit code.

Every command's `main(argv)` parses its arguments, then hands its work to `run`: a `Hallo4Error` (written
for the user: which input, what is wrong, what to do) is printed as `error: ...` on stderr and the command
exits 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from .errors import Hallo4Error


def run(work: Callable[[], int | None]) -> int:
    """Run a command's work; a user error -> message on stderr and exit status 2, success -> 0 (or its own)."""
    try:
        code = work()
    except Hallo4Error as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        release_process_resources()
    return 0 if code is None else int(code)


def release_process_resources() -> None:
    """Tear down, while the interpreter is still whole, what native threads hang on to: the torch process group
    (`accelerate launch`) and the cached mediapipe graphs. Left to static destructors at exit they can abort a
    process whose work is done ("terminate called without an active exception", SIGABRT; seen once in CI on a
    `hallo4.batch` rank). Only modules already imported are touched: a lite command stays free of torch."""
    dist = sys.modules.get("torch.distributed")
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    face = sys.modules.get("hallo4.face")
    if face is not None:
        face.close_cached_graphs()
