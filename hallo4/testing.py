"""Tiny random Hallo4 pipelines for tests, the trainer and the app (no downloads, a few MB, CPU-fast).

    model_dir = make_tiny_pipeline(tmp_path / "tiny")
    pipe = Hallo4Pipeline.from_pretrained(model_dir)
    pipe(portrait, audio, height=32, width=64, frames_per_segment=9, num_inference_steps=2)

Every component is random and written with `save_pretrained` in the diffusers folder layout
(transformer/, vae/, text_encoder/, tokenizer/, scheduler/, audio_encoder/, feature_extractor/,
model_index.json). Sizes: transformer `hallo4.models.tiny_config()` (text dim 32, audio features
(T, 5, 2, 16)); Wan VAE with base_dim 3; umT5 d_model 32, 1 layer; wav2vec2 hidden 16, 2 layers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .constants import FPS, SAMPLE_RATE

TINY_WORDS = (
    "a person is talking singing speaking face portrait man woman smiling happy video the of and with "
    "bright tones overexposed static blurred details subtitles worst low quality"
).split()


def perturb_zero_init(transformer, seed: int = 1, audio_scale: float = 0.2, vace_scale: float = 0.05):
    """Give the zero-initialised output projections (audio/skeleton cross-attention, VACE hints) random
    values, so a random tiny model responds to every condition."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for block in transformer.blocks:
            for attn in (getattr(block, "audio_attn", None), getattr(block, "skeleton_attn", None)):
                if attn is not None:
                    for p in attn.to_out[0].parameters():
                        p.copy_(torch.randn(p.shape, generator=g) * audio_scale)
        for block in transformer.vace_blocks:
            for proj in (block.proj_in, block.proj_out):
                if proj is not None:
                    for p in proj.parameters():
                        p.copy_(torch.randn(p.shape, generator=g) * vace_scale)
    return transformer


