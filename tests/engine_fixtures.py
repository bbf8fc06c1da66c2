"""Fixtures the engine tests need, apart from conftest.py: that one imports the LSP client, which the GPU machine
lacks, so the CUDA runbook runs the engine tests with --noconftest and they import these themselves."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A tiny random-weight DiffusionGemma (transformers' own class) with the embedded model's tokenizer, saved as a
    checkpoint folder: for engine tests that need real shapes, not real text."""
    import json

    import torch
    from transformers import AutoTokenizer, DiffusionGemmaForBlockDiffusion

    from engine.configs import tiny_config
    from engine.loading import DEFAULT_MODEL_DIR

    folder = tmp_path_factory.mktemp("tiny-diffusion-gemma")
    tokenizer = AutoTokenizer.from_pretrained(DEFAULT_MODEL_DIR)
    torch.manual_seed(0)
    model = DiffusionGemmaForBlockDiffusion(tiny_config(vocab_size=len(tokenizer), canvas_length=32))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    (folder / "diffusion_infill.json").write_text(json.dumps({"max_prompt_tokens": 64, "canvas_length": 32,
                                                          "canvas_lengths": [16, 32]}))
    return folder
