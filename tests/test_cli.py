"""`hallo4.cli.run`: the one exit path of every command (user error -> exit 2) and what it releases on the way."""

from __future__ import annotations

import socket

import imageio.v3 as iio
import pytest
import torch.distributed as dist

from hallo4 import face
from hallo4.cli import run
from hallo4.errors import InputError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_user_error_exits_2_with_the_message(capsys):
    def work():
        raise InputError("jobs.csv", "row 3 has no portrait", "Fill in the portrait column.")

    assert run(work) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "jobs.csv" in err and "Fill in the portrait column." in err
    assert run(lambda: None) == 0 and run(lambda: 1) == 1


def test_bug_keeps_its_traceback():
    with pytest.raises(ZeroDivisionError):
        run(lambda: 1 / 0)


def test_run_releases_the_process_group_and_mediapipe_graphs(examples_dir):
    # Left to static destructors at exit these aborted a finished `accelerate launch` rank once (SIGABRT).
    face.analyze_face(iio.imread(examples_dir / "portraits" / "astronaut.png"), require=True)
    assert face._solutions, "analyze_face caches its graphs"
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{_free_port()}", rank=0, world_size=1)
    try:
        assert run(lambda: 0) == 0
        assert not dist.is_initialized()
        assert not face._solutions
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
    # The graphs are rebuilt on the next use.
    assert face.analyze_face(iio.imread(examples_dir / "portraits" / "astronaut.png")).found
