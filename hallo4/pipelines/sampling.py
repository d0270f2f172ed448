"""The release's sampler: UniPC flow sampling with the authors' sigmas and integer timesteps, and the
per-segment noise generator (docs/MODEL.md section 5). Checked against the release in tests/test_golden.py."""

from __future__ import annotations

import numpy as np
import torch
from diffusers import UniPCMultistepScheduler


def segment_generator(seed: int) -> torch.Generator:
    """The noise generator of one segment: re-seeded with the clip's seed for every segment, as the
    release does, so a seed reproduces a clip segment by segment. A CPU generator: the same noise on
    every device (the release draws on the GPU's generator)."""
    return torch.Generator("cpu").manual_seed(int(seed))


def release_sigmas(num_inference_steps: int, num_train_timesteps: int = 1000) -> np.ndarray:
    """The release's unshifted flow sigmas: `linspace(sigma_max, 0, steps + 1)[:-1]` with sigma_max the
    float32 value of 1 - 1/num_train_timesteps (not 1). diffusers shifts them (`flow_shift`) itself."""
    sigma_max = float(np.float32(1.0 - 1.0 / num_train_timesteps))
    return np.linspace(sigma_max, 0.0, num_inference_steps + 1)[:-1]


def release_scheduler(config, num_inference_steps: int, shift: float, device=None) -> UniPCMultistepScheduler:
    """diffusers' UniPC configured and stepped as the release's flow UniPC sampler (bh2, order 2,
    x0-prediction, lower-order final step, final sigma 0), with the release's sigmas: the same integer
    timesteps (999 ... 249 at 25 steps, shift 8) and sigmas (tests/test_golden.py). diffusers' own
    flow sigmas start at 1 - 1e-6 and round the timesteps instead of truncating (off by up to 5).
    The sigmas go in as a numpy array: diffusers shifts them with array arithmetic."""
    scheduler = UniPCMultistepScheduler.from_config(
        config,
        prediction_type="flow_prediction",
        use_flow_sigmas=True,
        flow_shift=float(shift),
        use_dynamic_shifting=False,
        shift_terminal=None,
        use_karras_sigmas=False,
        use_exponential_sigmas=False,
        use_beta_sigmas=False,
        solver_order=2,
        solver_type="bh2",
        predict_x0=True,
        lower_order_final=True,
        final_sigmas_type="zero",
        disable_corrector=[],
        thresholding=False,
    )
    scheduler.set_timesteps(
        sigmas=release_sigmas(num_inference_steps, scheduler.config.num_train_timesteps), device=device
    )
    return scheduler


def flow_scheduler(directory=None) -> UniPCMultistepScheduler:
    """The pipeline's stored scheduler: the UniPC scheduler saved in `directory` (a base model's), made a flow
    scheduler (shift 8) if it is not one, or a fresh one. Sampling itself uses `release_scheduler`."""
    if directory is None:
        return UniPCMultistepScheduler(
            prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0, num_train_timesteps=1000
        )
    scheduler = UniPCMultistepScheduler.from_pretrained(directory)
    if scheduler.config.get("prediction_type") != "flow_prediction" or not scheduler.config.get("use_flow_sigmas"):
        scheduler = UniPCMultistepScheduler.from_config(
            scheduler.config, prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0
        )
    return scheduler
