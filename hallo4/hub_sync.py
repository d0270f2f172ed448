"""Durable arena votes on a Space: push the preference store to a Hub dataset, restore it on start.

A Space's disk is lost on restart (unless it has persistent storage). With HALLO4_HUB_DATASET (a
dataset repo id, e.g. ``me/hallo4-votes``) and a write token (HF_TOKEN) set, the app:

1. on start, downloads the dataset and merges it into the local store (`PreferenceStore.import_dataset`
   is idempotent: rows already present, by uid, are skipped), so an empty or older local copy catches
   up and a newer one loses nothing;
2. after that, exports the store into a folder (`PreferenceStore.export_dataset`, Hugging Face dataset
   layout: JSONL tables plus media named by sha256) whenever votes change, checked every
   HALLO4_HUB_EXPORT_S seconds (default 30), and huggingface_hub's CommitScheduler pushes that folder
   every HALLO4_HUB_SYNC_MINUTES minutes (default 5) in the background, only the files that changed.

So a restart loses at most the votes of the last sync interval. The dataset is created private.
`api` is any `huggingface_hub.HfApi` (the tests pass one that writes to a local folder).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

from .preferences import PreferenceStore

log = logging.getLogger("hallo4.hub_sync")


def configured() -> tuple[str, str] | None:
    """(dataset repo id, token) when both are set, else None."""
    repo = os.environ.get("HALLO4_HUB_DATASET")
    token = os.environ.get("HF_TOKEN") or os.environ.get("HUGGING_FACE_HUB_TOKEN")
    return (repo, token) if repo and token else None


class HubSync:
    def __init__(
        self,
        store: PreferenceStore,
        repo_id: str,
        token: str | None = None,
        *,
        api: Any = None,
        every_minutes: float | None = None,
        export_every_s: float | None = None,
    ):
        from huggingface_hub import HfApi

        self.store = store
        self.repo_id = repo_id
        self.api = api or HfApi(token=token)
        self.every_minutes = float(every_minutes or os.environ.get("HALLO4_HUB_SYNC_MINUTES", "5"))
        self.export_every_s = float(export_every_s or os.environ.get("HALLO4_HUB_EXPORT_S", "30"))
        self.scheduler = None
        self._exported: tuple | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- restore --------------------------------------------------------------------------------
    def restore(self) -> dict[str, int]:
        """Merge the dataset's votes (and their clips) into the local store; {} when the dataset is empty."""
        with tempfile.TemporaryDirectory(prefix="hallo4-restore-") as tmp:
            try:
                self.api.snapshot_download(self.repo_id, repo_type="dataset", local_dir=tmp)
            except Exception as exc:  # noqa: BLE001 - a missing/new repo or no network: start from the local copy
                log.warning(
                    "Could not download %s to restore votes (%s: %s); using the local store only.",
                    self.repo_id,
                    type(exc).__name__,
                    str(exc)[:200],
                )
                return {}
            if not (Path(tmp) / "data" / "votes.jsonl").exists():
                return {}
            added = self.store.import_dataset(tmp)
        log.info("Restored from %s: %s", self.repo_id, added)
        return added

    # -- push -----------------------------------------------------------------------------------
    def _state(self) -> tuple:
        return tuple(self.store.counts().values())

    def export_if_changed(self) -> bool:
        """Export into the scheduler's folder when the store changed since the last export."""
        state = self._state()
        if state == self._exported:
            return False
        self.scheduler = self.store.sync_to_hub(
            self.every_minutes, hf_api=self.api
        )  # exports under the scheduler's lock
        self._exported = state
        return True

    def push_now(self):
        """Export and commit at once (returns the commit future); used at shutdown and by tests."""
        self.export_if_changed()
        return self.scheduler.trigger() if self.scheduler is not None else None

    def start(self) -> HubSync:
        """Restore, then export changes in the background for the CommitScheduler to push."""
        self.restore()
        self.export_if_changed()

        def loop() -> None:
            while not self._stop.wait(self.export_every_s):
                try:
                    self.export_if_changed()
                except Exception:  # never kill the app over a sync
                    log.exception("Exporting votes for the Hub failed")

        self._thread = threading.Thread(target=loop, name="hallo4-hub-sync", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.stop()


_sync: HubSync | None = None


def start_from_env(store: PreferenceStore) -> HubSync | None:
    """Start syncing when HALLO4_HUB_DATASET and a token are set (else None, with a log line)."""
    global _sync
    conf = configured()
    if conf is None:
        if os.environ.get("HALLO4_HUB_DATASET"):
            log.warning("HALLO4_HUB_DATASET is set but HF_TOKEN is not: votes are NOT pushed to the Hub.")
        return None
    _sync = HubSync(store, conf[0], conf[1]).start()
    return _sync
