"""Weight-only int8/int4 quantization (engine/quantize.py): the arithmetic, the model surgery on transformers' own
DiffusionGemma, and the engine running on it. Quality is judged on the embedded model's trained weights, where
logits mean something; the structure on the tiny random model."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from engine import EngineConfig, InfillEngine, ModelLoadError
from engine.masks import decoder_cache
from engine.quantize import (INT4_GROUP, QuantizedExperts, QuantizedLinear, QuantizedWeight, dequantize_weight,
                             quantize_weight, weight_bytes)

CODE = '''def parse_options(raw, base=None):
    """(options, warnings): a bad value falls back to its default."""
    base = base or ServerOptions()
    if raw is None:
        return base, []
    warnings, values = [], {}
    for name, value in raw.items():
        if name not in CHECKS:
            warnings.append(f"unknown option {name} was ignored")
            continue
'''


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16])
@pytest.mark.parametrize("bits", [8, 4])
def test_each_weight_comes_back_within_half_a_step_of_its_scale(bits, dtype):
    """In every dtype the scales are kept in (in bfloat16 the integers were computed against the float32 scale
    and then the scale was rounded: up to a whole step off)."""
    weight = torch.randn(3, 70, 2 * INT4_GROUP, generator=torch.Generator().manual_seed(0)).to(dtype).float()
    integers, scales = quantize_weight(weight.to(dtype), bits)
    assert scales.dtype == dtype
    back = dequantize_weight(integers, scales.float(), bits, torch.float32)
    scales = scales.float()
    assert back.shape == weight.shape
    if bits == 8:
        assert integers.dtype == torch.int8 and scales.shape == (3, 70, 1)
        step = scales                                                                  # one per output row
    else:
        assert integers.shape == (3, 70, INT4_GROUP) and integers.dtype == torch.uint8   # two weights a byte
        step = scales.expand(3, 70, 2, INT4_GROUP).flatten(-2)                          # one per group of inputs
    assert torch.all((back - weight).abs() <= step / 2 + 1e-6)


@pytest.mark.parametrize("bits", [8, 4])
def test_a_float16_row_of_small_values_keeps_its_precision_and_a_zero_row_stays_zero(bits):
    """A float16 row whose largest value is 5e-6 had its scale fall among the subnormals, rounded far off (half the
    row's accuracy lost); a row of zeros must not divide by a zero scale."""
    rows = torch.stack([torch.linspace(-5e-6, 5e-6, 2 * INT4_GROUP), torch.zeros(2 * INT4_GROUP)]).half()
    integers, scales = quantize_weight(rows, bits)
    back = dequantize_weight(integers, scales, bits, torch.float32)
    assert torch.isfinite(back).all() and torch.equal(back[1], torch.zeros(2 * INT4_GROUP))
    error = (back[0] - rows[0].float()).abs().max() / rows[0].float().abs().max()
    assert error < (0.02 if bits == 8 else 0.1)


@pytest.mark.parametrize("bits", [8, 4])
def test_float16_weights_near_its_largest_value_do_not_come_back_infinite(bits):
    """A scale rounded up times the largest integer overflowed float16 for weights in about (65468, 65504]."""
    row = torch.full((1, 2 * INT4_GROUP), 65470.0).half()
    integers, scales = quantize_weight(row, bits)
    back = dequantize_weight(integers, scales, bits, torch.float16)
    assert torch.isfinite(back).all() and (back.float() - row.float()).abs().max() <= scales.float().max()


def test_int4_packs_both_nibbles_in_order_and_is_exact_on_its_grid():
    # Every level of the symmetric 4-bit grid (-7..7 steps) in every position of a group: a swapped nibble or an
    # off-by-one offset shows. Each group holds +-7 steps, so its scale is exactly the step.
    levels = (torch.arange(INT4_GROUP) % 15 - 7).float()                            # (64,) -7..7 over and over
    weight = torch.stack([levels.roll(shift) * 0.25 for shift in range(5)])         # (5, 64)
    integers, scales = quantize_weight(weight, 4)
    assert torch.equal(scales.flatten(), torch.full((5,), 0.25))
    assert torch.equal(dequantize_weight(integers, scales, 4, torch.float32), weight)


def test_a_width_that_is_no_multiple_of_the_group_is_stored_as_int8():
    odd = QuantizedWeight(torch.randn(8, INT4_GROUP + 32), bits=4)
    assert odd.bits == 8 and odd.integers.dtype == torch.int8
    assert QuantizedWeight(torch.randn(8, 2 * INT4_GROUP), bits=4).bits == 4


def test_int8_in_float16_does_not_overflow_where_the_float16_layer_does_not():
    linear = nn.Linear(2048, 256, bias=False)
    nn.init.normal_(linear.weight, std=0.02, generator=torch.Generator().manual_seed(0))
    x = (torch.randn(4, 2048, generator=torch.Generator().manual_seed(1)) * 20).half()   # outputs near 50
    reference = linear.half()(x)
    ours = QuantizedLinear(linear, QuantizedWeight(linear.weight, bits=8))(x)
    assert torch.isfinite(reference).all() and torch.isfinite(ours).all()
    assert ((ours.float() - reference.float()).norm() / reference.float().norm()).item() < 0.02


def logits_for(engine: InfillEngine, prompt: list[int], canvas: torch.Tensor) -> torch.Tensor:
    """The decoder's logits (rows, canvas, vocab) for `canvas` after `prompt`, on the engine's plain path."""
    engine._count_reuse(len(prompt), engine._keep_prompt(prompt))
    cache = decoder_cache(engine.prompt_cache, engine.model.config.text_config, canvas.shape[0])
    with torch.no_grad():
        return engine._decoder_step(cache, len(prompt), canvas.shape[1])(canvas, None)


@pytest.fixture(scope="module")
def embedded_float():
    return InfillEngine(EngineConfig(threads=1, reuse_prefix=False))


@pytest.mark.parametrize("quantize, most_error, least_agreement", [("int8", 0.02, 0.95), ("int4", 0.15, 0.8)])
def test_the_embedded_model_quantized_predicts_what_it_predicts_in_float(embedded_float, quantize, most_error,
                                                                         least_agreement):
    quantized = InfillEngine(EngineConfig(threads=1, reuse_prefix=False, quantize=quantize))
    tokens = embedded_float._encode_text(CODE)
    prompt, canvas = tokens[:60], torch.tensor([tokens[60:92]])                     # (1, 32): real code
    reference, ours = logits_for(embedded_float, prompt, canvas), logits_for(quantized, prompt, canvas)
    relative_error = ((ours - reference).norm() / reference.norm()).item()
    agreement = (ours.argmax(-1) == reference.argmax(-1)).float().mean().item()
    assert relative_error < most_error and agreement >= least_agreement, (relative_error, agreement)
    float_info, info = embedded_float.describe(), quantized.describe()
    assert info["quantize"] == quantize and info["parameters"] == float_info["parameters"]
    assert info["weight_bytes"] < 0.5 * float_info["weight_bytes"]


def test_the_text_model_keeps_no_float_matrix_but_the_embedding_and_the_router(tiny_model_dir):
    engine = InfillEngine(EngineConfig(model=str(tiny_model_dir), threads=1, quantize="int4"))
    text = engine.model.model
    floats = {name for name, p in text.named_parameters() if p.dim() >= 2 and "vision" not in name}
    assert floats and all(name.endswith(("embed_tokens.weight", "router.proj.weight")) for name in floats), floats
    encoder_layer, decoder_layer = text.encoder.language_model.layers[0], text.decoder.layers[0]
    assert isinstance(decoder_layer.self_attn.q_proj, QuantizedLinear)
    assert isinstance(decoder_layer.experts, QuantizedExperts)
    # The encoder and the decoder share their weights: quantized once, read by both.
    assert encoder_layer.self_attn.q_proj.weight_q is decoder_layer.self_attn.q_proj.weight_q
    assert encoder_layer.experts.gate_up is decoder_layer.experts.gate_up
    assert isinstance(text.decoder.layers[0].router.proj, nn.Linear)


def test_a_quantized_engine_fills_deterministically_on_every_path(tiny_model_dir):
    import torch._dynamo

    plain = InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=6, threads=1, quantize="int8"))
    first = plain.fill("def add(a, b):\n    return ", "\n", lengths=[8, 16], seed=3)
    again = plain.fill("def add(a, b):\n    return ", "\n", lengths=[8, 16], seed=3)
    assert first.items and [c.text for c in first.items] == [c.text for c in again.items]
    static = InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=6, threads=1, fast_path="static"),
                          loaded=plain.loaded)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    # aot_eager: the graph capture inductor would get, without its code generation; the dequantizing experts must
    # not break the graph (a break would split the CUDA graph of the compiled step).
    compiled = InfillEngine(EngineConfig(model=str(tiny_model_dir), max_steps=6, threads=1, fast_path="compiled",
                                         compile_backend="aot_eager"), loaded=plain.loaded)
    assert not torch._dynamo.utils.counters["graph_break"]
    ours = compiled.fill("x = ", "\n", lengths=[8, 16], seed=5)
    theirs = static.fill("x = ", "\n", lengths=[8, 16], seed=5)
    assert [c.text for c in ours.items] == [c.text for c in theirs.items]


