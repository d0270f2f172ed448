"""DPO with real processes: `accelerate launch` (torchrun, gloo on the CPU) against one process.

The round runs end to end from the CLIs a user would type: a tiny random model and a demo vote store
from `python -m hallo4.testing`, then `trainer.dpo` under 2 processes, resumed under 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from trainer.dpo import DPOConfig, add_lora, train

from .helpers import launch_ok
from .test_dpo import CFG, _synthetic_pairs, _tiny_transformer

ROOT = Path(__file__).resolve().parents[1]
TRAIN_ARGS = [
    "--beta",
    "100",
    "--lr",
    "3e-3",
    "--rank",
    "4",
    "--width",
    "64",
    "--height",
    "32",
    "--frames",
    "9",
    "--batch-size",
    "2",
    "--save-every",
    "2",
    "--seed",
    "3",
]


def assert_same_adapter(a: dict, b: dict, rel: float = 1e-3) -> None:
    """Equal up to float noise, measured over the whole adapter. Per tensor it is no measure: Adam moves every
    weight by about lr whatever its gradient's size, so weights with no real signal (the text cross-attention's
    q/k when every pair has the same prompt) follow rounding noise; in one process, splitting the same batch
    into two micro-batches changes those tensors by up to 20% while the whole adapter moves by 0.5%."""
    assert a.keys() == b.keys()
    va = torch.cat([a[k].flatten() for k in sorted(a)])
    vb = torch.cat([b[k].flatten() for k in sorted(b)])
    assert float((va - vb).norm() / vb.norm()) < rel


def _metrics(round_dir: Path) -> list[dict]:
    return [json.loads(l) for l in (round_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_two_processes_match_one_and_resume_with_another_process_count(tmp_path):
    launch_ok(["-m", "hallo4.testing", "tiny-model", str(tmp_path / "tiny")], 1)
    launch_ok(["-m", "hallo4.testing", "demo-store", str(tmp_path / "store")], 1)
    common = ["-m", "trainer.dpo", "--store", str(tmp_path / "store"), "--model", str(tmp_path / "tiny"), *TRAIN_ARGS]

    # Steps 1-2 on two processes (with gradient checkpointing), then steps 3-4 resumed on one.
    launch_ok([*common, "--out", str(tmp_path / "multi"), "--steps", "2", "--gradient-checkpointing"], 2)
    multi = tmp_path / "multi" / "round-001"
    ranks = json.loads((multi / "ranks.json").read_text())
    assert ranks["num_processes"] == 2
    assert len(set(ranks["adapter_sha256"])) == 1  # both ranks hold the same adapter, bit for bit
    two_proc = _metrics(multi)
    for row in two_proc:
        # Each rank trained on its own share of the step's batch: one pair each, never the same one.
        assert [len(r) for r in row["pairs_by_rank"]] == [1, 1]
        assert row["pairs_by_rank"][0] != row["pairs_by_rank"][1]
    launch_ok([*common, "--out", str(tmp_path / "multi"), "--steps", "4", "--resume", str(multi)], 1)

    launch_ok([*common, "--out", str(tmp_path / "single"), "--steps", "4"], 1)
    single = tmp_path / "single" / "round-001"
    one_proc = _metrics(single)
    # Same global batches in the same order, whoever computed them.
    together = [sorted(sum(r["pairs_by_rank"], [])) for r in two_proc]
    assert together == [sorted(r["pairs_by_rank"][0]) for r in one_proc[:2]]
    for a, b in zip(two_proc, one_proc):
        # Float noise only: the loss is -log sigmoid(-beta * (differences of MSEs ~1)); fp32 rounding of those
        # MSEs summed in another order (per rank, then gathered) is ~1e-7 and beta = 100 amplifies it to ~1e-5.
        # A wrong split is caught by the pairs_by_rank checks above and the adapter comparison below.
        assert a["loss"] == pytest.approx(b["loss"], abs=5e-5)
    assert [r["step"] for r in _metrics(multi)] == [1, 2, 3, 4]
    a = load_file(str(multi / "adapter_model.safetensors"))
    b = load_file(str(single / "adapter_model.safetensors"))
    assert max(float(b[k].abs().max()) for k in b if "lora_B" in k) > 1e-3  # it really trained (lora_B starts at 0)
    # Looser than the synthetic in-process check: the demo pairs' signal is weak (margins ~1e-6) and the prompt is
    # the same for every pair; one process with 2 micro-batches instead of 1 differs by 0.5% here.
    assert_same_adapter(a, b, rel=2e-2)


def test_accumulation_splits_the_same_global_batch(tmp_path):
    """batch 2 in one micro-batch == batch 2 as 2 micro-batches of 1 (accelerate's accumulation, same schedule)."""
    files = _synthetic_pairs(tmp_path, 4, 4, "p")
    out = {}
    for accum in (1, 2):
        cfg = DPOConfig(steps=3, batch_size=2, grad_accum=accum, **{**CFG, "lr": 1e-2})
        model = _tiny_transformer()
        add_lora(model, cfg)
        train(model, files, [1.0, 2.0, 1.0, 0.5], tmp_path / f"a{accum}", cfg)
        out[accum] = load_file(str(tmp_path / f"a{accum}" / "adapter_model.safetensors"))
        rows = _metrics(tmp_path / f"a{accum}")
        assert [len(r["pairs_by_rank"][0]) for r in rows] == [2, 2, 2]
    assert max(float(v.abs().max()) for k, v in out[1].items() if "lora_B" in k) > 1e-3
    assert_same_adapter(out[1], out[2])


@pytest.mark.slow  # bf16 autocast on a CPU is slow
def test_bf16_mixed_precision_trains_like_fp32(tmp_path):
    files = _synthetic_pairs(tmp_path, 3, 5, "p")
    adapters = {}
    for mp in ("no", "bf16"):
        cfg = DPOConfig(steps=3, mixed_precision=mp, **{**CFG, "lr": 1e-2})
        model = _tiny_transformer()
        add_lora(model, cfg)
        train(model, files, [1.0] * 3, tmp_path / mp, cfg)
        assert all(torch.isfinite(torch.tensor(r["loss"])) for r in _metrics(tmp_path / mp))
        adapters[mp] = load_file(str(tmp_path / mp / "adapter_model.safetensors"))
    b32 = torch.cat([v.flatten() for k, v in sorted(adapters["no"].items()) if "lora_B" in k])
    b16 = torch.cat([v.flatten() for k, v in sorted(adapters["bf16"].items()) if "lora_B" in k])
    assert b32.abs().max() > 1e-3 and not torch.equal(b32, b16)  # bf16 really ran, and the adapter moved
    assert torch.nn.functional.cosine_similarity(b32, b16, dim=0) > 0.9


def test_a_batch_that_cannot_be_split_is_refused(tmp_path):
    from hallo4.errors import InputError

    files = _synthetic_pairs(tmp_path, 2, 6, "p")
    cfg = DPOConfig(steps=1, batch_size=3, grad_accum=2, **CFG)
    with pytest.raises(InputError, match="multiple of 2"):
        train(_tiny_transformer(), files, [1.0, 1.0], tmp_path / "r", cfg)
