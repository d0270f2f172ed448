"""Diffusion-DPO: the loss by hand, learning on a tiny model, exact resume, real off-policy store data."""

from __future__ import annotations

import json
import math
import threading

import pytest
import torch
from safetensors.torch import load_file, save_file

from hallo4.errors import CancelledError
from hallo4.progress import Progress
from trainer.dpo import DPOConfig, add_lora, implicit_accuracy, run_round, train
from trainer.loss import dpo_loss, flow_matching_inputs


def test_loss_matches_a_hand_computed_example():
    # Pair 1: the policy fits the winner better (1.0 vs ref 1.5) and the loser worse (2.0 vs 1.5).
    # improvement = (1.5 - 1.0) - (1.5 - 2.0) = 1.0, inside = beta * 1.0 = 2.0
    # Pair 2: the opposite, inside = -2.0.
    out = dpo_loss(
        torch.tensor([1.0, 2.0]),
        torch.tensor([2.0, 1.0]),
        torch.tensor([1.5, 1.5]),
        torch.tensor([1.5, 1.5]),
        beta=2.0,
    )
    expected = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(2.0))) / 2
    assert out.loss.item() == pytest.approx(expected, rel=1e-6)
    assert out.inside.tolist() == pytest.approx([2.0, -2.0])
    assert out.implicit_acc.item() == 0.5
    assert out.reward_margin.item() == pytest.approx(0.0)
    good = dpo_loss(torch.tensor([1.0]), torch.tensor([2.0]), torch.tensor([1.5]), torch.tensor([1.5]), beta=2.0)
    assert good.loss.item() == pytest.approx(
        math.log1p(math.exp(-2.0))
    )  # sign: improving on the winner lowers the loss
    x_t, v = flow_matching_inputs(torch.ones(1, 2), torch.full((1, 2), 3.0), torch.tensor([0.25]))
    assert x_t.tolist() == [[1.5, 1.5]] and v.tolist() == [[2.0, 2.0]]


def _tiny_transformer(seed=0):
    from hallo4.models import Hallo4Transformer3DModel, tiny_config
    from hallo4.testing import perturb_zero_init

    torch.manual_seed(seed)
    return perturb_zero_init(Hallo4Transformer3DModel(**tiny_config()), seed=seed + 1)


def _synthetic_pairs(tmp_path, n, seed, name):
    """Winners have a bright latent region (channel 0, top-left), losers a dark one."""
    g = torch.Generator().manual_seed(seed)
    files = []
    for i in range(n):
        base = torch.randn(16, 4, 4, 8, generator=g) * 0.5
        w, l = base.clone(), base.clone()
        w[0, 1:, :2, :4] += 1.5
        l[0, 1:, :2, :4] -= 1.5
        t = {
            "x0_w": w,
            "x0_l": l,
            "context": torch.randn(96, 4, 4, 8, generator=g) * 0.1,
            "audio": torch.randn(9, 5, 2, 16, generator=g),
            "pose": torch.randn(16, 9, 4, 8, generator=g) * 0.1,
            "prompt": torch.randn(8, 32, generator=g),
        }
        path = tmp_path / f"{name}{i}.safetensors"
        save_file(t, str(path))
        files.append(path)
    return files


CFG = dict(beta=20.0, lr=3e-3, rank=8, shift=3.0, save_every=1000)


