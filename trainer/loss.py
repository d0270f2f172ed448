"""Diffusion-DPO for flow matching (docs/MODEL.md section 7).

For a pair (winner w, loser l) with the same conditions, timestep and noise:
    x_t = (1 - s) x0 + s eps,  v = eps - x0,  L(x) = mean ||v - f(x_t, c, t)||^2
    inside = -beta * [(L_theta(w) - L_ref(w)) - (L_theta(l) - L_ref(l))]
    loss = -log sigmoid(inside)
`inside > 0` means the policy moved towards the winner relative to the reference: its mean is the
implicit accuracy; `inside / beta` (the raw improvement) is reported as the reward margin.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def flow_matching_inputs(
    x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x_t, v target) for a per-sample sigma in [0, 1]."""
    s = sigma.reshape(-1, *([1] * (x0.ndim - 1))).to(x0.dtype)
    return (1 - s) * x0 + s * noise, noise - x0


def per_sample_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per sample (over every dim but the batch); `mask` selects what counts."""
    err = (pred.float() - target.float()) ** 2
    if mask is not None:
        err = err * mask
        return err.flatten(1).sum(1) / mask.expand_as(err).flatten(1).sum(1).clamp_min(1)
    return err.flatten(1).mean(1)


@dataclass
class DPOOutput:
    loss: torch.Tensor  # scalar, differentiable
    implicit_acc: torch.Tensor  # scalar: share of pairs with inside > 0
    reward_margin: torch.Tensor  # scalar: mean of (L_ref - L_theta)(w) - (L_ref - L_theta)(l)
    inside: torch.Tensor  # (B,)
    losses: torch.Tensor | None = None  # (B,) per-pair losses as they enter the mean (weighted), detached


def dpo_loss(
    model_pred_w: torch.Tensor,
    model_pred_l: torch.Tensor,
    ref_pred_w: torch.Tensor,
    ref_pred_l: torch.Tensor,
    target_w: torch.Tensor | None = None,
    target_l: torch.Tensor | None = None,
    beta: float = 2500.0,
    *,
    weights: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> DPOOutput:
    """Diffusion-DPO from velocity predictions of policy and reference and the targets (eps - x0).

    All tensors (B, ...); winner and loser must share timestep and noise. `mask` (broadcastable,
    1 = counts) drops e.g. the clean reference frame; `weights` (B,) are per-pair weights.
    Without targets (`target_w = target_l = None`) the first four arguments are already the per-sample
    errors L_theta(w), L_theta(l), L_ref(w), L_ref(l) (each (B,))."""
    if target_w is None and target_l is None:
        return dpo_loss_from_errors(model_pred_w, model_pred_l, ref_pred_w, ref_pred_l, beta, weights)
    if target_w is None or target_l is None:
        raise ValueError("give both target_w and target_l, or neither (errors mode)")
    with torch.no_grad():
        ref_w = per_sample_mse(ref_pred_w, target_w, mask)
        ref_l = per_sample_mse(ref_pred_l, target_l, mask)
    return dpo_loss_from_errors(
        per_sample_mse(model_pred_w, target_w, mask),
        per_sample_mse(model_pred_l, target_l, mask),
        ref_w,
        ref_l,
        beta,
        weights,
    )


def dpo_loss_from_errors(
    model_w: torch.Tensor,
    model_l: torch.Tensor,
    ref_w: torch.Tensor,
    ref_l: torch.Tensor,
    beta: float,
    weights: torch.Tensor | None = None,
    weights_mean: torch.Tensor | float | None = None,
) -> DPOOutput:
    """The loss from per-sample errors L_theta(w), L_theta(l), L_ref(w), L_ref(l) (each (B,)).

    `weights` are normalised by `weights_mean` (default: their own mean). Under data parallelism each
    process holds only a slice of the batch, so the trainer passes the mean over the whole global batch:
    then the mean of the processes' losses equals the loss of the whole batch on one process."""
    improvement = (ref_w - model_w) - (ref_l - model_l)  # = -[(Lθw - Lrw) - (Lθl - Lrl)]
    inside = beta * improvement
    losses = -F.logsigmoid(inside)
    if weights is not None:
        mean = weights.mean() if weights_mean is None else torch.as_tensor(weights_mean, dtype=weights.dtype)
        losses = losses * weights / mean.clamp_min(1e-8)
    return DPOOutput(
        loss=losses.mean(),
        implicit_acc=(inside.detach() > 0).float().mean(),
        reward_margin=improvement.mean().detach(),
        inside=inside.detach(),
        losses=losses.detach(),
    )