def tiny_tokenizer():
    """A word-level tokenizer built locally (pad 0, eos 1, unk 2), wrapped as PreTrainedTokenizerFast."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "</s>": 1, "<unk>": 2}
    for w in TINY_WORDS + [",", "."]:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


def tiny_wav2vec2(hidden_size: int = 16, num_layers: int = 2, *, seed: int = 0):
    """A random wav2vec2 of `hidden_size` x `num_layers` (eval mode) and its 16 kHz feature extractor:
    the audio encoder of the tiny pipeline, also usable on its own (audio-encoder tests)."""
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    torch.manual_seed(seed)
    model = Wav2Vec2Model(
        Wav2Vec2Config(
            hidden_size=hidden_size,
            num_hidden_layers=num_layers,
            num_attention_heads=2,
            intermediate_size=32,
            conv_dim=(16,) * 7,
            num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=2,
        )
    )
    feature_extractor = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, padding_value=0.0, do_normalize=True, return_attention_mask=False
    )
    return model.eval(), feature_extractor


def make_tiny_components(seed: int = 0, perturb: bool = True, **transformer_overrides: Any) -> dict:
    """The seven pipeline components, tiny and random (deterministic for a given seed)."""
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler
    from transformers import UMT5Config, UMT5EncoderModel

    from .models import Hallo4Transformer3DModel, tiny_config

    torch.manual_seed(seed)
    transformer = Hallo4Transformer3DModel(**tiny_config(**transformer_overrides))
    if perturb:
        perturb_zero_init(transformer, seed=seed + 1)
    torch.manual_seed(seed + 2)
    vae = AutoencoderKLWan(
        base_dim=3, z_dim=16, dim_mult=[1, 1, 1, 1], num_res_blocks=1, temperal_downsample=[False, True, True]
    )
    tokenizer = tiny_tokenizer()
    torch.manual_seed(seed + 3)
    text_encoder = UMT5EncoderModel(
        UMT5Config(
            vocab_size=64,
            d_model=transformer.config.text_dim,
            d_kv=8,
            d_ff=32,
            num_layers=1,
            num_heads=2,
            relative_attention_num_buckets=8,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
    )
    cfg = transformer.config
    audio_encoder, feature_extractor = tiny_wav2vec2(cfg.audio_dim, cfg.audio_layers, seed=seed + 4)
    scheduler = UniPCMultistepScheduler(
        prediction_type="flow_prediction", use_flow_sigmas=True, flow_shift=8.0, num_train_timesteps=1000
    )
    return dict(
        vae=vae,
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        transformer=transformer.eval(),
        scheduler=scheduler,
        audio_encoder=audio_encoder,
        feature_extractor=feature_extractor,
    )


def make_tiny_pipeline(directory: str | Path, *, seed: int = 0, perturb: bool = True, **overrides: Any) -> Path:
    """Write a tiny random Hallo4 pipeline to `directory` (diffusers layout) and return the path.

    `overrides`: keys of `hallo4.models.tiny_config` for the transformer (e.g. enable_skeleton=False).
    `perturb`: randomise the zero-initialised output projections so audio/skeleton/VACE matter.
    """
    from .pipelines import Hallo4Pipeline

    directory = Path(directory)
    pipe = Hallo4Pipeline(**make_tiny_components(seed=seed, perturb=perturb, **overrides))
    pipe.save_pretrained(str(directory), safe_serialization=True)
    return directory


def recipe_weights(keys: dict[str, list[int]], seed_base: int) -> dict[str, torch.Tensor]:
    """Deterministic fp32 weights for a `{name: shape}` key list: the recipe of the golden fixtures
    (tests/fixtures/hallo4-official/README.md, "Weight recipe"), so that the authors' code and ours
    run the same random model. Names are taken in sorted order; name i uses seed `seed_base + i`."""
    import math

    out: dict[str, torch.Tensor] = {}
    for i, name in enumerate(sorted(keys)):
        shape = tuple(int(s) for s in keys[name])
        z = torch.randn(shape, generator=torch.Generator().manual_seed(seed_base + i), dtype=torch.float32)
        parts = name.split(".")
        leaf, parent = parts[-1], parts[-2] if len(parts) > 1 else ""
        if leaf == "weight" and "norm" in parent:
            w = 1.0 + 0.1 * z
        elif leaf == "modulation":
            w = z * (1.0 / math.sqrt(shape[-1]))
        elif len(shape) >= 2:
            w = z * (1.0 / math.sqrt(math.prod(shape[1:])))
        else:
            w = 0.1 * z
        out[name] = w
    return out


def random_full_transformer(
    dtype: torch.dtype = torch.bfloat16, seed: int = 0, device: str | torch.device = "cpu", **overrides: Any
):
    """The real-size Hallo4 DiT (`full_config()`, 2.77 B parameters) with random weights made directly in
    `dtype`: built on the meta device, then each tensor drawn in place, so the fp32 copy never exists
    (5.2 GiB in bf16 instead of 10.3 + 5.2). Matrices ~ N(0, 1/fan_in), norm gains 1, biases 0.01 N(0, 1).
    Every tensor is in `dtype` (from_pretrained would keep a few small modules, e.g. norms, in fp32)."""
    from accelerate import init_empty_weights

    from .models import Hallo4Transformer3DModel, full_config

    with init_empty_weights():
        model = Hallo4Transformer3DModel(**{**full_config(), **overrides})
    model.to_empty(device=device)
    model.to(dtype)
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim >= 2:
                p.normal_(0.0, p[0].numel() ** -0.5, generator=g)  # drawn in place, in `dtype`
            elif name.endswith("weight") and "norm" in name:
                p.fill_(1.0)
            else:
                p.normal_(0.0, 0.01, generator=g)
        for _name, b in model.named_buffers():  # none are persistent today; keep them finite if any appear
            if b.is_floating_point():
                b.zero_()
    return model.eval()


def make_full_size_pipeline(seed: int = 0, dtype: torch.dtype = torch.bfloat16):
    """`Hallo4Pipeline` with the real-size DiT (random `dtype` weights) and tiny VAE / umT5 / wav2vec2 whose
    output sizes are the real ones (text dim 4096; wav2vec2 width 768, 12 layers) so the DiT sees
    real-shaped conditions. For the full-size CPU smoke test and benchmark."""
    from .models import full_config
    from .pipelines import Hallo4Pipeline

    cfg = full_config()
    comps = make_tiny_components(
        seed=seed,
        perturb=False,
        text_dim=cfg["text_dim"],
        audio_dim=cfg["audio_dim"],
        audio_layers=cfg["audio_layers"],
        audio_window=cfg["audio_window"],
    )
    comps["transformer"] = random_full_transformer(dtype, seed)
    return Hallo4Pipeline(**comps)


def full_size_smoke(
    portrait, audio, *, steps: int = 1, size: int = 64, frames: int = 5, seed: int = 0, cache_dir=None
) -> dict[str, Any]:
    """One real denoising step (CFG batch 2) of the real pipeline with the real-size DiT at a tiny canvas.
    Returns the output and timings (seconds): build, generate (+ the pipeline's own stage timings)."""
    import time

    t0 = time.perf_counter()
    pipe = make_full_size_pipeline(seed)
    if cache_dir is not None:
        pipe.prompt_cache_dir = cache_dir
    built = time.perf_counter() - t0
    t1 = time.perf_counter()
    out = pipe(
        portrait,
        audio,
        height=size,
        width=size,
        frames_per_segment=frames,
        num_inference_steps=steps,
        guidance_scale=6.0,
        seed=seed,
        max_seconds=(frames - 0.5) / FPS,
    )
    gen = time.perf_counter() - t1
    params = sum(p.numel() for p in pipe.transformer.parameters())
    dtypes = sorted({str(p.dtype) for p in pipe.transformer.parameters()})
    return {
        "frames": out.frames,
        "parameters": params,
        "dtypes": dtypes,
        "build_s": built,
        "generate_s": gen,
        "timings": out.timings,
        "warnings": out.warnings,
    }


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
DEMO_EXPRESSIVENESS = (0.3, 1.0, 1.6)


def make_demo_store(
    directory: str | Path,
    *,
    portraits: list[str | Path] | None = None,
    audio: str | Path | None = None,
    size: int = 96,
    seconds: float = 0.5,
    expressiveness: tuple[float, ...] = DEMO_EXPRESSIVENESS,
) -> Path:
    """A small synthetic A/B vote store to try the trainer without weights or raters.

    For each portrait (default: the two in examples/portraits) with one speech file (examples/audio/hello.wav)
    it renders real lite clips at each `expressiveness`, pairs every two clips of the same conditions and
    records one vote per pair from the rater "demo-rater", who always prefers the livelier clip. So the store
    holds len(portraits) * C(len(expressiveness), 2) decisive pairs (6 by default).
    """
    from itertools import combinations

    from .engines import GenerationRequest, get_engine
    from .preferences import PreferenceStore

    portraits = [Path(p) for p in (portraits or sorted((EXAMPLES / "portraits").iterdir()))]
    audio = Path(audio or EXAMPLES / "audio" / "hello.wav")
    directory = Path(directory)
    store = PreferenceStore(directory)
    lite = get_engine("lite")
    work = directory / "demo-clips"
    work.mkdir(parents=True, exist_ok=True)
    for p_i, portrait in enumerate(portraits):
        cond = store.add_conditions(portrait, audio)
        clips = []
        for e in expressiveness:
            req = GenerationRequest(
                portrait=portrait,
                audio=audio,
                seed=p_i,
                size=size,
                max_seconds=seconds,
                output=work / f"p{p_i}-e{e:g}.mp4",
                options={"expressiveness": e},
            )
            res = lite.generate(req)
            clips.append((e, store.add_clip(cond, res.video, engine="lite", seed=res.seed, parameters=req.to_dict())))
        for (e_a, a), (e_b, b) in combinations(clips, 2):
            pair = store.add_pair(a, b)
            store.record_vote(pair, "a" if e_a > e_b else "b", a, "demo-rater")
    return directory


def main(argv: list[str] | None = None) -> int:
    """CLI: python -m hallo4.testing tiny-model DIR | demo-store DIR"""
    import argparse

    from .cli import run

    p = argparse.ArgumentParser(
        prog="python -m hallo4.testing",
        description="Smoke fixtures: try the trainer and the batch runner without weights.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("tiny-model", help="write a tiny random Hallo4 pipeline folder (a few MB, no downloads)")
    t.add_argument("directory")
    t.add_argument("--seed", type=int, default=0)
    d = sub.add_parser("demo-store", help="write a synthetic A/B vote store of real lite clips (6 decisive pairs)")
    d.add_argument("directory")
    d.add_argument("--size", type=int, default=96, help="clip long side in pixels")
    d.add_argument("--seconds", type=float, default=0.5, help="clip length")
    args = p.parse_args(argv)
    if args.command == "tiny-model":
        return run(lambda: print(make_tiny_pipeline(args.directory, seed=args.seed)))
    return run(lambda: print(make_demo_store(args.directory, size=args.size, seconds=args.seconds)))


if __name__ == "__main__":
    raise SystemExit(main())