def test_learning_moves_towards_the_winners_and_adapter_off_is_the_reference(tmp_path):
    model = _tiny_transformer()
    train_files = _synthetic_pairs(tmp_path, 8, 0, "train")
    held_out = _synthetic_pairs(tmp_path, 6, 1, "held")
    cfg = DPOConfig(steps=60, **CFG)
    probe = load_file(str(held_out[0]))
    sigma = torch.tensor([0.6])
    noise = torch.randn((1, *probe["x0_w"].shape), generator=torch.Generator().manual_seed(5))
    x_t, _ = flow_matching_inputs(probe["x0_w"][None], noise, sigma)
    kwargs = dict(
        timestep=sigma * 1000,
        encoder_hidden_states=probe["prompt"][None],
        control_hidden_states=probe["context"][None],
        audio_features=probe["audio"][None],
        pose_latents=probe["pose"][None],
        return_dict=False,
    )
    with torch.no_grad():
        before = model(hidden_states=x_t, **kwargs)[0].clone()
    add_lora(model, cfg)
    # Zero-initialised LoRA: the policy equals the reference, so no draw favours the winner yet.
    assert implicit_accuracy(model, held_out, cfg) == 0.0
    round_dir = train(model, train_files, [1.0] * 8, tmp_path / "round-001", cfg, eval_files=held_out)
    acc = implicit_accuracy(model, held_out, cfg, draws=6)
    assert acc > 0.75, acc  # clearly above chance on pairs it never saw
    metrics = [json.loads(l) for l in (round_dir / "metrics.jsonl").read_text().splitlines()]
    # the round reports the held-out accuracy of its final adapter in its last row (only there)
    assert metrics[-1]["eval_implicit_acc"] == implicit_accuracy(model, held_out, cfg) > 0.5
    assert metrics[-1]["eval_pairs"] == 6 and "eval_implicit_acc" not in metrics[-2]
    assert len(metrics) == 60 and sum(m["loss"] for m in metrics[-10:]) < sum(m["loss"] for m in metrics[:10])
    with torch.no_grad():
        after = model(hidden_states=x_t, **kwargs)[0]
        model.disable_adapters()
        reference = model(hidden_states=x_t, **kwargs)[0]
        model.enable_adapters()
    assert torch.equal(reference, before)  # adapter off reproduces the reference exactly
    # x0 estimate = x_t - sigma * v: brighter in the winners' region with the adapter than without.
    region = (slice(None), 0, slice(1, None), slice(0, 2), slice(0, 4))
    x0_after = (x_t - 0.6 * after)[region].mean()
    x0_before = (x_t - 0.6 * before)[region].mean()
    assert x0_after > x0_before + 0.02
    assert (round_dir / "adapter_model.safetensors").exists() and (round_dir / "adapter_config.json").exists()


def test_interrupted_round_resumes_to_the_same_weights(tmp_path):
    files = _synthetic_pairs(tmp_path, 3, 2, "p")
    cfg = DPOConfig(steps=6, **{**CFG, "save_every": 3})
    full = train(add_and_return(_tiny_transformer(), cfg), files, [1.0] * 3, tmp_path / "full", cfg)

    cancel = threading.Event()

    def cb(fraction, message):
        if "step 5/" in message:
            cancel.set()

    with pytest.raises(CancelledError):
        train(add_and_return(_tiny_transformer(), cfg), files, [1.0] * 3, tmp_path / "cut", cfg, Progress(cb, cancel))
    assert json.loads((tmp_path / "cut" / "checkpoint" / "state.json").read_text())["step"] == 3
    resumed = train(add_and_return(_tiny_transformer(), cfg), files, [1.0] * 3, tmp_path / "cut", cfg, resume=True)
    a = load_file(str(full / "adapter_model.safetensors"))
    b = load_file(str(resumed / "adapter_model.safetensors"))
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    steps = [json.loads(l)["step"] for l in (resumed / "metrics.jsonl").read_text().splitlines()]
    assert steps == [1, 2, 3, 4, 5, 6]


def add_and_return(model, cfg):
    add_lora(model, cfg)
    return model


