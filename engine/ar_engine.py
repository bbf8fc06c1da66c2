"""AREngine: the autoregressive twin behind the same public fill() as InfillEngine, for bench/ comparisons only.

It loads a transformers causal LM trained by training/train_ar.py (PSM fill-in-the-middle:
`<fim_prefix> prefix <fim_suffix> suffix <fim_middle>` then the middle token by token until <eos>) and decodes
greedily with a KV cache. Not the shipped default: it exists so speed and quality are measured on equal terms.
"""
from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import Callable

import torch

from .compat import with_cache
from .loading import end_of_text_id, pick_device, pick_dtype
from .memory import reporting_out_of_memory
from .prompt import encode_text, trim_context
from .types import Cancelled, Candidate, Candidates, EngineConfig, EngineError, ModelLoadError

FIM_TOKENS = ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
DEFAULT_AR_DIR = Path(__file__).resolve().parents[1] / "training" / "ar-twin"


def load_ar(config: EngineConfig):
    """(model, tokenizer, device, dtype, metadata, folder) from a local folder; never fetched from a hub."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    folder = Path(config.model).expanduser() if config.model else DEFAULT_AR_DIR
    if not (folder / "config.json").is_file():
        raise ModelLoadError(f"no AR twin at {folder}: train one with `python -m training.train_ar` "
                             "and pass its folder as the model")
    device = pick_device(config.device)
    dtype = pick_dtype(config.dtype, device)
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, local_files_only=True)
    except Exception as exc:  # corrupt weights, a folder of another kind of model, ...
        raise ModelLoadError(f"could not load the AR twin from {folder}: {type(exc).__name__}: {exc}") from exc
    meta_file = folder / "ar_infill.json"
    meta = json.loads(meta_file.read_text()) if meta_file.is_file() else {}
    return model.to(device).eval(), tokenizer, device, dtype, meta, str(folder)


class AREngine:
    layout = "psm-sentinels"

    def __init__(self, config: EngineConfig | None = None):
        self.config = config or EngineConfig()
        self.model, self.tokenizer, self.device, self.dtype, meta, self.source = load_ar(self.config)
        vocab = self.tokenizer.get_vocab()
        if not all(t in vocab for t in FIM_TOKENS):
            raise ModelLoadError(f"{self.source}: the tokenizer has no fill-in-the-middle tokens {FIM_TOKENS}")
        self.fim_ids = [vocab[t] for t in FIM_TOKENS]
        self.eos_id = end_of_text_id(self.tokenizer, self.model.config, self.source)   # as InfillEngine does
        self.end_ids = {self.eos_id, *self.tokenizer.all_special_ids}   # as InfillEngine: no special token is code
        self._max_prompt_tokens = self.config.max_prompt_tokens or int(meta.get("max_prompt_tokens", 1024))
        self.lock = threading.Lock()

    def describe(self) -> dict:
        return {"model": self.source, "kind": "autoregressive twin", "device": str(self.device),
                "dtype": str(self.dtype).replace("torch.", ""), "layout": self.layout,
                "parameters": sum(p.numel() for p in self.model.parameters()),
                "max_prompt_tokens": self._max_prompt_tokens}

    @property
    def max_prompt_tokens(self) -> int:
        """Context tokens the model reads (prefix + suffix + sentinels), as InfillEngine.max_prompt_tokens."""
        return self._max_prompt_tokens

    def count_tokens(self, text: str) -> int:
        return len(self._encode_text(text))

    def fill(self, prefix: str, suffix: str, *, max_new_tokens: int = 64, lengths: list[int] | None = None,
             cancel: Callable[[], bool] | None = None, seed: int | None = None,
             budget_ms: float | None = None) -> Candidates:
        """Greedy PSM infill up to max(lengths or [max_new_tokens]) tokens (capped by max_new_tokens), ending at the
        model's <eos>. One candidate: an AR model writes one middle, there is no length plan to choose from.
        `seed` is accepted for the same signature; greedy decoding does not use it. With `budget_ms`, decoding
        stops at that deadline with the tokens written so far."""
        limit = max(1, min(max(lengths or [max_new_tokens]), max_new_tokens))
        deadline = time.perf_counter() + budget_ms / 1e3 if budget_ms else None
        with self.lock:
            return reporting_out_of_memory(lambda: self._fill(prefix, suffix, limit, cancel, deadline), EngineError,
                                           "while generating", "try a shorter context")

    def _encode_text(self, text: str) -> list[int]:
        return encode_text(self.tokenizer, text)

    def _prompt(self, prefix: str, suffix: str) -> list[int]:
        """PSM prompt trimmed as InfillEngine trims: the suffix keeps at most a third, its nearest tokens; the
        prefix the rest, its newest tokens."""
        prefix_ids, suffix_ids = trim_context(self._encode_text(prefix), self._encode_text(suffix),
                                              self._max_prompt_tokens - 3)
        fp, fs, fm = self.fim_ids
        return [fp, *prefix_ids, fs, *suffix_ids, fm]

    @torch.no_grad()
    def _fill(self, prefix: str, suffix: str, limit: int, cancel, deadline: float | None = None) -> Candidates:
        from transformers.cache_utils import DynamicCache

        t0 = time.perf_counter()
        prompt = self._prompt(prefix, suffix)
        ids = torch.tensor([prompt], dtype=torch.long, device=self.device)            # (1, P)
        cache = DynamicCache(config=self.model.config)
        logits = self.model(input_ids=ids, **with_cache(self.model, cache), use_cache=True).logits[:, -1]   # (1, V)
        prefilled = time.perf_counter()
        tokens, logprob, ended = [], 0.0, False
        for _ in range(limit):
            if cancel is not None and cancel():
                raise Cancelled()
            logp = torch.log_softmax(logits.float(), dim=-1)
            token = int(logp.argmax(-1))
            if token in self.end_ids:
                ended = True
                break
            tokens.append(token)
            logprob += float(logp[0, token])
            if len(tokens) == limit or (deadline is not None and time.perf_counter() >= deadline):
                break
            step_ids = torch.tensor([[token]], device=self.device)
            logits = self.model(input_ids=step_ids, **with_cache(self.model, cache), use_cache=True).logits[:, -1]
        done = time.perf_counter()
        text = self.tokenizer.decode(tokens, skip_special_tokens=False)
        confidence = math.exp(logprob / len(tokens)) if tokens else 0.0
        # A forward pass per generated token (+1 for the <eos> when the model ended).
        steps = len(tokens) + (1 if ended else 0)
        item = Candidate(text=text, confidence=confidence, length=len(tokens), canvas_length=limit, steps=steps,
                         ended=ended)
        decode_s = done - prefilled
        timings = {"prefill_ms": (prefilled - t0) * 1e3, "decode_ms": decode_s * 1e3,
                   # the same keys InfillEngine reports, so bench/ reads both engines alike
                   "encode_ms": (prefilled - t0) * 1e3, "denoise_ms": decode_s * 1e3,
                   "total_ms": (done - t0) * 1e3, "steps": steps, "prompt_tokens": len(prompt),
                   "tokens_per_s": len(tokens) / decode_s if decode_s > 0 and tokens else 0.0}
        reason = (f"greedy autoregressive decoding, {len(tokens)} tokens, "
                  f"{'ended with <eos>' if ended else 'ran to its limit'}, mean probability {confidence:.2f}")
        return Candidates(items=[item], layout=self.layout, reason=reason, timings=timings)
