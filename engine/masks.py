"""Prompt caches that keep every token in every layer, what the decoder reads from them, and the attention masks that
give sliding-window layers their window.

transformers' own caches store only the last `window - 1` keys of a sliding-window layer. Such a cache cannot be
rolled back once the prompt is longer than the window (the keys an edit needs are gone), so prefix reuse used to stop
at the window. Here every layer keeps all prompt keys, and the sliding layers get the same visibility as in
transformers' DynamicCache path:

- encoder, a sliding layer: a prompt token at position q sees keys k with q - window < k <= q (full layers: k <= q);
- decoder, a sliding layer: the canvas sees the last `window - 1` prompt tokens (what DynamicSlidingWindowLayer keeps
  after the prompt) and the whole canvas; full layers see the whole prompt and the whole canvas.

The encoder applies its window through masks (it writes the whole prompt); the decoder reads `decoder_cache`, whose
sliding layers hold only their window, so it needs no mask and costs what it cost before. Masks are boolean
(True = attend), as the sdpa attention reads them; eager attention gets the additive form.
"""
from __future__ import annotations

import torch
from transformers.cache_utils import DynamicCache, StaticCache, StaticLayer


def sliding_window_of(text_config) -> int | None:
    """The window of the model's sliding layers, or None when it has none."""
    if "sliding_attention" not in (getattr(text_config, "layer_types", None) or []):
        return None
    return getattr(text_config, "sliding_window", None) or None


def full_dynamic_cache() -> DynamicCache:
    """A growing cache whose layers (created on first use) all keep every token: it can be cropped anywhere."""
    return DynamicCache()


def decoder_cache(cache: DynamicCache, text_config, rows: int) -> DynamicCache:
    """What the decoder reads of a whole-prompt cache, as transformers' DynamicCache would hold it after the prompt:
    a sliding layer only its last `window - 1` keys, a full layer all of them; repeated for `rows` canvas rows."""
    window = sliding_window_of(text_config)
    data = []
    for kind, layer in zip(text_config.layer_types, cache.layers):
        keys, values = layer.keys, layer.values                               # (1, kv heads, P, head dim)
        if window and window > 1 and kind == "sliding_attention":
            keys, values = keys[:, :, -(window - 1):], values[:, :, -(window - 1):]
        data.append((keys.expand(rows, -1, -1, -1), values.expand(rows, -1, -1, -1)))
    return DynamicCache(ddp_cache_data=data)   # copies: the kept cache stays as it is for the next request


def full_static_cache(text_config, max_len: int) -> StaticCache:
    """A static cache of `max_len` slots in every layer, sliding ones included."""
    cache = StaticCache(config=text_config, max_cache_len=max_len)
    cache.layers = [StaticLayer(max_cache_len=max_len) for _ in cache.layers]
    return cache


def for_attention(masks: dict[str, torch.Tensor], model) -> dict[str, torch.Tensor]:
    """The masks as the model's attention reads them: sdpa (the default) takes booleans, eager attention adds the
    mask to its scores."""
    if model.config.text_config._attn_implementation != "eager":
        return masks
    low = torch.finfo(model.dtype).min
    return {kind: torch.zeros(mask.shape, dtype=model.dtype, device=mask.device).masked_fill(~mask, low)
            for kind, mask in masks.items()}


def encoder_masks(first: int, prompt_len: int, key_len: int, window: int | None, device) -> dict[str, torch.Tensor]:
    """(1, 1, prompt_len - first, key_len) masks for encoding prompt tokens [first, prompt_len) into a cache whose
    keys sit at their positions (slots past the prompt, if any, are never seen)."""
    queries = torch.arange(first, prompt_len, device=device).view(-1, 1)      # (Q, 1)
    keys = torch.arange(key_len, device=device).view(1, -1)                   # (1, K)
    causal = keys <= queries                                                  # (Q, K)
    local = causal & (keys > queries - window) if window else causal
    return {"full_attention": causal[None, None], "sliding_attention": local[None, None]}


def decoder_masks(prompt_len: int, slots: int, canvas_len: int, window: int | None,
                  device) -> dict[str, torch.Tensor]:
    """(1, 1, canvas_len, slots + canvas_len) masks for the decoder. The decoder appends the canvas keys right after
    the prompt's (position prompt_len on), so whatever the number of cache slots the valid keys are the first
    prompt_len + canvas_len; a sliding layer drops all but the last `window - 1` prompt keys."""
    keys = torch.arange(slots + canvas_len, device=device)
    valid = keys < prompt_len + canvas_len
    local = valid & (keys >= max(0, prompt_len - window + 1)) if window else valid
    expand = (1, 1, canvas_len, -1)
    return {"full_attention": valid.view(1, 1, 1, -1).expand(expand),
            "sliding_attention": local.view(1, 1, 1, -1).expand(expand)}
