"""The smoke-fixture CLI: a demo vote store the trainer can use (tiny-model is exercised by the DPO process test)."""

from __future__ import annotations

from hallo4.preferences import PreferenceStore
from hallo4.testing import main


def test_demo_store_holds_six_decisive_pairs_preferring_the_livelier_clip(tmp_path, capsys):
    assert main(["demo-store", str(tmp_path / "store"), "--size", "64", "--seconds", "0.3"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "store")
    pairs = PreferenceStore(tmp_path / "store").usable_pairs()
    assert len(pairs) == 6 and len({p.conditions.uid for p in pairs}) == 2
    for p in pairs:
        assert p.weight == 1.0
        assert p.winner.parameters["options"]["expressiveness"] > p.loser.parameters["options"]["expressiveness"]
