"""The CUDA bf16 path and the compiled fast path on a real GPU, with the embedded model. These run only where CUDA
is available (a lent GPU machine: `pytest tests/test_engine_cuda.py`); elsewhere they are skipped and say why."""
from __future__ import annotations

import pytest
import torch

from engine import EngineConfig, InfillEngine

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")

PREFIX = "def rectangle_area(width, height):\n    return "
SUFFIX = "\n\n\ndef circle_area(radius):\n    return 3.14159 * radius * radius\n"


@pytest.fixture(scope="module")
def static_engine():
    return InfillEngine(EngineConfig(device="cuda", fast_path="static"))


def test_auto_on_cuda_is_bf16_with_the_compiled_step():
    engine = InfillEngine(EngineConfig(device="cuda"))
    assert engine.describe()["dtype"] == "bfloat16"
    assert engine.describe()["fast_path"] == "compiled"
    result = engine.fill(PREFIX, SUFFIX, lengths=[8, 16, 31], seed=1)
    assert len(result.items) == 3 and all(0.0 <= c.confidence <= 1.0 for c in result.items)
    again = engine.fill(PREFIX, SUFFIX, lengths=[8, 16, 31], seed=1)
    assert [c.text for c in again.items] == [c.text for c in result.items]      # seeded, graphs replayed
    assert engine.describe()["prefix_reuse"]["reused_tokens"] > 0


def test_compiled_and_eager_static_steps_agree_on_the_first_pass(static_engine):
    compiled = InfillEngine(EngineConfig(device="cuda", fast_path="compiled"), loaded=static_engine.loaded)
    settings = static_engine._settings(steps=1, stop_entropy=0.0)
    prompt = static_engine._prompt(PREFIX, SUFFIX)[0]
    canvas = torch.randint(0, static_engine.vocab_size, (2, 64), device="cuda",
                           generator=torch.Generator(device="cuda").manual_seed(0))
    pinned = torch.zeros_like(canvas, dtype=torch.bool)
    ours = compiled._run(prompt, canvas, pinned, settings, compiled._generator(0), None)[0]
    theirs = static_engine._run(prompt, canvas, pinned, settings, static_engine._generator(0), None)[0]
    # bf16 kernels differ between compiled and eager code: compare the decisions, allowing a few flips.
    agree = (ours.tokens == theirs.tokens).float().mean().item()
    assert agree > 0.9


def test_out_of_memory_is_a_clear_engine_error(static_engine):
    from engine import EngineError

    huge = "x = 1\n" * 200_000  # far beyond the prompt budget: trimmed, so this must still work
    assert static_engine.fill(huge, "", lengths=[8]).items
    with pytest.raises(EngineError):
        static_engine._guarded(lambda: torch.empty(1 << 42, device="cuda"))

