"""Batch generation: many clips from a jobs file, resumable, spread over processes/GPUs.

    python -m hallo4.batch jobs.csv -o outdir
    accelerate launch --multi_gpu --num_processes 4 -m hallo4.batch jobs.csv -o outdir --engine hallo4

Jobs file: CSV with a header, or JSONL (one object per line). Columns / keys (only `portrait` and `audio`
are required; relative paths are relative to the jobs file):
    id           output name (default: row-0001, row-0002, ... by position); letters, digits, . _ - only
    portrait     image file
    audio        speech file (or a video with an audio track)
    skeleton     skeleton JSON / rendered skeleton video (default: idle motion)
    seed         integer (default: random, recorded)
    engine       lite | hallo4 (default: --engine)
    size         long side in pixels (default: --size)
    max_seconds  use at most this much audio (default: --max-seconds)
    options      JSON object: the engine's request options (hallo4: steps, guidance, ...; lite: expressiveness),
                 plus the engine settings model, adapter, quantize, offload
Empty cells mean "default".

Output: outdir/<id>.mp4 and outdir/<id>.json (the result: seed, timings, parameters, and the row's
fingerprint), and outdir/summary.csv with id, status (done, skipped = finished in an earlier run, failed),
seconds, error, video, seed, rank for every row. Rerunning the same command skips finished rows (the mp4
and a .json with the same fingerprint exist) and redoes the rest: failed rows, rows whose inputs changed
and partial outputs (a clip is written as <id>.part.mp4 and renamed only when complete). One bad row is
reported in the summary and never stops the batch; the exit status is 1 when any row failed.

Under `accelerate launch` (torchrun) process r of n takes rows r, r + n, r + 2n, ... (interleaved, so long
and short rows spread evenly), each process on its own GPU; the main process gathers the results and
writes summary.csv.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .cli import run
from .engines import ENGINE_NAMES, GenerationRequest, get_engine
from .errors import Hallo4Error, InputError

COLUMNS = ("id", "portrait", "audio", "skeleton", "seed", "engine", "size", "max_seconds", "options")
ENGINE_SETTINGS = ("model", "adapter", "quantize", "offload")  # options that configure the engine, not the request
SUMMARY_FIELDS = ("id", "status", "seconds", "error", "video", "seed", "rank")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
logger = logging.getLogger(__name__)


@dataclass
class BatchDefaults:
    """Values for empty cells."""

    engine: str = "lite"
    size: int = 512
    max_seconds: float | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Job:
    """One row, parsed. `error` is set (and the row reported as failed) when the row itself is unusable."""

    index: int
    id: str
    fields: dict[str, Any]
    error: str | None = None

    def fingerprint(self) -> str:
        return hashlib.sha256(json.dumps(self.fields, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class RowResult:
    id: str
    status: str  # done | skipped | failed
    seconds: float = 0.0
    error: str = ""
    video: str = ""
    seed: int | None = None
    rank: int = 0


def read_jobs(path: str | Path, defaults: BatchDefaults | None = None) -> list[Job]:
    """Rows of a CSV or JSONL jobs file. A file-level problem raises InputError; a bad row becomes a Job with
    `error` set, so that the rest of the batch still runs."""
    path = Path(path)
    defaults = defaults or BatchDefaults()
    if not path.is_file():
        raise InputError("jobs file", "not found", "Give a CSV (with a header) or JSONL file.", path=str(path))
    text = path.read_text(encoding="utf-8-sig")
    raw: list[dict[str, Any] | str] = []
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raw.append(f"line {n} is not JSON ({exc.msg})")
                continue
            raw.append(obj if isinstance(obj, dict) else f"line {n} is not a JSON object")
    else:
        reader = csv.DictReader(text.splitlines())
        if not reader.fieldnames or not {"portrait", "audio"} <= {f.strip() for f in reader.fieldnames}:
            raise InputError(
                "jobs file",
                "the CSV header must name at least the columns portrait and audio",
                f"Start the file with a header line such as: {','.join(COLUMNS)}",
                path=str(path),
            )
        raw = [{(k or "").strip(): v for k, v in row.items()} for row in reader]
    if not raw:
        raise InputError("jobs file", "has no rows", "Add one row per clip.", path=str(path))
    jobs = [_parse_row(i, r, path.parent, defaults) for i, r in enumerate(raw)]
    seen: dict[str, int] = {}
    for job in jobs:
        if job.id in seen and job.error is None:
            job.error = f"duplicate id {job.id!r} (row {seen[job.id] + 1} has it too); ids name the output files"
        seen.setdefault(job.id, job.index)
    return jobs


def _parse_row(index: int, row: dict[str, Any] | str, base: Path, defaults: BatchDefaults) -> Job:
    default_id = f"row-{index + 1:04d}"
    if isinstance(row, str):
        return Job(index, default_id, {}, row)
    job_id = str(row.get("id") or "").strip() or default_id
    if not _ID.match(job_id):
        return Job(
            index,
            default_id,
            {},
            f"row {index + 1}: id {job_id!r} is not a safe file name (letters, digits, . _ - only)",
        )
    try:
        unknown = set(row) - set(COLUMNS) - {""}
        if unknown:
            raise ValueError(f"unknown column(s) {', '.join(sorted(unknown))}; known: {', '.join(COLUMNS)}")
        cell = {k: (v.strip() if isinstance(v, str) else v) for k, v in row.items()}
        cell = {k: v for k, v in cell.items() if v not in ("", None)}
        for key in ("portrait", "audio"):
            if key not in cell:
                raise ValueError(f"{key} is missing")
        options = cell.get("options", {})
        if isinstance(options, str):
            options = json.loads(options)
        if not isinstance(options, dict):
            raise ValueError('options must be a JSON object, e.g. {"steps": 20}')
        engine = cell.get("engine", defaults.engine)
        if engine not in ENGINE_NAMES:
            raise ValueError(f"unknown engine {engine!r}; use one of {', '.join(ENGINE_NAMES)}")
        fields = {
            "portrait": str(base / cell["portrait"]),
            "audio": str(base / cell["audio"]),
            "skeleton": str(base / cell["skeleton"]) if "skeleton" in cell else None,
            "seed": int(cell["seed"]) if "seed" in cell else None,
            "engine": engine,
            "size": int(cell.get("size", defaults.size)),
            "max_seconds": float(cell["max_seconds"]) if "max_seconds" in cell else defaults.max_seconds,
            "options": {**defaults.options, **options},
        }
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        return Job(index, job_id, {}, f"row {index + 1}: {exc}")
    return Job(index, job_id, fields)


def is_finished(job: Job, outdir: Path) -> bool:
    """The clip and its record exist, and the record was made from this very row."""
    record = outdir / f"{job.id}.json"
    if not (outdir / f"{job.id}.mp4").is_file() or not record.is_file():
        return False
    try:
        return json.loads(record.read_text()).get("fingerprint") == job.fingerprint()
    except (OSError, json.JSONDecodeError) as exc:  # a damaged record: the row is rendered again
        logger.info("%s: unreadable record (%s); the row is redone", record, exc)
        return False


class _Engines:
    """One engine per distinct setting per process: the hallo4 weights load once, not once per row."""

    def __init__(self, device: str | None):
        self.device = device
        self._cache: dict[tuple, Any] = {}

    def get(self, name: str, settings: dict[str, Any]):
        key = (name, tuple(sorted(settings.items())))
        if key not in self._cache:
            kwargs = dict(settings)
            if name == "hallo4" and self.device is not None:
                kwargs.setdefault("device", self.device)
            self._cache[key] = get_engine(name, **kwargs)
        return self._cache[key]


def run_job(job: Job, outdir: Path, engines: _Engines, rank: int = 0) -> RowResult:
    """Render one row. Every failure is caught and reported in the result (the batch goes on)."""
    t0 = time.perf_counter()
    final, part, record = outdir / f"{job.id}.mp4", outdir / f"{job.id}.part.mp4", outdir / f"{job.id}.json"
    if job.error:
        return RowResult(job.id, "failed", 0.0, job.error, rank=rank)
    try:
        for stale in (final, part, record):  # a partial or outdated output is redone from scratch
            stale.unlink(missing_ok=True)
        f = job.fields
        options = dict(f["options"])
        settings = {k: options.pop(k) for k in ENGINE_SETTINGS if k in options}
        engine = engines.get(f["engine"], settings)
        request = GenerationRequest(
            portrait=Path(f["portrait"]),
            audio=Path(f["audio"]),
            skeleton=f["skeleton"],
            seed=f["seed"],
            size=f["size"],
            max_seconds=f["max_seconds"],
            output=part,
            options=options,
        )
        result = engine.generate(request)
        Path(result.video).replace(final)
        info = {**result.to_dict(), "video": str(final), "fingerprint": job.fingerprint(), "row": job.index + 1}
        tmp = record.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(info, indent=2))
        tmp.replace(record)  # the record appears last: its presence means the clip is complete
        return RowResult(job.id, "done", round(time.perf_counter() - t0, 3), "", str(final), result.seed, rank)
    except Exception as exc:  # noqa: BLE001 - one bad row must not stop the batch; the message goes to the summary
        part.unlink(missing_ok=True)
        if not isinstance(exc, Hallo4Error):  # a bug, not a bad row: keep its traceback in the log
            logger.warning("row %s failed unexpectedly", job.id, exc_info=True)
        msg = str(exc) if isinstance(exc, Hallo4Error) else f"{type(exc).__name__}: {exc}"
        return RowResult(job.id, "failed", round(time.perf_counter() - t0, 3), msg, rank=rank)


def _distributed():
    """(rank, world, state) under `accelerate launch` / torchrun, else (0, 1, None); accelerate is imported only
    when there really are several processes (the lite path stays free of torch)."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0, 1, None
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    return state.process_index, state.num_processes, state


