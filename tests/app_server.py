"""Start the real app (python app.py) on a free loopback port with its own data directory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from trainer.launch import free_port

ROOT = Path(__file__).resolve().parents[1]


class AppServer:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None, log_path: Path | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.data_dir = data_dir
        full_env = {
            **os.environ,
            "HALLO4_DATA_DIR": str(data_dir),
            "GRADIO_SERVER_PORT": str(self.port),
            "GRADIO_SERVER_NAME": "127.0.0.1",
            "GRADIO_ANALYTICS_ENABLED": "False",
            "HF_HUB_OFFLINE": "1",
            **(env or {}),
        }
        self.log_path = log_path or data_dir / "app.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=full_env, stdout=self.log, stderr=subprocess.STDOUT
        )
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"app exited: {self.log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(self.url, timeout=2)
                return
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError("app did not start within 120 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()

    def __enter__(self) -> AppServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def app_server_fixture(folder: str, env: dict[str, str] | None = None):
    """A module-scoped `server` fixture: the real app started once for a test file (data in a fresh
    `folder` under pytest's tmp), stopped after its last test. Use: `server = app_server_fixture("x", env)`."""
    import pytest

    @pytest.fixture(scope="module")
    def server(tmp_path_factory) -> Iterator[AppServer]:
        with AppServer(tmp_path_factory.mktemp(folder), env=env) as srv:
            yield srv

    return server


def generate_inputs(
    portrait,
    audio,
    seed=4,
    size=192,
    seconds=1.2,
    *,
    skeleton_mode="none (idle motion)",
    skeleton_file=None,
    engine="lite",
) -> tuple:
    """The Generate tab's /generate inputs in form order: portrait, audio, body motion, skeleton file, engine,
    preset, steps, CFG, seed, size, max seconds (the one place tests spell them out)."""
    from gradio_client import handle_file

    return (
        handle_file(str(portrait)),
        handle_file(str(audio)),
        skeleton_mode,
        None if skeleton_file is None else handle_file(str(skeleton_file)),
        engine,
        "fast",
        None,
        None,
        seed,
        size,
        seconds,
    )
