"""dpo_loss in its prediction/target form: a hand-computed example with the sign conventions."""

from __future__ import annotations

import math

import pytest
import torch

from trainer.loss import dpo_loss


def test_dpo_loss_from_predictions_hand_example_and_signs():
    z = torch.zeros(1, 2)
    # errors: L_theta(w) = 1, L_ref(w) = 4, L_theta(l) = 4, L_ref(l) = 1 (mean over 2 equal entries)
    mw, rw = torch.full((1, 2), 1.0), torch.full((1, 2), 2.0)
    ml, rl = torch.full((1, 2), 2.0), torch.full((1, 2), 1.0)
    out = dpo_loss(mw, ml, rw, rl, z, z, beta=0.5)
    # improvement = (L_ref(w) - L_theta(w)) - (L_ref(l) - L_theta(l)) = 3 - (-3) = 6; inside = 0.5 * 6 = 3
    assert out.reward_margin.item() == pytest.approx(6.0)
    assert out.loss.item() == pytest.approx(math.log(1 + math.exp(-3)), rel=1e-6)
    assert out.implicit_acc.item() == 1.0
    out = dpo_loss(ml, mw, rl, rw, z, z, beta=0.5)  # winner and loser swapped: the sign flips
    assert out.reward_margin.item() == pytest.approx(-6.0)
    assert out.loss.item() == pytest.approx(math.log(1 + math.exp(3)), rel=1e-6)
    assert out.implicit_acc.item() == 0.0
    # policy == reference: loss log 2; descent lowers the winner's error and raises the loser's
    pw = torch.full((1, 2), 1.0, requires_grad=True)
    pl = torch.full((1, 2), 1.0, requires_grad=True)
    out = dpo_loss(pw, pl, pw.detach(), pl.detach(), z, z, beta=1.0)
    assert out.loss.item() == pytest.approx(math.log(2))
    out.loss.backward()
    assert (pw.grad > 0).all() and (pl.grad < 0).all()
    # a mask drops entries (e.g. the clean reference frame) from the errors
    mask = torch.tensor([[1.0, 0.0]])
    big = torch.tensor([[1.0, 100.0]])
    out = dpo_loss(big, ml, rw, rl, z, z, beta=0.5, mask=mask)
    assert out.reward_margin.item() == pytest.approx(6.0)
    with pytest.raises(ValueError, match="give both target_w and target_l, or neither"):
        dpo_loss(mw, ml, rw, rl, z, None, beta=0.5)
