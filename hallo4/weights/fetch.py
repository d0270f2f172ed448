"""Download what the plan says is missing (byte progress, resumable) and convert the DiT checkpoint."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from ..errors import Hallo4Error, MissingWeightsError
from ..progress import Progress, ProgressCallback, as_progress
from .planning import Plan, _byte_bar_class, check_disk, plan
from .sources import (
    CHECKPOINT,
    OFFICIAL_FOLDER,
    OFFICIAL_REPO,
    SOURCES,
    fmt_bytes,
    manual_commands,
    model_folder,
    models_dir_default,
)


def download(
    models: str | os.PathLike | None = None,
    progress: Progress | ProgressCallback | None = None,
    *,
    convert: bool = True,
    endpoint: str | None = None,
    token: str | None = None,
    the_plan: Plan | None = None,
    model_dir: str | os.PathLike | None = None,
) -> Path:
    """Download what is missing (after the disk check), then convert the checkpoint into `model_dir`
    (default `<models>/hallo4`). Returns that folder. A second call finds everything present and
    downloads nothing."""
    # Longer than 60 lines: plan, disk check, per-source fetch and conversion in the order a user sees them.
    from huggingface_hub import snapshot_download

    prog = as_progress(progress)
    models = Path(models) if models else models_dir_default()
    prog(0.0, "Checking what is needed and the free disk space")
    out = Path(model_dir) if model_dir else model_folder(models)
    p = the_plan or plan(models, endpoint=endpoint, token=token, model_dir=out)
    check_disk(p)
    todo = p.download_bytes
    done_before = 0
    span = 0.9 if convert and p.convert_needed else 1.0
    lock = threading.Lock()
    last = [0.0]
    for src in SOURCES:
        wanted = [f for f in p.files if f.repo_id == src.repo_id and not f.present]
        if not wanted:
            continue
        local = models / src.folder
        src_bytes = sum(f.size for f in wanted)

        def report(n: int, base=done_before, repo=src.repo_id) -> None:
            now = time.monotonic()
            with lock:
                if now - last[0] < 0.25 and n < todo:
                    return
                last[0] = now
            got = min(todo, base + n)
            prog(span * got / max(1, todo), f"Downloading {repo}: {fmt_bytes(got)} of {fmt_bytes(todo)}")

        prog(span * done_before / max(1, todo), f"Downloading {src.repo_id} ({fmt_bytes(src_bytes)}) to {local}")
        try:
            snapshot_download(
                src.repo_id,
                local_dir=local,
                allow_patterns=[f.filename for f in wanted],
                endpoint=endpoint,
                token=token,
                tqdm_class=_byte_bar_class(report),
            )
        except Exception as exc:  # network errors come in many types
            raise MissingWeightsError(
                f"Could not download {src.repo_id}: {type(exc).__name__}: {str(exc)[:200]}",
                hint="Check the network (and HF_HUB_OFFLINE / HF_TOKEN), then download again: finished files are "
                "kept and partial ones resume. Or fetch by hand:\n  " + "\n  ".join(manual_commands(models)),
            ) from exc
        missing = [f.filename for f in wanted if "*" not in f.filename and not (local / f.filename).is_file()]
        if missing:
            raise MissingWeightsError(
                f"{src.repo_id} did not deliver {', '.join(missing)}.",
                hint="The repository layout may have changed; see python -m hallo4.weights plan.",
            )
        done_before += src_bytes
    if convert and p.convert_needed:
        prog(span, f"Converting {CHECKPOINT} to {out}")
        convert_checkpoint(models, out)
    prog(1.0, "The hallo4 weights are ready" if convert else "Downloaded")
    return out


def convert_checkpoint(models: Path, out: Path | None = None) -> Path:
    """Run `python -m hallo4.convert` on the downloaded checkpoint (a separate process: the 2.77 B
    parameter state dict is freed when it exits)."""
    official = Path(models) / OFFICIAL_FOLDER
    ckpt = official / CHECKPOINT
    if not ckpt.is_file():
        found = sorted(official.rglob("model_weight.pth"))
        if not found:
            raise MissingWeightsError(
                f"{OFFICIAL_REPO} has no {CHECKPOINT} in {official}.",
                hint="Download again (python -m hallo4.weights download).",
            )
        ckpt = found[0]
    out = Path(out) if out else model_folder(models)
    run = subprocess.run(
        [sys.executable, "-m", "hallo4.convert", "--official", str(ckpt), "-o", str(out), "--dtype", "bf16"],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    if run.returncode != 0:
        raise Hallo4Error(
            f"Converting {ckpt.name} failed: {(run.stderr or run.stdout).strip()[-400:]}",
            hint=f"Run python -m hallo4.convert --official {ckpt} -o {out} to see the whole message.",
        )
    return out
