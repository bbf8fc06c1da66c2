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


def diffusiongemma_26b_a4b_config() -> DiffusionGemmaConfig:
    """The shape of google/diffusiongemma-26B-A4B-it, for benchmarks with random weights (built on the meta device).

    Values from a verbatim copy of the checkpoint's config.json (lablup/mlxcel, src/models/diffusion_gemma/tests.rs)
    agreeing with the SGLang cookbook (docs.sglang.io/cookbook/autoregressive/Google/DiffusionGemma) and the model
    card: 25.2B text parameters, 3.8B active, 128 experts with 8 active, window 1024, canvas 256. `attention_k_eq_v`
    is left out on purpose, as in the real config: the full-attention layers have no v_proj. Built with transformers
    5.23 this gives 25,823,778,864 parameters (text 25,250,986,752 plus the vision tower)."""
    text = dict(
        vocab_size=262_144, hidden_size=2816, intermediate_size=2112, num_hidden_layers=30,
        num_attention_heads=16, num_key_value_heads=8, head_dim=256, global_head_dim=512,
        num_global_key_value_heads=2, hidden_activation="gelu_pytorch_tanh", max_position_embeddings=262_144,
        rms_norm_eps=1e-6, sliding_window=1024, layer_types=(["sliding_attention"] * 5 + ["full_attention"]) * 5,
        final_logit_softcapping=30.0, num_experts=128, top_k_experts=8, moe_intermediate_size=704,
        tie_word_embeddings=True, attention_bias=False, use_bidirectional_attention="vision",
        pad_token_id=PAD_ID, bos_token_id=BOS_ID, eos_token_id=EOS_ID,
        rope_parameters={"sliding_attention": {"rope_type": "default", "rope_theta": 10_000.0},
                         "full_attention": {"rope_type": "proportional", "partial_rotary_factor": 0.25,
                                            "rope_theta": 1_000_000.0}},
    )
    vision = dict(
        model_type="gemma4_vision", hidden_size=1152, intermediate_size=4304, num_hidden_layers=27,
        num_attention_heads=16, num_key_value_heads=16, head_dim=72, patch_size=16, pooling_kernel_size=3,
        position_embedding_size=10240, rms_norm_eps=1e-6, standardize=True, use_clipped_linears=False,
    )
    return DiffusionGemmaConfig(text_config=text, vision_config=vision, canvas_length=256, tie_word_embeddings=True,
                                eos_token_id=[EOS_ID, 106, 50])
