"""The CUDA bf16 path and the compiled fast path on a real GPU, with the embedded model. These run only where CUDA
is available (a lent GPU machine: `python3 -m pytest --noconftest tests/test_engine_cuda.py`, see
bench/GPU-RUNBOOK.md); elsewhere they are skipped and say why. Nothing here needs tests/conftest.py (whose LSP
client imports are missing on the GPU machine)."""
from __future__ import annotations

import pytest
import torch

from engine import EngineConfig, EngineError, InfillEngine

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")

PREFIX = "def rectangle_area(width, height):\n    return "
SUFFIX = "\n\n\ndef circle_area(radius):\n    return 3.14159 * radius * radius\n"
LENGTHS = [8, 16, 31]


@pytest.fixture(scope="module")
def compiled_engine():
    # Prefix reuse off: in bf16, re-encoding only a prompt's last token gives slightly different numbers than
    # encoding it whole, so with reuse on two seeded fills need not agree (reuse is checked on its own below).
    return InfillEngine(EngineConfig(device="cuda", reuse_prefix=False))


@pytest.fixture(scope="module")
def static_engine(compiled_engine):
    return InfillEngine(EngineConfig(device="cuda", fast_path="static"), loaded=compiled_engine.loaded)


def test_auto_on_cuda_is_bf16_with_the_compiled_step(compiled_engine):
    assert compiled_engine.describe()["dtype"] == "bfloat16"
    assert compiled_engine.describe()["fast_path"] == "compiled"
    result = compiled_engine.fill(PREFIX, SUFFIX, lengths=LENGTHS, seed=1)
    assert len(result.items) == 3 and all(0.0 <= c.confidence <= 1.0 for c in result.items)
    again = compiled_engine.fill(PREFIX, SUFFIX, lengths=LENGTHS, seed=1)
    assert [c.text for c in again.items] == [c.text for c in result.items]      # seeded, graphs replayed
    assert compiled_engine.describe()["prefix_reuse"]["reused_tokens"] == 0


def test_prefix_reuse_on_cuda_encodes_only_what_changed(static_engine):
    before = static_engine.describe()["prefix_reuse"]["reused_tokens"]
    first = static_engine.fill(PREFIX, SUFFIX, lengths=LENGTHS, seed=1)
    second = static_engine.fill(PREFIX + "width", SUFFIX, lengths=LENGTHS, seed=1)
    stats = static_engine.describe()["prefix_reuse"]
    assert stats["last_reused"] > 0 and stats["reused_tokens"] > before
    for result in (first, second):
        assert len(result.items) == 3 and all(0.0 <= c.confidence <= 1.0 for c in result.items)


def test_compiled_and_eager_static_steps_agree_over_several_passes(compiled_engine, static_engine):
    # The first pass (no self-conditioning logits yet) runs eagerly on both engines; the compiled step takes the
    # later ones, so three passes make it run twice. Count its calls to be sure.
    calls = []
    compiled_step = compiled_engine.scored_step

    def counted(*args):
        calls.append(1)
        return compiled_step(*args)

    settings = static_engine._settings(steps=3, stop_entropy=0.0)
    prompt = static_engine._prompt(PREFIX, SUFFIX)[0]
    canvas = torch.randint(0, static_engine.vocab_size, (2, 64), device="cuda",
                           generator=torch.Generator(device="cuda").manual_seed(0))
    pinned = torch.zeros_like(canvas, dtype=torch.bool)
    compiled_engine.scored_step = counted
    try:
        ours = compiled_engine._run(prompt, canvas, pinned, settings, compiled_engine._generator(0), None)[0]
    finally:
        compiled_engine.scored_step = compiled_step
    theirs = static_engine._run(prompt, canvas, pinned, settings, static_engine._generator(0), None)[0]
    assert len(calls) == settings.steps - 1
    # bf16 kernels differ between compiled and eager code: compare the decisions, allowing a few flips.
    agree = (ours.tokens == theirs.tokens).float().mean().item()
    assert agree > 0.9


def test_out_of_memory_is_a_clear_engine_error(static_engine):
    huge = "x = 1\n" * 200_000  # far beyond the prompt budget: trimmed, so this must still work
    assert static_engine.fill(huge, "", lengths=[8]).items
    with pytest.raises(EngineError):
        static_engine._guarded(lambda: torch.empty(1 << 42, device="cuda"))