def run_batch(
    jobs_file: str | Path, outdir: str | Path, defaults: BatchDefaults | None = None, log=None
) -> list[RowResult]:
    """Run (or resume) a batch on this process's share of the rows; returns every row's result on the main
    process (this process's rows on the others) and writes outdir/summary.csv from the main process."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    jobs = read_jobs(jobs_file, defaults)
    rank, world, state = _distributed()
    device = None
    if state is not None and state.device.type == "cuda":
        device = str(state.device)
    engines = _Engines(device)
    mine: list[RowResult] = []
    for job in jobs[rank::world]:
        if job.error is None and is_finished(job, outdir):
            res = RowResult(
                job.id,
                "skipped",
                0.0,
                "",
                str(outdir / f"{job.id}.mp4"),
                json.loads((outdir / f"{job.id}.json").read_text()).get("seed"),
                rank,
            )
        else:
            res = run_job(job, outdir, engines, rank)
        if log:
            took = f" in {res.seconds:.1f} s" if res.status == "done" else ""
            log(f"[{rank}/{world}] {res.id}: {res.status}{took}" + (f" - {res.error}" if res.error else ""))
        mine.append((job.index, res))
    if state is not None:
        from accelerate.utils import gather_object

        everything = gather_object(mine)
    else:
        everything = mine
    results = [r for _, r in sorted(everything, key=lambda x: x[0])]
    if rank == 0:
        tmp = outdir / "summary.csv.tmp"
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=SUMMARY_FIELDS)
            w.writeheader()
            for r in results:
                w.writerow({k: ("" if v is None else v) for k, v in asdict(r).items()})
        tmp.replace(outdir / "summary.csv")
    if state is not None:
        state.wait_for_everyone()
    return results


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m hallo4.batch",
        description="Render every row of a jobs file (CSV or JSONL); resumable; "
        "spreads rows over processes under `accelerate launch`.",
    )
    p.add_argument("jobs", help="jobs file: CSV with a header or JSONL (see the module doc for the columns)")
    p.add_argument("-o", "--outdir", required=True, help="output folder (clips, records, summary.csv)")
    p.add_argument("--engine", choices=ENGINE_NAMES, default="lite", help="engine for rows that name none")
    p.add_argument("--size", type=int, default=512, help="long side in pixels for rows that give none")
    p.add_argument("--max-seconds", type=float, help="audio limit for rows that give none")
    p.add_argument(
        "--options", default="{}", help='JSON object merged under every row\'s options, e.g. \'{"model": "m"}\''
    )
    args = p.parse_args(argv)
    try:
        options = json.loads(args.options)
        if not isinstance(options, dict):
            raise ValueError
    except ValueError:
        p.error("--options must be a JSON object")
    rank = int(os.environ.get("RANK", "0"))

    def work() -> int:
        results = run_batch(
            args.jobs,
            args.outdir,
            BatchDefaults(args.engine, args.size, args.max_seconds, options),
            log=lambda m: print(m, file=sys.stderr, flush=True),
        )
        if rank != 0:
            return 0
        counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
        print(json.dumps({"summary": str(Path(args.outdir) / "summary.csv"), **counts}))
        return 1 if counts["failed"] else 0

    return run(work)


if __name__ == "__main__":
    raise SystemExit(main())
