"""Votes improve the lite motion model: simulated raters -> one Diffusion-DPO round -> fresh pairs judged.

A small version of bench/bench_lite_dpo.py (see BENCHMARKS.md for the full run and the spread over seeds).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hallo4 import media
from hallo4.errors import InputError
from hallo4.lite_motion import load_motion_model, speech_conditions
from hallo4.lite_motion.data import SENTENCES, VOICES, espeak
from hallo4.lite_motion.features import CONDITION_NAMES, MOTION_NAMES
from trainer.lite_dpo import LiteDPOConfig, LitePair, train_lite_round
from trainer.lite_sim import judge, lips_closed, lively, run_rater

D = len(MOTION_NAMES)
# 80 votes (not the bench's 200): the round's defaults (lr 6e-4, mouth_kl 30, 100 steps), tuned for 200 votes,
# overfit so few (lips shut won 0.575 on seed 1 with 60 steps, 0.30 on seed 2 with 100); the earlier, gentler
# settings hold on every seed (BENCHMARKS.md).
CFG = dict(steps=60, batch_size=8, window=80, lr=3e-4, mouth_kl=20.0)


@pytest.fixture(scope="module")
def speech(tmp_path_factory):
    folder = tmp_path_factory.mktemp("speech")
    audios = [
        media.load_audio(
            espeak(SENTENCES[i], folder / f"{i}.wav", VOICES[i % len(VOICES)], 150 + 5 * i, 40 + 3 * i),
            16000,
            name="audio",
        )
        for i in range(12)
    ]
    conds = [speech_conditions(a) for a in audios]
    return conds[:8], conds[8:], audios[8:]


def test_raters_prefer_what_they_say():
    rng = np.random.default_rng(0)
    cond = np.zeros((50, len(CONDITION_NAMES)), np.float32)
    cond[20:24, 3] = 1.0  # a "p" closure
    calm = np.zeros((50, D), np.float32)
    busy = calm.copy()
    busy[:, 3] = 0.05 * np.sin(np.arange(50) / 3)
    assert lively(busy, cond) > lively(calm, cond) and judge("lively", busy, calm, cond, rng)
    cond[5:40, 10] = 1.0  # voiced speech around it
    talking = calm.copy()
    talking[5:40, 0] = 0.4  # the jaw opens on the vowels...
    talking[20:24, 0] = 0.0  # ...and shuts on the "p"
    parted = talking.copy()
    parted[20:24, 0] = 0.2
    assert lips_closed(talking, cond) > lips_closed(parted, cond) and judge("lips_closed", talking, parted, cond, rng)
    # A mouth that never opens does not win by "closing": closure counts relative to the opening elsewhere.
    nearly = talking.copy()
    nearly[20:24, 0] = 0.05
    assert lips_closed(nearly, cond) > lips_closed(calm, cond) and judge("lips_closed", nearly, calm, cond, rng)
    blinky = calm.copy()
    blinky[10:13, 2] = blinky[30:33, 2] = 1.0
    assert judge("few_blinks", calm, blinky, cond, rng) and not judge("few_blinks", blinky, calm, cond, rng)


def test_round_writes_its_files_and_leaves_the_reference_alone(tmp_path, speech):
    base = load_motion_model()
    before = {k: v.clone() for k, v in base.state_dict().items()}
    cond = speech[0][0]
    pairs = [LitePair(cond, np.zeros((len(cond), D), np.float32), np.ones((len(cond), D), np.float32), "v1")]
    new, metrics = train_lite_round(base, pairs, LiteDPOConfig(steps=3, batch_size=2), tmp_path)
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in before.items())
    assert any(not torch.equal(v, new.state_dict()[k]) for k, v in before.items())
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3] and {"loss", "implicit_acc", "reward_margin"} <= set(rows[0])
    assert json.loads((tmp_path / "consumed_votes.json").read_text()) == ["v1"]
    assert load_motion_model(tmp_path).state_dict().keys() == base.state_dict().keys()
    with pytest.raises(InputError, match="no lite votes"):
        train_lite_round(base, [], LiteDPOConfig(steps=1))
    with pytest.raises(InputError, match="different lengths"):
        train_lite_round(base, [LitePair(cond, cond[:5, :D], cond[:, :D])], LiteDPOConfig(steps=1))


def test_mouth_kl_keeps_the_mouth_near_the_reference_while_the_rest_moves(speech):
    base = load_motion_model()
    cond = speech[0][0]
    t = len(cond)
    pairs = [LitePair(cond, np.zeros((t, D), np.float32), np.ones((t, D), np.float32), "v1")]  # "less of all"
    drift = {}
    for kl in (0.0, 20.0):
        new, _ = train_lite_round(base, pairs, LiteDPOConfig(steps=12, batch_size=4, window=60, mouth_kl=kl))
        d = np.abs(new.motion(cond, 5) - base.motion(cond, 5)).mean(0)
        drift[kl] = (d[:2].mean(), d[2:].mean())  # (mouth, blinks + head)
    assert drift[20.0][0] < 0.5 * drift[0.0][0], drift
    assert drift[20.0][1] > 0.5 * drift[0.0][1], drift  # the vote still moves what the KL leaves free


# Spread over seeds 0-2 with this small config (9-channel base, BENCHMARKS.md): win rate lively 0.725 / 0.75 /
# 0.75, lips shut 0.625 / 0.675 / 0.725, fewer blinks 1.0 / 1.0 / 1.0, random 0.50 / 0.525 / 0.575; jaw/speech
# correlation drop at most 0.016. 40 judged pairs give a standard error of ~0.07, so the scripted raters' bar
# here is 0.6; the bench's 200-vote rounds with the defaults clear 0.89 for every seed.
@pytest.mark.slow
@pytest.mark.parametrize(
    "rater,lo,hi",
    [("lively", 0.6, 1.0), ("lips_closed", 0.6, 1.0), ("few_blinks", 0.9, 1.0), ("random", 0.3, 0.75)],
)
def test_votes_move_the_round_towards_the_rater(speech, rater, lo, hi):
    train_conds, eval_conds, eval_audios = speech
    base = load_motion_model()
    res, _ = run_rater(
        base, train_conds, eval_conds, eval_audios, rater, 80, LiteDPOConfig(**CFG), pairs_per_clip=10, seed=0
    )
    assert lo <= res.win_rate <= hi, res
    assert res.round_sync > res.base_sync - 0.05, res  # speech still drives the mouth


def test_lite_rounds_list_activate_and_roll_back(tmp_path, monkeypatch, speech):
    from hallo4.lite_motion.rounds import activate_lite_round, active_lite_motion, list_lite_rounds, lite_rounds_dir
    from trainer.dpo import next_round_dir

    monkeypatch.setenv("HALLO4_DATA_DIR", str(tmp_path))
    assert list_lite_rounds() == [] and active_lite_motion() == "base"
    cond = speech[0][0]
    pair = LitePair(cond, np.zeros((len(cond), D), np.float32), np.ones((len(cond), D), np.float32), "v1")
    out = next_round_dir(lite_rounds_dir())
    train_lite_round(load_motion_model(), [pair], LiteDPOConfig(steps=2, batch_size=2), out)
    assert list_lite_rounds() == ["round-001"]
    assert activate_lite_round("round-001") == "round-001"
    assert active_lite_motion() == str(out)
    assert load_motion_model(active_lite_motion()).state_dict().keys()
    with pytest.raises(InputError, match="no finished lite round"):
        activate_lite_round("round-009")
    # Generate (the app's) uses the active round's motion...
    from hallo4 import studio
    from tests.conftest import EXAMPLES

    args = studio.GenerateArgs(
        portrait=EXAMPLES / "portraits" / "astronaut.png",
        audio=EXAMPLES / "audio" / "hello.wav",
        seed=1,
        size=256,
        max_seconds=0.4,
        preset="fast",
    )
    assert studio.generate(args, use_cache=False).parameters["motion"] == str(out)
    # ...and the base model (the one the Arena compared) after a roll back; the rules stay one option away.
    assert activate_lite_round(None) == "base" and active_lite_motion() == "base"
    base_motion = studio.generate(args, use_cache=False).parameters["motion"]
    assert base_motion not in ("rules", str(out)) and "weights" in base_motion
    args.extra = {"motion": "rules"}
    assert studio.generate(args, use_cache=False).parameters["motion"] == "rules"
