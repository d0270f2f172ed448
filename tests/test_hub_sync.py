"""Issue 13, item 7: votes and their clips are pushed to a Hub dataset in the background and restored
after a restart. huggingface_hub's repository calls are redirected to a local folder (tests/hub_local.py);
everything else (CommitScheduler, export/import, SQLite) is the real code."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hallo4 import hub_sync
from hallo4.preferences import PreferenceStore

from .hub_local import LocalFolderApi

ROOT = Path(__file__).resolve().parents[1]
REPO = "me/hallo4-votes"

_PROCESS = r"""
import json, sys
from pathlib import Path
from hallo4.preferences import PreferenceStore
from hallo4.hub_sync import HubSync
from tests.hub_local import LocalFolderApi
hub, store_dir, mode = sys.argv[1], sys.argv[2], sys.argv[3]
store = PreferenceStore(store_dir, hub_repo_id="me/hallo4-votes", hub_token="hf_local_test")
sync = HubSync(store, "me/hallo4-votes", api=LocalFolderApi(hub), every_minutes=60, export_every_s=3600)
if mode == "vote":
    args = json.loads(sys.argv[4])
    sync.restore()
    cond = store.add_conditions(args["portrait"], args["audio"])
    a = store.add_clip(cond, args["video"], "lite", model_id="x")
    b = store.add_clip(cond, args["video"], "lite", model_id="y")
    pair = store.add_pair(a, b)
    store.record_vote(pair, "a", a, "r-first")
    store.record_vote(pair, "b", b, "r-second")
    sync.push_now().result()  # what the scheduler does every interval
    print("RESULT", json.dumps({"votes": store.vote_count()}))
else:
    added = sync.restore()
    print("RESULT", json.dumps({"added": added, "votes": store.vote_count(),
                                "media_ok": all(Path(c.video_path).is_file() for c in [store.get_clip(1), store.get_clip(2)])}))
"""


def _process(*args: str) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _PROCESS, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line, proc.stdout[-1500:] + proc.stderr[-3000:]
    return json.loads(line[len("RESULT ") :])


def test_votes_survive_a_restart_with_an_empty_disk(tmp_path, lite_clip, portrait_path, speech_path):
    hub = tmp_path / "hub"
    first = _process(
        str(hub),
        str(tmp_path / "space1"),
        "vote",
        json.dumps({"portrait": str(portrait_path), "audio": str(speech_path), "video": str(lite_clip.video)}),
    )
    assert first["votes"] == 2
    pushed = hub / REPO
    assert (pushed / "data" / "votes.jsonl").read_text().count("\n") == 2
    assert len(list((pushed / "media").iterdir())) == 3  # portrait, audio, the clip (once: same content)
    # The Space restarts on a fresh disk: a new process, an empty store.
    second = _process(str(hub), str(tmp_path / "space2"), "restore")
    assert second["votes"] == 2 and second["added"]["votes"] == 2 and second["media_ok"]
    # A restart with the local copy intact adds nothing twice.
    again = _process(str(hub), str(tmp_path / "space2"), "restore")
    assert again["votes"] == 2 and again["added"]["votes"] == 0


def test_background_export_pushes_new_votes(tmp_path, lite_clip, portrait_path, speech_path):
    api = LocalFolderApi(tmp_path / "hub")
    store = PreferenceStore(tmp_path / "local", hub_repo_id=REPO, hub_token="t")
    sync = hub_sync.HubSync(store, REPO, api=api, every_minutes=60, export_every_s=0.2).start()
    try:
        cond = store.add_conditions(portrait_path, speech_path)
        a, b = (
            store.add_clip(cond, lite_clip.video, "lite"),
            store.add_clip(cond, lite_clip.video, "lite", model_id="m"),
        )
        store.record_vote(store.add_pair(a, b), "tie", a, "r-x")
        import time

        deadline = time.time() + 20
        export = store.root / "hub_export" / "data" / "votes.jsonl"
        while time.time() < deadline and not (export.exists() and export.read_text().strip()):
            time.sleep(0.1)
        assert export.read_text().strip(), "the background export never ran"
        sync.scheduler.trigger().result()
        assert json.loads((tmp_path / "hub" / REPO / "data" / "votes.jsonl").read_text())["label"] == "tie"
    finally:
        sync.stop()


def test_not_configured_without_a_token(monkeypatch, tmp_path):
    monkeypatch.setenv("HALLO4_HUB_DATASET", REPO)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    assert hub_sync.configured() is None
    assert hub_sync.start_from_env(PreferenceStore(tmp_path / "s")) is None
