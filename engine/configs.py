"""DiffusionGemma configurations the project builds itself: the embedded model, a tiny test model, the 26B shape.

All of them are plain `DiffusionGemmaConfig`s for transformers' own `DiffusionGemmaForBlockDiffusion`.
"""
from __future__ import annotations

from transformers import DiffusionGemmaConfig

PAD_ID, EOS_ID, BOS_ID = 0, 1, 2  # fixed by training/tokenizer.py's special-token order

# The vision tower is unused for code but the class always builds one: keep it as small as the config allows.
_TINY_VISION = dict(
    model_type="gemma4_vision", hidden_size=16, intermediate_size=16, num_hidden_layers=1, num_attention_heads=1,
    num_key_value_heads=1, head_dim=16, position_embedding_size=16, patch_size=4,
)


def _text_config(vocab_size: int, hidden: int, layers: int, heads: int, kv_heads: int, head_dim: int,
                 experts: int, top_k: int, expert_hidden: int, window: int) -> dict:
    # Alternate local and global attention like the real model (its 5:1 pattern is too coarse for 4 layers).
    layer_types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(layers)]
    layer_types[-1] = "full_attention"
    return dict(
        vocab_size=vocab_size, hidden_size=hidden, intermediate_size=2 * hidden, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=kv_heads, head_dim=head_dim, global_head_dim=head_dim,
        num_global_key_value_heads=kv_heads, sliding_window=window, num_experts=experts, top_k_experts=top_k,
        moe_intermediate_size=expert_hidden, max_position_embeddings=8192, pad_token_id=PAD_ID,
        eos_token_id=EOS_ID, bos_token_id=BOS_ID, layer_types=layer_types,
    )


def small_config(vocab_size: int = 4096, canvas_length: int = 64) -> DiffusionGemmaConfig:
    """The embedded default model: ~7M parameters, trains on a CPU, fills in well under a second."""
    text = _text_config(vocab_size, hidden=256, layers=4, heads=4, kv_heads=2, head_dim=64,
                        experts=4, top_k=2, expert_hidden=256, window=256)
    return DiffusionGemmaConfig(text_config=text, vision_config=dict(_TINY_VISION), canvas_length=canvas_length)


def tiny_config(vocab_size: int = 512, canvas_length: int = 32) -> DiffusionGemmaConfig:
    """Random-weight model for tests: a few hundred thousand parameters."""
    text = _text_config(vocab_size, hidden=64, layers=2, heads=2, kv_heads=1, head_dim=32,
                        experts=2, top_k=1, expert_hidden=64, window=64)
    return DiffusionGemmaConfig(text_config=text, vision_config=dict(_TINY_VISION), canvas_length=canvas_length)
