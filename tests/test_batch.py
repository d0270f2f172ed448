"""Batch generation: jobs files, resume, per-row errors, and rows split over two real processes."""

from __future__ import annotations

import csv
import json

import pytest

from hallo4.batch import BatchDefaults, main, read_jobs, run_batch

from .helpers import launch_ok

FAST = dict(size=64, max_seconds=0.3)


def _summary(outdir):
    with open(outdir / "summary.csv", newline="") as f:
        return {r["id"]: r for r in csv.DictReader(f)}


def _write_csv(path, rows):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(
            f, fieldnames=["id", "portrait", "audio", "seed", "engine", "size", "max_seconds", "options"]
        )
        w.writeheader()
        for r in rows:
            w.writerow(r)


def test_csv_batch_reports_bad_rows_and_resumes(tmp_path, examples_dir):
    (tmp_path / "media").symlink_to(examples_dir)
    jobs = tmp_path / "jobs.csv"
    good = {
        "id": "astro",
        "portrait": "media/portraits/astronaut.png",
        "audio": "media/audio/hello.wav",
        "seed": 3,
        "engine": "lite",
        **FAST,
        "options": '{"expressiveness": 1.2}',
    }
    _write_csv(
        jobs,
        [
            good,
            {**good, "id": "missing", "portrait": "media/portraits/nobody.png"},
            {**good, "id": "badjson", "options": "{steps: 2"},
            {**good, "id": "", "portrait": "media/portraits/grace_hopper.jpg", "seed": ""},  # default id, random seed
        ],
    )
    out = tmp_path / "out"
    results = run_batch(jobs, out)
    assert [r.status for r in results] == ["done", "failed", "failed", "done"]
    s = _summary(out)
    assert s["astro"]["status"] == "done" and float(s["astro"]["seconds"]) > 0 and s["astro"]["seed"] == "3"
    assert "nobody.png" in s["missing"]["error"]  # the row's own message, naming the file
    assert "row 3" in s["badjson"]["error"]
    assert s["row-0004"]["status"] == "done" and s["row-0004"]["seed"] != ""
    assert (out / "astro.mp4").stat().st_size > 0 and not list(out.glob("*.part.mp4"))
    record = json.loads((out / "astro.json").read_text())
    assert record["seed"] == 3 and record["parameters"]["options"]["expressiveness"] == 1.2

    # Rerun: finished rows are skipped (the clip is not rewritten), failed rows are tried again.
    mtime = (out / "astro.mp4").stat().st_mtime_ns
    again = {r.id: r.status for r in run_batch(jobs, out)}
    assert again == {"astro": "skipped", "missing": "failed", "badjson": "failed", "row-0004": "skipped"}
    assert (out / "astro.mp4").stat().st_mtime_ns == mtime

    # A partial output (clip without its record) is redone; so is a row whose inputs changed.
    (out / "row-0004.json").unlink()
    (out / "row-0004.part.mp4").write_bytes(b"half a clip")
    _write_csv(jobs, [{**good, "seed": 4}])
    assert {r.id: r.status for r in run_batch(jobs, out)} == {"astro": "done"}
    assert json.loads((out / "astro.json").read_text())["seed"] == 4
    _write_csv(jobs, [good, {**good, "id": "", "portrait": "media/portraits/grace_hopper.jpg", "seed": ""}])
    assert {r.id: r.status for r in run_batch(jobs, out)} == {"astro": "done", "row-0002": "done"}


def test_jsonl_jobs_and_file_level_errors(tmp_path, portrait_path, speech_path, capsys):
    jobs = tmp_path / "jobs.jsonl"
    jobs.write_text(
        "\n".join(
            [
                json.dumps(
                    {
                        "id": "a",
                        "portrait": str(portrait_path),
                        "audio": str(speech_path),
                        "seed": 1,
                        "options": {"expressiveness": 0.5},
                    }
                ),
                "not json",
                json.dumps({"id": "a", "portrait": str(portrait_path), "audio": str(speech_path)}),
                json.dumps({"id": "../evil", "portrait": str(portrait_path), "audio": str(speech_path)}),
                json.dumps({"portrait": str(portrait_path), "audio": str(speech_path), "colour": "red"}),
                json.dumps(
                    {"id": "skel", "portrait": str(portrait_path), "audio": str(speech_path), "skeleton": "moves.json"}
                ),
            ]
        )
        + "\n"
    )
    parsed = read_jobs(jobs, BatchDefaults(**FAST))
    assert parsed[0].error is None and parsed[0].fields["size"] == 64
    assert "not JSON" in parsed[1].error
    assert "duplicate id 'a'" in parsed[2].error
    assert "safe file name" in parsed[3].error
    assert "unknown column(s) colour" in parsed[4].error
    # Exit status 1: some rows failed.
    assert main([str(jobs), "-o", str(tmp_path / "out"), "--size", "64", "--max-seconds", "0.3"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["done"] == 1 and printed["failed"] == 5
    # The skeleton column reaches the engine (resolved next to the jobs file): its error names the file.
    assert str(tmp_path / "moves.json") in _summary(tmp_path / "out")["skel"]["error"]
    # A jobs file without the required columns is refused as a whole (exit 2, a message, no traceback).
    bad = tmp_path / "bad.csv"
    bad.write_text("photo,voice\na.png,b.wav\n")
    assert main([str(bad), "-o", str(tmp_path / "out2")]) == 2
    assert "portrait and audio" in capsys.readouterr().err


@pytest.mark.slow
def test_two_processes_split_the_rows(tmp_path, examples_dir):
    jobs = tmp_path / "jobs.csv"
    portraits = ["astronaut.png", "grace_hopper.jpg"]
    _write_csv(
        jobs,
        [
            {
                "id": f"clip{i}",
                "portrait": str(examples_dir / "portraits" / portraits[i % 2]),
                "audio": str(examples_dir / "audio" / "hello.wav"),
                "seed": i,
                "engine": "lite",
                **FAST,
                "options": "",
            }
            for i in range(4)
        ],
    )
    out = tmp_path / "out"
    launch_ok(["-m", "hallo4.batch", str(jobs), "-o", str(out)], 2)
    s = _summary(out)
    assert [s[f"clip{i}"]["status"] for i in range(4)] == ["done"] * 4
    assert [s[f"clip{i}"]["rank"] for i in range(4)] == ["0", "1", "0", "1"]  # interleaved over the two ranks
    assert all((out / f"clip{i}.mp4").stat().st_size > 0 for i in range(4))
    # Resume under two processes: a clip without its record counts as partial; only that row is redone.
    (out / "clip3.json").unlink()
    launch_ok(["-m", "hallo4.batch", str(jobs), "-o", str(out)], 2)
    s = _summary(out)
    assert {k: v["status"] for k, v in s.items()} == {
        "clip0": "skipped",
        "clip1": "skipped",
        "clip2": "skipped",
        "clip3": "done",
    }