def test_round_from_a_store_of_real_off_policy_clips(
    tmp_path, tiny_pipeline_dir, generate_clip, portrait_path, speech_path
):
    """Lite clips vs a tiny-hallo4 clip of the same conditions are valid pairs; the round is usable."""
    from hallo4.engines import GenerationRequest, get_engine
    from hallo4.preferences import PreferenceStore

    model = tiny_pipeline_dir
    store = PreferenceStore(tmp_path / "store")
    cond = store.add_conditions(portrait_path, speech_path)
    clips = []
    for s in range(2):
        r = generate_clip(portrait=portrait_path, audio=speech_path, seed=s, size=96, max_seconds=0.5)
        clips.append(store.add_clip(cond, r.video, engine="lite", seed=s))
    engine = get_engine("hallo4", model=str(model))

    def hallo4_clip(name: str, seconds: float):
        request = GenerationRequest(
            portrait=portrait_path,
            audio=speech_path,
            seed=1,
            size=64,
            max_seconds=seconds,
            output=tmp_path / name,
            options={"steps": 2, "frames_per_segment": 9},
        )
        return engine.generate(request)

    h = hallo4_clip("h.mp4", 0.5)
    clips.append(store.add_clip(cond, h.video, engine="hallo4", model_id="tiny", seed=1))
    pairs = [
        store.add_pair(clips[0], clips[2]),
        store.add_pair(clips[1], clips[2]),
        store.add_pair(clips[0], clips[1]),
    ]
    store.record_vote(pairs[0], "a", clips[0], "r1")
    store.record_vote(pairs[1], "b", clips[2], "r1")
    store.record_vote(pairs[2], "tie", clips[0], "r1")  # no DPO signal: must be left out
    cfg = DPOConfig(steps=3, beta=100, lr=1e-3, rank=4, width=64, height=32, frames=9, save_every=2)
    out = run_round(tmp_path / "store", model, tmp_path / "rounds", cfg)
    assert out.name == "round-001"
    consumed = json.loads((out / "consumed_votes.json").read_text())
    assert consumed["pairs"] == 2 and len(consumed["votes"]) == 2
    assert store.usable_pairs(exclude_round="round-001") == []
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 3
    # The generate engine loads the round's adapter and unloads it again.
    engine.load_adapter(out)
    res = hallo4_clip("h2.mp4", 0.3)
    assert res.parameters["adapter"] == str(out) and res.video.exists()
    engine.unload_adapter()
    base = hallo4_clip("h3.mp4", 0.3)
    assert base.parameters["adapter"] is None


def test_training_inputs_are_what_inference_sees(tmp_path, tiny_pipeline_dir, portrait_path, speech_path, write_wav):
    """The tensors a pair is trained on (trainer.data.encode_pair) equal the first segment's conditions the
    pipeline hands its transformer when it generates for the same portrait, speech, canvas and seed."""
    from hallo4 import media
    from hallo4.pipelines import Hallo4Pipeline
    from trainer.data import PairRecord, encode_pair

    pipe = Hallo4Pipeline.from_pretrained(tiny_pipeline_dir)
    pipe.prompt_cache_dir = tmp_path / "prompts"
    seen: list[dict] = []
    hook = pipe.transformer.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append({k: v for k, v in kwargs.items() if torch.is_tensor(v)}),
        with_kwargs=True,
    )
    # 0.8 s = 20 frames: 3 segments of 9
    wav = write_wav(tmp_path / "speech.wav", media.load_audio(speech_path, 16000, max_seconds=0.8), subtype="FLOAT")
    out = pipe(portrait_path, wav, seed=4, height=32, width=64, frames_per_segment=9, num_inference_steps=1)
    hook.remove()
    clip = tmp_path / "clip.mp4"
    media.write_mp4(clip, out.frames, fps=25.0)
    rec = PairRecord("k", str(portrait_path), str(wav), str(clip), str(clip), 1.0, [1])
    train = encode_pair(pipe, rec, width=64, height=32, frames=9, seed=4)
    first = seen[0]  # segment 1, step 1; the CFG batch's first half is the conditional branch
    assert len(seen) == 3 and first["control_hidden_states"].shape[0] == 2
    assert torch.equal(train["context"], first["control_hidden_states"][0])
    assert torch.equal(train["audio"], first["audio_features"][0])
    assert torch.equal(train["pose"], first["pose_latents"][0])
    assert torch.equal(train["prompt"], first["encoder_hidden_states"][0])
    # the clean reference latent is frame 0 of both the noisy input and the training latents
    assert torch.equal(train["x0_w"][:, :1], first["hidden_states"][0, :, :1])