def test_the_thread_rule_counts_the_weights_as_loaded_not_what_quantizing_leaves(monkeypatch):
    """Quantized weights are buffers: counted afterwards, a large model would look small and get few threads."""
    from engine import loading

    threads = torch.get_num_threads()
    monkeypatch.setattr(loading, "SMALL_MODEL_PARAMETERS", 3_000_000)   # between what int8 leaves (1.1M) and 6.9M
    try:
        loading.load(EngineConfig(quantize="int8"))
        assert torch.get_num_threads() == loading.TORCH_DEFAULT_THREADS   # the large-model rule
    finally:
        torch.set_num_threads(threads)


def test_an_unknown_weight_format_is_refused(tiny_model_dir):
    with pytest.raises(ModelLoadError, match="quantize 'int3'"):
        InfillEngine(EngineConfig(model=str(tiny_model_dir), quantize="int3"))


def test_the_26b_a4b_shape_fits_a_24_gb_card_only_with_int4_experts():
    """Counted on the meta device (shapes only): the bytes the weights take, not a measured allocation."""
    from transformers import DiffusionGemmaForBlockDiffusion

    from engine.configs import diffusiongemma_26b_a4b_config
    from engine.quantize import quantize_model

    sizes = {}
    for quantize in ("none", "int8", "int4"):
        with torch.device("meta"):
            model = DiffusionGemmaForBlockDiffusion(diffusiongemma_26b_a4b_config()).to(torch.bfloat16)
        quantize_model(model, quantize, torch.device("meta"))
        sizes[quantize] = weight_bytes(model) / 1e9
    assert 50 < sizes["none"] < 53                    # ~25.8B parameters at 2 bytes
    assert sizes["int8"] > 24 > sizes["int4"], sizes   # int8 alone does not fit a 24 GB card; int4 does
