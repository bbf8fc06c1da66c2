"""The static-shape decoder path: a static encoder KV cache, a fixed attention mask and a compiled, warmed-up step.

transformers' DynamicCache grows with every prompt, so a compiled decoder step would see a new key length (and
recompile) on every request. Here the encoder writes into a StaticCache of fixed length instead; the decoder reads
all of its slots and a boolean mask hides the unused ones. Every tensor the step sees then has a shape fixed by
(rows, canvas bucket) alone, which is what `torch.compile` (and, on CUDA, its CUDA graphs) needs.

Prefix reuse works as on the dynamic path: the first `shared` slots of the batch-1 cache are kept and only the rest
of the prompt is encoded. Every step reads all `max_len` slots, so the engine keeps `max_len` within the sliding
window; the caches and masks (engine/masks.py) would also serve a longer one.
"""
from __future__ import annotations

import torch

from .compat import cache_keyword, with_cache
from .masks import encoder_masks, for_attention, full_static_cache, sliding_window_of
from .sampler import Proposal, ScoredStep, SamplerSettings, propose


class StaticPrompt:
    """The encoder cache of the current prompt in static slots: one batch-1 cache that prefix reuse keeps, and one
    cache per batch size that the decoder reads (copied from the first, same addresses every call)."""

    def __init__(self, model, max_len: int):
        self.model = model
        self.text_config = model.config.text_config
        self.max_len = max_len
        self.window = sliding_window_of(self.text_config)
        self.master = full_static_cache(self.text_config, max_len)
        self.by_rows = {1: self.master}   # rows -> the cache the decoder reads
        self.prompt: list[int] = []

    def shared_prefix(self, prompt: list[int]) -> int:
        """How many leading tokens of `prompt` the cache already holds (at least one token is always encoded)."""
        shared = 0
        for old, new in zip(self.prompt, prompt):
            if old != new:
                break
            shared += 1
        return min(shared, len(prompt) - 1)

    @torch.no_grad()
    def encode(self, prompt: list[int], reuse: bool) -> int:
        """Write `prompt` (at most max_len tokens) into the batch-1 cache; returns how many tokens were reused."""
        if len(prompt) > self.max_len:
            raise ValueError(f"prompt of {len(prompt)} tokens exceeds the static cache ({self.max_len})")
        device = self.model.device
        shared = self.shared_prefix(prompt) if reuse and self.prompt else 0
        for layer in self.master.layers:                       # forget everything after the shared prefix
            if layer.is_initialized:
                layer.cumulative_length.fill_(shared)
        self.prompt = self.prompt[:shared]   # should the encoder fail part-way, only this much is known good
        new_ids = torch.tensor([prompt[shared:]], dtype=torch.long, device=device)       # (1, P - shared)
        positions = torch.arange(shared, len(prompt), device=device).unsqueeze(0)
        # (1, 1, P - shared, max_len) each
        masks = for_attention(encoder_masks(shared, len(prompt), self.max_len, self.window, device), self.model)
        encoder = self.model.model.encoder
        encoder(input_ids=new_ids, attention_mask=masks, position_ids=positions, **with_cache(encoder, self.master))
        self.prompt = list(prompt)
        return shared

    def for_rows(self, rows: int):
        """The cache the decoder reads for `rows` canvas rows: the batch-1 cache repeated, into fixed tensors."""
        if rows == 1:
            return self.master
        cache = self.by_rows.get(rows)
        if cache is None:
            cache = full_static_cache(self.text_config, self.max_len)
            for layer, source in zip(cache.layers, self.master.layers):
                layer.lazy_initialization(source.keys.expand(rows, -1, -1, -1),
                                          source.values.expand(rows, -1, -1, -1))
            self.by_rows[rows] = cache
        for layer, source in zip(cache.layers, self.master.layers):
            layer.keys.copy_(source.keys.expand_as(layer.keys))
            layer.values.copy_(source.values.expand_as(layer.values))
            layer.cumulative_length.copy_(source.cumulative_length)
        return cache


def static_scored_step(model, settings: SamplerSettings) -> ScoredStep:
    """The decoder forward on a static cache plus the step's decisions, as one function to compile. Its extra
    arguments (cache, positions, mask) are bound per run by `bind`."""
    cache_argument = cache_keyword(model)   # looked up here, outside what gets compiled

    def scored_step(canvas, sc_logits, pinned, pin_values, inv_temperature, uniform, noise, cache, positions,
                    mask) -> Proposal:
        logits = model(**{cache_argument: cache}, decoder_input_ids=canvas, decoder_position_ids=positions,
                       self_conditioning_logits=sc_logits, decoder_attention_mask=mask).logits  # (B, C, V)
        return propose(logits, canvas, pinned, pin_values, inv_temperature, uniform, noise, settings)
    return scored_step


def bind(step, cache, positions, mask, first_step=None, graphed: bool = False) -> ScoredStep:
    """Fix the run's cache, positions and mask. `first_step` (eager) takes the first pass, the only one without
    self-conditioning logits, so only one graph per shape needs compiling (with self-conditioning switched off,
    every pass is such a pass and runs eagerly). `graphed`: `step` replays CUDA graphs (compile_step's graphs)."""

    def bound(canvas, sc_logits, pinned, pin_values, inv_temperature, uniform, noise) -> Proposal:
        if sc_logits is None and first_step is not None:
            return first_step(canvas, sc_logits, pinned, pin_values, inv_temperature, uniform, noise, cache,
                              positions, mask)
        if graphed:  # a CUDA-graph replay reuses its output buffers: keep copies of what the loop holds on to
            torch.compiler.cudagraph_mark_step_begin()
        out = step(canvas, sc_logits, pinned, pin_values, inv_temperature, uniform, noise, cache, positions, mask)
        if graphed:
            out = Proposal(**{name: value.clone() for name, value in vars(out).items()})
        return out
    return bound


def cuda_graphs_fit(model, device: torch.device) -> bool:
    """Whether the compiled step can be captured as a CUDA graph: every op must stay on the GPU. Under
    torch.compile transformers runs the routed experts with native grouped_mm only for bf16 weights on compute
    capability 8.0 or newer (integrations/moe.py); otherwise its fallback op reads the group offsets on the host,
    which a capture cannot hold, and the load failed at warm-up."""
    return (device.type == "cuda" and model.dtype == torch.bfloat16
            and torch.cuda.get_device_capability(device) >= (8, 0))


def compile_step(step, backend: str = "inductor", graphs: bool = False):
    """CUDA graphs ('reduce-overhead') when `graphs` (inductor on CUDA where cuda_graphs_fit), else inductor's
    default mode. Shapes are static, so each (rows, canvas) pair compiles once; allow enough of them."""
    import torch._dynamo

    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 64)
    if backend != "inductor":  # e.g. "aot_eager": the same capture without code generation (tests, debugging)
        return torch.compile(step, backend=backend, dynamic=False)
    mode = "reduce-overhead" if graphs else None
    return torch.compile(step, mode=mode, dynamic=False)
