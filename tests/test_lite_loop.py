"""The lite loop end to end without the UI: Arena clips -> votes in a real SQLite store -> a round trained by
`python -m trainer.lite_dpo` (metrics.jsonl read while it trains) -> listed, activated, used, rolled back.

Clips are real lite-engine renders (1 s, 256 px) stored the way the Arena stores them
(hallo4.lite_motion.rounds.lite_clip_options); votes come from a scripted rater on each clip's motion.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from hallo4.engines.base import GenerationRequest
from hallo4.engines.lite import LiteEngine
from hallo4.errors import InputError
from hallo4.lite_motion import LiteMotion
from hallo4.lite_motion.clips import CACHE_DIR, clip_motion, store_lite_clip
from hallo4.lite_motion.features import MOTION_NAMES, denormalise
from hallo4.lite_motion.rounds import (
    WEIGHTS_FILE,
    activate_lite_round,
    active_lite_motion,
    active_lite_round,
    arena_lite_rounds,
    list_lite_rounds,
    lite_clip_options,
    lite_round_dir,
    lite_round_info,
    reserve_lite_round,
    round_metrics,
)
from hallo4.preferences import PreferenceStore
from tests.conftest import EXAMPLES, ROOT
from trainer.lite_sim import lively

D = len(MOTION_NAMES)

PORTRAIT = EXAMPLES / "portraits" / "astronaut.png"
AUDIOS = (EXAMPLES / "audio" / "hello.wav", EXAMPLES / "audio" / "story.wav")


class RecordingMotion(LiteMotion):
    """The real motion adapter, keeping what it handed the renderer (normalised), to compare rebuilds with."""

    def normalised(self, audio, sr, fps, n, seed):
        self.seen = super().normalised(audio, sr, fps, n, seed)
        return self.seen


def make_clip(store: PreferenceStore, cond_id: int, audio: Path, round_name, seed: int, out: Path, motion=None):
    """Render and store one lite Arena clip as the Arena does (options + metadata from lite_clip_options)."""
    opts = lite_clip_options(round_name, seed)
    options = dict(opts["options"], **({"motion": motion} if motion is not None else {}))
    req = GenerationRequest(PORTRAIT, audio, seed=seed, size=256, max_seconds=1.0, output=out, options=options)
    res = LiteEngine().generate(req)
    clip_id = store_lite_clip(store, cond_id, res, opts)
    return store.get_clip(clip_id)


def vote_all(store: PreferenceStore, clips_by_cond: list[list], rater: str = "r1") -> int:
    """One decisive vote on every pair of clips of the same conditions, by the lively-head rater."""
    n = 0
    for clips in clips_by_cond:
        for i in range(len(clips)):
            for j in range(i + 1, len(clips)):
                a, b = clips[i], clips[j]
                pair = store.add_pair(a.id, b.id)
                sa, sb = (lively(denormalise(clip_motion(store, c).motion), None) for c in (a, b))
                store.record_vote(pair, "a" if sa > sb else "b", a.id, rater)
                n += 1
    return n


@pytest.fixture()
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _store(data_dir: Path) -> PreferenceStore:
    return PreferenceStore(data_dir / "store")


def _cli(data_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "HALLO4_DATA_DIR": str(data_dir)}
    cmd = [sys.executable, "-m", "trainer.lite_dpo", "--data-dir", str(data_dir), *args]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_rebuilt_motion_is_the_motion_the_engine_rendered(data_dir, tmp_path):
    store = _store(data_dir)
    cond = store.add_conditions(PORTRAIT, AUDIOS[1])
    spy = RecordingMotion()
    clip = make_clip(store, cond, AUDIOS[1], None, 11, tmp_path / "a.mp4", motion=spy)
    cm = clip_motion(store, clip, use_cache=False)
    assert cm.motion.shape == (25, D) and cm.source.seed == 11 and cm.source.max_seconds == 1.0
    np.testing.assert_allclose(cm.cond, spy.seen[0], atol=1e-6)
    np.testing.assert_allclose(cm.motion, spy.seen[1], atol=1e-5)
    # A clip that recorded a different seed than it was rendered with does not rebuild to what was shown.
    spy2 = RecordingMotion()
    wrong = make_clip(store, cond, AUDIOS[1], None, 12, tmp_path / "b.mp4", motion=spy2)
    wrong.parameters["lite_motion"]["seed"] = 13  # as if the Arena had stored the wrong seed
    assert np.abs(clip_motion(store, wrong, use_cache=False).motion - spy2.seen[1]).max() > 0.1


def test_cached_motion_outlives_the_round_weights(data_dir, tmp_path):
    from hallo4.lite_motion import load_motion_model

    store = _store(data_dir)
    name = reserve_lite_round()
    load_motion_model().save_pretrained(str(lite_round_dir(name)), safe_serialization=True)
    (lite_round_dir(name) / "round.json").write_text("{}")
    cond = store.add_conditions(PORTRAIT, AUDIOS[0])
    clip = make_clip(store, cond, AUDIOS[0], name, 4, tmp_path / "a.mp4")
    assert len(list((data_dir / "store" / CACHE_DIR).glob("*.npz"))) == 1  # store_lite_clip filled the cache
    first = clip_motion(store, clip)
    (lite_round_dir(name) / WEIGHTS_FILE).unlink()
    np.testing.assert_array_equal(clip_motion(store, clip).motion, first.motion)
    with pytest.raises(InputError, match="weights of lite round 'round-001' are missing"):
        clip_motion(store, clip, use_cache=False)


def test_votes_train_a_round_plotted_live_then_activated_and_rolled_back(data_dir, tmp_path):
    store = _store(data_dir)
    clips = []
    for k, audio in enumerate(AUDIOS):
        cond = store.add_conditions(PORTRAIT, audio)
        clips.append([make_clip(store, cond, audio, None, 100 * k + s, tmp_path / f"{k}_{s}.mp4") for s in range(5)])
    assert vote_all(store, clips) == 20
    name = reserve_lite_round()  # what the app does before starting the trainer, so it knows what to plot
    proc = _cli(data_dir, "--steps", "60", "--batch-size", "4", "--out", str(lite_round_dir(name)))
    seen_while_running = []
    while proc.poll() is None:
        seen_while_running.append(len(round_metrics()))
        time.sleep(0.05)
    out, err = proc.communicate()
    assert proc.returncode == 0, err
    assert out.strip().endswith(name)
    assert any(0 < k < 60 for k in seen_while_running), seen_while_running  # the plot grows during the round
    rows = round_metrics(name)
    assert [r["step"] for r in rows] == list(range(1, 61))
    assert {"loss", "implicit_acc", "reward_margin", "seconds"} <= set(rows[0])
    info = lite_round_info(name)
    assert info["status"] == "finished" and info["parent"] == "base" and info["votes"] == 20
    assert list_lite_rounds() == [name]
    assert store.usable_pairs(exclude_round=f"lite/{name}") == []  # the round consumed every vote

    assert active_lite_round() is None and arena_lite_rounds() == (None, None)
    assert activate_lite_round(name) == name
    assert active_lite_round() == name and active_lite_motion() == str(lite_round_dir(name))
    assert arena_lite_rounds() == (name, None) and lite_round_info(name)["active"]
    opts = lite_clip_options(name, 3)
    assert opts["options"]["motion"] == str(lite_round_dir(name)) and opts["adapter"] == name
    cond = store.add_conditions(PORTRAIT, AUDIOS[0])
    new = make_clip(store, cond, AUDIOS[0], name, 3, tmp_path / "new.mp4")
    old = make_clip(store, cond, AUDIOS[0], None, 3, tmp_path / "old.mp4")
    assert new.parameters["motion"] == str(lite_round_dir(name))
    assert np.abs(clip_motion(store, new).motion - clip_motion(store, old).motion).max() > 1e-3

    from trainer.lite_dpo import LiteDPOConfig, train_from_votes

    second = train_from_votes(LiteDPOConfig(steps=2, batch_size=2), store=store)
    assert second.name == "round-002" and lite_round_info("round-002")["parent"] == name  # from the active round
    assert activate_lite_round(None) == "base"
    assert active_lite_round() is None and active_lite_motion() == "base"
    with pytest.raises(InputError, match="no finished lite round"):
        activate_lite_round("round-009")


def test_too_few_votes_is_a_clear_error_and_writes_nothing(data_dir, tmp_path):
    store = _store(data_dir)
    cond = store.add_conditions(PORTRAIT, AUDIOS[0])
    clips = [[make_clip(store, cond, AUDIOS[0], None, s, tmp_path / f"{s}.mp4") for s in range(3)]]
    assert vote_all(store, clips) == 3
    rules = []  # a lite pair with rule-based motion: its vote cannot train the motion model
    for s in range(2):
        res = LiteEngine().generate(GenerationRequest(PORTRAIT, AUDIOS[0], seed=s, size=128, max_seconds=1.0))
        rules.append(store.add_clip(cond, res.video, "lite", parameters=res.parameters, seed=s))
    store.record_vote(store.add_pair(*rules), "a", rules[0], "r1")
    from trainer.lite_votes import NOT_LITE, count_lite_votes

    assert count_lite_votes(store) == (3, {NOT_LITE: 1})  # what the Train tab shows before a round starts
    proc = _cli(data_dir, "--steps", "5")
    out, err = proc.communicate()
    assert proc.returncode == 2, err
    assert "error: votes: 3 usable lite votes, a lite round needs at least 10" in err
    assert "1 not a pair of two lite motion-model clips" in err and "Vote on 7 more lite pairs" in err
    assert not list((data_dir / "rounds" / "lite").glob("round-*"))


def test_a_cancelled_round_shows_as_failed_and_cannot_be_activated(data_dir):
    from hallo4.errors import CancelledError
    from hallo4.lite_motion import load_motion_model, speech_conditions
    from hallo4.media import load_audio
    from hallo4.progress import Progress
    from trainer.lite_dpo import LiteDPOConfig, LitePair, train_lite_round

    cond = speech_conditions(load_audio(AUDIOS[0], 16000, max_seconds=1.0))
    pair = LitePair(cond, np.zeros((len(cond), D), np.float32), np.ones((len(cond), D), np.float32), "v1")
    name = reserve_lite_round()
    assert lite_round_info(name)["status"] == "empty"
    prog = Progress(lambda fraction, _msg: prog.cancel() if fraction >= 3 / 20 else None)
    with pytest.raises(CancelledError):
        train_lite_round(
            load_motion_model(), [pair], LiteDPOConfig(steps=20, batch_size=2), lite_round_dir(name), prog
        )
    info = lite_round_info(name)
    assert info["status"] == "failed" and "CancelledError" in info["error"] and info["steps_done"] == 3
    assert list_lite_rounds() == []
    with pytest.raises(InputError, match="no finished lite round"):
        activate_lite_round(name)
