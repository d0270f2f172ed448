"""Prompt embeddings: umT5 on the cleaned prompt, cached on disk per (prompt, negative prompt, encoder).

The text encoder is 11 GB and most clips use the default prompts, so embeddings are read from a safetensors
cache and the encoder is loaded (from `text_encoder_dir`) only on a miss, then freed.
"""

from __future__ import annotations

import gc
import hashlib
import html
import json
import os
import re
from pathlib import Path

import torch

from ..errors import MissingWeightsError
from ..weights import download_hint

DEFAULT_PROMPT = "a person is talking"
# Wan2.1's default negative prompt (its shared config, sample_neg_prompt).
DEFAULT_NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
MAX_SEQUENCE_LENGTH = 512
DOWNLOAD_HINT = download_hint("models")  # hf download ... / python -m hallo4.weights download (hallo4.weights)


def clean_prompt(text: str) -> str:
    """Clean a prompt as the Wan T5 tokenizer of the release does before tokenising: `ftfy.fix_text`
    (full-width punctuation such as the negative prompt's '，' becomes ASCII), HTML entities unescaped
    twice, whitespace collapsed to single spaces and stripped."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip()


def module_device(module, default) -> torch.device:
    """Where a module runs (accelerate offload hooks: the execution device)."""
    hook = getattr(module, "_hf_hook", None)
    if hook is not None and getattr(hook, "execution_device", None) is not None:
        return torch.device(hook.execution_device)
    try:
        dev = next(module.parameters()).device
    except StopIteration:
        return torch.device(default)
    return torch.device(default) if dev.type == "meta" else dev


class PromptEncodingMixin:
    """`encode_prompt` and its cache, for `Hallo4Pipeline` (needs text_encoder, tokenizer, text_encoder_dir,
    prompt_cache_dir, transformer and `_execution_device`)."""

    def text_encoder_id(self) -> str:
        """Identifies the text encoder's weights, for the prompt cache key."""
        if self.text_encoder is not None:
            cfg = json.dumps(self.text_encoder.config.to_dict(), sort_keys=True, default=str)
            params = list(self.text_encoder.parameters())[:4]
            fp = ",".join(f"{p.detach().float().sum().item():.6e}" for p in params)
            return hashlib.sha256(f"{type(self.text_encoder).__name__}|{cfg}|{fp}".encode()).hexdigest()
        if self.text_encoder_dir is not None:
            h = hashlib.sha256()
            d = Path(self.text_encoder_dir)
            cfg = d / "config.json"
            if cfg.is_file():
                h.update(cfg.read_bytes())
            for f in sorted(d.glob("*.safetensors")) + sorted(d.glob("*.bin")):
                h.update(f"{f.name}:{f.stat().st_size}".encode())
                with open(f, "rb") as fh:
                    h.update(fh.read(1 << 20))
            return h.hexdigest()
        raise MissingWeightsError("No text encoder: neither loaded nor a folder to load it from.", hint=DOWNLOAD_HINT)

    def prompt_cache_path(self, prompt: str, negative_prompt: str) -> Path:
        """The cache file of a (prompt, negative prompt) pair for this text encoder."""
        from ..paths import cache_dir

        key = hashlib.sha256(f"{prompt}\x00{negative_prompt}\x00{self.text_encoder_id()}".encode()).hexdigest()
        base = Path(self.prompt_cache_dir) if self.prompt_cache_dir else cache_dir() / "prompts"
        return base / f"{key}.safetensors"

    @torch.no_grad()
    def encode_prompt(
        self,
        prompt: str,
        negative_prompt: str,
        device: torch.device | None = None,
        dtype: torch.dtype | None = None,
        max_sequence_length: int = MAX_SEQUENCE_LENGTH,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(1, 512, D) umT5 embeddings for prompt and negative prompt (zero-padded like Wan).

        Args:
            prompt: the text condition.
            negative_prompt: the unconditional branch's text (CFG).
            device: where the embeddings go (default: the pipeline's execution device).
            dtype: their dtype (default: the transformer's).
            max_sequence_length: tokens kept and padded to (512 in Wan).

        Read from the safetensors cache when present; otherwise the text encoder is used (loaded from
        `text_encoder_dir` if needed and freed afterwards) and the result cached. Whether the cache was hit
        is left in `self._last_prompt_cache_hit`."""
        from safetensors.torch import load_file, save_file

        device = device or self._execution_device
        dtype = dtype or self.transformer.dtype
        path = self.prompt_cache_path(prompt, negative_prompt)
        self._last_prompt_cache_hit = path.is_file()
        if path.is_file():
            data = load_file(str(path))
            embeds = [data["prompt_embeds"], data["negative_prompt_embeds"]]
        else:
            embeds = self._run_text_encoder([prompt, negative_prompt], max_sequence_length)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".tmp{os.getpid()}")
            save_file(
                {"prompt_embeds": embeds[0].contiguous(), "negative_prompt_embeds": embeds[1].contiguous()}, str(tmp)
            )
            os.replace(tmp, path)
        out = []
        for e in embeds:
            padded = e.new_zeros(max_sequence_length, e.shape[-1])
            padded[: min(len(e), max_sequence_length)] = e[:max_sequence_length]
            out.append(padded[None].to(device=device, dtype=dtype))
        return out[0], out[1]

    def _load_text_encoder(self):
        """(tokenizer, encoder, device, loaded_here): the pipeline's own, or read from `text_encoder_dir`."""
        from transformers import AutoTokenizer, UMT5EncoderModel

        tokenizer = self.tokenizer
        if tokenizer is None:
            if self.text_encoder_dir is None:
                raise MissingWeightsError("No tokenizer for the text encoder.", hint=DOWNLOAD_HINT)
            tokenizer = AutoTokenizer.from_pretrained(Path(self.text_encoder_dir).parent / "tokenizer")
        if self.text_encoder is not None:
            return tokenizer, self.text_encoder, module_device(self.text_encoder, self._execution_device), False
        if self.text_encoder_dir is None:
            raise MissingWeightsError("No text encoder to embed the prompt with.", hint=DOWNLOAD_HINT)
        dev = self._execution_device
        dtype = getattr(self, "_text_dtype", None) or (torch.bfloat16 if dev.type == "cuda" else torch.float32)
        encoder = UMT5EncoderModel.from_pretrained(self.text_encoder_dir, torch_dtype=dtype).to(dev).eval()
        return tokenizer, encoder, dev, True

    def _run_text_encoder(self, prompts: list[str], max_len: int) -> list[torch.Tensor]:
        """Trimmed (len_i, D) embeddings of the cleaned prompts, on the CPU."""
        tokenizer, encoder, dev, loaded_here = self._load_text_encoder()
        try:
            inputs = tokenizer(
                [clean_prompt(p) for p in prompts],
                padding="max_length",
                max_length=max_len,
                truncation=True,
                add_special_tokens=True,
                return_attention_mask=True,
                return_tensors="pt",
            )
            ids, mask = inputs.input_ids.to(dev), inputs.attention_mask.to(dev)
            hidden = encoder(ids, mask).last_hidden_state
            lens = mask.gt(0).sum(1).tolist()
            return [hidden[i, : lens[i]].float().cpu() for i in range(len(prompts))]
        finally:
            if loaded_here:
                del encoder
                gc.collect()
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
