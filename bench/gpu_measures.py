"""What bench/gpu_check.py measures: the run's sizes and device (`Check`) and one function per part
(denoising steps per precision/offload mode, the umT5 text encoder, the Wan VAE, a DPO step).

Split from gpu_check.py, which runs these under a time budget and writes the JSON / table.
"""

from __future__ import annotations

import gc
import time


class Check:
    """Sizes and device of the run: the real ones on CUDA, tiny ones for --dry-run on the CPU."""

    def __init__(self, dry_run: bool):
        import torch

        from hallo4.models import full_config, tiny_config

        self.dry = dry_run
        self.device = torch.device("cpu" if dry_run else "cuda")
        self.cfg = tiny_config() if dry_run else full_config()
        self.height, self.width, self.frames = (32, 32, 5) if dry_run else (480, 832, 81)
        self.text_len = 16 if dry_run else 512

    # -- memory / time helpers -------------------------------------------------------------
    def sync(self):
        import torch

        if self.device.type == "cuda":
            torch.cuda.synchronize()

    def reset_peak(self):
        import torch

        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_gib(self) -> float | None:
        import torch

        return round(torch.cuda.max_memory_allocated() / 2**30, 2) if self.device.type == "cuda" else None

    # -- models ---------------------------------------------------------------------------
    def transformer(self, precision: str):
        """Random DiT for a precision: bf16, fp32 (release; run under autocast), or int8 linears."""
        import torch

        from hallo4.testing import random_full_transformer

        dtype = torch.float32 if precision == "release" else torch.bfloat16
        if self.dry:
            from hallo4.models import Hallo4Transformer3DModel

            torch.manual_seed(0)
            model = Hallo4Transformer3DModel(**self.cfg).to(dtype).eval()
        else:
            model = random_full_transformer(dtype, device=self.device)
        if precision == "8bit":
            from hallo4.quantization import quantize_8bit

            quantize_8bit(model.to(self.device), device=self.device)
        return model

    def inputs(self, batch: int = 2):
        import torch

        c = self.cfg
        f = (self.frames - 1) // 4
        h, w = self.height // 8, self.width // 8
        g = torch.Generator().manual_seed(0)

        def r(*shape):
            return torch.randn(*shape, generator=g)

        return dict(
            hidden_states=r(batch, 16, 2 + f, h, w),
            timestep=torch.full((batch,), 500.0),
            encoder_hidden_states=r(batch, self.text_len, c["text_dim"]),
            control_hidden_states=r(batch, 96, 2 + f, h, w),
            audio_features=r(batch, self.frames, c["audio_window"], c["audio_layers"], c["audio_dim"]),
            pose_latents=r(batch, 16, self.frames, h, w),
        )

    def tokens(self) -> int:
        return (2 + (self.frames - 1) // 4) * (self.height // 16) * (self.width // 16)


def _steps(check: Check, model, inputs: dict, n: int, autocast: bool, exec_device) -> list[float]:
    import torch

    times = []
    dtype = next(p.dtype for p in model.parameters() if p.is_floating_point())
    dtype = torch.bfloat16 if autocast else dtype
    x = {
        k: (v.to(exec_device, dtype) if v.is_floating_point() and k != "timestep" else v.to(exec_device))
        for k, v in inputs.items()
    }
    ctx = (
        torch.autocast(exec_device.type, dtype=torch.bfloat16)
        if autocast
        else torch.autocast(exec_device.type, enabled=False)
    )
    with torch.inference_mode(), ctx:
        for _ in range(n + 1):  # the first one is the warm-up
            check.sync()
            t0 = time.perf_counter()
            model(**x, return_dict=False)
            check.sync()
            times.append(time.perf_counter() - t0)
    return times


def measure_mode(check: Check, precision: str, offload: str, steps: int) -> dict:
    """Seconds per step and peak memory of one (precision, offload) mode."""
    import torch

    check.reset_peak()
    t0 = time.perf_counter()
    model = check.transformer(precision)
    build = time.perf_counter() - t0
    dev = check.device
    hook = None
    if offload == "none":
        model.to(dev)
    elif offload == "model":  # what enable_model_cpu_offload does to the DiT: moved in on call, kept for the loop
        from accelerate import cpu_offload_with_hook

        if precision != "8bit":
            model.to("cpu")
        model, hook = cpu_offload_with_hook(model, execution_device=dev)
    else:  # group: the engine's block-level group offload, one block per group
        model.to("cpu")
        model.enable_group_offload(
            onload_device=dev, offload_device=torch.device("cpu"), offload_type="block_level", num_blocks_per_group=1
        )
    check.reset_peak()  # the peak below is the run's (weights placed + activations), not the random build's
    inputs = check.inputs()
    times = _steps(check, model, inputs, steps, autocast=precision == "release", exec_device=dev)
    per_step = sorted(times[1:])[len(times[1:]) // 2]
    out = {
        "precision": precision,
        "offload": offload,
        "seconds_per_step": round(per_step, 3),
        "first_step_s": round(times[0], 3),
        "measured_steps": steps,
        "peak_gib": check.peak_gib(),
        "build_s": round(build, 2),
    }
    if hook is not None and precision != "8bit":  # int8 weights are not moved back; they are dropped below
        hook.offload()
    del model
    check.reset_peak()
    return out


def measure_text_encoder(check: Check) -> dict:
    import torch
    from accelerate import init_empty_weights
    from transformers import UMT5Config, UMT5EncoderModel

    from hallo4.memory_estimates import UMT5_XXL

    check.reset_peak()
    cfg = UMT5Config(
        **(
            dict(
                vocab_size=64,
                d_model=check.cfg["text_dim"],
                d_kv=8,
                d_ff=32,
                num_layers=1,
                num_heads=2,
                relative_attention_num_buckets=8,
            )
            if check.dry
            else UMT5_XXL
        )
    )
    t0 = time.perf_counter()
    with init_empty_weights():
        enc = UMT5EncoderModel(cfg)
    enc.to_empty(device=check.device)
    enc.to(torch.bfloat16)
    with torch.no_grad():
        for p in enc.parameters():
            p.normal_(0.0, 0.02)
    check.sync()
    build = time.perf_counter() - t0
    weights = sum(p.numel() * p.element_size() for p in enc.parameters())
    ids = torch.randint(0, cfg.vocab_size, (2, check.text_len), device=check.device)
    mask = torch.ones_like(ids)
    times = []
    with torch.inference_mode():
        for _ in range(3):
            check.sync()
            t = time.perf_counter()
            enc(ids, mask)
            check.sync()
            times.append(time.perf_counter() - t)
    out = {
        "config": "umT5-XXL encoder (published config)" if not check.dry else "tiny",
        "weights_gib": round(weights / 2**30, 2),
        "build_random_s": round(build, 2),
        "encode_two_prompts_s": round(min(times[1:]), 3),
        "peak_gib": check.peak_gib(),
    }
    del enc
    check.reset_peak()
    return out


def measure_vae(check: Check) -> dict:
    import torch
    from diffusers import AutoencoderKLWan

    check.reset_peak()
    vae = (
        (
            AutoencoderKLWan(base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1)
            if check.dry
            else AutoencoderKLWan()
        )
        .to(check.device)
        .eval()
    )
    h, w, n = check.height, check.width, check.frames
    out = {"config": "Wan2.1 VAE (diffusers default = published config), fp32" if not check.dry else "tiny"}
    with torch.inference_mode():
        for name, fn in (
            ("encode_16_skeleton_frames", lambda: vae.encode(torch.zeros(16, 3, 1, h, w, device=check.device))),
            ("encode_context_video", lambda: vae.encode(torch.zeros(1, 3, n, h, w, device=check.device))),
            (
                "decode_segment",
                lambda: vae.decode(torch.zeros(1, 16, 1 + (n - 1) // 4, h // 8, w // 8, device=check.device)),
            ),
        ):
            check.reset_peak()
            check.sync()
            t = time.perf_counter()
            fn()
            check.sync()
            out[f"{name}_s"] = round(time.perf_counter() - t, 3)
            out[f"{name}_peak_gib"] = check.peak_gib()
    vae = None  # free it before the next measurement
    check.reset_peak()
    return out


def measure_dpo(check: Check) -> dict:
    """One Diffusion-DPO step as trainer.dpo runs it: fp32 weights, LoRA r16, bf16 autocast, checkpointing."""
    import torch

    from trainer.dpo import DPOConfig, add_lora, dpo_step_losses
    from trainer.loss import dpo_loss_from_errors

    check.reset_peak()
    cfg = DPOConfig(
        rank=16,
        mixed_precision="bf16",
        gradient_checkpointing=True,
        height=check.height,
        width=check.width,
        frames=check.frames,
    )
    model = check.transformer("release").to(check.device)
    add_lora(model, cfg)
    model.enable_gradient_checkpointing()
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr)
    x = check.inputs(batch=1)
    batch = {
        "x0_w": x["hidden_states"],
        "x0_l": x["hidden_states"].flip(-1),
        "prompt": x["encoder_hidden_states"],
        "context": x["control_hidden_states"],
        "audio": x["audio_features"],
        "pose": x["pose_latents"],
    }
    sigma = torch.tensor([0.6])
    noise = torch.randn_like(x["hidden_states"])
    times = []
    for _ in range(2):  # warm-up + one measured
        check.sync()
        t = time.perf_counter()
        with torch.autocast(check.device.type, dtype=torch.bfloat16):
            mw, ml, rw, rl = dpo_step_losses(model, batch, sigma, noise, cfg, check.device, torch.float32)
        loss = dpo_loss_from_errors(mw, ml, rw, rl, cfg.beta).loss
        loss.backward()
        opt.step()
        opt.zero_grad()
        check.sync()
        times.append(time.perf_counter() - t)
    out = {
        "what": f"1 pair, {check.height}x{check.width}x{check.frames}, LoRA r16 on to_q/to_k/to_v/to_out.0, gradient checkpointing, fp32 weights + "
        "bf16 autocast, AdamW",
        "trainable_params": sum(p.numel() for p in params),
        "seconds_per_step": round(times[-1], 3),
        "peak_gib": check.peak_gib(),
        "loss_finite": bool(torch.isfinite(loss)),
    }
    del model, opt
    check.reset_peak()
    return out
