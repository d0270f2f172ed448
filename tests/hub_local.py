"""A huggingface_hub.HfApi whose repository calls read and write a local folder (no network), for
testing the Hub sync: create_repo, create_commit (CommitScheduler's pushes) and snapshot_download."""

from __future__ import annotations

import shutil
from pathlib import Path

from huggingface_hub import CommitOperationAdd, HfApi, RepoUrl


class LocalFolderApi(HfApi):
    def __init__(self, root: str | Path):
        super().__init__(token="hf_local_test")
        self.root = Path(root)
        self.commits = 0

    def _repo(self, repo_id: str) -> Path:
        return self.root / repo_id

    def create_repo(self, repo_id: str, *, private=None, repo_type=None, exist_ok=False, **kwargs):
        path = self._repo(repo_id)
        if path.exists() and not exist_ok:
            raise FileExistsError(repo_id)
        path.mkdir(parents=True, exist_ok=True)
        return RepoUrl(f"https://huggingface.co/{'datasets/' if repo_type == 'dataset' else ''}{repo_id}")

    def create_commit(self, repo_id: str, operations, *, commit_message: str, repo_type=None, revision=None, **kwargs):
        for op in operations:
            assert isinstance(op, CommitOperationAdd), op
            dst = self._repo(repo_id) / op.path_in_repo
            dst.parent.mkdir(parents=True, exist_ok=True)
            src = op.path_or_fileobj
            data = (
                src.read() if hasattr(src, "read") else Path(src).read_bytes() if not isinstance(src, bytes) else src
            )
            dst.write_bytes(data)
        self.commits += 1

    def snapshot_download(self, repo_id: str, *, repo_type=None, local_dir=None, **kwargs):
        src = self._repo(repo_id)
        if not src.exists():
            raise FileNotFoundError(f"repository {repo_id} not found")
        shutil.copytree(src, local_dir, dirs_exist_ok=True)
        return str(local_dir)
